/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The protocol port: the channel that carries frames and console text. A UART (hil_port.c):
 * interrupt-driven with receive and transmit ring buffers where the driver supports it (no byte
 * lost at 115200 while an inference runs), polled otherwise (native_sim's pty UART); or Arm
 * semihosting under QEMU (hil_port_semihost.c, CONFIG_HIL_PORT_SEMIHOST).
 */

#ifndef HIL_ZEPHYR_HIL_PORT_H_
#define HIL_ZEPHYR_HIL_PORT_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zephyr/device.h>
#include <zephyr/kernel.h>

/* Start receiving; wake is given whenever bytes arrive. Returns 0 or a negative errno. */
int hil_port_init(const struct device *uart, struct k_sem *wake);

/* What carries the port, for the boot log: the UART's name, or "semihosting". */
const char *hil_port_name(const struct device *uart);

/* True if the driver has no interrupt API and the main loop must poll. */
bool hil_port_polled(void);

/* Up to len received bytes (0 if none are waiting); never blocks. */
size_t hil_port_read(uint8_t *buf, size_t len);

/*
 * The reader can do nothing before this many more bytes arrive (the rest of a frame): the port
 * may hold back waking it until then (the main loop's tick still reads what came, and a silence
 * mid-frame is reported by hil_port_take_silence).
 */
void hil_port_wake_after(size_t bytes);

/*
 * True once after the port saw the line fall silent for more than 100 ms while the main loop
 * could not tick (the semihosting port); the bytes read so far came before that silence.
 * Where the main loop ticks through silences (the UARTs) it is always false.
 */
bool hil_port_take_silence(void);

/* Forget received bytes not read yet (a soft reset, as a reboot would). */
void hil_port_discard_input(void);

/*
 * Write one unit (a frame or a console line) without interleaving it with any other writer.
 * Thread context only; blocks while the transmit buffer is full.
 */
void hil_port_write(const uint8_t *data, size_t len);

/* One byte from a context that cannot block (ISR, pre-kernel): straight to the hardware. */
void hil_port_write_byte_unlocked(uint8_t byte);

/* Wait until everything written has left the UART (before a reboot). */
void hil_port_flush(void);

/* Bytes dropped because the receive ring was full (should stay 0). */
uint32_t hil_port_rx_dropped(void);

#endif /* HIL_ZEPHYR_HIL_PORT_H_ */
