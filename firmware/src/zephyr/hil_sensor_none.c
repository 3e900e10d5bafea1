/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Boards without an accel0 sensor (CONFIG_HIL_SENSOR=n): the platform reports no sensor and
 * STREAM_START with source 1 is answered UNSUPPORTED; these are never called then.
 */

#include "hil_sensor.h"

#include <errno.h>

int hil_sensor_start(const struct hil_sensor_request *request, struct k_sem *wake)
{
	ARG_UNUSED(request);
	ARG_UNUSED(wake);
	return -ENOTSUP;
}

void hil_sensor_stop(void)
{
}

size_t hil_sensor_take(float *values, size_t max_samples)
{
	ARG_UNUSED(values);
	ARG_UNUSED(max_samples);
	return 0;
}

uint32_t hil_sensor_dropped(void)
{
	return 0;
}
