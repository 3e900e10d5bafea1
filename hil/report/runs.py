"""A run as the report, baselines and comparison read it: ``metrics.json`` folded per target x model.

Only ``metrics.json`` (schema in docs/metrics.md) and the files it names are read; fields older
bundles lack are taken as their defaults (``complete`` absent: complete).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hil.errors import ConfigError, HilError
from hil.metrics_file import read_metrics_json
from hil.models import ModelManifest, ModelZoo

CONSOLE_TAIL_LINES = 40


@dataclass(frozen=True, slots=True)
class Run:
    """One results bundle: its folder and its ``metrics.json``."""

    path: Path
    metrics: dict[str, Any]

    @property
    def complete(self) -> bool:
        return bool(self.metrics.get("complete", True))

    @property
    def run_id(self) -> str:
        return str(self.metrics.get("run_id") or self.path.name)

    @property
    def targets(self) -> list[str]:
        return list(self.metrics.get("targets") or sorted({t["target"] for t in self.tests}))

    @property
    def tests(self) -> list[dict[str, Any]]:
        return list(self.metrics.get("tests") or [])

    @property
    def environment(self) -> dict[str, Any]:
        return dict(self.metrics.get("environment") or {})

    def device(self, target: str) -> dict[str, Any]:
        """The last device record of ``target`` (a restart adds one), or an empty one."""
        records = [d for d in self.metrics.get("devices") or [] if d.get("target") == target]
        return records[-1] if records else {}

    def resolve(self, name: str | None, target: str = "") -> Path | None:
        """A file the bundle names: absolute, or relative to the bundle (or its ``<target>/`` sub-bundle)."""
        if not name:
            return None
        path = Path(name)
        folders = [self.path / sub for sub in (self.bundle_of(target), target, target.replace(":", "-")) if sub]
        if path.is_absolute():
            candidates = [path, *(folder / path.name for folder in folders)]  # a bundle moved since it was written
        else:
            candidates = [self.path / path, *(folder / path for folder in folders)]
        return next((c for c in candidates if c.is_file()), None)

    def bundle_of(self, target: str) -> str | None:
        """The sub-bundle folder of ``target`` (relative; ``.`` in a one-target run), where the run says."""
        bundles = self.metrics.get("bundles")
        return str(bundles[target]) if isinstance(bundles, dict) and target in bundles else None

    def target_facts(self, target: str) -> dict[str, Any]:
        """``environment.targets.<target>``: backend, board, image, models with sizes and budgets (may be empty)."""
        targets = self.environment.get("targets")
        found = targets.get(target) if isinstance(targets, dict) else None
        return dict(found) if isinstance(found, dict) else {}

    def stimulus(self, name: str, target: str = "") -> Path | None:
        """A stimulus recording the run copied into its bundle (``stimuli[]``), by file name."""
        for entry in self.metrics.get("stimuli") or []:
            if isinstance(entry, dict) and Path(str(entry.get("path", ""))).name == name:
                found = self.resolve(str(entry["path"]), target)
                if found is not None:
                    return found
        return self.resolve(f"stimuli/{name}", target)

    def console_tail(self, test: Mapping[str, Any], lines: int = CONSOLE_TAIL_LINES) -> str:
        path = self.resolve(test.get("console_log"), str(test.get("target", "")))
        if path is None:
            return ""
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def load_run(path: Path) -> Run:
    """The bundle in ``path`` (a folder, or its ``metrics.json``), checked; ConfigError when there is none."""
    folder = path.parent if path.name == "metrics.json" else path
    metrics_path = folder / "metrics.json"
    if not metrics_path.is_file():
        raise ConfigError(f"{folder} holds no results bundle (no metrics.json): run `hil run --out {folder}`")
    return Run(folder.resolve(), read_metrics_json(metrics_path))


@dataclass(frozen=True, slots=True)
class Latency:
    count: int
    median_us: float
    p95_us: float
    max_us: float
    samples_us: tuple[float, ...] = ()  # every inference's latency where the run kept them

    @classmethod
    def of(cls, samples: Iterable[float]) -> Latency | None:
        values = np.array(list(samples), dtype=np.float64)
        if not values.size:
            return None
        median, p95 = np.percentile(values, [50, 95])
        return cls(int(values.size), float(median), float(p95), float(values.max()), tuple(values.tolist()))


@dataclass(frozen=True, slots=True)
class EventRun:
    """One stimulus streamed in one test: what was expected and what came."""

    test: str
    source: str
    stimulus: str
    record: dict[str, Any]

    @property
    def ok(self) -> bool:
        return not self.record.get("missed") and not self.record.get("unexpected")

    @property
    def mean_delay_s(self) -> float | None:
        delays = self.record.get("delays_s") or []
        return float(np.mean(delays)) if delays else None


@dataclass(slots=True)
class ModelView:
    """Everything a run measured of one model on one target."""

    target: str
    model: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    latency: Latency | None = None
    latency_limit_us: float | None = None
    arena_used_bytes: int | None = None
    arena_limit_bytes: int | None = None
    evaluation: dict[str, Any] | None = None
    golden: dict[str, Any] | None = None
    events: list[EventRun] = field(default_factory=list)
    emulated_cost: dict[str, Any] | None = None
    sha256: str | None = None
    # from the manifest, where the model zoo is at hand
    flash_bytes: int | None = None
    arena_size_bytes: int | None = None

    @property
    def status(self) -> str:
        return "FAIL" if self.failed else "PASS" if self.passed else "SKIP"

    @property
    def score_higher_is_better(self) -> bool:
        return self.evaluation is None or "ceiling" not in self.evaluation


def _latency(records: list[dict[str, Any]]) -> Latency | None:
    """Every kept latency pooled; a bundle without them: the summary of the test with most inferences."""
    pooled = [v for r in records for v in r.get("latencies_us") or ()]
    if pooled:
        return Latency.of(pooled)
    summaries = [r["latency_us"] for r in records if r.get("latency_us")]
    if not summaries:
        return None
    best = max(summaries, key=lambda s: s.get("count", 0))
    return Latency(int(best.get("count", 0)), best["median"], best.get("p95", best["median"]), best.get("max", 0.0))


def model_views(run: Run, zoo: ModelZoo | None = None) -> list[ModelView]:
    """One view per target x model, in the order the run's targets and the models' names sort."""
    views: dict[tuple[str, str], ModelView] = {}
    records: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for test in run.tests:
        for model, record in (test.get("models") or {}).items():
            key = (test["target"], model)
            view = views.setdefault(key, ModelView(*key))
            records.setdefault(key, []).append(record)
            status = test.get("status")
            view.passed += status == "PASS"
            view.failed += status == "FAIL"
            view.skipped += status == "SKIP"
            _fold(view, test, record)
    for key, view in views.items():
        view.latency = _latency(records[key])
        view.sha256 = (run.device(view.target).get("models") or {}).get(view.model, {}).get("sha256")
        recorded = (run.target_facts(view.target).get("models") or {}).get(view.model)
        if isinstance(recorded, dict):  # what the run itself recorded of the model: sizes and budget
            view.flash_bytes = recorded.get("flash_bytes")
            view.arena_size_bytes = recorded.get("arena_bytes")
            budget = recorded.get("budget") or {}
            view.latency_limit_us = view.latency_limit_us or budget.get("latency_us")
            view.arena_limit_bytes = view.arena_limit_bytes or budget.get("arena_bytes")
            continue
        manifest = _manifest(zoo, view.model)
        if manifest is not None:
            view.flash_bytes = manifest.flash_bytes
            view.arena_size_bytes = manifest.arena_bytes
            budget = manifest.budget(view.target)
            view.latency_limit_us = view.latency_limit_us or budget.latency_us
            view.arena_limit_bytes = view.arena_limit_bytes or budget.arena_bytes
    order = {target: i for i, target in enumerate(run.targets)}
    return sorted(views.values(), key=lambda v: (order.get(v.target, len(order)), v.target, v.model))


def _fold(view: ModelView, test: Mapping[str, Any], record: Mapping[str, Any]) -> None:
    if record.get("latency_limit_us") is not None:
        view.latency_limit_us = float(record["latency_limit_us"])
    if record.get("arena_limit_bytes") is not None:
        view.arena_limit_bytes = int(record["arena_limit_bytes"])
    if record.get("arena_used_bytes") is not None:
        view.arena_used_bytes = max(view.arena_used_bytes or 0, int(record["arena_used_bytes"]))
    if record.get("evaluation"):
        view.evaluation = dict(record["evaluation"])
    golden = record.get("golden")
    if golden and (view.golden is None or ("outputs" in golden and "outputs" not in view.golden)):
        view.golden = dict(golden)
    if record.get("emulated_cost"):
        view.emulated_cost = dict(record["emulated_cost"])
    for key, value in record.items():
        if key == "events" or key.startswith("events_"):
            source = str(value.get("source") or key.removeprefix("events").lstrip("_") or "protocol")
            view.events.append(EventRun(str(test["test"]), source, str(value.get("stimulus", "")), dict(value)))


def _manifest(zoo: ModelZoo | None, model: str) -> ModelManifest | None:
    if zoo is None or model not in zoo.names():
        return None
    try:
        return zoo.manifest(model)
    except HilError:
        return None  # the report still renders what the run measured


def time_basis(run: Run, target: str) -> str:
    """What a target's latency measures, as the report labels it: virtual, wall or the twin's CPU time."""
    device = run.device(target)
    facts = device.get("facts") or {}
    backend = str(run.target_facts(target).get("backend") or device.get("backend") or facts.get("backend") or "")
    if str(device.get("firmware_version", "")).startswith("twin") or backend == "reference":
        return "CPU time of the twin's inference thread"
    if backend in ("renode", "qemu") or "renode" in facts or "qemu" in facts:
        return "virtual time (emulated clock)"
    if backend == "board" or "board_id" in facts or "serial" in facts:
        return "wall time (board clock)"
    if backend == "native" or "firmware" in facts:
        return "host time (native_sim)"
    return "device clock"


def memory_of(run: Run, target: str) -> dict[str, int]:
    """The device's runtime memory (stack and heap high-water) from the last test that asked, where known."""
    found: dict[str, int] = {}
    for test in run.tests:
        memory = test.get("memory")
        if test.get("target") == target and isinstance(memory, dict):
            found = {k: int(v) for k, v in memory.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return found


def image_memory(run: Run, target: str) -> dict[str, int]:
    """The firmware image's static flash and RAM, where the bundle records them (device facts or environment)."""
    device = run.device(target)
    sources: list[Any] = [device.get("image"), device.get("memory"), (device.get("facts") or {}).get("image")]
    env_targets = run.environment.get("targets")
    if isinstance(env_targets, dict):
        sources.append((env_targets.get(target) or {}).get("image"))
    for source in sources:
        if isinstance(source, dict) and "flash_bytes" in source:
            return {k: int(source[k]) for k in ("flash_bytes", "ram_bytes") if isinstance(source.get(k), int | float)}
    return {}
