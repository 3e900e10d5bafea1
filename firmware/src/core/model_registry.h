/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

// The model registry: one descriptor per embedded model. The table itself is
// generated at CMake time from models/*/manifest.json
// (firmware/cmake/hil_models.cmake) into <build>/hil_generated/hil_models.cc,
// never kept by hand.

#ifndef HIL_CORE_MODEL_REGISTRY_H_
#define HIL_CORE_MODEL_REGISTRY_H_

#include <cstddef>
#include <cstdint>

#include "hil_engine.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"

namespace hil {

struct ModelDescriptor {
  const char* name;
  const unsigned char* flatbuffer;
  size_t flatbuffer_bytes;
  uint8_t* arena;  // static, 16-byte aligned
  size_t arena_bytes;
  // Builds the model's MicroMutableOpResolver with exactly the manifest's ops
  // (static storage, built once); nullptr if registering an op failed.
  const tflite::MicroOpResolver* (*make_resolver)();
  hil_tensor_spec
      input;  // from the manifest; checked against the model at boot
  hil_tensor_spec output;
  hil_stream_desc stream;  // the manifest's "streaming" section
  const char* sha256;      // of the embedded .tflite: 64 lowercase hex digits
};

extern const ModelDescriptor kModels[];
extern const size_t kModelCount;

}  // namespace hil

#endif  // HIL_CORE_MODEL_REGISTRY_H_
