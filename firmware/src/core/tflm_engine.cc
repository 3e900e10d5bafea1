/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "tflm_engine.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>

#include "hil_models.h"  // generated: HIL_MODEL_COUNT
#include "model_registry.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tick_profiler.h"

namespace hil {
namespace {

constexpr size_t kMaxModels = HIL_MODEL_COUNT > 0 ? HIL_MODEL_COUNT : 1;
constexpr size_t kErrorBytes = 128;

// True if a tensor has the type, shape and quantization the manifest promises.
bool Matches(const TfLiteTensor& tensor, const hil_tensor_spec& spec) {
  if (static_cast<int>(tensor.type) != spec.type || tensor.dims == nullptr ||
      tensor.dims->size != spec.ndims) {
    return false;
  }
  for (int i = 0; i < tensor.dims->size; ++i) {
    if (tensor.dims->data[i] != spec.dims[i]) {
      return false;
    }
  }
  const float tolerance = 1e-6f * std::fabs(spec.scale);
  return std::fabs(tensor.params.scale - spec.scale) <= tolerance &&
         tensor.params.zero_point == spec.zero_point;
}

class TflmEngine {
 public:
  TflmEngine(const hil_clock* clock, const char* runtime)
      : clock_(clock), runtime_(runtime), profiler_(clock) {}

  TflmEngine(const TflmEngine&) = delete;
  TflmEngine& operator=(const TflmEngine&) = delete;

  int Boot() {
    int failed = 0;
    profiler_.Clear();
    for (size_t i = 0; i < kModelCount && i < kMaxModels; ++i) {
      if (BootModel(i) != kTfLiteOk) {
        failed = -EIO;
      }
    }
    return failed;
  }

  size_t model_count() const {
    return kModelCount < kMaxModels ? kModelCount : kMaxModels;
  }

  const hil_model_info* model(size_t index) const {
    return index < model_count() ? &slots_[index].info : nullptr;
  }

  uint8_t* input(size_t index) {
    if (index >= model_count() || !slots_[index].info.ready) {
      return nullptr;
    }
    return slots_[index].interpreter->input(0)->data.uint8;
  }

  const uint8_t* output(size_t index) {
    if (index >= model_count() || !slots_[index].info.ready) {
      return nullptr;
    }
    return slots_[index].interpreter->output(0)->data.uint8;
  }

  // The per-inference path: no TFLITE_CHECK, every status checked and passed
  // up.
  int Invoke(size_t index, hil_invoke_stats* stats) {
    if (index >= model_count() || !slots_[index].info.ready) {
      return -EINVAL;
    }
    Slot& slot = slots_[index];
    profiler_.Clear();
    const uint64_t start = clock_->now(clock_->ctx);
    const TfLiteStatus status = slot.interpreter->Invoke();
    stats->ticks = clock_->now(clock_->ctx) - start;
    stats->arena_used_bytes =
        static_cast<uint32_t>(slot.interpreter->arena_used_bytes());
    if (status != kTfLiteOk) {
      std::snprintf(slot.error, kErrorBytes,
                    "Invoke() of %s returned %d (see console)", slot.info.name,
                    static_cast<int>(status));
      return -EIO;
    }
    return 0;
  }

  size_t Profile(const hil_op_ticks** ops) const {
    *ops = profiler_.events();
    return profiler_.count();
  }

  const char* runtime() const { return runtime_; }

  const char* last_error(size_t index) const {
    return index < model_count() ? slots_[index].error : "";
  }

 private:
  struct Slot {
    alignas(tflite::MicroInterpreter)
        uint8_t storage[sizeof(tflite::MicroInterpreter)];
    tflite::MicroInterpreter* interpreter = nullptr;
    const tflite::MicroOpResolver* resolver = nullptr;
    hil_model_info info = {};
    char error[kErrorBytes] = {};
  };

  TfLiteStatus BootModel(size_t index) {
    const ModelDescriptor& desc = kModels[index];
    Slot& slot = slots_[index];
    slot.info = {desc.name,   desc.sha256, static_cast<uint32_t>(desc.arena_bytes),
                 0,           desc.input,  desc.output,
                 desc.stream, false};
    slot.error[0] = '\0';
    if (slot.interpreter != nullptr) {
      slot.interpreter->~MicroInterpreter();
      slot.interpreter = nullptr;
    }

    const tflite::Model* model = tflite::GetModel(desc.flatbuffer);
    if (model->version() != TFLITE_SCHEMA_VERSION) {
      std::snprintf(
          slot.error, kErrorBytes, "schema version %u, this TFLM reads %d",
          static_cast<unsigned>(model->version()), TFLITE_SCHEMA_VERSION);
      return kTfLiteError;
    }
    if (slot.resolver == nullptr) {
      slot.resolver = desc.make_resolver();
    }
    if (slot.resolver == nullptr) {
      std::snprintf(slot.error, kErrorBytes,
                    "registering the manifest's ops failed");
      return kTfLiteError;
    }
    slot.interpreter = new (slot.storage)
        tflite::MicroInterpreter(model, *slot.resolver, desc.arena,
                                 desc.arena_bytes, nullptr, &profiler_);
    if (slot.interpreter->AllocateTensors() != kTfLiteOk) {
      std::snprintf(
          slot.error, kErrorBytes,
          "AllocateTensors() failed in the %u-byte arena (see console)",
          static_cast<unsigned>(desc.arena_bytes));
      return kTfLiteError;
    }
    if (slot.interpreter->inputs_size() != 1 ||
        slot.interpreter->outputs_size() != 1) {
      std::snprintf(slot.error, kErrorBytes,
                    "%u inputs and %u outputs: the protocol serves one of each",
                    static_cast<unsigned>(slot.interpreter->inputs_size()),
                    static_cast<unsigned>(slot.interpreter->outputs_size()));
      return kTfLiteError;
    }
    if (!Matches(*slot.interpreter->input(0), desc.input) ||
        !Matches(*slot.interpreter->output(0), desc.output)) {
      std::snprintf(
          slot.error, kErrorBytes,
          "the model's tensors differ from its manifest: rebuild after "
          "retraining");
      return kTfLiteError;
    }
    slot.info.arena_used_bytes =
        static_cast<uint32_t>(slot.interpreter->arena_used_bytes());
    slot.info.ready = true;
    return kTfLiteOk;
  }

  const hil_clock* clock_;
  const char* runtime_;
  TickProfiler profiler_;
  Slot slots_[kMaxModels];
};

// The one engine, constructed in place by hil_tflm_engine_init (no global
// constructors).
alignas(TflmEngine) uint8_t engine_storage[sizeof(TflmEngine)];

TflmEngine* Engine(void* ctx) { return static_cast<TflmEngine*>(ctx); }

int BootThunk(void* ctx) { return Engine(ctx)->Boot(); }
size_t ModelCountThunk(void* ctx) { return Engine(ctx)->model_count(); }
const hil_model_info* ModelThunk(void* ctx, size_t index) {
  return Engine(ctx)->model(index);
}
uint8_t* InputThunk(void* ctx, size_t index) {
  return Engine(ctx)->input(index);
}
const uint8_t* OutputThunk(void* ctx, size_t index) {
  return Engine(ctx)->output(index);
}
int InvokeThunk(void* ctx, size_t index, hil_invoke_stats* stats) {
  return Engine(ctx)->Invoke(index, stats);
}
size_t ProfileThunk(void* ctx, const hil_op_ticks** ops) {
  return Engine(ctx)->Profile(ops);
}
const char* RuntimeThunk(void* ctx) { return Engine(ctx)->runtime(); }
const char* LastErrorThunk(void* ctx, size_t index) {
  return Engine(ctx)->last_error(index);
}

const hil_engine_api kTflmEngineApi = {
    BootThunk,   ModelCountThunk, ModelThunk,   InputThunk,     OutputThunk,
    InvokeThunk, ProfileThunk,    RuntimeThunk, LastErrorThunk,
};

}  // namespace
}  // namespace hil

extern "C" hil_engine hil_tflm_engine_init(const hil_clock* clock,
                                           const char* runtime) {
  auto* engine = new (hil::engine_storage) hil::TflmEngine(clock, runtime);
  return hil_engine{&hil::kTflmEngineApi, engine};
}
