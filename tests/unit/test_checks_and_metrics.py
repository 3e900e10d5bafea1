"""Checks on outputs, latency and arena; metrics recording and merging."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from hil import checks
from hil.checks import MINUS
from hil.errors import CheckFailed
from hil.metrics import MetricsRecorder, collect_metrics
from hil.models import Metric
from hil.results import DeviceInfo, InferenceResult, ModelInfo, TensorSpec


def _result(ticks: int) -> InferenceResult:
    return InferenceResult("m", np.zeros((1, 1), np.int8), ticks, 1_000_000, 100, b"")


def test_golden_comparison_names_mismatching_vectors() -> None:
    expected = np.array([[1], [2], [3]], dtype=np.int8)
    comparison = checks.compare_outputs("m", np.array([[1], [4], [3]], dtype=np.int8), expected, tolerance=1)
    assert comparison.mismatched == (1,)
    with pytest.raises(
        CheckFailed, match=r"1/3 golden vectors differ by more than 1 .max difference 2.; first.*: 1"
    ) as err:
        checks.check_golden(comparison)
    assert "device outputs compared with TFLM's in golden.npz" in str(err.value)


def test_golden_within_tolerance_passes() -> None:
    comparison = checks.compare_outputs("m", np.array([[-128]], np.int8), np.array([[-127]], np.int8), tolerance=1)
    checks.check_golden(comparison)


def test_latency_check_reports_statistic_and_limit() -> None:
    stats = checks.LatencyStats.of([_result(t) for t in (100, 200, 300)])  # µs at 1 MHz
    assert stats.median_us == 200
    with pytest.raises(
        CheckFailed, match=re.escape(f"m: max latency 300.0 µs > limit 250.0 µs (headroom {MINUS}20 %)")
    ):
        checks.check_latency("m", stats, 250, "max")
    checks.check_latency("m", stats, 250, "median")


def test_latency_failure_reads_in_milliseconds_with_the_budget_and_headroom() -> None:
    stats = checks.LatencyStats.of([_result(12_400)] * 3)
    with pytest.raises(CheckFailed) as err:
        checks.check_latency("kws", stats, 10_000, "p95", "budget")
    assert str(err.value).startswith(
        f"kws: p95 latency 12.4 ms > budget 10.0 ms (headroom {MINUS}24 %); device-measured"
    )


def test_arena_check_fails_over_limit() -> None:
    with pytest.raises(CheckFailed, match=re.escape(f"m: arena used 2000 B > limit 1024 B (headroom {MINUS}95 %)")):
        checks.check_arena("m", 2000, 1024)


def test_error_metric_misses_its_ceiling_and_accuracy_its_floor() -> None:
    mae = checks.EvaluationResult("sine", Metric("mae", threshold=0.1), score=0.125, samples=200)
    with pytest.raises(CheckFailed, match=re.escape(f"sine: mae 0.1250 > ceiling 0.1 (headroom {MINUS}25 %)")):
        checks.check_evaluation(mae)
    accuracy = checks.EvaluationResult("kws", Metric("accuracy", threshold=0.85), score=0.68, samples=500)
    with pytest.raises(CheckFailed, match=re.escape(f"kws: accuracy 0.6800 < floor 0.85 (headroom {MINUS}20 %)")):
        checks.check_evaluation(accuracy)
    assert checks.headroom(0.9, 0.85, floor=True) == "headroom +6 %"


def test_recorder_writes_one_record_per_test_and_merge_survives_a_torn_line(tmp_path: Path) -> None:
    recorder = MetricsRecorder(tmp_path, "pytest", "reference")
    recorder.start_test("suite", "t1")
    recorder.on_inference(_result(50))
    recorder.end_test("PASS")
    recorder.start_test("suite", "t2")
    recorder.end_test("FAIL", "boom")
    with recorder.path.open("a") as f:
        f.write('{"kind": "test", "trunc')  # a crash mid-write
    merged = collect_metrics(tmp_path)
    assert merged["summary"] == {"tests": 2, "passed": 1, "failed": 1, "skipped": 0}
    assert merged["tests"][0]["models"]["m"]["latency_us"]["median"] == 50


def test_recorder_keeps_the_build_id_and_each_model_sha256_of_the_device(tmp_path: Path) -> None:
    recorder = MetricsRecorder(tmp_path, "pytest", "reference")
    info = DeviceInfo(2, 4096, 0, 1, "0.1.0", "reference", "tflm", "0123456789abcdef")
    model = ModelInfo("sine", 2192, 1760, TensorSpec("int8", (1, 1)), TensorSpec("int8", (1, 1)), "ab" * 32)
    recorder.device_opened(info, {"python": "3.11"}, {"sine": model})
    (device,) = collect_metrics(tmp_path)["devices"]
    assert device["build_id"] == "0123456789abcdef"
    assert device["models"] == {"sine": {"sha256": "ab" * 32}}
