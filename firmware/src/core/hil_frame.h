/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Frames of the wire protocol: CRC-32, encoding, and the resynchronising decoder.
 *
 * The decoder has the semantics of hil.protocol.FrameDecoder: bytes before a sync are text,
 * an impossible length or a bad CRC drops one byte and reports a fault, and a partial frame
 * is abandoned after HIL_STALE_FRAME_MS of line silence. Its buffer is bounded (one frame of
 * the largest payload) and it never allocates.
 */

#ifndef HIL_CORE_HIL_FRAME_H_
#define HIL_CORE_HIL_FRAME_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hil_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CRC-32 (IEEE 802.3, as zlib's crc32) of data, continuing from crc (0 to start). */
uint32_t hil_crc32(uint32_t crc, const uint8_t *data, size_t len);

/*
 * Encode one frame into out. Returns the frame length, or 0 if it does not fit out_size or
 * the payload exceeds 65535 bytes. payload may be NULL when len is 0.
 */
size_t hil_frame_encode(uint8_t *out, size_t out_size, uint8_t type, uint8_t seq,
			const uint8_t *payload, size_t len);

/*
 * Finish a frame whose payload of len bytes already sits at frame + HIL_HEADER_BYTES:
 * write the header and CRC around it. The buffer must hold len + HIL_FRAME_OVERHEAD_BYTES.
 * Returns the frame length.
 */
size_t hil_frame_finish(uint8_t *frame, uint8_t type, uint8_t seq, size_t len);

enum hil_item_kind {
	HIL_ITEM_FRAME, /* a whole frame with a good CRC */
	HIL_ITEM_FAULT, /* bytes that started like a frame but were not one */
	HIL_ITEM_TEXT,  /* bytes outside any frame */
};

struct hil_item {
	enum hil_item_kind kind;
	uint8_t type;              /* FRAME */
	uint8_t seq;               /* FRAME, FAULT */
	enum hil_error_code fault; /* FAULT: BAD_CRC, TOO_LARGE or MALFORMED */
	const uint8_t *data;       /* FRAME: payload; TEXT: the text */
	size_t len;
	uint16_t fault_length; /* FAULT TOO_LARGE: the impossible length */
};

/*
 * Receives each item. The item's data stays valid until the next call into the decoder.
 * Return false to stop: the decoder keeps the rest of its bytes and returns at once.
 */
typedef bool (*hil_item_cb)(void *user, const struct hil_item *item);

struct hil_decoder {
	uint8_t buf[HIL_MAX_FRAME_BYTES];
	size_t head;          /* first unconsumed byte */
	size_t tail;          /* one past the last byte */
	uint16_t max_payload; /* at most HIL_MAX_PAYLOAD_BYTES */
	uint32_t last_rx_ms;  /* when bytes last arrived (hil_decoder_feed_at) */
};

void hil_decoder_init(struct hil_decoder *dec, uint16_t max_payload);

/*
 * Feed bytes and report every item they complete. Returns the number of bytes taken: len,
 * unless the callback stopped the decoder.
 */
size_t hil_decoder_feed(struct hil_decoder *dec, const uint8_t *data, size_t len, hil_item_cb cb,
			void *user);

/* As hil_decoder_feed, and remember now_ms as the time the line last carried bytes. */
size_t hil_decoder_feed_at(struct hil_decoder *dec, const uint8_t *data, size_t len,
			   uint32_t now_ms, hil_item_cb cb, void *user);

/* True while the buffer holds the start of a frame still waiting for bytes. */
bool hil_decoder_partial(const struct hil_decoder *dec);

/*
 * Bytes the decoder needs before it can report anything more: the rest of a partial frame
 * (of its header, then of its payload and CRC), else 1. A port may hold back waking the
 * reader until that many have arrived (hil_port_wake_after).
 */
size_t hil_decoder_wanted(const struct hil_decoder *dec);

/*
 * Give up on a partial frame: report MALFORMED ("truncated"), drop its first sync byte and
 * rescan the rest. Does nothing without a partial frame. Returns false if the callback stopped.
 */
bool hil_decoder_abandon_partial(struct hil_decoder *dec, hil_item_cb cb, void *user);

/*
 * The silence check, called periodically: if a partial frame has waited more than
 * HIL_STALE_FRAME_MS since bytes last arrived, abandon it (once per call).
 */
bool hil_decoder_tick(struct hil_decoder *dec, uint32_t now_ms, hil_item_cb cb, void *user);

#ifdef __cplusplus
}
#endif

#endif /* HIL_CORE_HIL_FRAME_H_ */
