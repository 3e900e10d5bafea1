/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The inference engine of the firmware: one TFLM MicroInterpreter per embedded model (the
 * generated registry), each in its own static arena, timed on the glue's clock, with a
 * per-operator profile of the last inference. C interface for the C dispatcher and glue.
 */

#ifndef HIL_CORE_TFLM_ENGINE_H_
#define HIL_CORE_TFLM_ENGINE_H_

#include "hil_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Create the engine (once, before the first hil_device_boot). clock: what ticks count;
 * runtime: the INFO runtime string, e.g. "tflite-micro (Zephyr 3.7.1, CMSIS-NN kernels)".
 * Both must outlive the engine.
 */
struct hil_engine hil_tflm_engine_init(const struct hil_clock *clock, const char *runtime);

#ifdef __cplusplus
}
#endif

#endif /* HIL_CORE_TFLM_ENGINE_H_ */
