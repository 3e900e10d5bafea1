/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

// Per-operator timing on the device clock. TFLM's own MicroProfiler reads
// micro_time.cc, which returns 0 ticks on Zephyr; this profiler reads the clock
// the glue provides (the timing API: DWT cycles on Cortex-M), the same clock as
// the whole-inference ticks.

#ifndef HIL_CORE_TICK_PROFILER_H_
#define HIL_CORE_TICK_PROFILER_H_

#include <cstddef>
#include <cstdint>

#include "hil_engine.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"

namespace hil {

class TickProfiler : public tflite::MicroProfilerInterface {
 public:
  static constexpr size_t kMaxEvents = 128;

  explicit TickProfiler(const hil_clock* clock) : clock_(clock) {}

  uint32_t BeginEvent(const char* tag) override;
  void EndEvent(uint32_t event_handle) override;

  // Forget the events of the previous inference.
  void Clear() { count_ = 0; }

  // The events of the last inference, in the order the operators ran.
  const hil_op_ticks* events() const { return events_; }
  size_t count() const { return count_; }

 private:
  const hil_clock* clock_;
  hil_op_ticks events_[kMaxEvents] = {};
  uint64_t started_[kMaxEvents] = {};
  size_t count_ = 0;
};

}  // namespace hil

#endif  // HIL_CORE_TICK_PROFILER_H_
