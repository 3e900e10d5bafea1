/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Constants of the tinyml-hil wire protocol, version 2 (docs/protocol.md).
 * hil/protocol.py is the executable specification; docs/protocol-vectors.txt pins the bytes.
 */

#ifndef HIL_CORE_HIL_PROTO_H_
#define HIL_CORE_HIL_PROTO_H_

#ifdef __cplusplus
extern "C" {
#endif

#define HIL_PROTOCOL_VERSION 2U

#define HIL_SYNC0                0xA5U
#define HIL_SYNC1                0x5AU
#define HIL_HEADER_BYTES         6U /* sync(2) type(1) seq(1) length(2, little-endian) */
#define HIL_CRC_BYTES            4U
#define HIL_FRAME_OVERHEAD_BYTES (HIL_HEADER_BYTES + HIL_CRC_BYTES)
#define HIL_MAX_PAYLOAD_BYTES    4096U
#define HIL_MAX_FRAME_BYTES      (HIL_MAX_PAYLOAD_BYTES + HIL_FRAME_OVERHEAD_BYTES)
#define HIL_REPLY_FLAG           0x80U
#define HIL_UNSOLICITED_SEQ      0U
/* A partial frame is abandoned after this much line silence (STALE_FRAME_S). */
#define HIL_STALE_FRAME_MS       100U

#define HIL_STR_MAX_BYTES 255U
#define HIL_MAX_DIMS      6U

#define HIL_SOURCE_FED    0U
#define HIL_SOURCE_SENSOR 1U
#define HIL_NO_IDLE_CLASS 0xFFU

#define HIL_UNKNOWN_U32 0xFFFFFFFFU

enum hil_msg_type {
	HIL_MSG_INFO = 0x01,
	HIL_MSG_MODEL_INFO = 0x02,
	HIL_MSG_INFER = 0x03,
	HIL_MSG_PROFILE = 0x04,
	HIL_MSG_MEMORY = 0x05,
	HIL_MSG_RESET = 0x06,
	HIL_MSG_ECHO = 0x07,
	HIL_MSG_STREAM_START = 0x08,
	HIL_MSG_FEED = 0x09,
	HIL_MSG_STREAM_STOP = 0x0A,
	HIL_MSG_ERROR = 0x7F,
	HIL_MSG_EVENT = 0xC0,
};

enum hil_error_code {
	HIL_ERR_NONE = 0,
	HIL_ERR_BAD_CRC = 1,
	HIL_ERR_TOO_LARGE = 2,
	HIL_ERR_UNKNOWN_TYPE = 3,
	HIL_ERR_MALFORMED = 4,
	HIL_ERR_UNKNOWN_MODEL = 5,
	HIL_ERR_BAD_DTYPE = 6,
	HIL_ERR_BAD_SIZE = 7,
	HIL_ERR_INVOKE_FAILED = 8,
	HIL_ERR_UNSUPPORTED = 9,
};

/* TfLiteType codes, so the firmware can send tensor->type unchanged. */
enum hil_tensor_type {
	HIL_TYPE_FLOAT32 = 1,
	HIL_TYPE_INT32 = 2,
	HIL_TYPE_UINT8 = 3,
	HIL_TYPE_INT64 = 4,
	HIL_TYPE_INT16 = 7,
	HIL_TYPE_INT8 = 9,
};

/* Name of a request type as hil.protocol.type_name() spells it, e.g. "MODEL_INFO". */
const char *hil_msg_type_name(unsigned int type);

/* Name of a tensor type as numpy spells it ("int8"), or NULL for a code outside the table. */
const char *hil_tensor_type_name(unsigned int type);

/* Bytes of one element of a tensor type, or 0 for a code outside the table. */
unsigned int hil_tensor_type_size(unsigned int type);

#ifdef __cplusplus
}
#endif

#endif /* HIL_CORE_HIL_PROTO_H_ */
