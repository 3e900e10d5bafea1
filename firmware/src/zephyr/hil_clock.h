/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The device clock that ticks count (INFO's clock Hz) and the millisecond time the
 * receiver's stale-frame rule uses. Two implementations: clock_timing.c (Zephyr's timing
 * API: DWT cycles on Cortex-M) and clock_host.c (native_sim: the host's monotonic clock).
 */

#ifndef HIL_ZEPHYR_HIL_CLOCK_H_
#define HIL_ZEPHYR_HIL_CLOCK_H_

#include <stdint.h>

#include "hil_engine.h"

/* Start the clock; the result stays valid for the program's life. */
const struct hil_clock *hil_clock_init(void);

/* Milliseconds for the stale-frame rule (wraps). */
uint32_t hil_clock_now_ms(void);

/* What the ticks are, for the boot log: "DWT cycles", "kernel cycles", "host ns". */
const char *hil_clock_source(void);

#endif /* HIL_ZEPHYR_HIL_CLOCK_H_ */
