/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "per_channel_fully_connected.h"

#include <algorithm>
#include <cstdint>

#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/kernels/internal/common.h"
#include "tensorflow/lite/kernels/internal/quantization_util.h"
#include "tensorflow/lite/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/fully_connected.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_utils.h"

namespace hil {
namespace {

constexpr int kInputTensor = 0;
constexpr int kWeightsTensor = 1;
constexpr int kBiasTensor = 2;
constexpr int kOutputTensor = 0;

struct OpData {
  void* stock_data;  // the stock kernel's user data, for per-tensor layers
  bool per_channel;
  int32_t* output_multiplier;  // per output channel
  int32_t* output_shift;
  int32_t input_offset;
  int32_t output_offset;
  int32_t output_activation_min;
  int32_t output_activation_max;
};

// Runs a stock kernel function with the stock kernel's own user data on the
// node.
TfLiteStatus WithStockData(TfLiteContext* context, TfLiteNode* node,
                           TfLiteStatus (*function)(TfLiteContext*,
                                                    TfLiteNode*)) {
  auto* data = static_cast<OpData*>(node->user_data);
  node->user_data = data->stock_data;
  const TfLiteStatus status = function(context, node);
  node->user_data = data;
  return status;
}

bool IsPerChannel(const TfLiteTensor& filter) {
  if (filter.quantization.type != kTfLiteAffineQuantization ||
      filter.quantization.params == nullptr) {
    return false;
  }
  const auto* affine =
      static_cast<const TfLiteAffineQuantization*>(filter.quantization.params);
  return affine->scale != nullptr && affine->scale->size > 1;
}

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) {
    return nullptr;
  }
  *data = OpData{};
  data->stock_data =
      tflite::Register_FULLY_CONNECTED().init(context, buffer, length);
  // A full arena: fail in Prepare (the stock kernel would dereference its null
  // data).
  return data->stock_data != nullptr ? data : nullptr;
}

TfLiteStatus PreparePerChannel(TfLiteContext* context, TfLiteNode* node,
                               OpData* data, const TfLiteTensor* input,
                               const TfLiteTensor* filter,
                               const TfLiteTensor* bias, TfLiteTensor* output) {
  TF_LITE_ENSURE(context, input != nullptr && output != nullptr);
  TF_LITE_ENSURE_TYPES_EQ(context, input->type, kTfLiteInt8);
  TF_LITE_ENSURE_TYPES_EQ(context, filter->type, kTfLiteInt8);
  TF_LITE_ENSURE_TYPES_EQ(context, output->type, kTfLiteInt8);
  if (bias != nullptr) {
    TF_LITE_ENSURE_TYPES_EQ(context, bias->type, kTfLiteInt32);
  }
  TF_LITE_ENSURE_EQ(context, filter->dims->size, 2);

  const auto* affine =
      static_cast<const TfLiteAffineQuantization*>(filter->quantization.params);
  const int channels = affine->scale->size;
  TF_LITE_ENSURE_EQ(context, channels,
                    filter->dims->data[affine->quantized_dimension]);
  TF_LITE_ENSURE_EQ(context, affine->quantized_dimension, 0);

  data->output_multiplier = static_cast<int32_t*>(
      context->AllocatePersistentBuffer(context, channels * sizeof(int32_t)));
  data->output_shift = static_cast<int32_t*>(
      context->AllocatePersistentBuffer(context, channels * sizeof(int32_t)));
  TF_LITE_ENSURE(context, data->output_multiplier != nullptr &&
                              data->output_shift != nullptr);

  const double input_scale = static_cast<double>(input->params.scale);
  const double output_scale = static_cast<double>(output->params.scale);
  for (int c = 0; c < channels; ++c) {
    const double effective_scale = input_scale *
                                   static_cast<double>(affine->scale->data[c]) /
                                   output_scale;
    int shift = 0;
    tflite::QuantizeMultiplier(effective_scale, &data->output_multiplier[c],
                               &shift);
    data->output_shift[c] = shift;
  }
  data->input_offset = -input->params.zero_point;
  data->output_offset = output->params.zero_point;

  const auto* params =
      static_cast<const TfLiteFullyConnectedParams*>(node->builtin_data);
  TF_LITE_ENSURE(context, params != nullptr);
  return tflite::CalculateActivationRangeQuantized(
      context, params->activation, output, &data->output_activation_min,
      &data->output_activation_max);
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  TF_LITE_ENSURE(context, data != nullptr && data->stock_data != nullptr);
  tflite::MicroContext* micro_context = tflite::GetMicroContext(context);
  TfLiteTensor* filter =
      micro_context->AllocateTempInputTensor(node, kWeightsTensor);
  TF_LITE_ENSURE(context, filter != nullptr);
  data->per_channel = IsPerChannel(*filter);
  if (!data->per_channel) {
    micro_context->DeallocateTempTfLiteTensor(filter);
    return WithStockData(context, node,
                         tflite::Register_FULLY_CONNECTED().prepare);
  }

  TfLiteTensor* input =
      micro_context->AllocateTempInputTensor(node, kInputTensor);
  TfLiteTensor* bias =
      micro_context->AllocateTempInputTensor(node, kBiasTensor);
  TfLiteTensor* output =
      micro_context->AllocateTempOutputTensor(node, kOutputTensor);
  const TfLiteStatus status =
      PreparePerChannel(context, node, data, input, filter, bias, output);
  for (TfLiteTensor* tensor : {input, filter, bias, output}) {
    if (tensor != nullptr) {
      micro_context->DeallocateTempTfLiteTensor(tensor);
    }
  }
  return status;
}

// The per-inference path: checked in Prepare, no TFLITE_CHECK here.
TfLiteStatus Invoke(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  if (!data->per_channel) {
    return WithStockData(context, node,
                         tflite::Register_FULLY_CONNECTED().invoke);
  }
  const TfLiteEvalTensor* input =
      tflite::micro::GetEvalInput(context, node, kInputTensor);
  const TfLiteEvalTensor* filter =
      tflite::micro::GetEvalInput(context, node, kWeightsTensor);
  const TfLiteEvalTensor* bias =
      tflite::micro::GetEvalInput(context, node, kBiasTensor);
  TfLiteEvalTensor* output =
      tflite::micro::GetEvalOutput(context, node, kOutputTensor);
  if (input == nullptr || filter == nullptr || output == nullptr) {
    return kTfLiteError;
  }

  const int depth = filter->dims->data[0];
  const int accum_depth = filter->dims->data[1];
  const int batches =
      depth > 0 ? tflite::ElementCount(*output->dims) / depth : 0;
  const int8_t* input_data = tflite::micro::GetTensorData<int8_t>(input);
  const int8_t* filter_data = tflite::micro::GetTensorData<int8_t>(filter);
  const int32_t* bias_data =
      bias != nullptr ? tflite::micro::GetTensorData<int32_t>(bias) : nullptr;
  int8_t* output_data = tflite::micro::GetTensorData<int8_t>(output);

  for (int b = 0; b < batches; ++b) {
    for (int c = 0; c < depth; ++c) {
      int32_t acc = 0;
      for (int d = 0; d < accum_depth; ++d) {
        const int32_t input_value = input_data[b * accum_depth + d];
        const int32_t filter_value = filter_data[c * accum_depth + d];
        acc += filter_value * (input_value + data->input_offset);
      }
      if (bias_data != nullptr) {
        acc += bias_data[c];
      }
      acc = tflite::MultiplyByQuantizedMultiplier(
          acc, data->output_multiplier[c], data->output_shift[c]);
      acc += data->output_offset;
      acc = std::max(acc, data->output_activation_min);
      acc = std::min(acc, data->output_activation_max);
      output_data[c + depth * b] = static_cast<int8_t>(acc);
    }
  }
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration Register_FULLY_CONNECTED_PER_CHANNEL() {
  TFLMRegistration registration = tflite::Register_FULLY_CONNECTED();
  registration.init = Init;
  registration.free = nullptr;
  registration.prepare = Prepare;
  registration.invoke = Invoke;
  registration.reset = nullptr;
  return registration;
}

}  // namespace hil
