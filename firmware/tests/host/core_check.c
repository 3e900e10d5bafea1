/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "core_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hil_wire.h"

int failures;
int checks;

void fail(const char *format, ...)
{
	va_list args;

	va_start(args, format);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, format, args);
	fprintf(stderr, "\n");
	va_end(args);
	failures++;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

/* Parse hex ("-" is empty) into out; returns the byte count, or -1 if it is not hex. */
long unhex(const char *text, uint8_t *out, size_t cap)
{
	if (strcmp(text, "-") == 0) {
		return 0;
	}

	size_t len = strlen(text);

	if (len % 2U != 0U || len / 2U > cap) {
		return -1;
	}
	for (size_t i = 0; i < len / 2U; i++) {
		int hi = hex_value(text[2U * i]);
		int lo = hex_value(text[2U * i + 1U]);

		if (hi < 0 || lo < 0) {
			return -1;
		}
		out[i] = (uint8_t)(hi * 16 + lo);
	}
	return (long)(len / 2U);
}

void text_add(struct text *t, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	int n = vsnprintf(&t->buf[t->len], sizeof(t->buf) - t->len, format, args);

	va_end(args);
	if (n > 0) {
		t->len += (size_t)n;
		if (t->len >= sizeof(t->buf)) {
			t->len = sizeof(t->buf) - 1U;
		}
	}
}

void text_hex(struct text *t, const uint8_t *data, size_t len)
{
	if (len == 0U) {
		text_add(t, "-");
	}
	for (size_t i = 0; i < len; i++) {
		text_add(t, "%02x", data[i]);
	}
}

void items_reset(struct items *it)
{
	it->out.len = 0;
	it->out.buf[0] = '\0';
	it->pending_len = 0;
	it->count = 0;
}

static void items_sep(struct items *it)
{
	if (it->count++ > 0U) {
		text_add(&it->out, " ");
	}
}

static void items_flush_text(struct items *it)
{
	if (it->pending_len > 0U) {
		items_sep(it);
		text_add(&it->out, "T:");
		text_hex(&it->out, it->pending_text, it->pending_len);
		it->pending_len = 0;
	}
}

bool record_item(void *user, const struct hil_item *item)
{
	struct items *it = user;

	if (item->kind == HIL_ITEM_TEXT) {
		size_t n = item->len;

		if (n > sizeof(it->pending_text) - it->pending_len) {
			n = sizeof(it->pending_text) - it->pending_len;
		}
		memcpy(&it->pending_text[it->pending_len], item->data, n);
		it->pending_len += n;
		return true;
	}
	items_flush_text(it);
	items_sep(it);
	if (item->kind == HIL_ITEM_FRAME) {
		text_add(&it->out, "F:%02x:%u:", item->type, item->seq);
		text_hex(&it->out, item->data, item->len);
	} else {
		text_add(&it->out, "E:%d:%u", (int)item->fault, item->seq);
	}
	return true;
}

const char *items_text(struct items *it)
{
	items_flush_text(it);
	return it->count > 0U ? it->out.buf : "-";
}

/* Device replies in vector notation: ERR:<code>:<seq> or F:<type>:<seq>:<hex>; text skipped. */
bool record_reply(void *user, const struct hil_item *item)
{
	struct items *it = user;

	if (item->kind != HIL_ITEM_FRAME) {
		return true;
	}
	items_sep(it);
	if (item->type == HIL_MSG_ERROR && item->len >= 1U) {
		text_add(&it->out, "ERR:%u:%u", item->data[0], item->seq);
	} else {
		text_add(&it->out, "F:%02x:%u:", item->type, item->seq);
		text_hex(&it->out, item->data, item->len);
	}
	return true;
}

struct hil_decoder decoder;
struct items items;
uint8_t bytes[MAX_BYTES];
uint8_t frame[MAX_BYTES];

/* The device under test: the core on FakeInferenceEngine, writing into a RecordingPort. */
struct fake_inference_engine fake;
struct recording_port port;
struct hil_device device;
static float ring[1024];

void device_setup(void)
{
	struct hil_device_config cfg = {
		.engine = fake_inference_engine_init(&fake),
		.platform = recording_port_platform(&port),
		.clock = fake_inference_engine_clock(&fake),
		.firmware_version = "host-test",
		.board = "host",
		.build_id = "0123456789abcdef",
		.ring = ring,
		.ring_floats = sizeof(ring) / sizeof(ring[0]),
	};

	hil_device_init(&device, &cfg);
	(void)hil_device_boot(&device);
	recording_port_clear(&port);
}

const char *device_replies(void)
{
	items_reset(&items);
	hil_decoder_init(&decoder, HIL_MAX_PAYLOAD_BYTES);
	(void)hil_decoder_feed(&decoder, port.data, port.len, record_reply, &items);
	return items.count > 0U ? items.out.buf : "-";
}

size_t frame_of(uint8_t *out, uint8_t type, uint8_t seq, const char *payload)
{
	return hil_frame_encode(out, MAX_BYTES, type, seq, (const uint8_t *)payload,
				strlen(payload));
}
