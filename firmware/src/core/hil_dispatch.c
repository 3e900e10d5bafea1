/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The dispatcher behind hil_device.h: received bytes become frames, each request is answered as
 * the twin answers it (hil/twin.py), and the boot lines are printed. Streaming requests are in
 * hil_device_stream.c, the wording of refusals in hil_device_refuse.c.
 */

#include "hil_device.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hil_device_internal.h"
#include "hil_wire.h"

static void send_frame(struct hil_device *dev, uint8_t type, uint8_t seq, size_t payload_len)
{
	hil_dev_write(dev, dev->tx, hil_frame_finish(dev->tx, type, seq, payload_len));
}

static void send_error(struct hil_device *dev, uint8_t seq, enum hil_error_code code)
{
	struct hil_writer w;

	hil_writer_init(&w, &dev->tx[HIL_HEADER_BYTES], HIL_MAX_PAYLOAD_BYTES);
	hil_write_u8(&w, (uint8_t)code);
	hil_write_cstr(&w, dev->message);
	send_frame(dev, HIL_MSG_ERROR, seq, w.len);
}

static void write_tensor_spec(struct hil_writer *w, const struct hil_tensor_spec *spec)
{
	hil_write_u8(w, spec->type);
	hil_write_u8(w, spec->ndims);
	for (unsigned int i = 0; i < spec->ndims; i++) {
		hil_write_u16(w, spec->dims[i]);
	}
	hil_write_f32(w, spec->scale);
	hil_write_i32(w, spec->zero_point);
}

/* --- requests ------------------------------------------------------------------------------ */

static enum hil_error_code on_info(struct hil_device *dev, const uint8_t *payload, size_t len,
				   struct hil_writer *w)
{
	(void)payload;
	if (hil_dev_no_payload(dev, HIL_MSG_INFO, len) != HIL_ERR_NONE) {
		return HIL_ERR_MALFORMED;
	}
	hil_write_u8(w, HIL_PROTOCOL_VERSION);
	hil_write_u16(w, HIL_MAX_PAYLOAD_BYTES);
	hil_write_u32(w, dev->cfg.clock.hz);
	hil_write_u8(w, (uint8_t)hil_dev_model_count(dev));
	hil_write_cstr(w, dev->cfg.firmware_version);
	hil_write_cstr(w, dev->cfg.board);
	hil_write_cstr(w, hil_dev_api(dev)->runtime(hil_dev_ectx(dev)));
	hil_write_cstr(w, dev->cfg.build_id);
	return HIL_ERR_NONE;
}

static enum hil_error_code on_model_info(struct hil_device *dev, const uint8_t *payload, size_t len,
					 struct hil_writer *w)
{
	struct hil_reader r;

	hil_reader_init(&r, payload, len);

	uint8_t index = hil_read_u8(&r);

	if (!hil_read_done(&r)) {
		return hil_dev_malformed(dev, HIL_MSG_MODEL_INFO, &r);
	}
	if (index >= hil_dev_model_count(dev)) {
		return hil_dev_refuse(dev, HIL_ERR_UNKNOWN_MODEL,
				      "model index %u out of range: this device has %u",
				      (unsigned int)index, (unsigned int)hil_dev_model_count(dev));
	}

	const struct hil_model_info *m = hil_dev_api(dev)->model(hil_dev_ectx(dev), index);

	hil_write_cstr(w, m->name);
	hil_write_u32(w, m->arena_size_bytes);
	hil_write_u32(w, m->arena_used_bytes);
	write_tensor_spec(w, &m->input);
	write_tensor_spec(w, &m->output);
	hil_write_cstr(w, m->sha256);
	return HIL_ERR_NONE;
}

static enum hil_error_code on_infer(struct hil_device *dev, const uint8_t *payload, size_t len,
				    struct hil_writer *w)
{
	struct hil_reader r;

	hil_reader_init(&r, payload, len);

	struct hil_str name = hil_read_str(&r);
	uint8_t dtype = hil_read_u8(&r);
	size_t data_len;
	const uint8_t *data = hil_read_rest(&r, &data_len);

	if (r.error != HIL_READ_OK) {
		return hil_dev_malformed(dev, HIL_MSG_INFER, &r);
	}

	size_t index = hil_dev_find_model(dev, name);

	if (index == HIL_MODEL_NONE) {
		return hil_dev_unknown_model(dev, name);
	}

	const struct hil_model_info *m = hil_dev_api(dev)->model(hil_dev_ectx(dev), index);
	char spec[64];

	if (dtype != m->input.type) {
		const char *got = hil_tensor_type_name(dtype);
		char other[16];

		if (got == NULL) {
			(void)snprintf(other, sizeof(other), "type %u", (unsigned int)dtype);
			got = other;
		}
		return hil_dev_refuse(dev, HIL_ERR_BAD_DTYPE, "model %s takes %s input, got %s",
				      m->name, hil_tensor_type_name(m->input.type), got);
	}

	size_t expected = hil_tensor_spec_bytes(&m->input);

	if (data_len != expected) {
		hil_dev_describe(spec, sizeof(spec), &m->input);
		return hil_dev_refuse(dev, HIL_ERR_BAD_SIZE, "model %s takes %u bytes (%s), got %u",
				      m->name, (unsigned int)expected, spec,
				      (unsigned int)data_len);
	}
	if (!m->ready) {
		return hil_dev_not_ready(dev, index);
	}

	size_t out_len = hil_tensor_spec_bytes(&m->output);

	if (out_len + 12U > w->cap) {
		return hil_dev_refuse(dev, HIL_ERR_UNSUPPORTED,
				      "model %s output of %u bytes exceeds a reply", m->name,
				      (unsigned int)out_len);
	}

	struct hil_invoke_stats stats = {0};

	memcpy(hil_dev_api(dev)->input(hil_dev_ectx(dev), index), data, data_len);
	if (hil_dev_api(dev)->invoke(hil_dev_ectx(dev), index, &stats) != 0) {
		return hil_dev_refuse(dev, HIL_ERR_INVOKE_FAILED, "invoke failed: %s",
				      hil_dev_api(dev)->last_error(hil_dev_ectx(dev), index));
	}
	hil_write_u64(w, stats.ticks);
	hil_write_u32(w, stats.arena_used_bytes);
	hil_write_bytes(w, hil_dev_api(dev)->output(hil_dev_ectx(dev), index), out_len);
	return HIL_ERR_NONE;
}

static enum hil_error_code on_profile(struct hil_device *dev, const uint8_t *payload, size_t len,
				      struct hil_writer *w)
{
	(void)payload;
	if (hil_dev_no_payload(dev, HIL_MSG_PROFILE, len) != HIL_ERR_NONE) {
		return HIL_ERR_MALFORMED;
	}

	const struct hil_op_ticks *ops = NULL;
	size_t count = hil_dev_api(dev)->profile(hil_dev_ectx(dev), &ops);
	size_t fit = 0;
	size_t bytes = 2;

	/* Report as many operators as fit one reply (every model we ship fits by far). */
	while (fit < count && fit < 0xFFFFU) {
		size_t op = 1U +
			    hil_utf8_truncate((const uint8_t *)ops[fit].tag, strlen(ops[fit].tag),
					      HIL_STR_MAX_BYTES) +
			    8U;

		if (bytes + op > w->cap) {
			break;
		}
		bytes += op;
		fit++;
	}
	hil_write_u16(w, (uint16_t)fit);
	for (size_t i = 0; i < fit; i++) {
		hil_write_cstr(w, ops[i].tag);
		hil_write_u64(w, ops[i].ticks);
	}
	return HIL_ERR_NONE;
}

static enum hil_error_code on_memory(struct hil_device *dev, const uint8_t *payload, size_t len,
				     struct hil_writer *w)
{
	(void)payload;
	if (hil_dev_no_payload(dev, HIL_MSG_MEMORY, len) != HIL_ERR_NONE) {
		return HIL_ERR_MALFORMED;
	}

	struct hil_memory_report report = {
		HIL_UNKNOWN_U32,
		HIL_UNKNOWN_U32,
		HIL_UNKNOWN_U32,
		HIL_UNKNOWN_U32,
	};

	if (dev->cfg.platform.api->memory != NULL) {
		dev->cfg.platform.api->memory(dev->cfg.platform.ctx, &report);
	}
	hil_write_u32(w, report.stack_size_bytes);
	hil_write_u32(w, report.stack_used_bytes);
	hil_write_u32(w, report.heap_size_bytes);
	hil_write_u32(w, report.heap_used_bytes);
	return HIL_ERR_NONE;
}

static enum hil_error_code on_reset(struct hil_device *dev, const uint8_t *payload, size_t len,
				    struct hil_writer *w)
{
	(void)payload;
	(void)w;
	if (hil_dev_no_payload(dev, HIL_MSG_RESET, len) != HIL_ERR_NONE) {
		return HIL_ERR_MALFORMED;
	}
	dev->reset_pending = true; /* the reboot happens after the reply went out */
	return HIL_ERR_NONE;
}

static enum hil_error_code on_echo(struct hil_device *dev, const uint8_t *payload, size_t len,
				   struct hil_writer *w)
{
	(void)dev;
	hil_write_bytes(w, payload, len);
	return HIL_ERR_NONE;
}

typedef enum hil_error_code (*handler_fn)(struct hil_device *dev, const uint8_t *payload,
					  size_t len, struct hil_writer *w);

static handler_fn handler_for(uint8_t type)
{
	switch (type) {
	case HIL_MSG_INFO:
		return on_info;
	case HIL_MSG_MODEL_INFO:
		return on_model_info;
	case HIL_MSG_INFER:
		return on_infer;
	case HIL_MSG_PROFILE:
		return on_profile;
	case HIL_MSG_MEMORY:
		return on_memory;
	case HIL_MSG_RESET:
		return on_reset;
	case HIL_MSG_ECHO:
		return on_echo;
	case HIL_MSG_STREAM_START:
		return hil_dev_on_stream_start;
	case HIL_MSG_FEED:
		return hil_dev_on_feed;
	case HIL_MSG_STREAM_STOP:
		return hil_dev_on_stream_stop;
	default:
		return NULL;
	}
}

void hil_device_handle(struct hil_device *dev, uint8_t type, uint8_t seq, const uint8_t *payload,
		       size_t len)
{
	handler_fn handler = handler_for(type);

	if (handler == NULL) {
		send_error(dev, seq,
			   hil_dev_refuse(dev, HIL_ERR_UNKNOWN_TYPE, "unknown request type 0x%02x",
					  (unsigned int)type));
		return;
	}

	struct hil_writer w;

	hil_writer_init(&w, &dev->tx[HIL_HEADER_BYTES], HIL_MAX_PAYLOAD_BYTES);

	enum hil_error_code code = handler(dev, payload, len, &w);

	if (code == HIL_ERR_NONE && w.overflow) {
		code = hil_dev_refuse(dev, HIL_ERR_UNSUPPORTED, "%s reply exceeds %u bytes",
				      hil_msg_type_name(type), (unsigned int)HIL_MAX_PAYLOAD_BYTES);
	}
	if (code != HIL_ERR_NONE) {
		send_error(dev, seq, code);
		return;
	}
	send_frame(dev, (uint8_t)(type | HIL_REPLY_FLAG), seq, w.len);
}

void hil_device_fault(struct hil_device *dev, const struct hil_item *fault)
{
	switch (fault->fault) {
	case HIL_ERR_TOO_LARGE:
		(void)hil_dev_refuse(
			dev, fault->fault, "length %u > max %u (damaged frame's seq %u)",
			(unsigned int)fault->fault_length, (unsigned int)dev->decoder.max_payload,
			(unsigned int)fault->seq);
		break;
	case HIL_ERR_BAD_CRC:
		(void)hil_dev_refuse(dev, fault->fault, "CRC-32 mismatch (damaged frame's seq %u)",
				     (unsigned int)fault->seq);
		break;
	default:
		(void)hil_dev_refuse(dev, fault->fault,
				     "frame truncated: the line went silent mid-frame (seq %u)",
				     (unsigned int)fault->seq);
		break;
	}
	/* A report, never a reply: the damaged header's seq may be anything, even a pending
	 * request's. */
	send_error(dev, HIL_UNSOLICITED_SEQ, fault->fault);
}

static bool on_item(void *user, const struct hil_item *item)
{
	struct hil_device *dev = user;

	if (item->kind == HIL_ITEM_FRAME) {
		hil_device_handle(dev, item->type, item->seq, item->data, item->len);
	} else if (item->kind == HIL_ITEM_FAULT) {
		hil_device_fault(dev, item);
	}
	/* Text between frames (a terminal's echo, garbage) needs no answer. */
	return !dev->reset_pending;
}

void hil_device_init(struct hil_device *dev, const struct hil_device_config *cfg)
{
	memset(dev, 0, sizeof(*dev));
	dev->cfg = *cfg;
	hil_decoder_init(&dev->decoder, HIL_MAX_PAYLOAD_BYTES);
}

static void write_line(struct hil_device *dev, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	int n = vsnprintf(dev->line, sizeof(dev->line), format, args);

	va_end(args);
	if (n > 0) {
		hil_dev_write(dev, (const uint8_t *)dev->line,
			      (size_t)n < sizeof(dev->line) ? (size_t)n : sizeof(dev->line) - 1U);
	}
}

int hil_device_boot(struct hil_device *dev)
{
	hil_dev_stop_stream(dev);
	memset(&dev->stream, 0, sizeof(dev->stream));
	dev->reset_pending = false;
	hil_decoder_init(&dev->decoder, HIL_MAX_PAYLOAD_BYTES);

	int err = hil_dev_api(dev)->boot(hil_dev_ectx(dev));

	write_line(dev, "HIL BOOT fw=%s proto=%u board=%s build=%s\r\n", dev->cfg.firmware_version,
		   HIL_PROTOCOL_VERSION, dev->cfg.board, dev->cfg.build_id);
	for (size_t i = 0; i < hil_dev_model_count(dev); i++) {
		const struct hil_model_info *m = hil_dev_api(dev)->model(hil_dev_ectx(dev), i);

		if (!m->ready) {
			write_line(dev, "HIL WARN model %s unusable: %s\r\n", m->name,
				   hil_dev_api(dev)->last_error(hil_dev_ectx(dev), i));
		}
	}
	write_line(dev, "HIL READY\r\n");
	return err;
}

void hil_device_rx(struct hil_device *dev, const uint8_t *data, size_t len, uint32_t now_ms)
{
	if (!dev->reset_pending) {
		(void)hil_decoder_feed_at(&dev->decoder, data, len, now_ms, on_item, dev);
	}
}

void hil_device_tick(struct hil_device *dev, uint32_t now_ms)
{
	if (!dev->reset_pending) {
		(void)hil_decoder_tick(&dev->decoder, now_ms, on_item, dev);
	}
}

void hil_device_rx_silence(struct hil_device *dev)
{
	if (!dev->reset_pending) {
		(void)hil_decoder_abandon_partial(&dev->decoder, on_item, dev);
	}
}

size_t hil_device_rx_wanted(const struct hil_device *dev)
{
	return hil_decoder_wanted(&dev->decoder);
}

bool hil_device_reset_pending(const struct hil_device *dev)
{
	return dev->reset_pending;
}
