/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Streaming: the deterministic windowing of docs/protocol.md "Streaming", shared by fed
 * samples (FEED) and the device's own sensor, bit for bit the algorithm of hil/twin.py _Stream.
 */

#ifndef HIL_CORE_HIL_STREAM_H_
#define HIL_CORE_HIL_STREAM_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hil_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

struct hil_stream_params {
	size_t model;       /* engine model index */
	uint8_t source;     /* HIL_SOURCE_FED or HIL_SOURCE_SENSOR */
	uint16_t hop;       /* >= 1 */
	uint8_t idle_class; /* HIL_NO_IDLE_CLASS: every class may raise events */
	float threshold;
	uint16_t refractory_samples;
};

struct hil_stream {
	bool active;
	struct hil_stream_params params;
	uint16_t window;   /* W samples per inference */
	uint16_t channels; /* C values per sample */
	float *ring;       /* W × C floats, oldest at samples % W */
	uint64_t samples;
	uint64_t inferences;
	uint64_t events;
	bool has_last_event;
	uint64_t last_event;
};

struct hil_event {
	uint32_t sample; /* samples since STREAM_START at the end of the window */
	uint8_t class_index;
	float score;
	uint64_t ticks;
};

/*
 * Window W and channels C of a [1,W], [1,W,C] or [1,W,C,1] input; false if the input is no
 * sensor window (the twin's "is no [1,W,C] window").
 */
bool hil_stream_window_of(const struct hil_tensor_spec *input, uint16_t *window,
			  uint16_t *channels);

/* Start (or restart) a stream; ring must hold window × channels floats. */
void hil_stream_start(struct hil_stream *s, const struct hil_stream_params *params, uint16_t window,
		      uint16_t channels, float *ring);

/* Where the next sample's channel values go; fill them, then call hil_stream_commit. */
float *hil_stream_slot(struct hil_stream *s);

/*
 * Count the sample written to the slot and run the window if it is due. Returns 0 (with
 * *raised telling whether *event holds a new event) or the negative errno of a failed invoke.
 */
int hil_stream_commit(struct hil_stream *s, const struct hil_engine *engine,
		      struct hil_event *event, bool *raised);

/* Quantize count real values for a tensor of spec, as hil.results.TensorSpec.quantize. */
void hil_quantize(const struct hil_tensor_spec *spec, const float *values, size_t count,
		  uint8_t *out);

/* Top class (lowest index on ties) of an output tensor and its dequantized float32 score. */
void hil_top_class(const struct hil_tensor_spec *spec, const uint8_t *output, size_t *top,
		   float *score);

/*
 * Format v as Python's f"{v:.3f}" does for the float32 value v (correctly rounded, ties to
 * even). Returns the length written (always NUL-terminated when cap > 0).
 */
size_t hil_format_fixed3(char *buf, size_t cap, float v);

#ifdef __cplusplus
}
#endif

#endif /* HIL_CORE_HIL_STREAM_H_ */
