/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * FakeInferenceEngine: a stand-in for the TFLM engine in the host tests of the core. It serves
 * one model, "sine", int8[1,1] -> int8[1,1] with the real model's quantization, whose output
 * is its input (identity). It is NOT the sine model: only replies that do not depend on
 * weights (the protocol vectors' reply lines) can be checked against it.
 */

#ifndef HIL_TESTS_HOST_FAKE_INFERENCE_ENGINE_H_
#define HIL_TESTS_HOST_FAKE_INFERENCE_ENGINE_H_

#include <stdbool.h>

#include "hil_engine.h"

/* The fake's "sha256" in MODEL_INFO: any 64 lowercase hex digits (not the real sine.tflite's). */
#define FAKE_MODEL_SHA256 "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

struct fake_inference_engine {
	struct hil_model_info model;
	uint8_t input[1];
	uint8_t output[1];
	struct hil_op_ticks ops[1];
	size_t op_count;
	uint64_t now;     /* the fake clock: advances 7 ticks per invoke */
	bool fail_invoke; /* make the next invokes fail (INVOKE_FAILED paths) */
	unsigned int boots;
};

/* Fill engine with the fake "sine" model and its clock; returns the hil_engine to plug in. */
struct hil_engine fake_inference_engine_init(struct fake_inference_engine *fake);

/* The fake's clock (ticks at 1 MHz) for hil_device_config.clock. */
struct hil_clock fake_inference_engine_clock(struct fake_inference_engine *fake);

#endif /* HIL_TESTS_HOST_FAKE_INFERENCE_ENGINE_H_ */
