"""Per-test metrics, written as JSON lines while tests run and joined into ``metrics.json``.

The schema is documented in ``docs/metrics.md``. Robot and pytest each append to their own
file under ``<out>/metrics/``; the results bundle (:mod:`hil.report.bundle`) joins them, so a
crash in one framework never loses what the other recorded. Under ``hil run`` every record
carries the run's id (``$HIL_RUN_ID``); run directly, ``robot`` or ``pytest`` start a fresh
file per test run instead of appending to one an earlier run left.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hil.checks import EVAL_SUBSET_SEED, EvaluationResult, GoldenComparison, LatencyStats, bound_name
from hil.metrics_file import read_records
from hil.results import DeviceInfo, InferenceResult, ModelInfo

METRICS_DIR = "metrics"
RUN_ID_ENV = "HIL_RUN_ID"  # set by hil run in every process it starts
PROCESS_STARTED_S = time.time()  # a metrics file older than this process is an earlier run's


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class _ModelMetrics:
    inferences: list[InferenceResult] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"inferences": len(self.inferences)}
        timed = [r for r in self.inferences if r.latency_us is not None]
        if timed:
            out["latency_us"] = {k: round(v, 3) for k, v in LatencyStats.of(timed).as_dict().items()}
            # every inference's latency, in order, for the report's histograms (docs/metrics.md)
            out["latencies_us"] = [round(r.latency_us, 3) for r in timed if r.latency_us is not None]
        if self.inferences:
            out["arena_used_bytes"] = max(r.arena_used_bytes for r in self.inferences)
        return out | self.extra


class MetricsRecorder:
    """Collects what one test did on the device; one JSON line per finished test."""

    def __init__(self, out_dir: Path, framework: str, target: str) -> None:
        self.path = out_dir / METRICS_DIR / f"{framework}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = os.environ.get(RUN_ID_ENV)
        if self.run_id is None and self.path.exists() and self.path.stat().st_mtime < PROCESS_STARTED_S:
            self.path.unlink()  # run directly: this test run's records only, not appended to an old run's
        self.framework = framework
        self.target = target
        self._test: str | None = None
        self._suite = ""
        self._started = 0.0
        self._models: dict[str, _ModelMetrics] = {}
        self._extra: dict[str, Any] = {}

    def _write(self, record: dict[str, Any]) -> None:
        if self.run_id is not None:
            record["run_id"] = self.run_id
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=str) + "\n")

    def device_opened(
        self, info: DeviceInfo, facts: dict[str, str], models: Mapping[str, ModelInfo] | None = None
    ) -> None:
        """Record what the device is: its INFO (with the build id) and the sha256 of each model it serves."""
        served = {name: {"sha256": model.sha256} for name, model in (models or {}).items()}
        self._write(
            {"kind": "device", "target": self.target, "at": _now(), **asdict(info), "models": served, "facts": facts}
        )

    def start_test(self, suite: str, name: str) -> None:
        self._suite, self._test, self._started = suite, name, time.monotonic()
        self._models, self._extra = {}, {}

    def _model(self, name: str) -> _ModelMetrics:
        return self._models.setdefault(name, _ModelMetrics())

    def on_inference(self, result: InferenceResult) -> None:
        if self._test is not None:
            self._model(result.model).inferences.append(result)

    def model_fact(self, model: str, key: str, value: Any) -> None:
        """Attach a measured fact about ``model`` to the running test (golden, evaluation, arena...)."""
        self._model(model).extra[key] = value

    def golden(self, comparison: GoldenComparison) -> None:
        self.model_fact(comparison.model, "golden", comparison.as_dict())

    def evaluation(self, result: EvaluationResult) -> None:
        # An accuracy has a floor, an error (mae) a ceiling: the key says which.
        evaluation = {
            "metric": result.metric.name,
            "score": result.score,
            bound_name(result.metric): result.metric.threshold,
        }
        evaluation["samples"] = result.samples
        if result.set_samples is not None:  # a seeded subset: never silently fewer samples
            evaluation |= {"set_samples": result.set_samples, "subset_seed": EVAL_SUBSET_SEED}
        if result.confusion is not None:
            evaluation |= {"labels": list(result.labels), "confusion": result.confusion.tolist()}
            path = self.path.parent.parent / "artifacts" / f"confusion-{result.model}-{self.framework}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(result.confusion_csv())
            evaluation["confusion_csv"] = str(path)
        self.model_fact(result.model, "evaluation", evaluation)

    def note(self, key: str, value: Any) -> None:
        """Attach any JSON-able fact to the running test (memory report, budgets used, ...)."""
        self._extra[key] = value

    def end_test(self, status: str, message: str = "") -> None:
        if self._test is None:
            return
        self._write(
            {
                "kind": "test",
                "framework": self.framework,
                "suite": self._suite,
                "test": self._test,
                "target": self.target,
                "status": status,
                "message": message,
                "duration_s": round(time.monotonic() - self._started, 3),
                "models": {name: m.as_dict() for name, m in self._models.items()},
                **self._extra,
            }
        )
        self._test = None


def collect_metrics(out_dir: Path) -> dict[str, Any]:
    """Every framework's JSON lines joined (each record checked: a corrupt one names file and line).

    Tests and devices only; :mod:`hil.report.bundle` adds what the run knows and writes ``metrics.json``.
    """
    tests: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    for path in sorted((out_dir / METRICS_DIR).glob("*.jsonl")):
        for record in read_records(path):
            (tests if record.pop("kind", "test") == "test" else devices).append(record)
    counts = {status: sum(t["status"] == status for t in tests) for status in ("PASS", "FAIL", "SKIP")}
    return {
        "targets": sorted({t["target"] for t in tests} | {d["target"] for d in devices}),
        "devices": devices,
        "summary": {"tests": len(tests), "passed": counts["PASS"], "failed": counts["FAIL"], "skipped": counts["SKIP"]},
        "tests": tests,
    }
