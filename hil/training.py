"""Helpers shared by ``models/*/train.py``; they need the ``train`` extra (TensorFlow).

Importing this module does not import TensorFlow: each function does, so the rest of the
package never pays for it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

EMULATOR_IPS = 100e6  # Renode's default; our QEMU targets run at 125 MIPS (-icount shift=3)
SLOWEST_BOARD_HZ = 64e6  # nRF52840, the slowest board in the catalog, ~1 instruction per cycle


def load_sibling(script: str, name: str) -> ModuleType:
    """Import ``<name>.py`` from the folder of ``script`` (a model folder is not a package)."""
    here = Path(script).resolve().parent
    spec = importlib.util.spec_from_file_location(f"{here.name}_{name}", here / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {here / name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow's kernels deterministic."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # oneDNN's reordering breaks bit-reproducibility
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def convert_int8(model: Any, representative: np.ndarray) -> bytes:
    """Full-integer int8 conversion, int8 input and output, calibrated on ``representative`` inputs.

    Each row of ``representative`` is one model input, batch dimension included.
    """
    import tensorflow as tf

    def samples() -> Iterator[list[np.ndarray]]:
        for x in representative:
            yield [x.astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def count_macs(model: Any) -> int:
    """Multiply-accumulates of one inference (convolutions and dense layers)."""
    import tensorflow as tf

    total = 0
    for layer in model.layers:
        out = layer.output.shape
        if isinstance(layer, tf.keras.layers.DepthwiseConv2D):
            total += int(np.prod(out[1:])) * int(np.prod(layer.kernel_size))
        elif isinstance(layer, tf.keras.layers.Conv2D):
            total += int(np.prod(out[1:])) * int(np.prod(layer.kernel_size)) * int(layer.input.shape[-1])
        elif isinstance(layer, tf.keras.layers.Dense):
            total += int(layer.input.shape[-1]) * int(out[-1])
    return total


def budgets(
    macs: int,
    arena_bytes: int,
    *,
    instructions_per_mac: float,
    reference_us: int,
    floor_us: int = 0,
) -> dict[str, dict[str, int]]:
    """Latency budgets at twice the instruction estimate; arena budgets 25 % above the measured arena."""
    arena = int(np.ceil(arena_bytes * 1.25 / 256) * 256)
    instructions = macs * instructions_per_mac
    emulator_us = max(floor_us, int(round(2 * instructions / EMULATOR_IPS * 1e6, -2)))
    board_us = max(floor_us, int(round(2 * instructions / SLOWEST_BOARD_HZ * 1e6, -2)))
    return {
        "default": {"latency_us": max(emulator_us, board_us), "arena_bytes": arena},
        "reference": {"latency_us": reference_us, "arena_bytes": arena},
        "qemu": {"latency_us": emulator_us, "arena_bytes": arena},
        "renode": {"latency_us": emulator_us, "arena_bytes": arena},
        "board": {"latency_us": board_us, "arena_bytes": arena},
    }
