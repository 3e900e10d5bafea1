/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#ifndef HIL_ZEPHYR_MEMORY_STATS_H_
#define HIL_ZEPHYR_MEMORY_STATS_H_

#include <zephyr/kernel.h>

#include "hil_device.h"

/*
 * MEMORY: the main thread's stack (size and high-water mark: CONFIG_INIT_STACKS and
 * CONFIG_THREAD_STACK_INFO) and the kernel heap (CONFIG_SYS_HEAP_RUNTIME_STATS). Whatever
 * cannot be measured stays HIL_UNKNOWN_U32 (the stack on native_sim, whose threads run on
 * host stacks). main_thread: the thread that runs inferences.
 */
void hil_memory_stats(struct k_thread *main_thread, struct hil_memory_report *report);

#endif /* HIL_ZEPHYR_MEMORY_STATS_H_ */
