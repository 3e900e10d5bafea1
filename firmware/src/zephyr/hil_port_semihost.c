/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The protocol port over Arm semihosting, for QEMU (CONFIG_HIL_PORT_SEMIHOST, firmware/qemu.conf):
 * frames and console text go through QEMU's semihosting console, a chardev the host connects to.
 * QEMU's CMSDK UART model takes one byte per turn of QEMU's main loop (50-75 us each on a 2-core
 * host, whatever -icount says), so a 1,960-byte keyword-spotting request cost ~100 ms of wall
 * time; the semihosting console queues up to 1 KiB per turn (QEMU 7.2 semihosting/console.c).
 *
 * SYS_READC halts the CPU while that queue is empty, inside the call, until a byte arrives. The
 * receive thread therefore runs below every other thread, in place of the idle thread, and it
 * waits with interrupts masked (see semihost_readc): timers wait with it, so it measures the
 * line's silences itself, in host time, for the protocol's 100 ms stale-frame rule. Writes are
 * synchronous (SYS_WRITEC per byte).
 */

#include "hil_port.h"

#include <zephyr/arch/common/semihost.h>
#include <zephyr/irq.h>
#include <zephyr/sys/atomic.h>
#include <zephyr/sys/ring_buffer.h>

#define RX_THREAD_STACK 512
#define STALE_NS        (100ULL * 1000ULL * 1000ULL) /* the protocol's stale-frame silence */

RING_BUF_DECLARE(rx_ring, CONFIG_HIL_UART_RX_BUF_SIZE);
K_MUTEX_DEFINE(tx_lock);

static struct k_sem *port_wake;
static uint32_t rx_dropped;
static atomic_t wake_after = ATOMIC_INIT(1);
static atomic_t silence;

/*
 * SYS_READC, taking the byte from where QEMU stores it, one byte below the stack pointer: QEMU 7.2
 * (Debian 12) returns in r0 the byte that was there before and only then stores the new one
 * (semihosting/syscalls.c console_read: complete() before unlock_user(); fixed upstream later,
 * where r0 and memory agree). Interrupts stay masked until the byte is read, as an exception
 * entry would push its frame over it; QEMU still wakes on a byte, and interrupts that came
 * meanwhile are taken right after.
 */
static uint8_t semihost_readc(void)
{
	register uint32_t op __asm__("r0") = SEMIHOST_READC;
	register uint32_t args __asm__("r1") = 0U;
	uint32_t byte;
	unsigned int key = irq_lock();

	__asm__ volatile("bkpt 0xab\n\t"
			 "ldrb %[byte], [sp, #-1]"
			 : [byte] "=r"(byte), "+r"(op)
			 : "r"(args)
			 : "memory");
	irq_unlock(key);
	return (uint8_t)byte;
}

/* Host time since QEMU started, in ns (SYS_ELAPSED; QEMU's tick frequency is 1 GHz). */
static uint64_t semihost_elapsed_ns(void)
{
	uint32_t ticks[2] = {0U, 0U};

	(void)semihost_exec(SEMIHOST_ELAPSED, ticks);
	return ((uint64_t)ticks[1] << 32) | ticks[0];
}

static void rx_thread(void *a, void *b, void *c)
{
	ARG_UNUSED(a);
	ARG_UNUSED(b);
	ARG_UNUSED(c);

	uint64_t last_ns = semihost_elapsed_ns();

	for (;;) {
		uint8_t byte = semihost_readc();
		uint64_t now_ns = semihost_elapsed_ns();

		/*
		 * While the line is silent this thread waits with interrupts masked, so the main
		 * loop cannot tick and abandon a partial frame after 100 ms: tell it now, before
		 * the byte that ended the silence (it runs at once, being above this thread).
		 */
		if (now_ns - last_ns > STALE_NS) {
			atomic_set(&silence, 1);
			k_sem_give(port_wake);
		}
		last_ns = now_ns;

		if (ring_buf_put(&rx_ring, &byte, 1) == 0U) {
			rx_dropped++;
		}
		/* One wake-up per frame, not per byte: each costs two context switches. */
		if (ring_buf_size_get(&rx_ring) >= (uint32_t)atomic_get(&wake_after) ||
		    ring_buf_space_get(&rx_ring) == 0U) {
			k_sem_give(port_wake);
		}
	}
}

K_THREAD_DEFINE(hil_port_rx_tid, RX_THREAD_STACK, rx_thread, NULL, NULL, NULL,
		K_LOWEST_APPLICATION_THREAD_PRIO, 0, K_TICKS_FOREVER);

int hil_port_init(const struct device *uart, struct k_sem *wake)
{
	ARG_UNUSED(uart); /* the UART keeps Zephyr's console: the boot banner and nothing else */
	port_wake = wake;
	k_thread_start(hil_port_rx_tid);
	return 0;
}

const char *hil_port_name(const struct device *uart)
{
	ARG_UNUSED(uart);
	return "semihosting";
}

bool hil_port_polled(void)
{
	return false;
}

size_t hil_port_read(uint8_t *buf, size_t len)
{
	/* Only the main thread reads and only the receive thread writes: the ring needs no lock. */
	return ring_buf_get(&rx_ring, buf, len);
}

void hil_port_wake_after(size_t bytes)
{
	atomic_set(&wake_after, (atomic_val_t)MAX(bytes, 1U));
}

bool hil_port_take_silence(void)
{
	return atomic_cas(&silence, 1, 0);
}

void hil_port_discard_input(void)
{
	uint8_t junk[64];

	while (hil_port_read(junk, sizeof(junk)) > 0U) {
	}
}

void hil_port_write_byte_unlocked(uint8_t byte)
{
	semihost_poll_out((char)byte);
}

void hil_port_write(const uint8_t *data, size_t len)
{
	(void)k_mutex_lock(&tx_lock, K_FOREVER);
	for (size_t i = 0; i < len; i++) {
		semihost_poll_out((char)data[i]);
	}
	(void)k_mutex_unlock(&tx_lock);
}

void hil_port_flush(void)
{
	/* Every write has reached QEMU's chardev before it returned. */
}

uint32_t hil_port_rx_dropped(void)
{
	return rx_dropped;
}
