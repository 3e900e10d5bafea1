/*
 * The emulated bench's test image: a bare-metal Cortex-M3 program for QEMU's mps2-an385.
 *
 * On reset it prints two lines on CMSDK UART0 and then sleeps:
 *
 *   HIL BOOT fw=bench-image proto=2 board=mps2_an385 build=<BUILD_ID>
 *   HIL READY
 *
 * BUILD_ID is a string of 16 lowercase hex digits given when compiling
 * (-DBUILD_ID="0123456789abcdef"). The image also holds the bytes "HIL_BUILD_ID=<BUILD_ID>\0",
 * which the host reads from an image file before flashing it. With -DSILENT it prints nothing:
 * a board that stays silent after a flash.
 *
 * The image keeps no globals (no .data, no .bss: the linker script checks), so reset needs no
 * RAM initialisation; the stack is the only thing in RAM.
 */

#include <stdint.h>

#ifndef BUILD_ID
#error "compile with -DBUILD_ID=\"<16 lowercase hex digits>\""
#endif

#ifdef SILENT
#define BENCH_SILENT 1
#else
#define BENCH_SILENT 0
#endif

_Static_assert(sizeof(BUILD_ID) == 17, "BUILD_ID must be 16 hex digits");

/* CMSDK APB UART, as QEMU models it in hw/char/cmsdk-apb-uart.c. */
#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define UART_STATE_TXFULL 0x1u
#define UART_CTRL_TX_EN 0x1u
/* 25 MHz APB clock / 115200 baud. QEMU logs a guest error for a divider below 16 and otherwise
 * ignores the rate (cmsdk-apb-uart.c uart_baudrate_ok()).
 */
#define UART_BAUDDIV_115200 217u

#define BUILD_ID_KEY "HIL_BUILD_ID="

/* Kept whole in the image (with its terminating NUL) for the host to find. */
__attribute__((used)) const char hil_build_id[] = BUILD_ID_KEY BUILD_ID;

extern uint32_t __stack_top;

void reset_handler(void);
void fault_handler(void);

__attribute__((section(".vectors"), used)) const void *const vector_table[] = {
	&__stack_top,  /* initial SP */
	reset_handler, /* reset */
	fault_handler, /* NMI */
	fault_handler, /* HardFault */
	fault_handler, /* MemManage */
	fault_handler, /* BusFault */
	fault_handler, /* UsageFault */
};

static void uart_init(void)
{
	UART_BAUDDIV = UART_BAUDDIV_115200;
	UART_CTRL = UART_CTRL_TX_EN;
}

static void uart_puts(const char *text)
{
	for (; *text != '\0'; text++) {
		while ((UART_STATE & UART_STATE_TXFULL) != 0u) {
		}
		UART_DATA = (uint8_t)*text;
	}
}

static void sleep_forever(void)
{
	for (;;) {
		__asm__ volatile("wfi");
	}
}

void reset_handler(void)
{
	if (!BENCH_SILENT) {
		uart_init();
		uart_puts("HIL BOOT fw=bench-image proto=2 board=mps2_an385 build=");
		uart_puts(hil_build_id + sizeof(BUILD_ID_KEY) - 1);
		uart_puts("\r\nHIL READY\r\n");
	}
	sleep_forever();
}

void fault_handler(void)
{
	sleep_forever();
}
