/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Host tests of the firmware core (no Zephyr, no TFLM):
 *
 *   core_test docs/protocol-vectors.txt    every encode/decode/reply vector, then unit tests
 *   core_test --decode-script              a decoder driven by stdin, for differential tests:
 *                                            "F <hex>" feed, "A" abandon the partial frame,
 *                                            "N" a new decoder; prints the items of each line
 *
 * Vector semantics are those of tests/unit/test_protocol.py. The reply vectors run on
 * FakeInferenceEngine, which only the weight-independent replies of the vectors can use.
 */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_check.h"
#include "hil_wire.h"

static void run_vector(const char *kind, char **fields, size_t nfields, const char *expected)
{
	if (strcmp(kind, "encode") == 0 && nfields == 4U) {
		long type = strtol(fields[0], NULL, 16);
		long seq = strtol(fields[1], NULL, 10);
		long len = unhex(fields[2], bytes, sizeof(bytes));
		size_t n = hil_frame_encode(frame, sizeof(frame), (uint8_t)type, (uint8_t)seq,
					    bytes, len < 0 ? 0U : (size_t)len);

		items_reset(&items);
		text_hex(&items.out, frame, n);
		CHECK(len >= 0 && strcmp(items.out.buf, fields[3]) == 0,
		      "encode %s %s %s: got %s, want %s", fields[0], fields[1], fields[2],
		      items.out.buf, fields[3]);
	} else if (strcmp(kind, "decode") == 0 && nfields == 1U) {
		long len = unhex(fields[0], bytes, sizeof(bytes));

		items_reset(&items);
		hil_decoder_init(&decoder, HIL_MAX_PAYLOAD_BYTES);
		(void)hil_decoder_feed(&decoder, bytes, len < 0 ? 0U : (size_t)len, record_item,
				       &items);
		CHECK(strcmp(items_text(&items), expected) == 0, "decode %s: got %s, want %s",
		      fields[0], items_text(&items), expected);

		/* The same stream a byte at a time gives the same items. */
		items_reset(&items);
		hil_decoder_init(&decoder, HIL_MAX_PAYLOAD_BYTES);
		for (long i = 0; i < len; i++) {
			(void)hil_decoder_feed(&decoder, &bytes[i], 1, record_item, &items);
		}
		CHECK(strcmp(items_text(&items), expected) == 0,
		      "decode %s byte by byte: got %s, want %s", fields[0], items_text(&items),
		      expected);
	} else if (strcmp(kind, "reply") == 0 && nfields == 1U) {
		long len = unhex(fields[0], bytes, sizeof(bytes));

		recording_port_clear(&port);
		hil_decoder_init(&device.decoder, HIL_MAX_PAYLOAD_BYTES); /* a fresh FrameDecoder */
		hil_device_rx(&device, bytes, len < 0 ? 0U : (size_t)len, 0);
		if (hil_device_reset_pending(&device)) {
			(void)hil_device_boot(&device);
		}
		CHECK(strcmp(device_replies(), expected) == 0, "reply %s: got %s, want %s",
		      fields[0], device_replies(), expected);
	} else {
		fail("unreadable vector line: %s", kind);
	}
}

static int run_vectors(const char *path)
{
	FILE *f = fopen(path, "r");
	static char line[4 * MAX_BYTES];
	int vectors = 0;

	if (f == NULL) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	device_setup();
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#') {
			continue;
		}

		char *arrow = strstr(line, " => ");
		const char *expected = "";

		if (arrow != NULL) {
			*arrow = '\0';
			expected = arrow + 4;
		}

		char *fields[8];
		size_t nfields = 0;
		char *save = NULL;
		char *kind = strtok_r(line, " ", &save);

		for (char *tok = strtok_r(NULL, " ", &save); tok != NULL && nfields < 8U;
		     tok = strtok_r(NULL, " ", &save)) {
			fields[nfields++] = tok;
		}
		if (kind != NULL) {
			run_vector(kind, fields, nfields, expected);
			vectors++;
		}
	}
	fclose(f);
	printf("%d protocol vectors checked\n", vectors);
	return vectors;
}

/* --- differential decoding ------------------------------------------------------------------ */

static int decode_script(void)
{
	static char line[4 * MAX_BYTES];

	hil_decoder_init(&decoder, HIL_MAX_PAYLOAD_BYTES);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		items_reset(&items);
		if (line[0] == 'N') {
			hil_decoder_init(&decoder, HIL_MAX_PAYLOAD_BYTES);
		} else if (line[0] == 'A') {
			(void)hil_decoder_abandon_partial(&decoder, record_item, &items);
		} else if (line[0] == 'F' && line[1] == ' ') {
			long len = unhex(&line[2], bytes, sizeof(bytes));

			if (len < 0) {
				fprintf(stderr, "not hex: %s\n", &line[2]);
				return 2;
			}
			(void)hil_decoder_feed(&decoder, bytes, (size_t)len, record_item, &items);
		} else {
			fprintf(stderr, "unknown script line: %s\n", line);
			return 2;
		}
		printf("%s %s\n", items_text(&items), hil_decoder_partial(&decoder) ? "P" : "-");
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--decode-script") == 0) {
		return decode_script();
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s docs/protocol-vectors.txt | --decode-script\n", argv[0]);
		return 2;
	}
	if (run_vectors(argv[1]) <= 0) {
		fprintf(stderr, "no vectors read from %s\n", argv[1]);
		return 1;
	}
	run_unit_tests();
	printf("%d checks, %d failed\n", checks, failures);
	if (failures != 0) {
		printf("~~~SOME TESTS FAILED~~~\n");
		return 1;
	}
	printf("~~~ALL TESTS PASSED~~~\n");
	return 0;
}
