/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Payload fields: little-endian integers, IEEE-754 float32, length-prefixed UTF-8 strings.
 * Readers and writers are bounded and record the first failure instead of overrunning.
 */

#ifndef HIL_CORE_HIL_WIRE_H_
#define HIL_CORE_HIL_WIRE_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum hil_read_error {
	HIL_READ_OK = 0,
	HIL_READ_SHORT,    /* "payload ends at byte N, needed M" */
	HIL_READ_NOT_UTF8, /* "string is not UTF-8" */
	HIL_READ_NUL,      /* "string contains a NUL byte" */
	HIL_READ_TRAILING, /* "N unexpected trailing bytes" */
};

struct hil_reader {
	const uint8_t *data;
	size_t len;
	size_t pos;
	enum hil_read_error error;
	size_t needed; /* HIL_READ_SHORT: the byte count the failed read needed */
};

struct hil_str {
	const char *data; /* not NUL-terminated */
	size_t len;
};

void hil_reader_init(struct hil_reader *r, const uint8_t *data, size_t len);
uint8_t hil_read_u8(struct hil_reader *r);
uint16_t hil_read_u16(struct hil_reader *r);
uint32_t hil_read_u32(struct hil_reader *r);
float hil_read_f32(struct hil_reader *r);
/* A u8 length, then that many bytes that must be valid UTF-8 (as Python's strict decoder). */
struct hil_str hil_read_str(struct hil_reader *r);
/* The rest of the payload; sets len. */
const uint8_t *hil_read_rest(struct hil_reader *r, size_t *len);
/* Fails with HIL_READ_TRAILING if bytes are left over. Returns true if nothing failed. */
bool hil_read_done(struct hil_reader *r);

/* True if data is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF). */
bool hil_utf8_valid(const uint8_t *data, size_t len);

/* Length of the longest prefix of at most max bytes that ends on a UTF-8 character boundary. */
size_t hil_utf8_truncate(const uint8_t *data, size_t len, size_t max);

struct hil_writer {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool overflow;
};

void hil_writer_init(struct hil_writer *w, uint8_t *buf, size_t cap);
void hil_write_u8(struct hil_writer *w, uint8_t v);
void hil_write_u16(struct hil_writer *w, uint16_t v);
void hil_write_u32(struct hil_writer *w, uint32_t v);
void hil_write_i32(struct hil_writer *w, int32_t v);
void hil_write_u64(struct hil_writer *w, uint64_t v);
void hil_write_f32(struct hil_writer *w, float v);
void hil_write_bytes(struct hil_writer *w, const void *data, size_t len);
/* A u8 length and the bytes; longer strings are cut to 255 bytes on a character boundary. */
void hil_write_str(struct hil_writer *w, const char *data, size_t len);
void hil_write_cstr(struct hil_writer *w, const char *text);

uint16_t hil_get_le16(const uint8_t *p);
uint32_t hil_get_le32(const uint8_t *p);
float hil_get_f32(const uint8_t *p);

#ifdef __cplusplus
}
#endif

#endif /* HIL_CORE_HIL_WIRE_H_ */
