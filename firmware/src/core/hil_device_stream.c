/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The dispatcher's streaming requests (STREAM_START, FEED, STREAM_STOP) and the sensor's
 * samples: a window slides over the samples, each hop is an inference, and a class that rises
 * above the threshold is an EVENT frame and a HIL EVENT line (docs/protocol.md).
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hil_device.h"
#include "hil_device_internal.h"
#include "hil_wire.h"

void hil_dev_stop_stream(struct hil_device *dev)
{
	if (dev->stream.active && dev->stream.params.source == HIL_SOURCE_SENSOR &&
	    dev->cfg.platform.api->sensor_stop != NULL) {
		dev->cfg.platform.api->sensor_stop(dev->cfg.platform.ctx);
	}
	dev->stream.active = false;
}

enum hil_error_code hil_dev_on_stream_start(struct hil_device *dev, const uint8_t *payload,
					    size_t len, struct hil_writer *w)
{
	(void)w;

	/* Any STREAM_START ends the running stream first, so a refused one leaves none (as the
	 * twin). */
	hil_dev_stop_stream(dev);

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
		return hil_dev_malformed(dev, HIL_MSG_STREAM_START, &r);
	}

	size_t index = hil_dev_find_model(dev, name);

	if (index == HIL_MODEL_NONE) {
		return hil_dev_unknown_model(dev, name);
	}

	const struct hil_model_info *m = hil_dev_api(dev)->model(hil_dev_ectx(dev), index);
	uint16_t window;
	uint16_t channels;

	if (!hil_stream_window_of(&m->input, &window, &channels)) {
		char spec[64];

		hil_dev_describe(spec, sizeof(spec), &m->input);
		return hil_dev_refuse(dev, HIL_ERR_UNSUPPORTED, "%s input %s is no [1,W,C] window",
				      m->name, spec);
	}
	if (params.hop < 1U) {
		return hil_dev_refuse(dev, HIL_ERR_MALFORMED,
				      "STREAM_START hop must be at least 1");
	}
	if (params.source != HIL_SOURCE_FED && params.source != HIL_SOURCE_SENSOR) {
		return hil_dev_refuse(dev, HIL_ERR_UNSUPPORTED,
				      "unknown sample source %u: use 0 (FEED) or "
				      "1 (sensor)",
				      (unsigned int)params.source);
	}
	if ((size_t)window * channels > dev->cfg.ring_floats) {
		return hil_dev_refuse(dev, HIL_ERR_UNSUPPORTED,
				      "%s window of %u x %u exceeds the ring of %u", m->name,
				      (unsigned int)window, (unsigned int)channels,
				      (unsigned int)dev->cfg.ring_floats);
	}
	if (!m->ready) {
		return hil_dev_not_ready(dev, index);
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
			return hil_dev_refuse(
				dev, HIL_ERR_UNSUPPORTED,
				"%s has no sensor stream in its manifest (rate and channels): "
				"feed samples with FEED",
				m->name);
		}
		if (dev->cfg.platform.api->sensor_start == NULL) {
			return hil_dev_refuse(dev, HIL_ERR_UNSUPPORTED,
					      "this device has no sensor: feed samples with FEED");
		}

		int err = dev->cfg.platform.api->sensor_start(dev->cfg.platform.ctx, &request);

		if (err != 0) {
			return hil_dev_refuse(
				dev, HIL_ERR_UNSUPPORTED,
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
	const char *model =
		hil_dev_api(dev)->model(hil_dev_ectx(dev), dev->stream.params.model)->name;
	struct hil_writer w;

	hil_writer_init(&w, &dev->event_frame[HIL_HEADER_BYTES],
			sizeof(dev->event_frame) - HIL_FRAME_OVERHEAD_BYTES);
	hil_write_u32(&w, event->sample);
	hil_write_cstr(&w, model);
	hil_write_u8(&w, event->class_index);
	hil_write_f32(&w, event->score);
	hil_write_u64(&w, event->ticks);
	hil_dev_write(
		dev, dev->event_frame,
		hil_frame_finish(dev->event_frame, HIL_MSG_EVENT, HIL_UNSOLICITED_SEQ, w.len));

	char score[32];

	(void)hil_format_fixed3(score, sizeof(score), event->score);

	int n = snprintf(dev->line, sizeof(dev->line),
			 "HIL EVENT %s class=%u score=%s sample=%lu\r\n", model,
			 (unsigned int)event->class_index, score, (unsigned long)event->sample);

	if (n > 0) {
		hil_dev_write(dev, (const uint8_t *)dev->line,
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

enum hil_error_code hil_dev_on_feed(struct hil_device *dev, const uint8_t *payload, size_t len,
				    struct hil_writer *w)
{
	struct hil_stream *s = &dev->stream;

	if (!s->active) {
		return hil_dev_refuse(dev, HIL_ERR_UNSUPPORTED,
				      "no stream: send STREAM_START first");
	}
	if (s->params.source != HIL_SOURCE_FED) {
		return hil_dev_refuse(
			dev, HIL_ERR_UNSUPPORTED,
			"the stream takes its samples from the sensor: FEED needs source 0");
	}

	struct hil_reader r;

	hil_reader_init(&r, payload, len);

	uint16_t count = hil_read_u16(&r);
	size_t data_len;
	const uint8_t *data = hil_read_rest(&r, &data_len);

	if (r.error != HIL_READ_OK) {
		return hil_dev_malformed(dev, HIL_MSG_FEED, &r);
	}

	size_t needed = (size_t)count * s->channels * 4U;

	if (data_len != needed) {
		return hil_dev_refuse(
			dev, HIL_ERR_MALFORMED,
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
			return hil_dev_refuse(
				dev, HIL_ERR_INVOKE_FAILED, "invoke failed at sample %lu: %s",
				(unsigned long)s->samples,
				hil_dev_api(dev)->last_error(hil_dev_ectx(dev), s->params.model));
		}
	}
	hil_write_u32(w, (uint32_t)s->samples);
	hil_write_u16(w, (uint16_t)(s->inferences - inferences));
	hil_write_u16(w, (uint16_t)(s->events - events));
	return HIL_ERR_NONE;
}

enum hil_error_code hil_dev_on_stream_stop(struct hil_device *dev, const uint8_t *payload,
					   size_t len, struct hil_writer *w)
{
	(void)payload;
	if (hil_dev_no_payload(dev, HIL_MSG_STREAM_STOP, len) != HIL_ERR_NONE) {
		return HIL_ERR_MALFORMED;
	}
	if (!dev->stream.active) {
		return hil_dev_refuse(dev, HIL_ERR_UNSUPPORTED, "no stream to stop");
	}
	hil_dev_stop_stream(dev);
	hil_write_u32(w, (uint32_t)dev->stream.samples);
	hil_write_u32(w, (uint32_t)dev->stream.inferences);
	hil_write_u32(w, (uint32_t)dev->stream.events);
	return HIL_ERR_NONE;
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
