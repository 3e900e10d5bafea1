/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 */

#include "hil_proto.h"

#include <stddef.h>

const char *hil_msg_type_name(unsigned int type)
{
	switch (type) {
	case HIL_MSG_INFO:
		return "INFO";
	case HIL_MSG_MODEL_INFO:
		return "MODEL_INFO";
	case HIL_MSG_INFER:
		return "INFER";
	case HIL_MSG_PROFILE:
		return "PROFILE";
	case HIL_MSG_MEMORY:
		return "MEMORY";
	case HIL_MSG_RESET:
		return "RESET";
	case HIL_MSG_ECHO:
		return "ECHO";
	case HIL_MSG_STREAM_START:
		return "STREAM_START";
	case HIL_MSG_FEED:
		return "FEED";
	case HIL_MSG_STREAM_STOP:
		return "STREAM_STOP";
	case HIL_MSG_ERROR:
		return "ERROR";
	case HIL_MSG_EVENT:
		return "EVENT";
	default:
		return "UNKNOWN";
	}
}

const char *hil_tensor_type_name(unsigned int type)
{
	switch (type) {
	case HIL_TYPE_FLOAT32:
		return "float32";
	case HIL_TYPE_INT32:
		return "int32";
	case HIL_TYPE_UINT8:
		return "uint8";
	case HIL_TYPE_INT64:
		return "int64";
	case HIL_TYPE_INT16:
		return "int16";
	case HIL_TYPE_INT8:
		return "int8";
	default:
		return NULL;
	}
}

unsigned int hil_tensor_type_size(unsigned int type)
{
	switch (type) {
	case HIL_TYPE_FLOAT32:
	case HIL_TYPE_INT32:
		return 4U;
	case HIL_TYPE_UINT8:
	case HIL_TYPE_INT8:
		return 1U;
	case HIL_TYPE_INT64:
		return 8U;
	case HIL_TYPE_INT16:
		return 2U;
	default:
		return 0U;
	}
}
