/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "fake_inference_engine.h"

#include <errno.h>
#include <string.h>

static int fake_boot(void *ctx)
{
	struct fake_inference_engine *fake = ctx;

	fake->boots++;
	fake->op_count = 0;
	fake->model.ready = true;
	fake->model.arena_used_bytes = 1760;
	return 0;
}

static size_t fake_model_count(void *ctx)
{
	(void)ctx;
	return 1;
}

static const struct hil_model_info *fake_model(void *ctx, size_t index)
{
	struct fake_inference_engine *fake = ctx;

	return index == 0U ? &fake->model : NULL;
}

static uint8_t *fake_input(void *ctx, size_t index)
{
	struct fake_inference_engine *fake = ctx;

	return index == 0U ? fake->input : NULL;
}

static const uint8_t *fake_output(void *ctx, size_t index)
{
	struct fake_inference_engine *fake = ctx;

	return index == 0U ? fake->output : NULL;
}

static int fake_invoke(void *ctx, size_t index, struct hil_invoke_stats *stats)
{
	struct fake_inference_engine *fake = ctx;

	if (index != 0U || fake->fail_invoke) {
		return -EIO;
	}
	fake->output[0] = fake->input[0];
	fake->now += 7U;
	fake->ops[0].tag = "FAKE_IDENTITY";
	fake->ops[0].ticks = 7U;
	fake->op_count = 1;
	stats->ticks = 7U;
	stats->arena_used_bytes = fake->model.arena_used_bytes;
	return 0;
}

static size_t fake_profile(void *ctx, const struct hil_op_ticks **ops)
{
	struct fake_inference_engine *fake = ctx;

	*ops = fake->ops;
	return fake->op_count;
}

static const char *fake_runtime(void *ctx)
{
	(void)ctx;
	return "fake-inference-engine (host tests)";
}

static const char *fake_last_error(void *ctx, size_t index)
{
	struct fake_inference_engine *fake = ctx;

	(void)index;
	return fake->fail_invoke ? "the fake was told to fail" : "";
}

static const struct hil_engine_api fake_api = {
	.boot = fake_boot,
	.model_count = fake_model_count,
	.model = fake_model,
	.input = fake_input,
	.output = fake_output,
	.invoke = fake_invoke,
	.profile = fake_profile,
	.runtime = fake_runtime,
	.last_error = fake_last_error,
};

static uint64_t fake_now(void *ctx)
{
	struct fake_inference_engine *fake = ctx;

	return fake->now;
}

struct hil_engine fake_inference_engine_init(struct fake_inference_engine *fake)
{
	memset(fake, 0, sizeof(*fake));
	fake->model.name = "sine";
	fake->model.sha256 = FAKE_MODEL_SHA256;
	fake->model.arena_size_bytes = 2192;
	/* models/sine/manifest.json quantization, so quantized FEED values are realistic */
	fake->model.input = (struct hil_tensor_spec){
		.type = HIL_TYPE_INT8,
		.ndims = 2,
		.dims = {1, 1},
		.scale = 0.024556191638112068f,
		.zero_point = -128,
	};
	fake->model.output = (struct hil_tensor_spec){
		.type = HIL_TYPE_INT8,
		.ndims = 2,
		.dims = {1, 1},
		.scale = 0.007814216427505016f,
		.zero_point = -4,
	};

	struct hil_engine engine = {.api = &fake_api, .ctx = fake};

	return engine;
}

struct hil_clock fake_inference_engine_clock(struct fake_inference_engine *fake)
{
	struct hil_clock clock = {.now = fake_now, .ctx = fake, .hz = 1000000U};

	return clock;
}
