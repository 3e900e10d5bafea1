"""Assertions on inference, memory and timing; each raises ``CheckFailed`` with the numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hil.backends import EmulatorCost
from hil.device import Device
from hil.errors import CheckFailed, ConfigError
from hil.models import Metric, ModelZoo, confusion_matrix, predictions, score
from hil.results import InferenceResult

STATISTICS = ("median", "p95", "max")


@dataclass(frozen=True, slots=True)
class GoldenComparison:
    model: str
    vectors: int
    mismatched: tuple[int, ...]  # indices of vectors whose output differs beyond the tolerance
    max_abs_diff: int
    tolerance: int

    @property
    def ok(self) -> bool:
        return not self.mismatched

    def as_dict(self) -> dict[str, object]:
        return {
            "vectors": self.vectors,
            "mismatched": len(self.mismatched),
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
        }


def compare_outputs(model: str, outputs: np.ndarray, expected: np.ndarray, tolerance: int) -> GoldenComparison:
    diff = np.abs(outputs.astype(np.int64) - expected.astype(np.int64)).reshape(len(expected), -1)
    worst = diff.max(axis=1)
    mismatched = tuple(int(i) for i in np.nonzero(worst > tolerance)[0])
    return GoldenComparison(model, len(expected), mismatched, int(worst.max(initial=0)), tolerance)


def run_golden(device: Device, zoo: ModelZoo, model: str, tolerance: int | None = None) -> GoldenComparison:
    """Run every golden vector of ``model`` on the device and compare with TFLM's outputs."""
    golden = zoo.golden(model)
    if tolerance is None:
        tolerance = zoo.manifest(model).golden_tolerance
    outputs = np.stack([device.infer(model, x).output for x in golden.inputs])
    return compare_outputs(model, outputs, golden.outputs, tolerance)


def check_golden(comparison: GoldenComparison) -> None:
    if not comparison.ok:
        first = ", ".join(str(i) for i in comparison.mismatched[:8])
        raise CheckFailed(
            f"{comparison.model}: {len(comparison.mismatched)}/{comparison.vectors} golden vectors differ by more than "
            f"{comparison.tolerance} (max difference {comparison.max_abs_diff}); first mismatching vectors: {first}"
        )


@dataclass(frozen=True, slots=True)
class LatencyStats:
    count: int
    median_us: float
    p95_us: float
    max_us: float

    @classmethod
    def of(cls, results: Sequence[InferenceResult]) -> LatencyStats:
        latencies = [r.latency_us for r in results if r.latency_us is not None]
        if not latencies:
            raise CheckFailed("no inference with a device-measured latency to check (run inferences first)")
        values = np.array(latencies)
        return cls(len(values), float(np.median(values)), float(np.percentile(values, 95)), float(values.max()))

    def value(self, statistic: str) -> float:
        if statistic not in STATISTICS:
            raise ConfigError(f"unknown latency statistic {statistic!r}: use one of {STATISTICS}")
        return getattr(self, f"{statistic}_us")

    def as_dict(self) -> dict[str, float]:
        return {"count": self.count, "median": self.median_us, "p95": self.p95_us, "max": self.max_us}


@dataclass(frozen=True, slots=True)
class EmulatedCostStats:
    """Medians of what inferences cost inside an emulator, beside the device's own latency."""

    count: int
    instructions: float
    virtual_us: float
    device_us: float

    @classmethod
    def of(cls, costs: Sequence[EmulatorCost], device: LatencyStats) -> EmulatedCostStats:
        return cls(
            len(costs),
            float(np.median([c.instructions for c in costs])),
            float(np.median([c.virtual_time_s for c in costs])) * 1e6,
            device.median_us,
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "count": self.count,
            "instructions_median": self.instructions,
            "virtual_us_median": round(self.virtual_us, 1),
            "device_us_median": round(self.device_us, 1),
        }


def check_latency(model: str, stats: LatencyStats, limit_us: float, statistic: str = "p95") -> None:
    measured = stats.value(statistic)
    if measured > limit_us:
        raise CheckFailed(
            f"{model}: {statistic} latency {measured:.1f} µs exceeds the limit of {limit_us:g} µs "
            f"(median {stats.median_us:.1f}, max {stats.max_us:.1f} over {stats.count} inferences)"
        )


def check_arena(model: str, used_bytes: int, limit_bytes: int) -> None:
    if used_bytes > limit_bytes:
        raise CheckFailed(f"{model}: arena use {used_bytes} B exceeds the limit of {limit_bytes} B")


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    model: str
    metric: Metric
    score: float
    samples: int
    labels: tuple[str, ...] = ()
    confusion: np.ndarray | None = None  # counts[true, predicted], classification only

    @property
    def ok(self) -> bool:
        return self.metric.passes(self.score)

    def confusion_csv(self) -> str:
        if self.confusion is None:
            return ""
        labels = self.labels or tuple(str(i) for i in range(len(self.confusion)))
        rows = ["true\\predicted," + ",".join(labels)]
        rows += [
            f"{label}," + ",".join(str(int(n)) for n in row) for label, row in zip(labels, self.confusion, strict=True)
        ]
        return "\n".join(rows) + "\n"


def evaluate(device: Device, zoo: ModelZoo, model: str) -> EvaluationResult:
    """Score the device on the model's evaluation set with the manifest's metric."""
    manifest = zoo.manifest(model)
    ev = zoo.eval_set(model)
    outputs = np.stack([device.infer_values(model, x).output for x in ev.x])
    metric = manifest.metric
    confusion = None
    if metric.is_classification:
        classes = max(len(manifest.labels), int(ev.y.max()) + 1)
        confusion = confusion_matrix(ev.y, predictions(metric, manifest.output, outputs), classes)
    value = score(metric, manifest.output, outputs, ev.y)
    return EvaluationResult(model, metric, value, len(ev.y), manifest.labels, confusion)


def check_evaluation(result: EvaluationResult) -> None:
    if not result.ok:
        relation = "below" if result.metric.higher_is_better else "above"
        raise CheckFailed(
            f"{result.model}: {result.metric.name} {result.score:.4f} on {result.samples} samples is {relation} "
            f"the floor {result.metric.threshold}"
        )
