"""Train the sine regressor, quantize it to int8 and write its manifest, golden and eval files.

    python models/sine/train.py          # needs the `train` extra (TensorFlow)

Seeded end to end. TensorFlow does not promise bit-identical weights across machines, so the
committed .tflite is the reference; golden vectors are regenerated from it with the TFLM runtime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 1234
HERE = Path(__file__).resolve().parent


def make_data(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(0.0, 2 * np.pi, size=(n, 1)).astype(np.float32)
    y = (np.sin(x) + rng.normal(0.0, noise, size=x.shape)).astype(np.float32)
    return x, y


def main() -> None:
    from hil.models import EvalSet, Metric, finalize_model
    from hil.training import convert_int8, seed_everything

    seed_everything(SEED)
    import tensorflow as tf

    rng = np.random.default_rng(SEED)
    x_train, y_train = make_data(rng, 4000, noise=0.05)
    x_eval, _ = make_data(rng, 200, noise=0.0)
    y_eval = np.sin(x_eval[:, 0])

    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(1,), batch_size=1),
            tf.keras.layers.Dense(16, activation="relu"),
            tf.keras.layers.Dense(16, activation="relu"),
            tf.keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="mse")
    model.fit(x_train, y_train, epochs=60, batch_size=64, verbose=0)
    float_mae = float(np.mean(np.abs(model.predict(x_eval, verbose=0)[:, 0] - y_eval)))

    (HERE / "sine.tflite").write_bytes(convert_int8(model, x_train[:500].reshape(-1, 1, 1)))

    golden_x = np.concatenate([np.linspace(0.0, 2 * np.pi, 24), rng.uniform(0.0, 2 * np.pi, 8)]).reshape(-1, 1, 1)
    manifest = finalize_model(
        HERE,
        description="y = sin(x) for x in [0, 2pi]: the smallest end-to-end model (3 fully connected layers)",
        task="regression",
        golden_inputs=golden_x,
        eval_set=EvalSet(x_eval.reshape(-1, 1, 1), y_eval),
        metric=Metric("mae", threshold=0.1, float_score=float_mae),
        budgets={
            "default": {"latency_us": 5000, "arena_bytes": 4096},
            "reference": {"latency_us": 2000, "arena_bytes": 4096},
        },
        training={"command": "python models/sine/train.py", "seed": SEED, "epochs": 60},
    )
    print(f"sine: float MAE {float_mae:.4f}, int8 MAE {manifest.metric.int8_score:.4f}, arena {manifest.arena_bytes} B")


if __name__ == "__main__":
    main()
