/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "tick_profiler.h"

namespace hil {

uint32_t TickProfiler::BeginEvent(const char* tag) {
  if (count_ >= kMaxEvents) {
    return kMaxEvents;  // a model with more operators: the extra ones go
                        // unrecorded
  }
  const size_t handle = count_++;
  events_[handle].tag = tag != nullptr ? tag : "";
  events_[handle].ticks = 0;
  started_[handle] = clock_->now(clock_->ctx);
  return static_cast<uint32_t>(handle);
}

void TickProfiler::EndEvent(uint32_t event_handle) {
  if (event_handle >= count_) {
    return;
  }
  events_[event_handle].ticks =
      clock_->now(clock_->ctx) - started_[event_handle];
}

}  // namespace hil
