/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "hil_wire.h"

#include <string.h>

#include "hil_proto.h"

uint16_t hil_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t hil_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

float hil_get_f32(const uint8_t *p)
{
	uint32_t bits = hil_get_le32(p);
	float v;

	memcpy(&v, &bits, sizeof(v));
	return v;
}

void hil_reader_init(struct hil_reader *r, const uint8_t *data, size_t len)
{
	r->data = data;
	r->len = len;
	r->pos = 0;
	r->error = HIL_READ_OK;
	r->needed = 0;
}

/* Claim n bytes; NULL (and the first error recorded) if the payload is too short. */
static const uint8_t *take(struct hil_reader *r, size_t n)
{
	if (r->error != HIL_READ_OK) {
		return NULL;
	}
	if (n > r->len - r->pos) {
		r->error = HIL_READ_SHORT;
		r->needed = r->pos + n;
		return NULL;
	}

	const uint8_t *p = &r->data[r->pos];

	r->pos += n;
	return p;
}

uint8_t hil_read_u8(struct hil_reader *r)
{
	const uint8_t *p = take(r, 1);

	return p != NULL ? p[0] : 0U;
}

uint16_t hil_read_u16(struct hil_reader *r)
{
	const uint8_t *p = take(r, 2);

	return p != NULL ? hil_get_le16(p) : 0U;
}

uint32_t hil_read_u32(struct hil_reader *r)
{
	const uint8_t *p = take(r, 4);

	return p != NULL ? hil_get_le32(p) : 0U;
}

float hil_read_f32(struct hil_reader *r)
{
	const uint8_t *p = take(r, 4);

	return p != NULL ? hil_get_f32(p) : 0.0f;
}

struct hil_str hil_read_str(struct hil_reader *r)
{
	struct hil_str s = {.data = "", .len = 0};
	const uint8_t *len = take(r, 1);
	const uint8_t *raw = len != NULL ? take(r, len[0]) : NULL;

	if (raw == NULL) {
		return s;
	}
	if (!hil_utf8_valid(raw, len[0])) {
		r->error = HIL_READ_NOT_UTF8;
		return s;
	}
	if (memchr(raw, '\0', len[0]) != NULL) {
		r->error = HIL_READ_NUL; /* a C string would end there: "sine\0x" must not read as "sine" */
		return s;
	}
	s.data = (const char *)raw;
	s.len = len[0];
	return s;
}

const uint8_t *hil_read_rest(struct hil_reader *r, size_t *len)
{
	if (r->error != HIL_READ_OK) {
		*len = 0;
		return r->data;
	}
	*len = r->len - r->pos;

	const uint8_t *p = &r->data[r->pos];

	r->pos = r->len;
	return p;
}

bool hil_read_done(struct hil_reader *r)
{
	if (r->error == HIL_READ_OK && r->pos != r->len) {
		r->error = HIL_READ_TRAILING;
	}
	return r->error == HIL_READ_OK;
}

/* Unicode 15, table 3-7: well-formed UTF-8 byte sequences. */
bool hil_utf8_valid(const uint8_t *data, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t b = data[i];
		size_t extra;
		uint8_t lo = 0x80U;
		uint8_t hi = 0xBFU;

		if (b < 0x80U) {
			i++;
			continue;
		} else if (b >= 0xC2U && b <= 0xDFU) {
			extra = 1;
		} else if (b >= 0xE0U && b <= 0xEFU) {
			extra = 2;
			lo = b == 0xE0U ? 0xA0U : 0x80U;
			hi = b == 0xEDU ? 0x9FU : 0xBFU;
		} else if (b >= 0xF0U && b <= 0xF4U) {
			extra = 3;
			lo = b == 0xF0U ? 0x90U : 0x80U;
			hi = b == 0xF4U ? 0x8FU : 0xBFU;
		} else {
			return false;
		}
		if (extra > len - i - 1U) {
			return false;
		}
		if (data[i + 1U] < lo || data[i + 1U] > hi) {
			return false;
		}
		for (size_t k = 2; k <= extra; k++) {
			if (data[i + k] < 0x80U || data[i + k] > 0xBFU) {
				return false;
			}
		}
		i += extra + 1U;
	}
	return true;
}

size_t hil_utf8_truncate(const uint8_t *data, size_t len, size_t max)
{
	if (len <= max) {
		return len;
	}

	size_t cut = max;

	/* Step back over continuation bytes to the start of the cut character. */
	while (cut > 0U && (data[cut] & 0xC0U) == 0x80U) {
		cut--;
	}
	return cut;
}

void hil_writer_init(struct hil_writer *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = false;
}

void hil_write_bytes(struct hil_writer *w, const void *data, size_t len)
{
	if (w->overflow || len > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	if (len > 0U) {
		memcpy(&w->buf[w->len], data, len);
	}
	w->len += len;
}

void hil_write_u8(struct hil_writer *w, uint8_t v)
{
	hil_write_bytes(w, &v, 1);
}

void hil_write_u16(struct hil_writer *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	hil_write_bytes(w, b, sizeof(b));
}

void hil_write_u32(struct hil_writer *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	hil_write_bytes(w, b, sizeof(b));
}

void hil_write_i32(struct hil_writer *w, int32_t v)
{
	hil_write_u32(w, (uint32_t)v);
}

void hil_write_u64(struct hil_writer *w, uint64_t v)
{
	hil_write_u32(w, (uint32_t)v);
	hil_write_u32(w, (uint32_t)(v >> 32));
}

void hil_write_f32(struct hil_writer *w, float v)
{
	uint32_t bits;

	memcpy(&bits, &v, sizeof(bits));
	hil_write_u32(w, bits);
}

void hil_write_str(struct hil_writer *w, const char *data, size_t len)
{
	size_t n = hil_utf8_truncate((const uint8_t *)data, len, HIL_STR_MAX_BYTES);

	hil_write_u8(w, (uint8_t)n);
	hil_write_bytes(w, data, n);
}

void hil_write_cstr(struct hil_writer *w, const char *text)
{
	hil_write_str(w, text, strlen(text));
}
