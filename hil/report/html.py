"""The self-contained HTML report: jinja2 templates (package data), plots embedded as PNG ``data:`` URIs.

One file, no network and no script: per target x model pass/fail, latency histograms against the
budget, accuracy with its confusion matrix, memory against budgets, event timelines of streaming
tests, the comparison of targets, baselines over time, failures with the console tail and the
environment of each run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from hil import __version__
from hil.checks import headroom
from hil.errors import HilError
from hil.models import ModelZoo
from hil.report import plots
from hil.report.compare import Comparison, Prediction, compare_targets, predictions
from hil.report.runs import EventRun, ModelView, Run, image_memory, memory_of, model_views, time_basis
from hil.stimuli import Stimulus, load_stimulus

HISTORY_UNITS = {"latency": "µs", "bytes": "bytes", "instructions": "instructions"}


@dataclass(slots=True)
class Card:
    """One target x model of one run, as the page shows it."""

    run: Run
    view: ModelView
    time_label: str
    images: list[tuple[str, str]] = field(default_factory=list)  # (caption, data URI)
    confusion: dict[str, Any] | None = None
    predicted: Prediction | None = None
    row: dict[str, Any] = field(default_factory=dict)  # the overview table's cells

    @property
    def anchor(self) -> str:
        return f"{self.run.run_id}-{self.view.target}-{self.view.model}".replace(":", "-").replace(" ", "-")


def _environment(run: Run) -> list[tuple[str, str]]:
    """The run's environment (tool versions, commit, host...) and each device's identity, as rows."""
    rows = [("results", str(run.path)), ("run id", run.run_id), ("tinyml-hil", str(run.metrics.get("tool_version")))]
    rows += [(f"environment: {k}", _text(v)) for k, v in sorted(run.environment.items())]
    for device in run.metrics.get("devices") or []:
        target = device.get("target", "?")
        identity = {k: device.get(k) for k in ("board", "firmware_version", "build_id", "runtime", "clock_hz")}
        rows.append((f"{target}: device", ", ".join(f"{k} {v}" for k, v in identity.items() if v is not None)))
        rows += [(f"{target}: {k}", _text(v)) for k, v in sorted((device.get("facts") or {}).items())]
        rows += [
            (f"{target}: model {m}", str(v.get("sha256"))) for m, v in sorted((device.get("models") or {}).items())
        ]
    return list(dict.fromkeys(rows))  # a restarted device repeats its identity


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _stimulus(run: Run, zoo: ModelZoo | None, view: ModelView, name: str) -> Stimulus | None:
    candidates = [found] if (found := run.stimulus(name, view.target)) else []
    if zoo is not None:
        candidates.append(zoo.root / view.model / "stimuli" / name)
    for path in candidates:
        if path.is_file():
            try:
                return load_stimulus(path)
            except HilError:
                return None
    return None


def _timeline(run: Run, zoo: ModelZoo | None, view: ModelView, events: EventRun, tests: Sequence[str]) -> str:
    stimulus = _stimulus(run, zoo, view, events.stimulus)
    record = events.record
    if "windows" in record:
        windows = [plots.Window(w["label"], w["start_s"], w["end_s"]) for w in record["windows"]]
    else:
        windows = [plots.Window(e.label, e.start_s, e.end_s) for e in (stimulus.expected or ())] if stimulus else []
    unexpected = set(record.get("unexpected") or ())
    if "detected" in record:
        detected = [
            plots.Detection(d["label"], d["time_s"], f"{d['label']}@{d['time_s']:.2f}s" not in unexpected)
            for d in record["detected"]
        ]
    else:  # older bundles name only the unexpected detections
        detected = [plots.Detection(u.split("@")[0], float(u.split("@")[1].rstrip("s")), False) for u in unexpected]
    title = (f"{view.target} / {view.model}: {events.stimulus} via {events.source}: "
             f"{record.get('matched', 0)}/{record.get('expected', 0)} matched, {len(unexpected)} unexpected "
             f"({len(tests)} test{'s' if len(tests) > 1 else ''})")  # fmt: skip
    return plots.event_timeline(
        stimulus.times_s if stimulus else None, stimulus.samples if stimulus else None,
        stimulus.channels if stimulus else (), stimulus.unit if stimulus else "", windows, detected, title,
    )  # fmt: skip


def _card(run: Run, zoo: ModelZoo | None, view: ModelView, predicted: Prediction | None) -> Card:
    device = run.device(view.target)
    card = Card(run, view, time_basis(run, view.target), predicted=predicted)
    name = f"{view.target} / {view.model}"
    if view.latency is not None and view.latency.samples_us:
        card.images.append((
            f"latency of {view.latency.count} inferences ({card.time_label})",
            plots.latency_histogram(view.latency.samples_us, view.latency.median_us, view.latency.p95_us,
                                    view.latency_limit_us, device.get("clock_hz"), card.time_label,
                                    f"{name}: latency"),
        ))  # fmt: skip
    evaluation = view.evaluation or {}
    if evaluation.get("confusion"):
        labels = list(evaluation.get("labels") or [str(i) for i in range(len(evaluation["confusion"]))])
        card.confusion = {"labels": labels, "rows": list(zip(labels, evaluation["confusion"], strict=False))}
        card.images.append((
            f"confusion matrix on {evaluation.get('samples', '?')} evaluation samples",
            plots.confusion_matrix(labels, evaluation["confusion"], f"{name}: {evaluation['metric']}"),
        ))  # fmt: skip
    bars = []
    if view.flash_bytes is not None:
        bars.append(plots.MemoryBar("model flash (.tflite)", view.flash_bytes))
    if view.arena_used_bytes is not None:
        bars.append(plots.MemoryBar("tensor arena", view.arena_used_bytes, view.arena_size_bytes,
                                    view.arena_limit_bytes))  # fmt: skip
    if bars:
        card.images.append(("memory: used, reserved and budget", plots.memory_bars(bars, f"{name}: memory")))
    shown: dict[tuple[str, str], tuple[EventRun, list[str]]] = {}
    for events in view.events:
        key = (events.stimulus, events.source)
        first, tests = shown.setdefault(key, (events, []))
        tests.append(events.test)
        if first.ok and not events.ok:
            shown[key] = (events, tests)  # a failing one is the one to show
    for (stimulus, source), (events, tests) in shown.items():
        caption = f"event timeline: {stimulus} via {source} (tests: {'; '.join(tests)})"
        card.images.append((caption, _timeline(run, zoo, view, events, tests)))
    return card


def _device_memory(run: Run, target: str) -> str | None:
    memory = {**memory_of(run, target), **image_memory(run, target)}
    bars = []
    for part in ("stack", "heap"):
        used = memory.get(f"{part}_used_bytes")
        if used is not None:
            bars.append(plots.MemoryBar(f"{part} high-water", used, memory.get(f"{part}_size_bytes")))
    bars += [plots.MemoryBar(f"firmware {k.removesuffix('_bytes')}", v) for k, v in memory.items() if k in
             ("flash_bytes", "ram_bytes")]  # fmt: skip
    return plots.memory_bars(bars, f"{target}: device memory") if bars else None


def _row(card: Card) -> dict[str, Any]:
    """The overview table's cells for one card."""
    view = card.view
    latency, limit = view.latency, view.latency_limit_us
    evaluation = view.evaluation or {}
    bound = "floor" if "floor" in evaluation else "ceiling" if "ceiling" in evaluation else None
    score_room = None
    if bound and evaluation.get(bound):
        score_room = headroom(evaluation["score"], evaluation[bound], floor=bound == "floor")
    golden = view.golden
    return {
        "latency": latency,
        "latency_room": headroom(latency.p95_us, limit) if latency and limit else None,
        "latency_over": bool(latency and limit and latency.p95_us > limit),
        "score": evaluation.get("score"),
        "metric": evaluation.get("metric"),
        "bound": f"{'≥' if bound == 'floor' else '≤'} {evaluation[bound]:g}" if bound else "",
        "score_room": score_room,
        "golden": f"{golden['vectors'] - golden['mismatched']}/{golden['vectors']}" if golden else "",
        "golden_ok": not golden or golden["mismatched"] == 0,
        "events": "; ".join(
            f"{e.stimulus} ({e.source}) {e.record.get('matched', 0)}/{e.record.get('expected', 0)}"
            for e in {(e.stimulus, e.source): e for e in view.events}.values()
        ),
        "arena_room": headroom(view.arena_used_bytes, view.arena_limit_bytes)
        if view.arena_used_bytes is not None and view.arena_limit_bytes
        else None,
    }


def _comparisons(runs: Sequence[Run]) -> list[Comparison]:
    """Every (run, target) after the first compared with the first: a run over several targets, or several runs."""
    pairs = [(run, target) for run in runs for target in run.targets]
    if len(pairs) < 2:
        return []
    (run_a, target_a), *others = pairs
    return [compare_targets(run_a, target_a, run, target) for run, target in others]


def render(
    runs: Sequence[Run],
    zoo: ModelZoo | None = None,
    calibration: Mapping[str, Any] | None = None,
    history: Mapping[str, Mapping[str, list[tuple[str, float]]]] | None = None,
) -> str:
    """The report of ``runs`` as one HTML page (history: per metric, per target/model, the saved baselines)."""
    cards, targets = [], []
    for run in runs:
        views = model_views(run, zoo)
        predicted = {(p.target, p.model): p for p in predictions(views, run, dict(calibration or {}))}
        cards += [_card(run, zoo, v, predicted.get((v.target, v.model))) for v in views]
        for target in run.targets:
            targets.append({"run": run, "target": target, "memory": _device_memory(run, target),
                            "time_label": time_basis(run, target)})  # fmt: skip
    for card in cards:
        card.row = _row(card)
    failures = [(run, test, run.console_tail(test)) for run in runs for test in run.tests if test["status"] == "FAIL"]
    history_images = [
        (metric, plots.history({k: v for k, v in series.items()}, metric, _history_unit(metric)))
        for metric, series in sorted((history or {}).items())
    ]
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("hil.report", "templates"), autoescape=True, undefined=jinja2.ChainableUndefined
    )
    return environment.get_template("report.html.j2").render(
        runs=runs,
        cards=cards,
        targets=targets,
        failures=failures,
        comparisons=_comparisons(runs),
        history=history_images,
        history_asked=history is not None,
        environments=[(run, _environment(run)) for run in runs],
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        version=__version__,
    )


def _history_unit(metric: str) -> str:
    if metric.endswith("_us"):
        return "µs"
    if metric.endswith("_bytes"):
        return "bytes"
    return HISTORY_UNITS.get(metric, metric)


def write_html(path: Path, runs: Sequence[Run], **kwargs: Any) -> Path:
    """Render and write atomically (a reader never sees half a page); returns the path."""
    page = render(runs, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(path)
    return path
