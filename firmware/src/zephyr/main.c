/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The Zephyr glue: protocol UART, clock, memory statistics, sensor and the main loop around
 * the portable core (src/core: dispatcher, windowing, TFLM engine).
 */

#include <errno.h>
#include <stdint.h>

#include <app_version.h>
#include <zephyr/device.h>
#include <zephyr/devicetree.h>
#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/sys/reboot.h>
#include <zephyr/sys/util.h>
#include <zephyr/version.h>

#include "console_text.h"
#include "hil_build_id.h"
#include "hil_clock.h"
#include "hil_device.h"
#include "hil_models.h"
#include "hil_port.h"
#include "hil_sensor.h"
#include "memory_stats.h"
#include "tflm_engine.h"

LOG_MODULE_REGISTER(hil, CONFIG_HIL_LOG_LEVEL);

/* The protocol UART: chosen hil,protocol-uart if a board sets it, else the console. */
#if DT_HAS_CHOSEN(hil_protocol_uart)
#define HIL_PORT_NODE DT_CHOSEN(hil_protocol_uart)
#else
#define HIL_PORT_NODE DT_CHOSEN(zephyr_console)
#endif

#if DT_HAS_CHOSEN(zephyr_console)
#define PORT_IS_CONSOLE DT_SAME_NODE(HIL_PORT_NODE, DT_CHOSEN(zephyr_console))
#else
#define PORT_IS_CONSOLE 0
#endif

#define RX_CHUNK     256
#define SENSOR_CHUNK 16

#define KERNELS                                                                                    \
	COND_CODE_1(CONFIG_TENSORFLOW_LITE_MICRO_CMSIS_NN_KERNELS, ("CMSIS-NN kernels"),           \
		    ("reference kernels"))
#define RUNTIME "tflite-micro (Zephyr " KERNEL_VERSION_STRING ", " KERNELS ")"

K_SEM_DEFINE(wake, 0, 1);

static struct hil_device device;
static float stream_ring[HIL_STREAM_RING_FLOATS];
static struct k_thread *main_thread;

static void platform_write(void *ctx, const uint8_t *data, size_t len)
{
	ARG_UNUSED(ctx);
	hil_port_write(data, len);
}

static void platform_memory(void *ctx, struct hil_memory_report *report)
{
	ARG_UNUSED(ctx);
	hil_memory_stats(main_thread, report);
}

static int platform_sensor_start(void *ctx, const struct hil_sensor_request *request)
{
	ARG_UNUSED(ctx);
	return hil_sensor_start(request, &wake);
}

static void platform_sensor_stop(void *ctx)
{
	ARG_UNUSED(ctx);
	hil_sensor_stop();
}

static const struct hil_platform_api platform_api = {
	.write = platform_write,
	.memory = platform_memory,
	.sensor_start = IS_ENABLED(CONFIG_HIL_SENSOR) ? platform_sensor_start : NULL,
	.sensor_stop = IS_ENABLED(CONFIG_HIL_SENSOR) ? platform_sensor_stop : NULL,
};

static void feed_sensor_samples(void)
{
	float values[SENSOR_CHUNK * 3];
	size_t n;

	while ((n = hil_sensor_take(values, SENSOR_CHUNK)) > 0U) {
		if (!hil_device_sensor_streaming(&device)) {
			continue; /* a sample that was queued before STREAM_STOP */
		}

		int err = hil_device_sensor_samples(&device, values, n);

		if (err != 0) {
			LOG_ERR("sensor stream inference failed: %d", err);
		}
	}
}

static void reset(void)
{
	if (IS_ENABLED(CONFIG_HIL_RESET_REBOOT)) {
		hil_port_flush();
		sys_reboot(SYS_REBOOT_COLD);
	}
	/* In place, with the same outcome as a reboot: nothing received survives. */
	if (IS_ENABLED(CONFIG_HIL_SENSOR)) {
		hil_sensor_stop();
	}
	hil_port_discard_input();
	(void)hil_device_boot(&device);
}

int main(void)
{
	const struct device *uart = DEVICE_DT_GET(HIL_PORT_NODE);
	int err = hil_port_init(uart, &wake);

	if (err != 0) {
		LOG_ERR("protocol UART %s not ready: %d", uart->name, err);
		return err;
	}
	if ((IS_ENABLED(CONFIG_UART_CONSOLE) && PORT_IS_CONSOLE) ||
	    IS_ENABLED(CONFIG_HIL_PORT_SEMIHOST)) {
		/* printk, stdout and TFLM's MicroPrintf then only print whole lines between frames
		 */
		hil_console_text_init();
	}
	main_thread = k_current_get();

	const struct hil_clock *clock = hil_clock_init();
	const struct hil_device_config cfg = {
		.engine = hil_tflm_engine_init(clock, RUNTIME),
		.platform = {.api = &platform_api, .ctx = NULL},
		.clock = *clock,
		.firmware_version = APP_VERSION_STRING,
		.board = CONFIG_BOARD_TARGET,
		.build_id = hil_build_id(),
		.ring = stream_ring,
		.ring_floats = ARRAY_SIZE(stream_ring),
	};

	hil_device_init(&device, &cfg);
	err = hil_device_boot(&device);
	LOG_INF("models: %s; clock: %s at %u Hz; port %s%s", HIL_MODEL_NAMES, hil_clock_source(),
		clock->hz, hil_port_name(uart), hil_port_polled() ? " (polled)" : "");
	if (err != 0) {
		LOG_WRN("some models are unusable: see the HIL WARN lines");
	}

	k_timeout_t idle = hil_port_polled() ? K_MSEC(1) : K_MSEC(CONFIG_HIL_MAIN_LOOP_TICK_MS);

	for (;;) {
		uint8_t rx[RX_CHUNK];
		size_t n;

		(void)k_sem_take(&wake, idle);
		while (!hil_device_reset_pending(&device) &&
		       (n = hil_port_read(rx, sizeof(rx))) > 0U) {
			hil_device_rx(&device, rx, n, hil_clock_now_ms());
		}
		if (hil_port_take_silence()) {
			hil_device_rx_silence(&device);
		}
		if (IS_ENABLED(CONFIG_HIL_SENSOR) && !hil_device_reset_pending(&device)) {
			feed_sensor_samples();
		}
		hil_device_tick(&device, hil_clock_now_ms());
		if (hil_device_reset_pending(&device)) {
			reset();
		}
		hil_port_wake_after(hil_device_rx_wanted(&device));
	}
	return 0;
}
