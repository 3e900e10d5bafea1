/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * What the dispatcher's files share: hil_dispatch.c takes the requests, hil_device_stream.c the
 * streaming ones, hil_device_refuse.c words the refusals. Not for the glue: it talks to struct
 * hil_device through hil_device.h only.
 */

#ifndef HIL_CORE_HIL_DEVICE_INTERNAL_H_
#define HIL_CORE_HIL_DEVICE_INTERNAL_H_

#include <stddef.h>
#include <stdint.h>

#include "hil_device.h"
#include "hil_wire.h"

#define HIL_MODEL_NONE ((size_t)-1)

static inline const struct hil_engine_api *hil_dev_api(const struct hil_device *dev)
{
	return dev->cfg.engine.api;
}

static inline void *hil_dev_ectx(const struct hil_device *dev)
{
	return dev->cfg.engine.ctx;
}

static inline void hil_dev_write(struct hil_device *dev, const uint8_t *data, size_t len)
{
	dev->cfg.platform.api->write(dev->cfg.platform.ctx, data, len);
}

/* printf into dev->message; returns code so handlers can `return hil_dev_refuse(...)`. */
enum hil_error_code hil_dev_refuse(struct hil_device *dev, enum hil_error_code code,
				   const char *format, ...);

/* The twin's "<TYPE>: <why>" message for a payload that does not decode. */
enum hil_error_code hil_dev_malformed(struct hil_device *dev, uint8_t type,
				      const struct hil_reader *r);

/* HIL_ERR_NONE for an empty payload, else the twin's "takes no payload" refusal. */
enum hil_error_code hil_dev_no_payload(struct hil_device *dev, uint8_t type, size_t len);

/* The models the engine serves, at most 255 (the protocol's count is a byte). */
size_t hil_dev_model_count(const struct hil_device *dev);

/* The model's index, or HIL_MODEL_NONE. */
size_t hil_dev_find_model(const struct hil_device *dev, struct hil_str name);

/* The refusal naming the models this device has. */
enum hil_error_code hil_dev_unknown_model(struct hil_device *dev, struct hil_str name);

/* The refusal for a model whose arena could not be allocated, with the engine's reason. */
enum hil_error_code hil_dev_not_ready(struct hil_device *dev, size_t index);

/* "int8[1,128,3]" as TensorSpec.describe() prints it. */
void hil_dev_describe(char *buf, size_t cap, const struct hil_tensor_spec *spec);

/* Streaming (hil_device_stream.c). */
void hil_dev_stop_stream(struct hil_device *dev);
enum hil_error_code hil_dev_on_stream_start(struct hil_device *dev, const uint8_t *payload,
					    size_t len, struct hil_writer *w);
enum hil_error_code hil_dev_on_feed(struct hil_device *dev, const uint8_t *payload, size_t len,
				    struct hil_writer *w);
enum hil_error_code hil_dev_on_stream_stop(struct hil_device *dev, const uint8_t *payload,
					   size_t len, struct hil_writer *w);

#endif /* HIL_CORE_HIL_DEVICE_INTERNAL_H_ */
