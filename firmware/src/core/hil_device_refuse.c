/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The dispatcher's refusals, worded as the twin words them, and the model lookups they need.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hil_device.h"
#include "hil_device_internal.h"
#include "hil_wire.h"

enum hil_error_code hil_dev_refuse(struct hil_device *dev, enum hil_error_code code,
				   const char *format, ...)
{
	va_list args;

	va_start(args, format);
	int n = vsnprintf(dev->message, sizeof(dev->message), format, args);

	va_end(args);
	if (n < 0) {
		dev->message[0] = '\0';
	}
	return code;
}

enum hil_error_code hil_dev_malformed(struct hil_device *dev, uint8_t type,
				      const struct hil_reader *r)
{
	const char *name = hil_msg_type_name(type);

	switch (r->error) {
	case HIL_READ_SHORT:
		return hil_dev_refuse(dev, HIL_ERR_MALFORMED,
				      "%s: payload ends at byte %u, needed %u", name,
				      (unsigned int)r->len, (unsigned int)r->needed);
	case HIL_READ_NOT_UTF8:
		return hil_dev_refuse(dev, HIL_ERR_MALFORMED, "%s: string is not UTF-8", name);
	case HIL_READ_NUL:
		return hil_dev_refuse(dev, HIL_ERR_MALFORMED, "%s: string contains a NUL byte",
				      name);
	case HIL_READ_TRAILING:
		return hil_dev_refuse(dev, HIL_ERR_MALFORMED, "%s: %u unexpected trailing bytes",
				      name, (unsigned int)(r->len - r->pos));
	default:
		return hil_dev_refuse(dev, HIL_ERR_MALFORMED, "%s: malformed payload", name);
	}
}

enum hil_error_code hil_dev_no_payload(struct hil_device *dev, uint8_t type, size_t len)
{
	if (len == 0U) {
		return HIL_ERR_NONE;
	}

	const char *name = hil_msg_type_name(type);

	return hil_dev_refuse(dev, HIL_ERR_MALFORMED, "%s: %s takes no payload", name, name);
}

size_t hil_dev_model_count(const struct hil_device *dev)
{
	size_t n = hil_dev_api(dev)->model_count(hil_dev_ectx(dev));

	return n > 255U ? 255U : n;
}

size_t hil_dev_find_model(const struct hil_device *dev, struct hil_str name)
{
	for (size_t i = 0; i < hil_dev_model_count(dev); i++) {
		const char *candidate = hil_dev_api(dev)->model(hil_dev_ectx(dev), i)->name;

		if (strlen(candidate) == name.len && memcmp(candidate, name.data, name.len) == 0) {
			return i;
		}
	}
	return HIL_MODEL_NONE;
}

enum hil_error_code hil_dev_unknown_model(struct hil_device *dev, struct hil_str name)
{
	int n = snprintf(dev->message, sizeof(dev->message),
			 "unknown model '%.*s': this device has ", (int)name.len, name.data);

	for (size_t i = 0;
	     i < hil_dev_model_count(dev) && n >= 0 && (size_t)n < sizeof(dev->message); i++) {
		int more = snprintf(&dev->message[n], sizeof(dev->message) - (size_t)n, "%s%s",
				    i > 0U ? ", " : "",
				    hil_dev_api(dev)->model(hil_dev_ectx(dev), i)->name);

		n = more < 0 ? -1 : n + more;
	}
	return HIL_ERR_UNKNOWN_MODEL;
}

void hil_dev_describe(char *buf, size_t cap, const struct hil_tensor_spec *spec)
{
	const char *type = hil_tensor_type_name(spec->type);
	int n = snprintf(buf, cap, "%s[", type != NULL ? type : "unknown");

	for (unsigned int i = 0; i < spec->ndims && n >= 0 && (size_t)n < cap; i++) {
		int more = snprintf(&buf[n], cap - (size_t)n, "%s%u", i > 0U ? "," : "",
				    (unsigned int)spec->dims[i]);

		n = more < 0 ? -1 : n + more;
	}
	if (n >= 0 && (size_t)n < cap) {
		(void)snprintf(&buf[n], cap - (size_t)n, "]");
	}
}

enum hil_error_code hil_dev_not_ready(struct hil_device *dev, size_t index)
{
	const char *why = hil_dev_api(dev)->last_error(hil_dev_ectx(dev), index);

	return hil_dev_refuse(dev, HIL_ERR_INVOKE_FAILED, "model %s is not allocated: %s",
			      hil_dev_api(dev)->model(hil_dev_ectx(dev), index)->name, why);
}
