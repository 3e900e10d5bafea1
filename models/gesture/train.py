"""Train the gesture classifier on simulated accelerometer windows, quantize to int8, finalize.

    python models/gesture/train.py          # needs the `train` extra (TensorFlow); ~2 min on 2 cores

Seeded end to end (data, weights, op determinism). TensorFlow does not promise bit-identical
weights across machines, so the committed .tflite is the reference; `hil models verify`
re-checks it with the TFLM runtime.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from hil.training import budgets, convert_int8, count_macs, load_sibling, seed_everything

SEED = 1234
HERE = Path(__file__).resolve().parent
TRAIN_PER_CLASS = 2400
EPOCHS = 30
BATCH = 64

# Latency estimates from instruction counts: a magic_wand-like CNN (~62 k MACs) runs ~0.6 M
# instructions with CMSIS-NN and ~5.3 M with TFLM's reference kernels.
INSTRUCTIONS_PER_MAC_CMSIS = 0.6e6 / 62e3
INSTRUCTIONS_PER_MAC_REFERENCE = 5.3e6 / 62e3


def build_model(classes: int) -> Any:
    """A small 1-D depthwise-separable CNN over time, in the spirit of TFLM's magic_wand."""
    import tensorflow as tf

    layers = tf.keras.layers
    inputs = tf.keras.Input(shape=(128, 3), batch_size=1)
    x = layers.Reshape((128, 1, 3))(inputs)  # time as height, the axes as channels
    x = layers.Conv2D(16, (5, 1), padding="same", activation="relu")(x)
    x = layers.MaxPooling2D((2, 1))(x)
    for filters in (24, 32, 32, 48):
        x = layers.DepthwiseConv2D((5, 1), padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, (1, 1), activation="relu")(x)
        x = layers.MaxPooling2D((2, 1))(x)
    # 4 time steps of ~3 s receptive field left: average them so a gesture counts wherever it sits.
    x = layers.AveragePooling2D((4, 1))(x)
    x = layers.Reshape((48,))(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(32, activation="relu")(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return tf.keras.Model(inputs, outputs)


STREAMING = {
    "sample_rate_hz": 50,
    "channels": ["accel_x", "accel_y", "accel_z"],
    "unit": "g",
    "window": 128,
    "hop": 16,
    "idle_class": 0,
    "threshold": 0.95,
    "refractory_samples": 128,
}


def main() -> None:
    from hil import tflm
    from hil.models import EvalSet, Metric, finalize_model

    started = time.monotonic()
    seed_everything(SEED)
    import tensorflow as tf

    data = load_sibling(__file__, "data")
    x_train, y_train = data.training_set(TRAIN_PER_CLASS)
    x_eval, y_eval = data.eval_set()
    print(f"gesture: {len(x_train)} training windows generated in {time.monotonic() - started:.0f} s")

    model = build_model(len(data.LABELS))
    steps = EPOCHS * int(np.ceil(len(x_train) / BATCH))
    model.compile(
        optimizer=tf.keras.optimizers.Adam(tf.keras.optimizers.schedules.CosineDecay(3e-3, steps)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    # Keras wants the batch dimension first; the model's own input is one window (1, 128, 3).
    model.fit(x_train[:, 0], y_train, epochs=EPOCHS, batch_size=BATCH, verbose=2)
    float_accuracy = float(np.mean(model.predict(x_eval[:, 0], verbose=0).argmax(axis=1) == y_eval))

    tflite = convert_int8(model, x_train[:600])
    (HERE / "gesture.tflite").write_bytes(tflite)

    macs = count_macs(model)
    arena = tflm.minimal_arena_bytes(tflite)
    manifest = finalize_model(
        HERE,
        description="5 hand gestures from a 3-axis accelerometer (2.56 s at 50 Hz): 1-D depthwise-separable CNN",
        task="classification",
        golden_inputs=data.golden_inputs(),
        eval_set=EvalSet(x_eval, y_eval),
        metric=Metric("accuracy", threshold=0.95, float_score=float_accuracy),
        labels=tuple(data.LABELS),
        budgets=budgets(macs, arena, instructions_per_mac=INSTRUCTIONS_PER_MAC_CMSIS, reference_us=20000),
        streaming=STREAMING,
        training={
            "command": "python models/gesture/train.py",
            "seed": SEED,
            "data_seeds": {"train": data.TRAIN_SEED, "eval": data.EVAL_SEED, "golden": data.GOLDEN_SEED},
            "train_windows": len(x_train),
            "epochs": EPOCHS,
            "macs": macs,
            "instructions_cmsis_nn_estimate": round(macs * INSTRUCTIONS_PER_MAC_CMSIS),
            "instructions_reference_estimate": round(macs * INSTRUCTIONS_PER_MAC_REFERENCE),
        },
    )
    data.write_stimuli(HERE / "stimuli")
    print(
        f"gesture: float accuracy {float_accuracy:.4f}, int8 accuracy (TFLM) {manifest.metric.int8_score:.4f}, "
        f"arena {manifest.arena_bytes} B, flash {manifest.flash_bytes} B, ops {', '.join(manifest.ops)}, "
        f"{macs} MACs, {time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
