/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "hil_port.h"

#include <errno.h>

#include <zephyr/drivers/uart.h>
#include <zephyr/logging/log.h>
#include <zephyr/sys/ring_buffer.h>

LOG_MODULE_DECLARE(hil, CONFIG_HIL_LOG_LEVEL);

#define TX_WAIT K_MSEC(100)

RING_BUF_DECLARE(rx_ring, CONFIG_HIL_UART_RX_BUF_SIZE);
RING_BUF_DECLARE(tx_ring, CONFIG_HIL_UART_TX_BUF_SIZE);
K_MUTEX_DEFINE(tx_lock);
K_SEM_DEFINE(tx_space, 0, 1);

static const struct device *port_uart;
static struct k_sem *port_wake;
/*
 * Many of Zephyr 3.7's UART drivers count the bytes of one FIFO call in a uint8_t (STM32,
 * Stellaris, PL011, nRF UART, MCUX, Gecko, ...): asked for more than 255 they wrap, and overwrite
 * their own data or, where the FIFO never fills (QEMU's Stellaris UART), send the same bytes
 * forever. A real UART never has that many pending, an emulator does. So 255 at most, except
 * for the nRF UARTE, which counts in int and gets the whole room: in Renode 1.14 it has a race
 * between its receive thread and the CPU that this loop's exact timing keeps away
 * (docs/renode.md, "Known emulator problems").
 */
#define FIFO_CALL_MAX (IS_ENABLED(CONFIG_UART_NRFX_UARTE) ? UINT32_MAX : 255U)

static struct k_spinlock ring_lock;
static bool polled;
static uint32_t rx_dropped;

static void rx_from_isr(const struct device *uart)
{
	for (;;) {
		uint8_t *data;
		uint32_t room = ring_buf_put_claim(&rx_ring, &data, CONFIG_HIL_UART_RX_BUF_SIZE);

		if (room == 0U) {
			uint8_t junk[16];
			int n = uart_fifo_read(uart, junk, sizeof(junk));

			if (n <= 0) {
				break;
			}
			rx_dropped += (uint32_t)n;
			continue;
		}

		int n = uart_fifo_read(uart, data, MIN(room, FIFO_CALL_MAX));

		(void)ring_buf_put_finish(&rx_ring, n > 0 ? (uint32_t)n : 0U);
		if (n <= 0) {
			break;
		}
	}
	k_sem_give(port_wake);
}

static void tx_from_isr(const struct device *uart)
{
	uint8_t *data;
	uint32_t n = ring_buf_get_claim(&tx_ring, &data, CONFIG_HIL_UART_TX_BUF_SIZE);

	if (n == 0U) {
		uart_irq_tx_disable(uart);
	} else {
		int sent = uart_fifo_fill(uart, data, (int)MIN(n, FIFO_CALL_MAX));

		(void)ring_buf_get_finish(&tx_ring, sent > 0 ? (uint32_t)sent : 0U);
	}
	k_sem_give(&tx_space);
}

static void uart_isr(const struct device *uart, void *user_data)
{
	ARG_UNUSED(user_data);

	if (!uart_irq_update(uart)) {
		return;
	}
	if (uart_irq_rx_ready(uart)) {
		rx_from_isr(uart);
	}
	if (uart_irq_tx_ready(uart)) {
		k_spinlock_key_t key = k_spin_lock(&ring_lock);

		tx_from_isr(uart);
		k_spin_unlock(&ring_lock, key);
	}
}

/* CONFIG_HIL_CONSOLE_BAUD: the speed the lab file's baud key expects (0: keep devicetree's). */
static void set_baud(const struct device *uart)
{
	struct uart_config cfg;

	if (CONFIG_HIL_CONSOLE_BAUD == 0) {
		return;
	}
	int err = uart_config_get(uart, &cfg);

	if (err == 0) {
		cfg.baudrate = CONFIG_HIL_CONSOLE_BAUD;
		err = uart_configure(uart, &cfg);
	}
	if (err != 0) {
		LOG_WRN("UART %s refused %d baud (%d): keeping its devicetree speed", uart->name,
			CONFIG_HIL_CONSOLE_BAUD, err);
	}
}

int hil_port_init(const struct device *uart, struct k_sem *wake)
{
	if (!device_is_ready(uart)) {
		return -ENODEV;
	}
	set_baud(uart);
	port_uart = uart;
	port_wake = wake;

	int err = -ENOTSUP;

	if (IS_ENABLED(CONFIG_UART_INTERRUPT_DRIVEN)) {
		err = uart_irq_callback_user_data_set(uart, uart_isr, NULL);
	}
	if (err != 0) {
		LOG_INF("UART %s has no interrupt API (%d): polling it", uart->name, err);
		polled = true;
		return 0;
	}

	/* Drain whatever arrived before us, then take every byte from the interrupt. */
	uint8_t junk;

	while (uart_poll_in(uart, &junk) == 0) {
	}
	uart_irq_rx_enable(uart);
	return 0;
}

const char *hil_port_name(const struct device *uart)
{
	return uart->name;
}

bool hil_port_polled(void)
{
	return polled;
}

size_t hil_port_read(uint8_t *buf, size_t len)
{
	if (!polled) {
		return ring_buf_get(&rx_ring, buf, len);
	}

	size_t n = 0;

	while (n < len && uart_poll_in(port_uart, &buf[n]) == 0) {
		n++;
	}
	return n;
}

void hil_port_wake_after(size_t bytes)
{
	/* Each UART interrupt wakes the reader: a UART hands over a few bytes at a time. */
	ARG_UNUSED(bytes);
}

bool hil_port_take_silence(void)
{
	return false; /* the main loop's tick sees every silence */
}

void hil_port_discard_input(void)
{
	uint8_t junk[64];

	while (hil_port_read(junk, sizeof(junk)) > 0U) {
	}
}

void hil_port_write_byte_unlocked(uint8_t byte)
{
	uart_poll_out(port_uart, byte);
}

void hil_port_write(const uint8_t *data, size_t len)
{
	(void)k_mutex_lock(&tx_lock, K_FOREVER);
	if (polled) {
		for (size_t i = 0; i < len; i++) {
			uart_poll_out(port_uart, data[i]);
		}
		(void)k_mutex_unlock(&tx_lock);
		return;
	}
	while (len > 0U) {
		k_spinlock_key_t key = k_spin_lock(&ring_lock);
		uint32_t queued = ring_buf_put(&tx_ring, data, len);

		k_spin_unlock(&ring_lock, key);
		data += queued;
		len -= queued;
		uart_irq_tx_enable(port_uart);
		if (len > 0U) {
			/* Full: the transmit interrupt makes room. */
			(void)k_sem_take(&tx_space, TX_WAIT);
		}
	}
	(void)k_mutex_unlock(&tx_lock);
}

void hil_port_flush(void)
{
	if (!polled) {
		while (!ring_buf_is_empty(&tx_ring)) {
			k_sleep(K_MSEC(1));
		}
	}
	/* The last bytes leave the shift register and FIFO: 16 bytes at 115200 take 1.4 ms. */
	k_busy_wait(3000);
}

uint32_t hil_port_rx_dropped(void)
{
	return rx_dropped;
}
