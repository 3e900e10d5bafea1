"""Assertions on inference, memory and timing; each raises ``CheckFailed`` with the numbers.

A failure message says what was compared with what, the measured value, the limit and the
headroom left: ``sine: p95 latency 12.4 ms > budget 10.0 ms (headroom -24 %)``. Accuracy
metrics have a floor (the score must reach it), error metrics (``mae``) a ceiling (the error
must stay at or under it). The tensor arena has a size (what the device reserves for it) and a
use (what TFLM placed in it): budgets limit the use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hil.backends import EmulatorCost
from hil.device import Device
from hil.errors import CheckFailed, ConfigError
from hil.models import Metric, ModelZoo, confusion_matrix, predictions, score
from hil.results import InferenceResult

STATISTICS = ("median", "p95", "max")
EVAL_SUBSET_SEED = 13  # evaluation subsets (target option eval_samples) are the same samples every run
GOLDEN_OUTPUTS_KEPT = 4096  # output values of the golden vectors kept in metrics.json (beyond: only their sha256)
MINUS = "\u2212"  # the typographic minus sign (U+2212) reads better than a hyphen


def headroom(measured: float, limit: float, *, floor: bool = False) -> str:
    """How far ``measured`` is inside ``limit``, in % of the limit, as ``headroom +12 %`` (negative: missed).

    ``limit`` is a ceiling (latency, arena, error) unless ``floor`` (accuracy).
    """
    if limit == 0:
        return "no headroom (limit 0)"
    room = (measured - limit) if floor else (limit - measured)
    return f"headroom {room / limit * 100:+.0f} %".replace("-", MINUS)


def duration(us: float) -> str:
    """A latency in the unit that reads best: ``850.0 µs``, ``12.4 ms``."""
    return f"{us / 1000:.1f} ms" if us >= 1000 else f"{us:.1f} µs"


def bound_name(metric: Metric) -> str:
    """``floor`` for an accuracy (higher is better), ``ceiling`` for an error such as ``mae``."""
    return "floor" if metric.higher_is_better else "ceiling"


@dataclass(frozen=True, slots=True)
class GoldenComparison:
    model: str
    vectors: int
    mismatched: tuple[int, ...]  # indices of vectors whose output differs beyond the tolerance
    max_abs_diff: int
    tolerance: int
    outputs: tuple[tuple[int, ...], ...] = ()  # the device's output per vector, flattened (for hil compare)

    @property
    def ok(self) -> bool:
        return not self.mismatched

    def as_dict(self) -> dict[str, object]:
        record: dict[str, object] = {
            "vectors": self.vectors,
            "mismatched": len(self.mismatched),
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
        }
        if self.outputs:
            flat = np.array(self.outputs, dtype=np.int64)
            record["outputs_sha256"] = hashlib.sha256(flat.tobytes()).hexdigest()
            if flat.size <= GOLDEN_OUTPUTS_KEPT:
                record["outputs"] = [list(row) for row in self.outputs]
        return record


def compare_outputs(model: str, outputs: np.ndarray, expected: np.ndarray, tolerance: int) -> GoldenComparison:
    diff = np.abs(outputs.astype(np.int64) - expected.astype(np.int64)).reshape(len(expected), -1)
    worst = diff.max(axis=1)
    mismatched = tuple(int(i) for i in np.nonzero(worst > tolerance)[0])
    kept = tuple(tuple(int(v) for v in row) for row in outputs.astype(np.int64).reshape(len(expected), -1))
    return GoldenComparison(model, len(expected), mismatched, int(worst.max(initial=0)), tolerance, kept)


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
            f"{comparison.tolerance} (max difference {comparison.max_abs_diff}); first mismatching vectors: {first} "
            "(device outputs compared with TFLM's in golden.npz, in output quantization steps)"
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


def check_latency(
    model: str, stats: LatencyStats, limit_us: float, statistic: str = "p95", limit_name: str = "limit"
) -> None:
    """Fail if the ``statistic`` of device-measured latency exceeds ``limit_us`` (named ``limit_name``)."""
    measured = stats.value(statistic)
    if measured > limit_us:
        raise CheckFailed(
            f"{model}: {statistic} latency {duration(measured)} > {limit_name} {duration(limit_us)} "
            f"({headroom(measured, limit_us)}); device-measured over {stats.count} inferences: "
            f"median {duration(stats.median_us)}, max {duration(stats.max_us)}"
        )


def check_arena(model: str, used_bytes: int, limit_bytes: int, limit_name: str = "limit") -> None:
    """Fail if the arena the device reports in use for ``model`` exceeds ``limit_bytes``."""
    if used_bytes > limit_bytes:
        raise CheckFailed(
            f"{model}: arena used {used_bytes} B > {limit_name} {limit_bytes} B ({headroom(used_bytes, limit_bytes)}); "
            "arena used as the device reports it in MODEL_INFO"
        )


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    model: str
    metric: Metric
    score: float
    samples: int
    labels: tuple[str, ...] = ()
    confusion: np.ndarray | None = None  # counts[true, predicted], classification only
    set_samples: int | None = None  # the whole evaluation set's size when ``samples`` is a seeded subset of it

    @property
    def scope(self) -> str:
        """What was scored: "the 200 samples of the evaluation set" or "a seeded subset of 100 of its 1200 samples"."""
        if self.set_samples is None:
            return f"the {self.samples} samples of the evaluation set"
        return f"a seeded subset ({self.samples} of the {self.set_samples} samples) of the evaluation set"

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


def eval_subset(set_samples: int, samples: int | None, seed: int = EVAL_SUBSET_SEED) -> np.ndarray | None:
    """Indices of a seeded subset of ``samples`` of an evaluation set, in set order; None for the whole set."""
    if samples is None or samples >= set_samples:
        return None
    return np.sort(np.random.default_rng(seed).choice(set_samples, samples, replace=False))


def evaluate(device: Device, zoo: ModelZoo, model: str, samples: int | None = None) -> EvaluationResult:
    """Score the device on the model's evaluation set with the manifest's metric.

    ``samples``: score a seeded subset of that many samples instead (the same ones on every run and
    target); the result says so (``set_samples``) and so do the metrics and every message.
    """
    manifest = zoo.manifest(model)
    ev = zoo.eval_set(model)
    x, y = ev.x, ev.y
    chosen = eval_subset(len(y), samples)
    if chosen is not None:
        x, y = x[chosen], y[chosen]
    outputs = np.stack([device.infer_values(model, sample).output for sample in x])
    metric = manifest.metric
    confusion = None
    if metric.is_classification:
        classes = max(len(manifest.labels), int(ev.y.max()) + 1)
        confusion = confusion_matrix(y, predictions(metric, manifest.output, outputs), classes)
    value = score(metric, manifest.output, outputs, y)
    set_samples = None if chosen is None else len(ev.y)
    return EvaluationResult(model, metric, value, len(y), manifest.labels, confusion, set_samples)


def check_evaluation(result: EvaluationResult) -> None:
    """Fail if the score misses the manifest's floor (accuracy) or ceiling (error)."""
    if not result.ok:
        metric = result.metric
        relation = "<" if metric.higher_is_better else ">"
        room = headroom(result.score, metric.threshold, floor=metric.higher_is_better)
        raise CheckFailed(
            f"{result.model}: {metric.name} {result.score:.4f} {relation} {bound_name(metric)} {metric.threshold:g} "
            f"({room}); device outputs on {result.scope} (eval.npz)"
        )
