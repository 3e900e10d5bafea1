/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests of the core beyond the protocol vectors.
 */

#include <math.h>
#include <string.h>

#include "core_check.h"
#include "hil_stream.h"
#include "hil_wire.h"

static void test_decoder_abandons_a_partial_frame_after_silence(void)
{
	uint8_t buf[64] = {HIL_SYNC0, HIL_SYNC1};
	size_t n = 2U + frame_of(&buf[2], HIL_MSG_INFO, 1, "");

	items_reset(&items);
	hil_decoder_init(&decoder, HIL_MAX_PAYLOAD_BYTES);
	(void)hil_decoder_feed_at(&decoder, buf, n, 1000, record_item, &items);
	CHECK(strcmp(items_text(&items), "-") == 0, "false sync swallows the frame: %s",
	      items_text(&items));
	CHECK(hil_decoder_partial(&decoder), "a partial frame is buffered");
	(void)hil_decoder_tick(&decoder, 1100, record_item, &items);
	CHECK(strcmp(items_text(&items), "-") == 0, "100 ms of silence is not yet stale");
	(void)hil_decoder_tick(&decoder, 1101, record_item, &items);
	CHECK(strcmp(items_text(&items), "E:4:90 T:5a F:01:1:-") == 0,
	      "abandon after more than 100 ms: %s", items_text(&items));
	CHECK(!hil_decoder_partial(&decoder), "nothing partial after the abandon");
}

static void test_decoder_wants_the_rest_of_a_partial_frame(void)
{
	uint8_t echo[64];
	size_t n = frame_of(echo, HIL_MSG_ECHO, 7, "hello");

	items_reset(&items);
	hil_decoder_init(&decoder, HIL_MAX_PAYLOAD_BYTES);
	CHECK(hil_decoder_wanted(&decoder) == 1U, "empty: one byte");
	(void)hil_decoder_feed(&decoder, echo, 1, record_item, &items);
	CHECK(hil_decoder_wanted(&decoder) == 1U, "half a sync: one byte");
	(void)hil_decoder_feed(&decoder, &echo[1], 3, record_item, &items);
	CHECK(hil_decoder_wanted(&decoder) == HIL_HEADER_BYTES - 4U, "the rest of the header");
	(void)hil_decoder_feed(&decoder, &echo[4], 4, record_item, &items);
	CHECK(hil_decoder_wanted(&decoder) == n - 8U, "the rest of the frame: %zu",
	      hil_decoder_wanted(&decoder));
	(void)hil_decoder_feed(&decoder, &echo[8], n - 8U, record_item, &items);
	CHECK(strcmp(items_text(&items), "F:07:7:68656c6c6f") == 0, "the frame: %s",
	      items_text(&items));
	CHECK(hil_decoder_wanted(&decoder) == 1U, "after the frame: one byte");
}

static void test_decoder_reports_oversize_length_and_recovers(void)
{
	uint8_t buf[64];
	size_t n = frame_of(buf, HIL_MSG_ECHO, 4, "xxxxxxxxx");

	n += frame_of(&buf[n], HIL_MSG_INFO, 5, "");
	items_reset(&items);
	hil_decoder_init(&decoder, 8);
	(void)hil_decoder_feed(&decoder, buf, n, record_item, &items);

	const char *got = items_text(&items);

	CHECK(strncmp(got, "E:2:4 ", 6) == 0, "TOO_LARGE first: %s", got);
	CHECK(strstr(got, "F:01:5:-") != NULL, "the next frame survives: %s", got);
}

static void test_decoder_survives_a_full_buffer_of_garbage(void)
{
	items_reset(&items);
	hil_decoder_init(&decoder, HIL_MAX_PAYLOAD_BYTES);
	/* A header announcing the largest payload, then never finishing it, then more. */
	uint8_t head[6] = {HIL_SYNC0, HIL_SYNC1, 0x07, 9, 0x00, 0x10};

	(void)hil_decoder_feed(&decoder, head, sizeof(head), record_item, &items);
	for (int i = 0; i < 3 * (int)HIL_MAX_FRAME_BYTES; i++) {
		uint8_t b = (uint8_t)(i * 7);

		(void)hil_decoder_feed(&decoder, &b, 1, record_item, &items);
	}
	CHECK(decoder.tail - decoder.head < sizeof(decoder.buf), "the buffer stays bounded");

	size_t n = frame_of(frame, HIL_MSG_INFO, 3, "");

	(void)hil_decoder_feed(&decoder, frame, n, record_item, &items);
	while (hil_decoder_partial(&decoder)) {
		(void)hil_decoder_abandon_partial(&decoder, record_item, &items);
	}
	CHECK(strstr(items_text(&items), "F:01:3:-") != NULL, "a frame after garbage is found");
}

static void test_event_frame_and_line_come_before_the_feed_reply(void)
{
	uint8_t req[128];
	uint8_t start[] = {
		4,    's',  'i',  'n',  'e', HIL_SOURCE_FED, 1, 0, HIL_NO_IDLE_CLASS,
		0x00, 0x00, 0x00, 0x3f, /* threshold 0.5 */
		2,    0,                /* refractory 2 samples */
	};
	/* 3 samples: 4.0 (q=35, score 0.305), 5.0 (q=76, 0.625), 6.0 (q=116, 0.938) */
	uint8_t feed[] = {3,    0,    0x00, 0x00, 0x80, 0x40, 0x00,
			  0x00, 0xa0, 0x40, 0x00, 0x00, 0xc0, 0x40};
	size_t n =
		hil_frame_encode(req, sizeof(req), HIL_MSG_STREAM_START, 30, start, sizeof(start));

	device_setup();
	hil_device_rx(&device, req, n, 0);
	n = hil_frame_encode(req, sizeof(req), HIL_MSG_FEED, 31, feed, sizeof(feed));
	recording_port_clear(&port);
	hil_device_rx(&device, req, n, 0);

	const char *line = "HIL EVENT sine class=0 score=0.625 sample=2\r\n";

	CHECK(memmem(port.data, port.len, line, strlen(line)) != NULL, "the event line is printed");
	/* One event (sample 3 falls in the refractory period), then the FEED reply. */
	CHECK(strcmp(device_replies(), "F:c0:0:020000000473696e65000009203f0700000000000000 "
				       "F:89:31:0300000003000100") == 0,
	      "event then reply: %s", device_replies());
}

static void test_feed_without_stream_and_invoke_failure(void)
{
	uint8_t req[64];
	uint8_t infer[] = {4, 's', 'i', 'n', 'e', HIL_TYPE_INT8, 0x10};
	size_t n = hil_frame_encode(req, sizeof(req), HIL_MSG_INFER, 40, infer, sizeof(infer));

	device_setup();
	fake.fail_invoke = true;
	hil_device_rx(&device, req, n, 0);
	CHECK(strcmp(device_replies(), "ERR:8:40") == 0, "invoke failure: %s", device_replies());
	fake.fail_invoke = false;
	recording_port_clear(&port);
	hil_device_rx(&device, req, n, 0);
	CHECK(strcmp(device_replies(), "F:83:40:0700000000000000e006000010") == 0,
	      "INFER reply: ticks, arena used, output: %s", device_replies());
}

static void test_a_silence_the_port_saw_abandons_the_partial_frame(void)
{
	uint8_t req[64];
	size_t n = frame_of(req, HIL_MSG_ECHO, 41, "hello");

	device_setup();
	hil_device_rx(&device, req, n - 3U, 0);
	CHECK(strcmp(device_replies(), "-") == 0, "a partial frame waits: %s", device_replies());
	hil_device_rx_silence(&device);
	CHECK(strcmp(device_replies(), "ERR:4:0") == 0, "truncated: %s", device_replies());
	recording_port_clear(&port);
	hil_device_rx(&device, req, n, 0);
	CHECK(strcmp(device_replies(), "F:87:41:68656c6c6f") == 0, "the next frame is answered: %s",
	      device_replies());
	recording_port_clear(&port);
	hil_device_rx_silence(&device);
	CHECK(strcmp(device_replies(), "-") == 0, "no partial frame, nothing to say: %s",
	      device_replies());
}

static void test_reset_reboots_and_prints_the_boot_lines(void)
{
	uint8_t req[64];
	size_t n = hil_frame_encode(req, sizeof(req), HIL_MSG_RESET, 50, NULL, 0);

	n += hil_frame_encode(&req[n], sizeof(req) - n, HIL_MSG_INFO, 51, NULL, 0);
	device_setup();
	hil_device_rx(&device, req, n, 0);
	CHECK(hil_device_reset_pending(&device), "RESET asks the glue to reboot");
	CHECK(strcmp(device_replies(), "F:86:50:-") == 0,
	      "the frame after RESET is dropped as a reboot would: %s", device_replies());
	(void)hil_device_boot(&device);
	const char *boot = "HIL BOOT fw=host-test proto=2 board=host build=0123456789abcdef\r\n"
			   "HIL READY\r\n";

	CHECK(memmem(port.data, port.len, boot, strlen(boot)) != NULL,
	      "boot lines after the reply");
	CHECK(fake.boots == 2U, "the engine booted again");
}

/* Expected payloads are hil/protocol.py's pack_info and pack_model_info of the same values. */
static void test_info_reply_ends_with_the_build_id(void)
{
	uint8_t req[16];
	size_t n = hil_frame_encode(req, sizeof(req), HIL_MSG_INFO, 60, NULL, 0);

	device_setup();
	hil_device_rx(&device, req, n, 0);
	CHECK(strcmp(device_replies(),
		     "F:81:60:02001040420f000109686f73742d7465737404686f73742266616b652d696e666572"
		     "656e63652d656e67696e652028686f7374207465737473291030313233343536373839616263"
		     "646566") == 0,
	      "INFO: version 2, ..., runtime, build id: %s", device_replies());
}

static void test_model_info_reply_ends_with_the_model_sha256(void)
{
	uint8_t req[16];
	uint8_t index = 0;
	size_t n = hil_frame_encode(req, sizeof(req), HIL_MSG_MODEL_INFO, 61, &index, 1);

	device_setup();
	hil_device_rx(&device, req, n, 0);
	CHECK(strcmp(device_replies(),
		     "F:82:61:0473696e6590080000e0060000090201000100112ac93c80ffffff09020100010033"
		     "07003cfcffffff403066316532643363346235613639373838373936613562346333643265"
		     "3166303066316532643363346235613639373838373936613562346333643265316630") == 0,
	      "MODEL_INFO: name, arena, specs, sha256: %s", device_replies());
}

static void test_format_fixed3_matches_python(void)
{
	static const struct {
		float v;
		const char *want; /* f"{float(np.float32(v)):.3f}" */
	} cases[] = {
		{0.0f, "0.000"},        {-0.0f, "-0.000"},
		{0.625f, "0.625"},      {1.0625f, "1.062"},
		{1.0635f, "1.064"},     {0.0005f, "0.001"},
		{-0.0004f, "-0.000"},   {0.99951171875f, "1.000"},
		{123.4567f, "123.457"}, {1e10f, "10000000000.000"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[40];

		(void)hil_format_fixed3(buf, sizeof(buf), cases[i].v);
		CHECK(strcmp(buf, cases[i].want) == 0, "format %.9g: got %s, want %s",
		      (double)cases[i].v, buf, cases[i].want);
	}
}

static void test_quantize_rounds_half_away_from_zero_and_saturates(void)
{
	struct hil_tensor_spec spec = {
		.type = HIL_TYPE_INT8,
		.ndims = 1,
		.dims = {7},
		.scale = 0.5f,
		.zero_point = -1,
	};
	float values[7] = {0.25f, -0.25f, 0.75f, 1000.0f, -1000.0f, NAN, -0.74f};
	int8_t want[7] = {0, -2, 1, 127, -128, 0, -2};
	int8_t got[7];

	hil_quantize(&spec, values, 7, (uint8_t *)got);
	CHECK(memcmp(got, want, sizeof(want)) == 0, "quantize: %d %d %d %d %d %d %d", got[0],
	      got[1], got[2], got[3], got[4], got[5], got[6]);
}

static void test_utf8_validation_matches_python(void)
{
	CHECK(hil_utf8_valid((const uint8_t *)"sine", 4), "ASCII");
	CHECK(hil_utf8_valid((const uint8_t *)"\xc3\xa9", 2), "e acute");
	CHECK(!hil_utf8_valid((const uint8_t *)"\xc0\xaf", 2), "overlong");
	CHECK(!hil_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3), "surrogate");
	CHECK(!hil_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4), "above U+10FFFF");
	CHECK(!hil_utf8_valid((const uint8_t *)"\xe2\x82", 2), "truncated");
	CHECK(hil_utf8_truncate((const uint8_t *)"a\xc3\xa9", 3, 2) == 1U, "cut on a boundary");
}

int run_unit_tests(void)
{
	test_decoder_abandons_a_partial_frame_after_silence();
	test_decoder_wants_the_rest_of_a_partial_frame();
	test_decoder_reports_oversize_length_and_recovers();
	test_decoder_survives_a_full_buffer_of_garbage();
	test_event_frame_and_line_come_before_the_feed_reply();
	test_feed_without_stream_and_invoke_failure();
	test_a_silence_the_port_saw_abandons_the_partial_frame();
	test_reset_reboots_and_prints_the_boot_lines();
	test_info_reply_ends_with_the_build_id();
	test_model_info_reply_ends_with_the_model_sha256();
	test_format_fixed3_matches_python();
	test_quantize_rounds_half_away_from_zero_and_saturates();
	test_utf8_validation_matches_python();
	return 0;
}
