/*
 * Copyright (c) 2026 tinyml-hil contributors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Minimal sensor driver for the accelerometer of an ST LSM9DS1 on I2C: +-2 g at 119 Hz,
 * SENSOR_CHAN_ACCEL_X/Y/Z/XYZ in m/s^2. Enough for sensor streaming on the Arduino Nano 33 BLE
 * (rev1), for which Zephyr 3.7 has no driver. Registers: ST DocID025715 (LSM9DS1 datasheet).
 */

#define DT_DRV_COMPAT hil_lsm9ds1_accel

#include <errno.h>

#include <zephyr/device.h>
#include <zephyr/drivers/i2c.h>
#include <zephyr/drivers/sensor.h>
#include <zephyr/kernel.h>
#include <zephyr/sys/byteorder.h>

#define REG_WHO_AM_I     0x0F
#define WHO_AM_I_AG      0x68
#define REG_CTRL_REG6_XL 0x20
#define REG_CTRL_REG8    0x22
#define REG_OUT_X_L_XL   0x28

#define CTRL_REG6_XL_119HZ_2G 0x60 /* ODR_XL = 119 Hz, FS_XL = +-2 g */
#define CTRL_REG8_IF_ADD_INC  0x04 /* register address auto-increment (the default) */
#define MICRO_G_PER_LSB       61   /* +-2 g: 0.061 mg per LSB */
#define PROBE_TRIES           5

struct lsm9ds1_accel_config {
	struct i2c_dt_spec i2c;
};

struct lsm9ds1_accel_data {
	int16_t raw[3];
};

static int lsm9ds1_accel_sample_fetch(const struct device *dev, enum sensor_channel chan)
{
	const struct lsm9ds1_accel_config *cfg = dev->config;
	struct lsm9ds1_accel_data *data = dev->data;
	uint8_t buf[6];

	if (chan != SENSOR_CHAN_ALL && chan != SENSOR_CHAN_ACCEL_XYZ) {
		return -ENOTSUP;
	}

	int err = i2c_burst_read_dt(&cfg->i2c, REG_OUT_X_L_XL, buf, sizeof(buf));

	if (err != 0) {
		return err;
	}
	for (int i = 0; i < 3; i++) {
		data->raw[i] = (int16_t)sys_get_le16(&buf[2 * i]);
	}
	return 0;
}

static void raw_to_ms2(int16_t raw, struct sensor_value *val)
{
	int64_t micro_g = (int64_t)raw * MICRO_G_PER_LSB;

	/* SENSOR_G is 1 g in micro-m/s^2 */
	(void)sensor_value_from_micro(val, micro_g * SENSOR_G / 1000000);
}

static int lsm9ds1_accel_channel_get(const struct device *dev, enum sensor_channel chan,
				     struct sensor_value *val)
{
	const struct lsm9ds1_accel_data *data = dev->data;

	switch (chan) {
	case SENSOR_CHAN_ACCEL_X:
	case SENSOR_CHAN_ACCEL_Y:
	case SENSOR_CHAN_ACCEL_Z:
		raw_to_ms2(data->raw[chan - SENSOR_CHAN_ACCEL_X], val);
		return 0;
	case SENSOR_CHAN_ACCEL_XYZ:
		for (int i = 0; i < 3; i++) {
			raw_to_ms2(data->raw[i], &val[i]);
		}
		return 0;
	default:
		return -ENOTSUP;
	}
}

static const struct sensor_driver_api lsm9ds1_accel_api = {
	.sample_fetch = lsm9ds1_accel_sample_fetch,
	.channel_get = lsm9ds1_accel_channel_get,
};

static int lsm9ds1_accel_init(const struct device *dev)
{
	const struct lsm9ds1_accel_config *cfg = dev->config;
	uint8_t id = 0;
	int err = -EIO;

	if (!i2c_is_ready_dt(&cfg->i2c)) {
		return -ENODEV;
	}
	/* The IMU's supply (vdd_env on the Nano 33 BLE) may still be ramping up. */
	for (int i = 0; i < PROBE_TRIES; i++) {
		err = i2c_reg_read_byte_dt(&cfg->i2c, REG_WHO_AM_I, &id);
		if (err == 0) {
			break;
		}
		k_msleep(2);
	}
	if (err != 0) {
		return err;
	}
	if (id != WHO_AM_I_AG) {
		return -ENODEV;
	}
	err = i2c_reg_write_byte_dt(&cfg->i2c, REG_CTRL_REG8, CTRL_REG8_IF_ADD_INC);
	if (err != 0) {
		return err;
	}
	return i2c_reg_write_byte_dt(&cfg->i2c, REG_CTRL_REG6_XL, CTRL_REG6_XL_119HZ_2G);
}

#define LSM9DS1_ACCEL_DEFINE(inst)                                                                 \
	static struct lsm9ds1_accel_data lsm9ds1_accel_data_##inst;                                \
	static const struct lsm9ds1_accel_config lsm9ds1_accel_config_##inst = {                   \
		.i2c = I2C_DT_SPEC_INST_GET(inst),                                                 \
	};                                                                                         \
	SENSOR_DEVICE_DT_INST_DEFINE(inst, lsm9ds1_accel_init, NULL, &lsm9ds1_accel_data_##inst,   \
				     &lsm9ds1_accel_config_##inst, POST_KERNEL,                    \
				     CONFIG_SENSOR_INIT_PRIORITY, &lsm9ds1_accel_api);

DT_INST_FOREACH_STATUS_OKAY(LSM9DS1_ACCEL_DEFINE)
