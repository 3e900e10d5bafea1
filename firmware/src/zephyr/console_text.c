/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "console_text.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <zephyr/kernel.h>

#include "hil_port.h"

/* Installed by the UART console; we replace them (see drivers/console/uart_console.c). */
extern void __stdout_hook_install(int (*hook)(int c));
extern void __printk_hook_install(int (*fn)(int c));

#define LINE_BYTES 160

static struct k_spinlock line_lock;
static char line[LINE_BYTES];
static size_t line_len;

static int console_out(int c)
{
	if (k_is_in_isr() || k_is_pre_kernel()) {
		/* A fault report or an early message: nothing else runs, write it straight out. */
		hil_port_write_byte_unlocked((uint8_t)c);
		return c;
	}

	char full[LINE_BYTES];
	size_t n = 0;
	k_spinlock_key_t key = k_spin_lock(&line_lock);

	line[line_len++] = (char)c;
	if (c == '\n' || line_len == sizeof(line)) {
		n = line_len;
		memcpy(full, line, n);
		line_len = 0;
	}
	k_spin_unlock(&line_lock, key);
	if (n > 0U) {
		hil_port_write((const uint8_t *)full, n);
	}
	return c;
}

void hil_console_text_init(void)
{
	__printk_hook_install(console_out);
	__stdout_hook_install(console_out);
}
