/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * native_sim: code runs in zero simulated time, so ticks come from the host's monotonic
 * clock in nanoseconds (as the reference twin counts them). The embedded code is built
 * against the host C library (CONFIG_EXTERNAL_LIBC), which provides clock_gettime().
 */

/* clock_gettime() and CLOCK_MONOTONIC of the host C library (POSIX, not plain C11) */
#define _POSIX_C_SOURCE 200809L

#include "hil_clock.h"

#include <time.h>

#define NS_PER_S 1000000000ULL

static struct hil_clock hil_clk;

static uint64_t host_ns(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
		return 0;
	}
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

const struct hil_clock *hil_clock_init(void)
{
	hil_clk.now = host_ns;
	hil_clk.ctx = NULL;
	hil_clk.hz = (uint32_t)NS_PER_S;
	return &hil_clk;
}

uint32_t hil_clock_now_ms(void)
{
	return (uint32_t)(host_ns(NULL) / 1000000ULL);
}

const char *hil_clock_source(void)
{
	return "host monotonic ns";
}
