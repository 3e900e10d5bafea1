"""Train the keyword spotter (yes / no) on espeak-ng speech, quantize to int8, finalize.

    python models/kws/train.py          # needs the `train` extra (TensorFlow) and espeak-ng; ~4 min on 2 cores

Seeded end to end (synthesis parameters, noise, weights, op determinism). TensorFlow does not
promise bit-identical weights across machines, so the committed .tflite is the reference;
`hil models verify` re-checks it with the TFLM runtime.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from hil.training import budgets, convert_int8, count_macs, load_sibling, seed_everything

SEED = 1234
HERE = Path(__file__).resolve().parent
TRAIN_PER_CLASS = 1250
EPOCHS = 18
BATCH = 64

# Latency estimates from instruction counts: the ARM / MLPerf Tiny KWS DS-CNN (49x10 MFCC input,
# 64 channels, 4 separable blocks, ~2.7 M MACs) runs ~7.7 M instructions with CMSIS-NN and ~200 M
# with TFLM's reference kernels.
INSTRUCTIONS_PER_MAC_CMSIS = 7.7e6 / 2.7e6
INSTRUCTIONS_PER_MAC_REFERENCE = 200e6 / 2.7e6


def build_model(classes: int) -> Any:
    """A small DS-CNN: one strided convolution, four depthwise-separable blocks, average, dense."""
    import tensorflow as tf

    layers = tf.keras.layers
    inputs = tf.keras.Input(shape=(49, 40, 1), batch_size=1)
    # Stride 4 along the 40 mel bins, 2 along time: 25 x 10 positions keep the MACs near 2 M.
    x = layers.Conv2D(32, (10, 4), strides=(2, 4), padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for filters, stride in ((48, 1), (48, 1), (64, 2), (64, 1)):
        x = layers.DepthwiseConv2D((3, 3), strides=stride, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.Conv2D(filters, (1, 1), use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.AveragePooling2D(pool_size=x.shape[1:3])(x)
    x = layers.Reshape((x.shape[-1],))(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return tf.keras.Model(inputs, outputs)


def main() -> None:
    from hil import tflm
    from hil.models import EvalSet, Metric, finalize_model

    started = time.monotonic()
    seed_everything(SEED)
    import tensorflow as tf

    data = load_sibling(__file__, "data")
    data.require_espeak()
    x_train, y_train = data.training_set(TRAIN_PER_CLASS)
    x_eval, y_eval = data.eval_set()
    print(f"kws: {len(x_train)} training clips synthesized in {time.monotonic() - started:.0f} s")

    model = build_model(len(data.LABELS))
    steps = EPOCHS * int(np.ceil(len(x_train) / BATCH))
    model.compile(
        optimizer=tf.keras.optimizers.Adam(tf.keras.optimizers.schedules.CosineDecay(3e-3, steps)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    # Keras wants the batch dimension first; the model's own input is one feature map (1, 49, 40, 1).
    model.fit(x_train[:, 0], y_train, epochs=EPOCHS, batch_size=BATCH, verbose=2)
    float_accuracy = float(np.mean(model.predict(x_eval[:, 0], verbose=0).argmax(axis=1) == y_eval))

    tflite = convert_int8(model, x_train[:500])
    (HERE / "kws.tflite").write_bytes(tflite)

    macs = count_macs(model)
    arena = tflm.minimal_arena_bytes(tflite)
    manifest = finalize_model(
        HERE,
        description="keyword spotting (yes, no) on 1 s of 16 kHz audio as 49x40 log-mel features: DS-CNN",
        task="classification",
        golden_inputs=data.golden_inputs(),
        eval_set=EvalSet(x_eval, y_eval),
        metric=Metric("accuracy", threshold=0.85, float_score=float_accuracy),
        labels=tuple(data.LABELS),
        budgets=budgets(macs, arena, instructions_per_mac=INSTRUCTIONS_PER_MAC_CMSIS, reference_us=50000),
        training={
            "command": "python models/kws/train.py",
            "seed": SEED,
            "data_seeds": {"train": data.TRAIN_SEED, "eval": data.EVAL_SEED, "golden": data.GOLDEN_SEED},
            "train_clips": len(x_train),
            "epochs": EPOCHS,
            "synthesizer": "espeak-ng",
            "macs": macs,
            "instructions_cmsis_nn_estimate": round(macs * INSTRUCTIONS_PER_MAC_CMSIS),
            "instructions_reference_estimate": round(macs * INSTRUCTIONS_PER_MAC_REFERENCE),
        },
    )
    print(
        f"kws: float accuracy {float_accuracy:.4f}, int8 accuracy (TFLM) {manifest.metric.int8_score:.4f}, "
        f"arena {manifest.arena_bytes} B, flash {manifest.flash_bytes} B, ops {', '.join(manifest.ops)}, "
        f"{macs} MACs, {time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
