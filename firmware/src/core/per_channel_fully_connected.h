/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

// FULLY_CONNECTED for int8 models whose weights are quantized per output
// channel.
//
// The TFLite converter quantizes dense layers per channel by default, and the
// TFLM Python runtime behind the reference twin runs them
// (reference_integer_ops::FullyConnectedPerChannel). The TFLM revision
// Zephyr 3.7 pins refuses them at Prepare ("FullyConnected per-channel
// quantization not yet supported"). This registration computes per-channel
// layers with the same integer arithmetic as newer TFLM (multipliers from
// double(input_scale) * double(filter_scale[c]) / double(output_scale), then
// MultiplyByQuantizedMultiplier), so the outputs are bit-exact with the twin;
// every other layer goes to the stock kernel (CMSIS-NN on Cortex-M) unchanged.

#ifndef HIL_CORE_PER_CHANNEL_FULLY_CONNECTED_H_
#define HIL_CORE_PER_CHANNEL_FULLY_CONNECTED_H_

#include "tensorflow/lite/micro/micro_common.h"

namespace hil {

TFLMRegistration Register_FULLY_CONNECTED_PER_CHANNEL();

}  // namespace hil

#endif  // HIL_CORE_PER_CHANNEL_FULLY_CONNECTED_H_
