/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The host tests' harness (core_check.c): CHECK, hex, items and replies in the vector notation
 * of tests/unit/test_protocol.py, and the device under test, the core on FakeInferenceEngine
 * writing into a RecordingPort. core_test.c runs the vectors, core_unit_tests.c the rest.
 */

#ifndef HIL_TESTS_HOST_CORE_CHECK_H_
#define HIL_TESTS_HOST_CORE_CHECK_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake_inference_engine.h"
#include "hil_device.h"
#include "hil_frame.h"
#include "host_port.h"

#define MAX_BYTES (64U * 1024U)
#define MAX_TEXT  (4U * MAX_BYTES)

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		checks++;                                                                          \
		if (!(cond)) {                                                                     \
			fail(__VA_ARGS__);                                                         \
		}                                                                                  \
	} while (0)

struct text {
	char buf[MAX_TEXT];
	size_t len;
};

/* Items in vector notation; adjacent text items are merged (as one feed() yields them). */
struct items {
	struct text out;
	uint8_t pending_text[MAX_BYTES];
	size_t pending_len;
	size_t count;
};

extern int failures;
extern int checks;

void fail(const char *format, ...);

/* Hex text to bytes; -1 if it is not hex or does not fit cap. */
long unhex(const char *text, uint8_t *out, size_t cap);

void text_add(struct text *t, const char *format, ...);
void text_hex(struct text *t, const uint8_t *data, size_t len);

void items_reset(struct items *it);
const char *items_text(struct items *it);
bool record_item(void *user, const struct hil_item *item);
/* Device replies in vector notation: ERR:<code>:<seq> or F:<type>:<seq>:<hex>; text skipped. */
bool record_reply(void *user, const struct hil_item *item);

extern struct hil_decoder decoder;
extern struct items items;
extern uint8_t bytes[MAX_BYTES];
extern uint8_t frame[MAX_BYTES];

extern struct fake_inference_engine fake;
extern struct recording_port port;
extern struct hil_device device;

/* A fresh device, booted, its boot lines cleared from the port. */
void device_setup(void);
/* What the device wrote since, in vector notation. */
const char *device_replies(void);

/* A frame of type and seq carrying the text payload, into out (MAX_BYTES). */
size_t frame_of(uint8_t *out, uint8_t type, uint8_t seq, const char *payload);

/* core_unit_tests.c */
int run_unit_tests(void);

#endif /* HIL_TESTS_HOST_CORE_CHECK_H_ */
