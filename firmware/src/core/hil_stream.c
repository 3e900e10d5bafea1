/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "hil_stream.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hil_wire.h"

size_t hil_tensor_spec_bytes(const struct hil_tensor_spec *spec)
{
	size_t n = hil_tensor_type_size(spec->type);

	for (unsigned int i = 0; i < spec->ndims && i < HIL_MAX_DIMS; i++) {
		n *= spec->dims[i];
	}
	return n;
}

bool hil_stream_window_of(const struct hil_tensor_spec *input, uint16_t *window, uint16_t *channels)
{
	const uint16_t *d = input->dims;
	bool ok = input->ndims >= 1U && d[0] == 1U &&
		  (input->ndims == 2U || input->ndims == 3U || (input->ndims == 4U && d[3] == 1U));

	if (!ok) {
		return false;
	}
	*window = d[1];
	*channels = input->ndims > 2U ? d[2] : 1U;
	return *window > 0U && *channels > 0U;
}

void hil_stream_start(struct hil_stream *s, const struct hil_stream_params *params, uint16_t window,
		      uint16_t channels, float *ring)
{
	memset(s, 0, sizeof(*s));
	s->params = *params;
	s->window = window;
	s->channels = channels;
	s->ring = ring;
	memset(ring, 0, (size_t)window * channels * sizeof(float));
	s->active = true;
}

float *hil_stream_slot(struct hil_stream *s)
{
	return &s->ring[(size_t)(s->samples % s->window) * s->channels];
}

/* float -> integer of [lo, hi] as numpy's clip(round(x) + zp).astype() does on x86-64. */
static int64_t quantize_one(float v, float scale, int32_t zero_point, int64_t lo, int64_t hi,
			    int64_t nan_value)
{
	float x = v / scale;

	if (isnan(x)) {
		return nan_value;
	}

	double q = (double)roundf(x) + (double)zero_point;

	if (q < (double)lo) {
		return lo;
	}
	if (q > (double)hi) {
		return hi;
	}
	return (int64_t)q;
}

/* Unquantized integer input (scale 0): truncate toward zero and saturate. */
static int64_t truncate_one(float v, int64_t lo, int64_t hi)
{
	if (isnan(v)) {
		return 0;
	}
	if (v <= (float)lo) {
		return lo;
	}
	if (v >= (float)hi) {
		return hi;
	}
	return (int64_t)v;
}

void hil_quantize(const struct hil_tensor_spec *spec, const float *values, size_t count,
		  uint8_t *out)
{
	int64_t lo;
	int64_t hi;
	int64_t nan_value = 0;
	unsigned int size = hil_tensor_type_size(spec->type);

	switch (spec->type) {
	case HIL_TYPE_INT8:
		lo = INT8_MIN;
		hi = INT8_MAX;
		break;
	case HIL_TYPE_UINT8:
		lo = 0;
		hi = UINT8_MAX;
		break;
	case HIL_TYPE_INT16:
		lo = INT16_MIN;
		hi = INT16_MAX;
		break;
	case HIL_TYPE_INT32:
		lo = INT32_MIN;
		hi = INT32_MAX;
		nan_value = INT32_MIN;
		break;
	case HIL_TYPE_INT64:
		lo = INT64_MIN;
		hi = INT64_MAX;
		nan_value = INT64_MIN;
		break;
	default: /* float32: the values as they are */
		memcpy(out, values, count * sizeof(float));
		return;
	}
	for (size_t i = 0; i < count; i++) {
		int64_t q = spec->scale == 0.0f ? truncate_one(values[i], lo, hi)
						: quantize_one(values[i], spec->scale,
							       spec->zero_point, lo, hi, nan_value);

		switch (size) {
		case 1: {
			uint8_t b = (uint8_t)q;

			memcpy(&out[i], &b, 1);
			break;
		}
		case 2: {
			int16_t h = (int16_t)q;

			memcpy(&out[i * 2U], &h, 2);
			break;
		}
		case 4: {
			int32_t w = (int32_t)q;

			memcpy(&out[i * 4U], &w, 4);
			break;
		}
		default:
			memcpy(&out[i * 8U], &q, 8);
			break;
		}
	}
}

/* Element i of an output tensor as int(output[i]) in Python: floats truncate toward zero. */
static int64_t element_int(const struct hil_tensor_spec *spec, const uint8_t *data, size_t i)
{
	switch (spec->type) {
	case HIL_TYPE_INT8:
		return (int8_t)data[i];
	case HIL_TYPE_UINT8:
		return data[i];
	case HIL_TYPE_INT16: {
		int16_t v;

		memcpy(&v, &data[i * 2U], sizeof(v));
		return v;
	}
	case HIL_TYPE_INT32: {
		int32_t v;

		memcpy(&v, &data[i * 4U], sizeof(v));
		return v;
	}
	case HIL_TYPE_INT64: {
		int64_t v;

		memcpy(&v, &data[i * 8U], sizeof(v));
		return v;
	}
	default: {
		float v;

		memcpy(&v, &data[i * 4U], sizeof(v));
		if (isnan(v)) {
			return 0;
		}
		if (v >= 9.2e18f || v <= -9.2e18f) {
			return v > 0.0f ? INT64_MAX : INT64_MIN;
		}
		return (int64_t)v;
	}
	}
}

static float element_float(const uint8_t *data, size_t i)
{
	float v;

	memcpy(&v, &data[i * 4U], sizeof(v));
	return v;
}

void hil_top_class(const struct hil_tensor_spec *spec, const uint8_t *output, size_t *top,
		   float *score)
{
	size_t size = hil_tensor_type_size(spec->type);
	size_t count = size != 0U ? hil_tensor_spec_bytes(spec) / size : 0U;
	size_t best = 0;

	for (size_t i = 1; i < count; i++) {
		if (spec->type == HIL_TYPE_FLOAT32) {
			/* numpy's argmax: the first NaN wins, else the first maximum */
			float b = element_float(output, best);
			float v = element_float(output, i);

			if (!isnan(b) && (isnan(v) || v > b)) {
				best = i;
			}
		} else if (element_int(spec, output, i) > element_int(spec, output, best)) {
			best = i;
		}
	}
	*top = best;
	*score = count == 0U ? 0.0f
			     : (float)(element_int(spec, output, best) - spec->zero_point) *
				       spec->scale;
}

int hil_stream_commit(struct hil_stream *s, const struct hil_engine *engine,
		      struct hil_event *event, bool *raised)
{
	*raised = false;
	s->samples++;
	if (s->samples < s->window || (s->samples - s->window) % s->params.hop != 0U) {
		return 0;
	}

	const struct hil_model_info *info = engine->api->model(engine->ctx, s->params.model);
	uint8_t *input = engine->api->input(engine->ctx, s->params.model);
	size_t row = s->channels;

	if (info == NULL || input == NULL) {
		return -1;
	}

	size_t element = hil_tensor_type_size(info->input.type);

	/* The window, oldest first (time-major), straight into the input tensor. */
	for (size_t i = 0; i < s->window; i++) {
		const float *values = &s->ring[(size_t)((s->samples + i) % s->window) * row];

		hil_quantize(&info->input, values, row, &input[i * row * element]);
	}

	struct hil_invoke_stats stats = {0};
	int err = engine->api->invoke(engine->ctx, s->params.model, &stats);

	if (err != 0) {
		return err;
	}
	s->inferences++;

	size_t top;
	float score;

	hil_top_class(&info->output, engine->api->output(engine->ctx, s->params.model), &top,
		      &score);

	bool quiet =
		!s->has_last_event || s->samples - s->last_event >= s->params.refractory_samples;

	if (top == s->params.idle_class || score < s->params.threshold || !quiet) {
		return 0;
	}
	s->has_last_event = true;
	s->last_event = s->samples;
	s->events++;
	event->sample = (uint32_t)s->samples;
	event->class_index = (uint8_t)top;
	event->score = score;
	event->ticks = stats.ticks;
	*raised = true;
	return 0;
}

size_t hil_format_fixed3(char *buf, size_t cap, float v)
{
	const char *sign = signbit(v) ? "-" : "";
	int n;

	if (isnan(v)) {
		n = snprintf(buf, cap, "nan");
	} else if (isinf(v)) {
		n = snprintf(buf, cap, "%sinf", sign);
	} else {
		/* v × 1000 is exact in double: 24 mantissa bits times 10 bits of 1000. */
		double t = fabs((double)v) * 1000.0;
		const double limit = 9.0e18;

		if (t >= limit) {
			t = limit; /* beyond any score a quantized model produces */
		}

		double whole = floor(t);
		uint64_t q = (uint64_t)whole;
		double frac = t - whole;

		if (frac > 0.5 || (frac == 0.5 && (q & 1U) != 0U)) {
			q++;
		}
		char digits[24];
		size_t len = 0;
		uint64_t whole_part = q / 1000U;

		do {
			digits[len++] = (char)('0' + (int)(whole_part % 10U));
			whole_part /= 10U;
		} while (whole_part != 0U);

		char text[32];
		size_t pos = 0;

		if (*sign != '\0') {
			text[pos++] = '-';
		}
		while (len > 0U) {
			text[pos++] = digits[--len];
		}
		text[pos] = '\0';
		n = snprintf(buf, cap, "%s.%03u", text, (unsigned int)(q % 1000U));
	}
	return n < 0 ? 0U : (size_t)n;
}
