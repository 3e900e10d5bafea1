/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "hil_frame.h"

#include <string.h>

/* Reflected CRC-32 (polynomial 0xEDB88320), four bits at a time: 64 bytes of table. */
static const uint32_t crc32_nibble[16] = {
	0x00000000U, 0x1DB71064U, 0x3B6E20C8U, 0x26D930ACU, 0x76DC4190U, 0x6B6B51F4U,
	0x4DB26158U, 0x5005713CU, 0xEDB88320U, 0xF00F9344U, 0xD6D6A3E8U, 0xCB61B38CU,
	0x9B64C2B0U, 0x86D3D2D4U, 0xA00AE278U, 0xBDBDF21CU,
};

uint32_t hil_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
	crc = ~crc;
	for (size_t i = 0; i < len; i++) {
		crc ^= data[i];
		crc = (crc >> 4) ^ crc32_nibble[crc & 0x0FU];
		crc = (crc >> 4) ^ crc32_nibble[crc & 0x0FU];
	}
	return ~crc;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

size_t hil_frame_finish(uint8_t *frame, uint8_t type, uint8_t seq, size_t len)
{
	frame[0] = HIL_SYNC0;
	frame[1] = HIL_SYNC1;
	frame[2] = type;
	frame[3] = seq;
	put_le16(&frame[4], (uint16_t)len);
	put_le32(&frame[HIL_HEADER_BYTES + len], hil_crc32(0, &frame[2], len + 4U));
	return len + HIL_FRAME_OVERHEAD_BYTES;
}

size_t hil_frame_encode(uint8_t *out, size_t out_size, uint8_t type, uint8_t seq,
			const uint8_t *payload, size_t len)
{
	if (len > 0xFFFFU || out_size < len + HIL_FRAME_OVERHEAD_BYTES) {
		return 0;
	}
	if (len > 0U) {
		memmove(&out[HIL_HEADER_BYTES], payload, len);
	}
	return hil_frame_finish(out, type, seq, len);
}

void hil_decoder_init(struct hil_decoder *dec, uint16_t max_payload)
{
	dec->head = 0;
	dec->tail = 0;
	dec->max_payload =
		max_payload > HIL_MAX_PAYLOAD_BYTES ? HIL_MAX_PAYLOAD_BYTES : max_payload;
	dec->last_rx_ms = 0;
}

bool hil_decoder_partial(const struct hil_decoder *dec)
{
	return dec->tail - dec->head >= 2U && dec->buf[dec->head] == HIL_SYNC0 &&
	       dec->buf[dec->head + 1U] == HIL_SYNC1;
}

size_t hil_decoder_wanted(const struct hil_decoder *dec)
{
	size_t avail = dec->tail - dec->head;

	if (!hil_decoder_partial(dec)) {
		return 1U;
	}
	if (avail < HIL_HEADER_BYTES) {
		return HIL_HEADER_BYTES - avail;
	}

	uint16_t length = get_le16(&dec->buf[dec->head + 4U]);
	size_t end = HIL_HEADER_BYTES + (size_t)length + HIL_CRC_BYTES;

	/* An impossible length is reported as soon as the next byte arrives. */
	return length > dec->max_payload || avail >= end ? 1U : end - avail;
}

/* Offset of the first sync pair in [head, tail), or tail if there is none. */
static size_t find_sync(const struct hil_decoder *dec)
{
	for (size_t i = dec->head; i + 1U < dec->tail; i++) {
		if (dec->buf[i] == HIL_SYNC0 && dec->buf[i + 1U] == HIL_SYNC1) {
			return i;
		}
	}
	return dec->tail;
}

static bool emit_text(struct hil_decoder *dec, size_t len, hil_item_cb cb, void *user)
{
	struct hil_item item = {
		.kind = HIL_ITEM_TEXT,
		.data = &dec->buf[dec->head],
		.len = len,
	};

	dec->head += len;
	return cb(user, &item);
}

static bool emit_fault(struct hil_decoder *dec, enum hil_error_code code, uint8_t seq,
		       uint16_t length, hil_item_cb cb, void *user)
{
	struct hil_item item = {
		.kind = HIL_ITEM_FAULT,
		.seq = seq,
		.fault = code,
		.fault_length = length,
	};

	dec->head += 1U; /* drop the first sync byte and scan on */
	return cb(user, &item);
}

/* The loop of FrameDecoder._drain. Returns false if the callback stopped it. */
static bool drain(struct hil_decoder *dec, hil_item_cb cb, void *user)
{
	while (dec->tail > dec->head) {
		size_t avail = dec->tail - dec->head;
		size_t start = find_sync(dec);

		if (start == dec->tail) {
			/* The last byte may be the first half of a sync. */
			size_t keep = dec->buf[dec->tail - 1U] == HIL_SYNC0 ? 1U : 0U;
			size_t text = avail - keep;

			return text == 0U || emit_text(dec, text, cb, user);
		}
		if (start > dec->head && !emit_text(dec, start - dec->head, cb, user)) {
			return false;
		}
		avail = dec->tail - dec->head;
		if (avail < HIL_HEADER_BYTES) {
			return true;
		}

		const uint8_t *hdr = &dec->buf[dec->head];
		uint8_t type = hdr[2];
		uint8_t seq = hdr[3];
		uint16_t length = get_le16(&hdr[4]);

		if (length > dec->max_payload) {
			if (!emit_fault(dec, HIL_ERR_TOO_LARGE, seq, length, cb, user)) {
				return false;
			}
			continue;
		}

		size_t end = HIL_HEADER_BYTES + (size_t)length + HIL_CRC_BYTES;

		if (avail < end) {
			return true;
		}
		if (hil_crc32(0, &hdr[2], (size_t)length + 4U) !=
		    get_le32(&hdr[HIL_HEADER_BYTES + length])) {
			if (!emit_fault(dec, HIL_ERR_BAD_CRC, seq, length, cb, user)) {
				return false;
			}
			continue;
		}

		struct hil_item item = {
			.kind = HIL_ITEM_FRAME,
			.type = type,
			.seq = seq,
			.data = &hdr[HIL_HEADER_BYTES],
			.len = length,
		};

		dec->head += end; /* the payload stays in place until the next feed */
		if (!cb(user, &item)) {
			return false;
		}
	}
	return true;
}

size_t hil_decoder_feed(struct hil_decoder *dec, const uint8_t *data, size_t len, hil_item_cb cb,
			void *user)
{
	size_t taken = 0;

	while (taken < len) {
		if (dec->head == dec->tail) {
			dec->head = 0;
			dec->tail = 0;
		} else if (dec->tail == sizeof(dec->buf)) {
			/* After a drain the buffer never holds more than one partial frame,
			 * which is shorter than the buffer: compacting always makes room.
			 */
			memmove(dec->buf, &dec->buf[dec->head], dec->tail - dec->head);
			dec->tail -= dec->head;
			dec->head = 0;
		}

		size_t room = sizeof(dec->buf) - dec->tail;
		size_t chunk = len - taken < room ? len - taken : room;

		memcpy(&dec->buf[dec->tail], &data[taken], chunk);
		dec->tail += chunk;
		taken += chunk;
		if (!drain(dec, cb, user)) {
			break;
		}
	}
	return taken;
}

size_t hil_decoder_feed_at(struct hil_decoder *dec, const uint8_t *data, size_t len,
			   uint32_t now_ms, hil_item_cb cb, void *user)
{
	if (len > 0U) {
		dec->last_rx_ms = now_ms;
	}
	return hil_decoder_feed(dec, data, len, cb, user);
}

bool hil_decoder_abandon_partial(struct hil_decoder *dec, hil_item_cb cb, void *user)
{
	if (!hil_decoder_partial(dec)) {
		return true;
	}

	size_t avail = dec->tail - dec->head;
	uint8_t seq = avail > 3U ? dec->buf[dec->head + 3U] : (uint8_t)HIL_UNSOLICITED_SEQ;

	if (!emit_fault(dec, HIL_ERR_MALFORMED, seq, 0, cb, user)) {
		return false;
	}
	return drain(dec, cb, user);
}

bool hil_decoder_tick(struct hil_decoder *dec, uint32_t now_ms, hil_item_cb cb, void *user)
{
	if (!hil_decoder_partial(dec) ||
	    (uint32_t)(now_ms - dec->last_rx_ms) <= HIL_STALE_FRAME_MS) {
		return true;
	}
	return hil_decoder_abandon_partial(dec, cb, user);
}
