"""The models' data generators: deterministic, and reproducing the committed eval, golden and stimulus files."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from hil import tflm
from hil.models import ModelZoo

MODELS = Path(__file__).resolve().parents[2] / "models"
DATA_MODELS = ("gesture", "kws", "anomaly")


def load(model: str, module: str) -> ModuleType:
    """Import models/<model>/<module>.py by path (the model folders are not a package)."""
    spec = importlib.util.spec_from_file_location(f"test_{model}_{module}", MODELS / model / f"{module}.py")
    assert spec is not None
    assert spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded  # dataclasses look their module up while it executes
    spec.loader.exec_module(loaded)
    return loaded


def data_module(model: str) -> ModuleType:
    if model == "kws" and shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: the kws clips are synthesized with it (apt-get install espeak-ng)")
    return load(model, "data")


@pytest.mark.parametrize("model", DATA_MODELS)
def test_generator_is_deterministic(model: str) -> None:
    data = data_module(model)
    first, second = data.golden_inputs(), data.golden_inputs()
    assert first.dtype == np.float32
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("model", DATA_MODELS)
def test_eval_set_reproduces_the_committed_file(model: str, zoo: ModelZoo) -> None:
    x, y = data_module(model).eval_set()
    committed = zoo.eval_set(model)
    # kws features go through a float32 matrix product, which BLAS sums in an order that depends on
    # the CPU (its SIMD width): the same generator gives the same features to within a few ulp.
    np.testing.assert_allclose(x.astype(np.float32), committed.x, rtol=2e-6, atol=1e-6)
    np.testing.assert_array_equal(y, committed.y)


@pytest.mark.parametrize("model", DATA_MODELS)
def test_golden_inputs_reproduce_the_committed_vectors(model: str, zoo: ModelZoo) -> None:
    spec = zoo.manifest(model).input
    quantized = np.stack([spec.quantize(x) for x in data_module(model).golden_inputs()])
    np.testing.assert_array_equal(quantized, zoo.golden(model).inputs)


@pytest.mark.parametrize("model", ["gesture", "anomaly"])
def test_stimulus_files_are_what_the_generator_writes(model: str, tmp_path: Path) -> None:
    for written in load(model, "data").write_stimuli(tmp_path):
        assert written.read_text() == (MODELS / model / "stimuli" / written.name).read_text(), written.name


def test_gesture_training_windows_are_balanced_and_in_range() -> None:
    data = load("gesture", "data")
    x, y = data.training_set(4, seed=99)
    assert x.shape == (20, 1, data.WINDOW, 3)
    assert np.bincount(y).tolist() == [4] * len(data.LABELS)
    assert np.abs(x).max() <= data.RANGE_G
    np.testing.assert_array_equal(x, data.training_set(4, seed=99)[0])


def test_gesture_stream_raises_exactly_the_expected_events(zoo: ModelZoo) -> None:
    check = load("gesture", "check_stream")
    manifest = zoo.manifest("gesture")
    assert manifest.streaming is not None
    for name in ("sequence", "idle_only"):
        samples = check.read_stimulus(check.STIMULI / f"{name}.csv")
        expected = check.read_expected(check.STIMULI / f"{name}.expected.csv")
        events = check.stream_events(samples, manifest)
        assert check.compare(events, expected, manifest.labels, manifest.streaming.sample_rate_hz) == [], name
        assert len(events) == len(expected)


def test_stream_quantization_rounds_half_away_from_zero() -> None:
    check = load("gesture", "check_stream")
    q = check.quantize_f32(np.array([0.5, -0.5, 1.5, -1.5, 2.49, 1000.0, -1000.0], np.float32), 1.0, 0)
    assert q.tolist() == [1, -1, 2, -2, 2, 127, -128]


def test_kws_frontend_shapes_and_silence_floor() -> None:
    frontend = load("kws", "frontend")
    features = frontend.features(np.zeros(frontend.CLIP_SAMPLES, np.float32))
    assert features.shape == (49, 40)
    assert np.allclose(features, np.log(np.float32(frontend.LOG_FLOOR)))


def test_anomaly_frontend_puts_a_tone_in_its_band() -> None:
    frontend = load("anomaly", "frontend")
    t = np.arange(frontend.WINDOW_SAMPLES) / frontend.SAMPLE_RATE_HZ
    bin_hz = frontend.SAMPLE_RATE_HZ / frontend.WINDOW_SAMPLES
    tone_hz = 42 * bin_hz  # bin 42 is in band (42 - 1) // 4 = 10
    features = frontend.features((1.0 + 0.5 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32))
    assert features.shape == (32,)
    assert int(np.argmax(features)) == 10


def test_anomaly_stimuli_are_flagged_only_when_faulty(zoo: ModelZoo) -> None:
    frontend = load("anomaly", "frontend")
    manifest = zoo.manifest("anomaly")
    interp = tflm.interpreter(manifest.tflite_path.read_bytes(), manifest.arena_bytes)
    threshold = manifest.metric.decision_threshold
    for name in ("normal", "imbalance", "bearing"):
        samples = np.loadtxt(MODELS / "anomaly" / "stimuli" / f"{name}.csv", delimiter=",", skiprows=1)[:, 1]
        # Windows of 256 samples every 128, as a device would score the stream.
        windows = np.stack([samples[i : i + 256] for i in range(0, len(samples) - 255, 128)])
        outputs = np.stack([tflm.invoke(interp, manifest.input.quantize(f[None])) for f in frontend.features(windows)])
        flagged = manifest.output.dequantize(outputs).reshape(-1) > threshold
        assert flagged.all() if name != "normal" else not flagged.any(), (name, flagged)
