/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Sensor streaming: the accelerometer behind the devicetree alias accel0, read through the
 * Zephyr sensor API at the model's sample rate by a thread of its own; the main thread takes
 * the samples (in the model's unit) and runs the windowing.
 */

#ifndef HIL_ZEPHYR_HIL_SENSOR_H_
#define HIL_ZEPHYR_HIL_SENSOR_H_

#include <stddef.h>

#include <zephyr/kernel.h>

#include "hil_device.h"

/* Start sampling for request; wake is given per sample. 0 or a negative errno. */
int hil_sensor_start(const struct hil_sensor_request *request, struct k_sem *wake);

void hil_sensor_stop(void);

/* Up to max_samples queued samples (× channels floats) into values; returns the count. */
size_t hil_sensor_take(float *values, size_t max_samples);

/* Samples dropped because the main thread fell behind. */
uint32_t hil_sensor_dropped(void);

#endif /* HIL_ZEPHYR_HIL_SENSOR_H_ */
