/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The firmware's build id: 16 lowercase hex digits of a SHA-256 over the build's inputs,
 * generated at build time by cmake/hil_build_id.cmake into <build>/hil_generated/hil_build_id.c.
 *
 * The image holds it as "HIL_BUILD_ID=<16 hex digits>\0" so a host can read the id of an image
 * file before flashing it (hil/protocol.py find_build_id). The INFO handler sends the digits
 * from that very array, which keeps it referenced and so in the image after --gc-sections.
 */

#ifndef HIL_ZEPHYR_HIL_BUILD_ID_H_
#define HIL_ZEPHYR_HIL_BUILD_ID_H_

#define HIL_BUILD_ID_MARKER "HIL_BUILD_ID="

extern const char hil_build_id_marker[];

/* The 16 hex digits after the marker (NUL-terminated). */
static inline const char *hil_build_id(void)
{
	return &hil_build_id_marker[sizeof(HIL_BUILD_ID_MARKER) - 1U];
}

#endif /* HIL_ZEPHYR_HIL_BUILD_ID_H_ */
