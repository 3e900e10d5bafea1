/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The device side of the wire protocol: the command dispatcher. It answers every request as
 * hil/twin.py TwinFirmware does (same error codes, same order of checks), over an inference
 * engine (hil_engine.h) and a platform the glue provides (port, memory, sensor).
 *
 * Single-threaded: the glue calls every function from one thread. Nothing is allocated.
 */

#ifndef HIL_CORE_HIL_DEVICE_H_
#define HIL_CORE_HIL_DEVICE_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hil_engine.h"
#include "hil_frame.h"
#include "hil_stream.h"

#ifdef __cplusplus
extern "C" {
#endif

struct hil_memory_report {
	uint32_t stack_size_bytes; /* HIL_UNKNOWN_U32: cannot measure */
	uint32_t stack_used_bytes;
	uint32_t heap_size_bytes;
	uint32_t heap_used_bytes;
};

struct hil_sensor_request {
	size_t model;
	float sample_rate_hz;
	enum hil_sensor_kind kind;
	float unit_per_si; /* multiply SI readings (m/s²) by this to get the model's unit */
	uint16_t channels;
};

struct hil_platform_api {
	/* Write one unit, a whole frame or a whole console line, to the protocol port. */
	void (*write)(void *ctx, const uint8_t *data, size_t len);
	void (*memory)(void *ctx, struct hil_memory_report *report);
	/*
	 * Start sampling the sensor; samples come back through hil_device_sensor_samples.
	 * Returns 0 or a negative errno (-ENOTSUP: no such sensor). NULL: no sensor at all.
	 */
	int (*sensor_start)(void *ctx, const struct hil_sensor_request *request);
	void (*sensor_stop)(void *ctx);
};

struct hil_platform {
	const struct hil_platform_api *api;
	void *ctx;
};

struct hil_device_config {
	struct hil_engine engine;
	struct hil_platform platform;
	struct hil_clock clock;
	const char *firmware_version;
	const char *board;
	const char *build_id; /* 16 lowercase hex digits: a hash over the build's inputs */
	float *ring; /* stream ring storage: at least window × channels of any model */
	size_t ring_floats;
};

#define HIL_MESSAGE_BYTES     256U
#define HIL_EVENT_FRAME_BYTES (HIL_FRAME_OVERHEAD_BYTES + 4U + 1U + HIL_STR_MAX_BYTES + 13U)
#define HIL_LINE_BYTES        (HIL_STR_MAX_BYTES + 96U)

struct hil_device {
	struct hil_device_config cfg;
	struct hil_decoder decoder;
	struct hil_stream stream;
	bool reset_pending;
	uint8_t tx[HIL_MAX_FRAME_BYTES];
	uint8_t event_frame[HIL_EVENT_FRAME_BYTES];
	char message[HIL_MESSAGE_BYTES];
	char line[HIL_LINE_BYTES];
};

void hil_device_init(struct hil_device *dev, const struct hil_device_config *cfg);

/*
 * (Re)boot: create every interpreter, forget any stream and partial frame, and print the
 * boot lines ("HIL BOOT ...", a "HIL WARN ..." line per model that failed, "HIL READY").
 * Returns 0 or the engine's negative errno.
 */
int hil_device_boot(struct hil_device *dev);

/* Bytes from the port that arrived at now_ms. Stops early once a RESET was answered. */
void hil_device_rx(struct hil_device *dev, const uint8_t *data, size_t len, uint32_t now_ms);

/* Periodic silence check (every few tens of ms): abandons a partial frame after 100 ms. */
void hil_device_tick(struct hil_device *dev, uint32_t now_ms);

/*
 * The line was silent for more than 100 ms before the bytes that come next, as measured by the
 * port rather than the device clock: abandon a partial frame now (as hil_device_tick would have).
 */
void hil_device_rx_silence(struct hil_device *dev);

/* Bytes the receiver needs before hil_device_rx can act on them (hil_decoder_wanted). */
size_t hil_device_rx_wanted(const struct hil_device *dev);

/* Answer one request frame (the decoder calls this; tests and fuzzers may too). */
void hil_device_handle(struct hil_device *dev, uint8_t type, uint8_t seq, const uint8_t *payload,
		       size_t len);

/* Answer a frame fault (BAD_CRC, TOO_LARGE, truncated) with an ERROR reply. */
void hil_device_fault(struct hil_device *dev, const struct hil_item *fault);

/* True after a RESET reply went out: the glue reboots (or calls hil_device_boot). */
bool hil_device_reset_pending(const struct hil_device *dev);

/* True while a stream takes its samples from the sensor. */
bool hil_device_sensor_streaming(const struct hil_device *dev);

/*
 * count samples of the sensor stream (count × channels floats in the model's unit, time-major).
 * Raises events as FEED does. Returns 0, or a negative errno if no sensor stream is running
 * or an invoke failed.
 */
int hil_device_sensor_samples(struct hil_device *dev, const float *values, size_t count);

#ifdef __cplusplus
}
#endif

#endif /* HIL_CORE_HIL_DEVICE_H_ */
