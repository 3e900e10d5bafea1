/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * RecordingPort: a host platform for the core that records what the device writes.
 */

#ifndef HIL_TESTS_HOST_HOST_PORT_H_
#define HIL_TESTS_HOST_HOST_PORT_H_

#include <stddef.h>
#include <stdint.h>

#include "hil_device.h"

#define RECORDING_PORT_BYTES (64U * 1024U)

struct recording_port {
	uint8_t data[RECORDING_PORT_BYTES];
	size_t len;
	size_t writes;
	size_t dropped; /* bytes that did not fit (a test failure) */
};

/* The platform to plug into hil_device_config: writes go to port; no memory stats, no sensor. */
struct hil_platform recording_port_platform(struct recording_port *port);

void recording_port_clear(struct recording_port *port);

#endif /* HIL_TESTS_HOST_HOST_PORT_H_ */
