/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Console text that shares the protocol UART (printk, stdout/stderr, TFLM's MicroPrintf) is
 * collected into lines and written as whole units through hil_port_write, so it can only
 * appear between frames, never inside one.
 */

#ifndef HIL_ZEPHYR_CONSOLE_TEXT_H_
#define HIL_ZEPHYR_CONSOLE_TEXT_H_

/* Take over the printk and stdout hooks the UART console installed. */
void hil_console_text_init(void);

#endif /* HIL_ZEPHYR_CONSOLE_TEXT_H_ */
