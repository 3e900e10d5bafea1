/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * What the dispatcher needs from an inference engine. The firmware's engine runs TFLM
 * (tflm_engine.cc); the host tests plug in a stand-in (tests/host/fake_inference_engine.c).
 */

#ifndef HIL_CORE_HIL_ENGINE_H_
#define HIL_CORE_HIL_ENGINE_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hil_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

struct hil_tensor_spec {
	uint8_t type; /* enum hil_tensor_type */
	uint8_t ndims;
	uint16_t dims[HIL_MAX_DIMS];
	float scale; /* 0: not quantized */
	int32_t zero_point;
};

/* Bytes of a tensor of this spec (element size × every dim). */
size_t hil_tensor_spec_bytes(const struct hil_tensor_spec *spec);

/* What a model's manifest says about streaming (its "streaming" section). */
enum hil_sensor_kind {
	HIL_SENSOR_NONE = 0,  /* no streaming section, or channels no sensor of ours provides */
	HIL_SENSOR_ACCEL = 1, /* three channels accel_x, accel_y, accel_z */
};

struct hil_stream_desc {
	float sample_rate_hz; /* 0: the manifest gives no rate */
	enum hil_sensor_kind sensor;
	float unit_per_si; /* manifest unit per SI unit: 1/9.80665 for g of m/s² */
};

struct hil_model_info {
	const char *name;
	const char *sha256; /* 64 lowercase hex digits: SHA-256 of the model's .tflite bytes */
	uint32_t arena_size_bytes;
	uint32_t arena_used_bytes; /* after the last boot; 0 if allocation failed */
	struct hil_tensor_spec input;
	struct hil_tensor_spec output;
	struct hil_stream_desc stream;
	bool ready; /* the interpreter allocated its tensors at boot */
};

struct hil_invoke_stats {
	uint64_t ticks; /* device clock ticks spent in the invoke */
	uint32_t arena_used_bytes;
};

struct hil_op_ticks {
	const char *tag; /* operator name, e.g. "FULLY_CONNECTED" */
	uint64_t ticks;
};

struct hil_engine_api {
	/* (Re)create every interpreter, as a device reset would. Returns 0 or a negative errno. */
	int (*boot)(void *ctx);
	size_t (*model_count)(void *ctx);
	const struct hil_model_info *(*model)(void *ctx, size_t index);
	/* The model's input tensor buffer (hil_tensor_spec_bytes(input) bytes), NULL if not ready.
	 */
	uint8_t *(*input)(void *ctx, size_t index);
	/* The model's output tensor after the last invoke. */
	const uint8_t *(*output)(void *ctx, size_t index);
	/* Run the model on its input buffer. Returns 0, or a negative errno if it failed. */
	int (*invoke)(void *ctx, size_t index, struct hil_invoke_stats *stats);
	/* Per-operator ticks of the last inference; returns the count and sets *ops. */
	size_t (*profile)(void *ctx, const struct hil_op_ticks **ops);
	/* "tflite-micro ..." as INFO reports the runtime. */
	const char *(*runtime)(void *ctx);
	/* Why the last boot or invoke of a model failed, for error messages ("" if unknown). */
	const char *(*last_error)(void *ctx, size_t index);
};

struct hil_engine {
	const struct hil_engine_api *api;
	void *ctx;
};

/* The clock ticks come from: supplied by the glue (timing API, DWT, host clock). */
struct hil_clock {
	uint64_t (*now)(void *ctx);
	void *ctx;
	uint32_t hz; /* 0: no clock */
};

#ifdef __cplusplus
}
#endif

#endif /* HIL_CORE_HIL_ENGINE_H_ */
