/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "memory_stats.h"

#include <zephyr/kernel.h>
#include <zephyr/sys/sys_heap.h>

#if K_HEAP_MEM_POOL_SIZE > 0 && defined(CONFIG_SYS_HEAP_RUNTIME_STATS)
/* The kernel heap behind k_malloc() (kernel/mempool.c). */
extern struct k_heap _system_heap;
#endif

void hil_memory_stats(struct k_thread *main_thread, struct hil_memory_report *report)
{
#if defined(CONFIG_INIT_STACKS) && defined(CONFIG_THREAD_STACK_INFO)
	size_t unused;

	/* native_sim threads run on host pthread stacks: the Zephyr stack area stays unused. */
	if (!IS_ENABLED(CONFIG_ARCH_POSIX) && k_thread_stack_space_get(main_thread, &unused) == 0) {
		report->stack_size_bytes = (uint32_t)main_thread->stack_info.size;
		report->stack_used_bytes = (uint32_t)(main_thread->stack_info.size - unused);
	}
#else
	ARG_UNUSED(main_thread);
#endif

#if K_HEAP_MEM_POOL_SIZE > 0 && defined(CONFIG_SYS_HEAP_RUNTIME_STATS)
	struct sys_memory_stats stats;

	if (sys_heap_runtime_stats_get(&_system_heap.heap, &stats) == 0) {
		report->heap_size_bytes = (uint32_t)(stats.free_bytes + stats.allocated_bytes);
		report->heap_used_bytes = (uint32_t)stats.allocated_bytes;
	}
#endif
}
