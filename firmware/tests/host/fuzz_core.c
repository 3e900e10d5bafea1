/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer harness for the decoder + dispatcher (make -C firmware/tests/host fuzz).
 *
 * The first input byte picks a mode:
 *   even: the rest is a raw byte stream, cut into chunks by length bytes; a chunk length with
 *         the top bit set also lets 200 ms of silence pass (partial frames are abandoned)
 *   odd:  the rest is a list of requests [type][seq][len lo][len hi][payload], sent as frames
 *         with good CRCs so the fuzzer reaches every handler
 * Every reply the device writes must decode as whole, well-formed frames and text: a fault
 * in the device's own output, an overflow, or a hang fails the run.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_inference_engine.h"
#include "hil_device.h"
#include "host_port.h"

static struct fake_inference_engine fake;
static struct recording_port port;
static struct hil_device device;
static struct hil_decoder check_decoder;
static float ring[64];
static uint8_t frame[HIL_MAX_FRAME_BYTES + 16];

static bool check_item(void *user, const struct hil_item *item)
{
	(void)user;
	if (item->kind == HIL_ITEM_FAULT) {
		abort(); /* the device wrote a damaged frame */
	}
	return true;
}

static void drain_port(void)
{
	if (port.dropped != 0U) {
		abort(); /* more output than any request can cause */
	}
	(void)hil_decoder_feed(&check_decoder, port.data, port.len, check_item, NULL);
	recording_port_clear(&port);
	if (hil_device_reset_pending(&device)) {
		(void)hil_device_boot(&device);
		(void)hil_decoder_feed(&check_decoder, port.data, port.len, check_item, NULL);
		recording_port_clear(&port);
	}
}

static void setup(void)
{
	struct hil_device_config cfg = {
		.engine = fake_inference_engine_init(&fake),
		.platform = recording_port_platform(&port),
		.clock = fake_inference_engine_clock(&fake),
		.firmware_version = "fuzz",
		.board = "host",
		.build_id = "0123456789abcdef",
		.ring = ring,
		.ring_floats = sizeof(ring) / sizeof(ring[0]),
	};

	hil_device_init(&device, &cfg);
	hil_decoder_init(&check_decoder, HIL_MAX_PAYLOAD_BYTES);
	(void)hil_device_boot(&device);
	drain_port();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t now_ms = 0;

	setup();
	if (size == 0U) {
		return 0;
	}
	fake.fail_invoke = (data[0] & 0x80U) != 0U;
	if ((data[0] & 1U) == 0U) {
		size_t pos = 1;

		while (pos < size) {
			size_t chunk = data[pos] & 0x7FU;
			bool silence = (data[pos] & 0x80U) != 0U;

			pos++;
			if (chunk > size - pos) {
				chunk = size - pos;
			}
			hil_device_rx(&device, &data[pos], chunk, now_ms);
			drain_port();
			pos += chunk;
			now_ms += silence ? 200U : 1U;
			hil_device_tick(&device, now_ms);
			drain_port();
		}
	} else {
		size_t pos = 1;

		while (size - pos >= 4U) {
			uint8_t type = data[pos];
			uint8_t seq = data[pos + 1U];
			size_t len = (size_t)(data[pos + 2U] | (data[pos + 3U] << 8));

			pos += 4U;
			if (len > size - pos) {
				len = size - pos;
			}
			if (len > HIL_MAX_PAYLOAD_BYTES) {
				len = HIL_MAX_PAYLOAD_BYTES;
			}

			size_t n =
				hil_frame_encode(frame, sizeof(frame), type, seq, &data[pos], len);

			hil_device_rx(&device, frame, n, now_ms++);
			drain_port();
			pos += len;
		}
	}
	/* Whatever came before, the device still answers a good request. */
	size_t n =
		hil_frame_encode(frame, sizeof(frame), HIL_MSG_ECHO, 1, (const uint8_t *)"ok", 2);

	hil_device_tick(&device, now_ms + 1000U);
	drain_port();
	hil_decoder_init(&device.decoder, HIL_MAX_PAYLOAD_BYTES);
	hil_device_rx(&device, frame, n, now_ms + 1000U);
	if (port.len != n || port.data[2] != (HIL_MSG_ECHO | HIL_REPLY_FLAG)) {
		abort();
	}
	drain_port();
	return 0;
}
