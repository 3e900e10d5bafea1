"""Shared training helpers: int8 conversion, MAC counting, budgets (needs the train extra)."""

from __future__ import annotations

import numpy as np
import pytest

from hil import tflm
from hil.training import budgets, convert_int8, count_macs, seed_everything

tf = pytest.importorskip("tensorflow", reason="TensorFlow (the train extra) is not installed")


def _tiny_model() -> object:
    seed_everything(7)
    inputs = tf.keras.Input(shape=(8, 2), batch_size=1)
    x = tf.keras.layers.Reshape((8, 1, 2))(inputs)
    x = tf.keras.layers.Conv2D(4, (3, 1), padding="same")(x)
    x = tf.keras.layers.Reshape((32,))(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(3)(x))


def test_convert_int8_gives_int8_io_that_tflm_runs() -> None:
    model = _tiny_model()
    rng = np.random.default_rng(0)
    tflite = convert_int8(model, rng.normal(size=(20, 1, 8, 2)))
    interp = tflm.interpreter(tflite, tflm.minimal_arena_bytes(tflite))
    assert tflm.tensor_spec(interp.get_input_details(0)).dtype == "int8"
    assert tflm.invoke(interp, np.zeros((1, 8, 2), np.int8)).dtype == np.int8


def test_count_macs_counts_convolutions_and_dense_layers() -> None:
    assert count_macs(_tiny_model()) == 8 * 4 * 3 * 2 + 32 * 3


def test_budgets_scale_with_instructions_and_pad_the_arena() -> None:
    b = budgets(1_000_000, 10_000, instructions_per_mac=2.0, reference_us=5000, floor_us=100)
    assert b["qemu"]["latency_us"] == 40_000  # 2 x 2 M instructions at 100 MIPS
    assert b["board"]["latency_us"] == 62_500  # at 64 MHz
    assert b["default"]["latency_us"] == 62_500
    assert b["reference"] == {"latency_us": 5000, "arena_bytes": 12_544}
