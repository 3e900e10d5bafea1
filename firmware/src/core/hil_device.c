/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "hil_device.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hil_wire.h"

#define MODEL_NONE ((size_t)-1)

static const struct hil_engine_api *api(const struct hil_device *dev)
{
	return dev->cfg.engine.api;
}

static void *ectx(const struct hil_device *dev)
{
	return dev->cfg.engine.ctx;
}

static void port_write(struct hil_device *dev, const uint8_t *data, size_t len)
{
	dev->cfg.platform.api->write(dev->cfg.platform.ctx, data, len);
}

/* printf into dev->message; returns code so handlers can `return refuse(...)`. */
static enum hil_error_code refuse(struct hil_device *dev, enum hil_error_code code,
				  const char *format, ...)
{
	va_list args;

	va_start(args, format);
	int n = vsnprintf(dev->message, sizeof(dev->message), format, args);

	va_end(args);
	if (n < 0) {
		dev->message[0] = '\0';
	}
	return code;
}

/* The twin's "<TYPE>: <why>" message for a payload that does not decode. */
static enum hil_error_code malformed(struct hil_device *dev, uint8_t type,
				     const struct hil_reader *r)
{
	const char *name = hil_msg_type_name(type);

	switch (r->error) {
	case HIL_READ_SHORT:
		return refuse(dev, HIL_ERR_MALFORMED, "%s: payload ends at byte %u, needed %u",
			      name, (unsigned int)r->len, (unsigned int)r->needed);
	case HIL_READ_NOT_UTF8:
		return refuse(dev, HIL_ERR_MALFORMED, "%s: string is not UTF-8", name);
	case HIL_READ_NUL:
		return refuse(dev, HIL_ERR_MALFORMED, "%s: string contains a NUL byte", name);
	case HIL_READ_TRAILING:
		return refuse(dev, HIL_ERR_MALFORMED, "%s: %u unexpected trailing bytes", name,
			      (unsigned int)(r->len - r->pos));
	default:
		return refuse(dev, HIL_ERR_MALFORMED, "%s: malformed payload", name);
	}
}

static enum hil_error_code no_payload(struct hil_device *dev, uint8_t type, size_t len)
{
	if (len == 0U) {
		return HIL_ERR_NONE;
	}

	const char *name = hil_msg_type_name(type);

	return refuse(dev, HIL_ERR_MALFORMED, "%s: %s takes no payload", name, name);
}

static void send_frame(struct hil_device *dev, uint8_t type, uint8_t seq, size_t payload_len)
{
	port_write(dev, dev->tx, hil_frame_finish(dev->tx, type, seq, payload_len));
}

static void send_error(struct hil_device *dev, uint8_t seq, enum hil_error_code code)
{
	struct hil_writer w;

	hil_writer_init(&w, &dev->tx[HIL_HEADER_BYTES], HIL_MAX_PAYLOAD_BYTES);
	hil_write_u8(&w, (uint8_t)code);
	hil_write_cstr(&w, dev->message);
	send_frame(dev, HIL_MSG_ERROR, seq, w.len);
}

static size_t model_count(const struct hil_device *dev)
{
	size_t n = api(dev)->model_count(ectx(dev));

	return n > 255U ? 255U : n;
}

static size_t find_model(const struct hil_device *dev, struct hil_str name)
{
	for (size_t i = 0; i < model_count(dev); i++) {
		const char *candidate = api(dev)->model(ectx(dev), i)->name;

		if (strlen(candidate) == name.len && memcmp(candidate, name.data, name.len) == 0) {
			return i;
		}
	}
	return MODEL_NONE;
}

static enum hil_error_code unknown_model(struct hil_device *dev, struct hil_str name)
{
	int n = snprintf(dev->message, sizeof(dev->message),
			 "unknown model '%.*s': this device has ", (int)name.len, name.data);

	for (size_t i = 0; i < model_count(dev) && n >= 0 && (size_t)n < sizeof(dev->message);
	     i++) {
		int more = snprintf(&dev->message[n], sizeof(dev->message) - (size_t)n, "%s%s",
				    i > 0U ? ", " : "", api(dev)->model(ectx(dev), i)->name);

		n = more < 0 ? -1 : n + more;
	}
	return HIL_ERR_UNKNOWN_MODEL;
}

/* "int8[1,128,3]" as TensorSpec.describe() prints it. */
static void describe(char *buf, size_t cap, const struct hil_tensor_spec *spec)
{
	const char *type = hil_tensor_type_name(spec->type);
	int n = snprintf(buf, cap, "%s[", type != NULL ? type : "unknown");

	for (unsigned int i = 0; i < spec->ndims && n >= 0 && (size_t)n < cap; i++) {
		int more = snprintf(&buf[n], cap - (size_t)n, "%s%u", i > 0U ? "," : "",
				    (unsigned int)spec->dims[i]);

		n = more < 0 ? -1 : n + more;
	}
	if (n >= 0 && (size_t)n < cap) {
		(void)snprintf(&buf[n], cap - (size_t)n, "]");
	}
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
	if (no_payload(dev, HIL_MSG_INFO, len) != HIL_ERR_NONE) {
		return HIL_ERR_MALFORMED;
	}
	hil_write_u8(w, HIL_PROTOCOL_VERSION);
	hil_write_u16(w, HIL_MAX_PAYLOAD_BYTES);
	hil_write_u32(w, dev->cfg.clock.hz);
	hil_write_u8(w, (uint8_t)model_count(dev));
	hil_write_cstr(w, dev->cfg.firmware_version);
	hil_write_cstr(w, dev->cfg.board);
	hil_write_cstr(w, api(dev)->runtime(ectx(dev)));
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
		return malformed(dev, HIL_MSG_MODEL_INFO, &r);
	}
	if (index >= model_count(dev)) {
		return refuse(dev, HIL_ERR_UNKNOWN_MODEL,
			      "model index %u out of range: this device has %u",
			      (unsigned int)index, (unsigned int)model_count(dev));
	}

	const struct hil_model_info *m = api(dev)->model(ectx(dev), index);

	hil_write_cstr(w, m->name);
	hil_write_u32(w, m->arena_size_bytes);
	hil_write_u32(w, m->arena_used_bytes);
	write_tensor_spec(w, &m->input);
	write_tensor_spec(w, &m->output);
	hil_write_cstr(w, m->sha256);
	return HIL_ERR_NONE;
}

static enum hil_error_code not_ready(struct hil_device *dev, size_t index)
{
	const char *why = api(dev)->last_error(ectx(dev), index);

	return refuse(dev, HIL_ERR_INVOKE_FAILED, "model %s is not allocated: %s",
		      api(dev)->model(ectx(dev), index)->name, why);
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
		return malformed(dev, HIL_MSG_INFER, &r);
	}

	size_t index = find_model(dev, name);

	if (index == MODEL_NONE) {
		return unknown_model(dev, name);
	}

	const struct hil_model_info *m = api(dev)->model(ectx(dev), index);
	char spec[64];

	if (dtype != m->input.type) {
		const char *got = hil_tensor_type_name(dtype);
		char other[16];

		if (got == NULL) {
			(void)snprintf(other, sizeof(other), "type %u", (unsigned int)dtype);
			got = other;
		}
		return refuse(dev, HIL_ERR_BAD_DTYPE, "model %s takes %s input, got %s", m->name,
			      hil_tensor_type_name(m->input.type), got);
	}

	size_t expected = hil_tensor_spec_bytes(&m->input);

	if (data_len != expected) {
		describe(spec, sizeof(spec), &m->input);
		return refuse(dev, HIL_ERR_BAD_SIZE, "model %s takes %u bytes (%s), got %u",
			      m->name, (unsigned int)expected, spec, (unsigned int)data_len);
	}
	if (!m->ready) {
		return not_ready(dev, index);
	}

	size_t out_len = hil_tensor_spec_bytes(&m->output);

	if (out_len + 12U > w->cap) {
		return refuse(dev, HIL_ERR_UNSUPPORTED,
			      "model %s output of %u bytes exceeds a reply", m->name,
			      (unsigned int)out_len);
	}

	struct hil_invoke_stats stats = {0};

	memcpy(api(dev)->input(ectx(dev), index), data, data_len);
	if (api(dev)->invoke(ectx(dev), index, &stats) != 0) {
		return refuse(dev, HIL_ERR_INVOKE_FAILED, "invoke failed: %s",
			      api(dev)->last_error(ectx(dev), index));
	}
	hil_write_u64(w, stats.ticks);
	hil_write_u32(w, stats.arena_used_bytes);
	hil_write_bytes(w, api(dev)->output(ectx(dev), index), out_len);
	return HIL_ERR_NONE;
}

static enum hil_error_code on_profile(struct hil_device *dev, const uint8_t *payload, size_t len,
				      struct hil_writer *w)
{
	(void)payload;
	if (no_payload(dev, HIL_MSG_PROFILE, len) != HIL_ERR_NONE) {
		return HIL_ERR_MALFORMED;
	}

	const struct hil_op_ticks *ops = NULL;
	size_t count = api(dev)->profile(ectx(dev), &ops);
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
	if (no_payload(dev, HIL_MSG_MEMORY, len) != HIL_ERR_NONE) {
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
	if (no_payload(dev, HIL_MSG_RESET, len) != HIL_ERR_NONE) {
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

static void stop_stream(struct hil_device *dev)
{
	if (dev->stream.active && dev->stream.params.source == HIL_SOURCE_SENSOR &&
	    dev->cfg.platform.api->sensor_stop != NULL) {
		dev->cfg.platform.api->sensor_stop(dev->cfg.platform.ctx);
	}
	dev->stream.active = false;
}

static enum hil_error_code on_stream_start(struct hil_device *dev, const uint8_t *payload,
					   size_t len, struct hil_writer *w)
{
	(void)w;

	/* Any STREAM_START ends the running stream first, so a refused one leaves none (as the twin). */
	stop_stream(dev);

	struct hil_reader r;

	hil_reader_init(&r, payload, len);

	struct hil_str name = hil_read_str(&r);
	struct hil_stream_params params = {
		.source = hil_read_u8(&r),
		.hop = hil_read_u16(&r),
		.idle_class = hil_read_u8(&r),
		.threshold = hil_read_f32(&r),
		.refractory_samples = hil_read_u16(&r),
	};

	if (!hil_read_done(&r)) {
		return malformed(dev, HIL_MSG_STREAM_START, &r);
	}

	size_t index = find_model(dev, name);

	if (index == MODEL_NONE) {
		return unknown_model(dev, name);
	}

	const struct hil_model_info *m = api(dev)->model(ectx(dev), index);
	uint16_t window;
	uint16_t channels;

	if (!hil_stream_window_of(&m->input, &window, &channels)) {
		char spec[64];

		describe(spec, sizeof(spec), &m->input);
		return refuse(dev, HIL_ERR_UNSUPPORTED, "%s input %s is no [1,W,C] window", m->name,
			      spec);
	}
	if (params.hop < 1U) {
		return refuse(dev, HIL_ERR_MALFORMED, "STREAM_START hop must be at least 1");
	}
	if (params.source != HIL_SOURCE_FED && params.source != HIL_SOURCE_SENSOR) {
		return refuse(dev, HIL_ERR_UNSUPPORTED,
			      "unknown sample source %u: use 0 (FEED) or "
			      "1 (sensor)",
			      (unsigned int)params.source);
	}
	if ((size_t)window * channels > dev->cfg.ring_floats) {
		return refuse(dev, HIL_ERR_UNSUPPORTED,
			      "%s window of %u x %u exceeds the ring of %u", m->name,
			      (unsigned int)window, (unsigned int)channels,
			      (unsigned int)dev->cfg.ring_floats);
	}
	if (!m->ready) {
		return not_ready(dev, index);
	}

	params.model = index;
	if (params.source == HIL_SOURCE_SENSOR) {
		struct hil_sensor_request request = {
			.model = index,
			.sample_rate_hz = m->stream.sample_rate_hz,
			.kind = m->stream.sensor,
			.unit_per_si = m->stream.unit_per_si,
			.channels = channels,
		};

		if (m->stream.sensor == HIL_SENSOR_NONE || m->stream.sample_rate_hz <= 0.0f) {
			return refuse(
				dev, HIL_ERR_UNSUPPORTED,
				"%s has no sensor stream in its manifest (rate and channels): "
				"feed samples with FEED",
				m->name);
		}
		if (dev->cfg.platform.api->sensor_start == NULL) {
			return refuse(dev, HIL_ERR_UNSUPPORTED,
				      "this device has no sensor: feed samples with FEED");
		}

		int err = dev->cfg.platform.api->sensor_start(dev->cfg.platform.ctx, &request);

		if (err != 0) {
			return refuse(dev, HIL_ERR_UNSUPPORTED,
				      "this device has no usable accelerometer (accel0, error %d): "
				      "feed samples with FEED",
				      err);
		}
	}
	hil_stream_start(&dev->stream, &params, window, channels, dev->cfg.ring);
	return HIL_ERR_NONE;
}

static void send_event(struct hil_device *dev, const struct hil_event *event)
{
	const char *model = api(dev)->model(ectx(dev), dev->stream.params.model)->name;
	struct hil_writer w;

	hil_writer_init(&w, &dev->event_frame[HIL_HEADER_BYTES],
			sizeof(dev->event_frame) - HIL_FRAME_OVERHEAD_BYTES);
	hil_write_u32(&w, event->sample);
	hil_write_cstr(&w, model);
	hil_write_u8(&w, event->class_index);
	hil_write_f32(&w, event->score);
	hil_write_u64(&w, event->ticks);
	port_write(dev, dev->event_frame,
		   hil_frame_finish(dev->event_frame, HIL_MSG_EVENT, HIL_UNSOLICITED_SEQ, w.len));

	char score[32];

	(void)hil_format_fixed3(score, sizeof(score), event->score);

	int n = snprintf(dev->line, sizeof(dev->line),
			 "HIL EVENT %s class=%u score=%s sample=%lu\r\n", model,
			 (unsigned int)event->class_index, score, (unsigned long)event->sample);

	if (n > 0) {
		port_write(dev, (const uint8_t *)dev->line,
			   (size_t)n < sizeof(dev->line) ? (size_t)n : sizeof(dev->line) - 1U);
	}
}

/* Count one sample already in the ring slot; send its event, if any. */
static int push_sample(struct hil_device *dev)
{
	struct hil_event event;
	bool raised;
	int err = hil_stream_commit(&dev->stream, &dev->cfg.engine, &event, &raised);

	if (err == 0 && raised) {
		send_event(dev, &event);
	}
	return err;
}

static enum hil_error_code on_feed(struct hil_device *dev, const uint8_t *payload, size_t len,
				   struct hil_writer *w)
{
	struct hil_stream *s = &dev->stream;

	if (!s->active) {
		return refuse(dev, HIL_ERR_UNSUPPORTED, "no stream: send STREAM_START first");
	}
	if (s->params.source != HIL_SOURCE_FED) {
		return refuse(dev, HIL_ERR_UNSUPPORTED,
			      "the stream takes its samples from the sensor: FEED needs source 0");
	}

	struct hil_reader r;

	hil_reader_init(&r, payload, len);

	uint16_t count = hil_read_u16(&r);
	size_t data_len;
	const uint8_t *data = hil_read_rest(&r, &data_len);

	if (r.error != HIL_READ_OK) {
		return malformed(dev, HIL_MSG_FEED, &r);
	}

	size_t needed = (size_t)count * s->channels * 4U;

	if (data_len != needed) {
		return refuse(dev, HIL_ERR_MALFORMED,
			      "FEED: FEED of %u samples x %u channels needs %u bytes, got %u",
			      (unsigned int)count, (unsigned int)s->channels, (unsigned int)needed,
			      (unsigned int)data_len);
	}

	uint64_t inferences = s->inferences;
	uint64_t events = s->events;

	for (size_t i = 0; i < count; i++) {
		float *slot = hil_stream_slot(s);

		for (size_t c = 0; c < s->channels; c++) {
			slot[c] = hil_get_f32(&data[(i * s->channels + c) * 4U]);
		}
		if (push_sample(dev) != 0) {
			return refuse(dev, HIL_ERR_INVOKE_FAILED, "invoke failed at sample %lu: %s",
				      (unsigned long)s->samples,
				      api(dev)->last_error(ectx(dev), s->params.model));
		}
	}
	hil_write_u32(w, (uint32_t)s->samples);
	hil_write_u16(w, (uint16_t)(s->inferences - inferences));
	hil_write_u16(w, (uint16_t)(s->events - events));
	return HIL_ERR_NONE;
}

static enum hil_error_code on_stream_stop(struct hil_device *dev, const uint8_t *payload,
					  size_t len, struct hil_writer *w)
{
	(void)payload;
	if (no_payload(dev, HIL_MSG_STREAM_STOP, len) != HIL_ERR_NONE) {
		return HIL_ERR_MALFORMED;
	}
	if (!dev->stream.active) {
		return refuse(dev, HIL_ERR_UNSUPPORTED, "no stream to stop");
	}
	stop_stream(dev);
	hil_write_u32(w, (uint32_t)dev->stream.samples);
	hil_write_u32(w, (uint32_t)dev->stream.inferences);
	hil_write_u32(w, (uint32_t)dev->stream.events);
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
		return on_stream_start;
	case HIL_MSG_FEED:
		return on_feed;
	case HIL_MSG_STREAM_STOP:
		return on_stream_stop;
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
			   refuse(dev, HIL_ERR_UNKNOWN_TYPE, "unknown request type 0x%02x",
				  (unsigned int)type));
		return;
	}

	struct hil_writer w;

	hil_writer_init(&w, &dev->tx[HIL_HEADER_BYTES], HIL_MAX_PAYLOAD_BYTES);

	enum hil_error_code code = handler(dev, payload, len, &w);

	if (code == HIL_ERR_NONE && w.overflow) {
		code = refuse(dev, HIL_ERR_UNSUPPORTED, "%s reply exceeds %u bytes",
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
		(void)refuse(dev, fault->fault, "length %u > max %u (damaged frame's seq %u)",
			     (unsigned int)fault->fault_length,
			     (unsigned int)dev->decoder.max_payload, (unsigned int)fault->seq);
		break;
	case HIL_ERR_BAD_CRC:
		(void)refuse(dev, fault->fault, "CRC-32 mismatch (damaged frame's seq %u)",
			     (unsigned int)fault->seq);
		break;
	default:
		(void)refuse(dev, fault->fault,
			     "frame truncated: the line went silent mid-frame (seq %u)",
			     (unsigned int)fault->seq);
		break;
	}
	/* A report, never a reply: the damaged header's seq may be anything, even a pending request's. */
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
		port_write(dev, (const uint8_t *)dev->line,
			   (size_t)n < sizeof(dev->line) ? (size_t)n : sizeof(dev->line) - 1U);
	}
}

int hil_device_boot(struct hil_device *dev)
{
	stop_stream(dev);
	memset(&dev->stream, 0, sizeof(dev->stream));
	dev->reset_pending = false;
	hil_decoder_init(&dev->decoder, HIL_MAX_PAYLOAD_BYTES);

	int err = api(dev)->boot(ectx(dev));

	write_line(dev, "HIL BOOT fw=%s proto=%u board=%s build=%s\r\n", dev->cfg.firmware_version,
		   HIL_PROTOCOL_VERSION, dev->cfg.board, dev->cfg.build_id);
	for (size_t i = 0; i < model_count(dev); i++) {
		const struct hil_model_info *m = api(dev)->model(ectx(dev), i);

		if (!m->ready) {
			write_line(dev, "HIL WARN model %s unusable: %s\r\n", m->name,
				   api(dev)->last_error(ectx(dev), i));
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

size_t hil_device_rx_wanted(const struct hil_device *dev)
{
	return hil_decoder_wanted(&dev->decoder);
}

bool hil_device_reset_pending(const struct hil_device *dev)
{
	return dev->reset_pending;
}

bool hil_device_sensor_streaming(const struct hil_device *dev)
{
	return dev->stream.active && dev->stream.params.source == HIL_SOURCE_SENSOR;
}

int hil_device_sensor_samples(struct hil_device *dev, const float *values, size_t count)
{
	if (!hil_device_sensor_streaming(dev)) {
		return -EINVAL;
	}
	for (size_t i = 0; i < count; i++) {
		memcpy(hil_stream_slot(&dev->stream), &values[i * dev->stream.channels],
		       dev->stream.channels * sizeof(float));

		int err = push_sample(dev);

		if (err != 0) {
			return err;
		}
	}
	return 0;
}
