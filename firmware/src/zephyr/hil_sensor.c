/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "hil_sensor.h"

#include <errno.h>

#include <zephyr/device.h>
#include <zephyr/drivers/sensor.h>
#include <zephyr/logging/log.h>

LOG_MODULE_DECLARE(hil, CONFIG_HIL_LOG_LEVEL);

#define ACCEL_NODE             DT_ALIAS(accel0)
#define ACCEL_CHANNELS         3
#define SENSOR_THREAD_PRIORITY 2 /* above the main thread, which runs inferences */

struct accel_sample {
	float value[ACCEL_CHANNELS];
};

static const struct device *const accel = DEVICE_DT_GET(ACCEL_NODE);

K_MSGQ_DEFINE(sample_queue, sizeof(struct accel_sample), CONFIG_HIL_SENSOR_QUEUE_DEPTH, 4);
K_SEM_DEFINE(sample_due, 0, 1);

static atomic_t running;
static float unit_per_si;
static struct k_sem *sample_wake;
static uint32_t dropped;

static void on_sample_timer(struct k_timer *timer)
{
	ARG_UNUSED(timer);
	k_sem_give(&sample_due);
}

K_TIMER_DEFINE(sample_timer, on_sample_timer, NULL);

static void sample_once(void)
{
	struct sensor_value raw[ACCEL_CHANNELS];
	struct accel_sample sample;
	/* Some drivers (adxl345) return the number of FIFO samples read: only < 0 fails. */
	int err = sensor_sample_fetch(accel);

	if (err >= 0) {
		err = sensor_channel_get(accel, SENSOR_CHAN_ACCEL_XYZ, raw);
	}
	if (err < 0) {
		LOG_WRN("accel0 read failed: %d", err);
		return;
	}
	for (int i = 0; i < ACCEL_CHANNELS; i++) {
		/* m/s^2 to the model's unit (g: divide by 9.80665) */
		sample.value[i] = sensor_value_to_float(&raw[i]) * unit_per_si;
	}
	if (k_msgq_put(&sample_queue, &sample, K_NO_WAIT) != 0) {
		dropped++;
		return;
	}
	k_sem_give(sample_wake);
}

static void sensor_thread(void *p1, void *p2, void *p3)
{
	ARG_UNUSED(p1);
	ARG_UNUSED(p2);
	ARG_UNUSED(p3);

	for (;;) {
		(void)k_sem_take(&sample_due, K_FOREVER);
		if (atomic_get(&running) != 0) {
			sample_once();
		}
	}
}

K_THREAD_DEFINE(hil_sensor_tid, CONFIG_HIL_SENSOR_THREAD_STACK_SIZE, sensor_thread, NULL, NULL,
		NULL, SENSOR_THREAD_PRIORITY, 0, 0);

int hil_sensor_start(const struct hil_sensor_request *request, struct k_sem *wake)
{
	if (request->kind != HIL_SENSOR_ACCEL || request->channels != ACCEL_CHANNELS ||
	    request->sample_rate_hz <= 0.0f) {
		return -ENOTSUP;
	}
	if (!device_is_ready(accel)) {
		return -ENODEV;
	}

	/* Ask for at least the model's rate; drivers without the attribute keep their own. */
	struct sensor_value odr;

	(void)sensor_value_from_float(&odr, request->sample_rate_hz);
	(void)sensor_attr_set(accel, SENSOR_CHAN_ACCEL_XYZ, SENSOR_ATTR_SAMPLING_FREQUENCY, &odr);

	hil_sensor_stop();
	unit_per_si = request->unit_per_si;
	sample_wake = wake;
	atomic_set(&running, 1);

	k_timeout_t period = K_USEC((uint32_t)(1000000.0f / request->sample_rate_hz));

	k_timer_start(&sample_timer, period, period);
	return 0;
}

void hil_sensor_stop(void)
{
	atomic_set(&running, 0);
	k_timer_stop(&sample_timer);
	k_msgq_purge(&sample_queue);
}

size_t hil_sensor_take(float *values, size_t max_samples)
{
	size_t n = 0;
	struct accel_sample sample;

	while (n < max_samples && k_msgq_get(&sample_queue, &sample, K_NO_WAIT) == 0) {
		for (int i = 0; i < ACCEL_CHANNELS; i++) {
			values[n * ACCEL_CHANNELS + (size_t)i] = sample.value[i];
		}
		n++;
	}
	return n;
}

uint32_t hil_sensor_dropped(void)
{
	return dropped;
}
