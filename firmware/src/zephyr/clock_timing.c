/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Ticks from Zephyr's timing API: the DWT cycle counter on Cortex-M cores that have one, the
 * kernel's cycle counter elsewhere (mps2/an385 in QEMU: SysTick, following -icount). Some
 * emulated platforms have no working DWT (CYCCNT reads 0, e.g. Renode's stock nRF52840 and
 * STM32F4 platforms); then the kernel cycle counter is used and INFO reports its rate.
 */

#include "hil_clock.h"

#include <zephyr/kernel.h>
#include <zephyr/timing/timing.h>

#define PROBE_US 200

struct clock_state {
	uint32_t (*read32)(void);
	uint32_t last;
	uint64_t high;
};

static struct clock_state state;
static struct hil_clock hil_clk;
static const char *source = "none";

static uint32_t timing_read32(void)
{
	timing_t now = timing_counter_get();

	return (uint32_t)now;
}

static uint32_t kernel_read32(void)
{
	return k_cycle_get_32();
}

/* Both counters are 32 bits wide: extend them (called far more often than they wrap). */
static uint64_t clock_now(void *ctx)
{
	struct clock_state *s = ctx;
	unsigned int key = irq_lock();
	uint32_t now = s->read32();

	if (now < s->last) {
		s->high += (uint64_t)1 << 32;
	}
	s->last = now;

	uint64_t ticks = s->high | now;

	irq_unlock(key);
	return ticks;
}

const struct hil_clock *hil_clock_init(void)
{
	timing_init();
	timing_start();

	timing_t start = timing_counter_get();

	k_busy_wait(PROBE_US);

	timing_t end = timing_counter_get();

	if (timing_cycles_get(&start, &end) > 0U) {
		state.read32 = timing_read32;
		hil_clk.hz = (uint32_t)timing_freq_get();
		source = "timing API";
	} else {
		state.read32 = kernel_read32;
		hil_clk.hz = sys_clock_hw_cycles_per_sec();
		source = "kernel cycles (the timing counter did not advance)";
	}
	state.last = state.read32();
	hil_clk.now = clock_now;
	hil_clk.ctx = &state;
	return &hil_clk;
}

uint32_t hil_clock_now_ms(void)
{
	if (hil_clk.now != NULL) {
		(void)hil_clk.now(hil_clk.ctx); /* keeps the 32-bit extension current */
	}
	return k_uptime_get_32();
}

const char *hil_clock_source(void)
{
	return source;
}
