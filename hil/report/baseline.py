"""Baselines that gate: a run's numbers kept in SQLite, and a later run compared with them.

Each saved baseline is a row (name, date, commit, tool versions) with one measurement per
target x model x metric. A comparison flags regressions beyond a threshold per kind of metric:
relative for latency, bytes for memory, points (score x 100) for accuracy and error metrics;
counts (golden mismatches, event errors) may not grow; emulated instruction counts must not
change at all while the firmware build and the model are the same, and stay within a relative
threshold when either changed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hil.errors import ConfigError
from hil.models import ModelZoo
from hil.report.runs import ModelView, Run, image_memory, memory_of, model_views

BASELINES_ENV = "HIL_BASELINES"
DEVICE = "(device)"  # the model column of target-wide measurements (stack, heap, image)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS baselines (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, saved_at TEXT NOT NULL, run_id TEXT,
    run_dir TEXT, git_commit TEXT, tool_version TEXT, tools TEXT);
CREATE TABLE IF NOT EXISTS measurements (
    baseline_id INTEGER NOT NULL REFERENCES baselines(id) ON DELETE CASCADE, target TEXT NOT NULL,
    model TEXT NOT NULL, metric TEXT NOT NULL, kind TEXT NOT NULL, value REAL NOT NULL, better TEXT NOT NULL,
    build_id TEXT, model_sha256 TEXT, PRIMARY KEY (baseline_id, target, model, metric));
"""


@dataclass(frozen=True, slots=True)
class Measurement:
    target: str
    model: str
    metric: str
    kind: str  # latency | memory | score | count | instructions
    value: float
    better: str = "lower"  # or "higher"
    build_id: str | None = None
    model_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """How much worse a metric may get before it is a regression."""

    latency_pct: float = 10.0
    memory_bytes: int = 0
    score_points: float = 0.5
    instructions_pct: float = 1.0  # only when the firmware or the model changed; otherwise exact

    def for_model(self, zoo: ModelZoo | None, model: str, target: str, given: set[str]) -> Thresholds:
        """The manifest's budget may set its own thresholds; those given on the command line win."""
        if zoo is None or model not in zoo.names():
            return self
        budget = zoo.manifest(model).budget(target)
        manifest = {
            "latency_pct": budget.latency_regression_pct,
            "memory_bytes": budget.arena_regression_bytes,
            "score_points": budget.score_regression_points,
        }
        return replace(self, **{k: v for k, v in manifest.items() if v is not None and k not in given})


def measurements(run: Run, zoo: ModelZoo | None = None) -> list[Measurement]:
    """What a baseline keeps of ``run``: per target x model, and per target for the device's memory."""
    found: list[Measurement] = []
    for view in model_views(run, zoo):
        found += _of_model(view, run.device(view.target).get("build_id"))
    for target in run.targets:
        build_id = run.device(target).get("build_id")
        device_memory = {**memory_of(run, target), **image_memory(run, target)}
        for key, value in sorted(device_memory.items()):
            if key.endswith("_used_bytes") or key in ("flash_bytes", "ram_bytes"):
                found.append(Measurement(target, DEVICE, key, "memory", float(value), build_id=build_id))
    return found


def _of_model(view: ModelView, build_id: str | None) -> Iterator[Measurement]:
    def m(metric: str, kind: str, value: float, better: str = "lower") -> Measurement:
        return Measurement(view.target, view.model, metric, kind, float(value), better, build_id, view.sha256)

    if view.latency is not None:
        yield m("latency_p50_us", "latency", view.latency.median_us)
        yield m("latency_p95_us", "latency", view.latency.p95_us)
    if view.arena_used_bytes is not None:
        yield m("arena_used_bytes", "memory", view.arena_used_bytes)
    if view.evaluation is not None:
        better = "higher" if view.score_higher_is_better else "lower"
        yield m(str(view.evaluation["metric"]), "score", view.evaluation["score"], better)
    if view.golden is not None:
        yield m("golden_mismatched", "count", view.golden.get("mismatched", 0))
    if view.events:
        errors = sum(len(e.record.get("missed", [])) + len(e.record.get("unexpected", [])) for e in view.events)
        yield m("event_errors", "count", errors)
    if view.emulated_cost and view.emulated_cost.get("instructions_median") is not None:
        yield m("instructions", "instructions", view.emulated_cost["instructions_median"])


def default_path(root: Path) -> Path:
    """``$HIL_BASELINES``, else ``.hil/baselines.sqlite`` in the project."""
    return Path(os.environ.get(BASELINES_ENV) or root / ".hil" / "baselines.sqlite")


@contextmanager
def _open(path: Path, create: bool) -> Iterator[sqlite3.Connection]:
    if not create and not path.is_file():
        raise ConfigError(f"no baselines at {path}: save one first with `hil baseline save DIR`")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with closing(sqlite3.connect(path, timeout=30)) as db:
            db.execute("PRAGMA foreign_keys = ON")
            db.executescript(_SCHEMA)
            with db:
                yield db
    except sqlite3.DatabaseError as err:
        raise ConfigError(f"{path}: not a baselines database ({err}): move it away or point --db elsewhere") from err


def _commit(run: Run, root: Path) -> str | None:
    suites = run.environment.get("suites")
    for suite in suites.values() if isinstance(suites, dict) else ():
        commit = suite.get("git_commit") if isinstance(suite, dict) else None
        if isinstance(commit, str) and commit:
            return commit + (" (dirty)" if suite.get("git_dirty") else "")
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head} (project at save time)" if head else None


def _tools(run: Run) -> dict[str, Any]:
    tools: dict[str, Any] = {"tinyml-hil": run.metrics.get("tool_version")}
    for device in run.metrics.get("devices") or []:
        tools[device.get("target", "?")] = {
            "runtime": device.get("runtime"), "firmware_version": device.get("firmware_version"),
            **{k: v for k, v in (device.get("facts") or {}).items() if "path" not in k and "log" not in k},
        }  # fmt: skip
    return tools | ({"environment": run.environment} if run.environment else {})


def save(path: Path, run: Run, name: str | None, root: Path, zoo: ModelZoo | None = None) -> tuple[int, int]:
    """Store ``run`` as a baseline; returns its id and how many measurements it holds."""
    if not run.complete:
        raise ConfigError(f"{run.path} is an incomplete run (interrupted or crashed): not saved as a baseline")
    found = measurements(run, zoo)
    if not found:
        raise ConfigError(f"{run.path}: the run measured nothing a baseline keeps (no test used a device)")
    with _open(path, create=True) as db:
        cursor = db.execute(
            "INSERT INTO baselines (name, saved_at, run_id, run_dir, git_commit, tool_version, tools) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name or run.run_id, datetime.now(UTC).isoformat(timespec="seconds"), run.run_id, str(run.path),
             _commit(run, root), run.metrics.get("tool_version"), json.dumps(_tools(run), default=str)),
        )  # fmt: skip
        baseline_id = int(cursor.lastrowid or 0)
        db.executemany(
            "INSERT INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(baseline_id, m.target, m.model, m.metric, m.kind, m.value, m.better, m.build_id, m.model_sha256)
             for m in found],
        )  # fmt: skip
    return baseline_id, len(found)


@dataclass(frozen=True, slots=True)
class Baseline:
    id: int
    name: str
    saved_at: str
    git_commit: str | None
    tool_version: str | None
    measurements: tuple[Measurement, ...] = field(default=())

    @property
    def label(self) -> str:
        return f"{self.name} #{self.id} ({self.saved_at[:16]})"


def _baselines(db: sqlite3.Connection, name: str | None = None) -> list[Baseline]:
    query = "SELECT id, name, saved_at, git_commit, tool_version FROM baselines"
    rows = db.execute(query + (" WHERE name = ?" if name else "") + " ORDER BY id", (name,) if name else ())
    found = []
    for row in rows.fetchall():
        values = db.execute(
            "SELECT target, model, metric, kind, value, better, build_id, model_sha256 FROM measurements "
            "WHERE baseline_id = ? ORDER BY target, model, metric",
            (row[0],),
        ).fetchall()
        found.append(Baseline(*row, measurements=tuple(Measurement(*v) for v in values)))
    return found


def list_baselines(path: Path, name: str | None = None) -> list[Baseline]:
    with _open(path, create=False) as db:
        return _baselines(db, name)


@dataclass(frozen=True, slots=True)
class Delta:
    target: str
    model: str
    metric: str
    baseline: float | None
    value: float | None
    limit: str  # the threshold that applied, as text
    verdict: str  # ok | REGRESSION | improved | new | missing
    note: str = ""
    kind: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    deltas: tuple[Delta, ...]
    against: dict[str, str]  # target -> the baseline compared with
    missing: tuple[str, ...]  # what could not be compared, said in words

    @property
    def regressed(self) -> bool:
        return any(d.verdict == "REGRESSION" for d in self.deltas)

    @property
    def exit_code(self) -> int:
        return 1 if self.regressed else 2 if self.missing else 0


def compare(
    path: Path, run: Run, against: str | None, thresholds: Thresholds, zoo: ModelZoo | None = None,
    given: Iterable[str] = (),
) -> Verdict:  # fmt: skip
    """``run`` against, per target, the latest baseline (named ``against``, if given) that holds the target."""
    if not run.complete:
        raise ConfigError(f"{run.path} is an incomplete run (interrupted or crashed): nothing to gate on")
    with _open(path, create=False) as db:
        saved = _baselines(db, against)
    if against and not saved:
        raise ConfigError(f"no baseline named {against!r} in {path}")
    current = {(m.target, m.model, m.metric): m for m in measurements(run, zoo)}
    deltas: list[Delta] = []
    missing: list[str] = []
    chosen: dict[str, str] = {}
    for target in run.targets:
        base = next((b for b in reversed(saved) if any(m.target == target for m in b.measurements)), None)
        if base is None:
            which = f"named {against!r} " if against else ""
            missing.append(f"no baseline {which}holds target {target} (in {path}): save one with `hil baseline save`")
            continue
        chosen[target] = base.label
        old = {(m.target, m.model, m.metric): m for m in base.measurements if m.target == target}
        for key in sorted(old.keys() | {k for k in current if k[0] == target}):
            limits = thresholds.for_model(zoo, key[1], target, set(given))
            delta = _judge(old.get(key), current.get(key), limits, key)
            deltas.append(delta)
            if delta.verdict == "missing":
                missing.append(f"{target} {key[1]} {key[2]}: in baseline {base.label}, not measured in this run")
    return Verdict(tuple(deltas), chosen, tuple(missing))


def _judge(old: Measurement | None, new: Measurement | None, limits: Thresholds, key: tuple[str, ...]) -> Delta:
    target, model, metric = key
    if old is None or new is None:
        verdict = "new" if old is None else "missing"
        kind = (old or new).kind if (old or new) else ""
        return Delta(target, model, metric, old and old.value, new and new.value, "", verdict, kind=kind)
    sign = -1.0 if new.better == "higher" else 1.0
    worse = (new.value - old.value) * sign  # > 0: worse
    note = ""
    if new.kind == "latency":
        limit, bad = f"+{limits.latency_pct:g} %", worse > abs(old.value) * limits.latency_pct / 100
    elif new.kind == "memory":
        limit, bad = f"+{limits.memory_bytes} B", worse > limits.memory_bytes
    elif new.kind == "score":
        limit, bad = f"{limits.score_points:g} points", worse * 100 > limits.score_points
    elif new.kind == "instructions":
        same = old.build_id == new.build_id and old.model_sha256 == new.model_sha256
        if same:
            limit, bad = "exact (same firmware and model)", new.value != old.value
        else:
            limit = f"+{limits.instructions_pct:g} % (firmware or model changed)"
            bad = worse > abs(old.value) * limits.instructions_pct / 100
    else:
        limit, bad = "may not grow", worse > 0
    if old.build_id != new.build_id and old.build_id and new.build_id:
        note = f"firmware build {old.build_id} -> {new.build_id}"
    if old.model_sha256 != new.model_sha256 and old.model_sha256 and new.model_sha256:
        note = (note + "; " if note else "") + "model changed (sha256)"
    verdict = "REGRESSION" if bad else "improved" if worse < 0 else "ok"
    return Delta(target, model, metric, old.value, new.value, limit, verdict, note, new.kind)


def history(path: Path, name: str | None = None) -> dict[str, dict[str, list[tuple[str, float]]]]:
    """Per metric, per ``target/model``: its value in each saved baseline, oldest first."""
    series: dict[str, dict[str, list[tuple[str, float]]]] = {}
    for base in list_baselines(path, name):
        for m in base.measurements:
            series.setdefault(m.metric, {}).setdefault(f"{m.target} / {m.model}", []).append((base.label, m.value))
    return series
