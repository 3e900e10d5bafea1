/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "host_port.h"

#include <string.h>

static void port_write(void *ctx, const uint8_t *data, size_t len)
{
	struct recording_port *port = ctx;
	size_t room = sizeof(port->data) - port->len;
	size_t n = len < room ? len : room;

	memcpy(&port->data[port->len], data, n);
	port->len += n;
	port->dropped += len - n;
	port->writes++;
}

static const struct hil_platform_api recording_api = {
	.write = port_write,
	.memory = NULL,
	.sensor_start = NULL,
	.sensor_stop = NULL,
};

struct hil_platform recording_port_platform(struct recording_port *port)
{
	struct hil_platform platform = {.api = &recording_api, .ctx = port};

	recording_port_clear(port);
	return platform;
}

void recording_port_clear(struct recording_port *port)
{
	port->len = 0;
	port->writes = 0;
	port->dropped = 0;
}
