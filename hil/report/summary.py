"""The end-of-run summary: one small table per target and model, readable at 80 columns.

Each table says how the model's tests went and, for each thing a budget limits, what was measured,
the limit and the headroom: the evaluation score against its floor (accuracy) or ceiling (error),
latency p50/p95/max against the latency budget (checked on p95), the arena used against its
budget (with the arena size the device reserves), and the model's and firmware image's flash and
RAM where known. The per-test table (:func:`tests_table`) goes to the bundle's ``run.log``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hil.checks import MINUS

SUMMARY_WIDTH = 80
LOG_WIDTH = 160
FAILURES_SHOWN = 10  # the terminal names the first failures; run.log has every test
STATUS_COLOURS = {"PASS": "green", "FAIL": "red", "SKIP": "yellow"}


@dataclass(frozen=True, slots=True)
class Limit:
    """A measured value against its limit: ``floor`` (must reach) or a ceiling (must not exceed)."""

    measured: float
    limit: float | None
    floor: bool = False

    @property
    def headroom_pct(self) -> float | None:
        if self.limit is None or self.limit == 0:
            return None
        room = (self.measured - self.limit) if self.floor else (self.limit - self.measured)
        return room / abs(self.limit) * 100


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """What one run measured of one model on one target."""

    target: str
    model: str
    passed: int
    failed: int
    skipped: int
    metric: str | None = None
    score: Limit | None = None
    latency_us: tuple[float, float, float] | None = None  # p50, p95, max
    latency: Limit | None = None  # p95 against the budget (or the test's limit)
    arena: Limit | None = None  # used against the budget
    arena_size_bytes: int | None = None
    model_flash_bytes: int | None = None
    image_flash_bytes: int | None = None
    image_ram_bytes: int | None = None


def _worst(records: list[dict[str, Any]], key: Any) -> dict[str, Any] | None:
    return max(records, key=key) if records else None


def summarize(metrics: Mapping[str, Any]) -> list[ModelSummary]:
    """One summary per target and model the tests touched, in the run's target order and by model name."""
    env_targets = (metrics.get("environment") or {}).get("targets") or {}
    grouped: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for test in metrics.get("tests") or []:
        for model, record in (test.get("models") or {}).items():
            grouped.setdefault((test["target"], model), []).append((test.get("status", ""), record))
    order = {t: i for i, t in enumerate(metrics.get("targets") or [])}
    out = []
    for (target, model), entries in sorted(grouped.items(), key=lambda kv: (order.get(kv[0][0], 1 << 30), kv[0])):
        statuses = [s for s, _ in entries]
        records = [r for _, r in entries]
        info = (env_targets.get(target) or {}).get("models", {}).get(model) or {}
        image = (env_targets.get(target) or {}).get("image") or {}
        out.append(
            ModelSummary(
                target,
                model,
                statuses.count("PASS"),
                statuses.count("FAIL"),
                statuses.count("SKIP"),
                *_evaluation(records, info),
                *_latency(records, info),
                _arena(records, info),
                info.get("arena_bytes"),
                info.get("flash_bytes"),
                image.get("flash_bytes"),
                image.get("ram_bytes"),
            )
        )
    return out


def _evaluation(records: list[dict[str, Any]], info: Mapping[str, Any]) -> tuple[str | None, Limit | None]:
    scored = [r["evaluation"] for r in records if isinstance(r.get("evaluation"), dict) and "score" in r["evaluation"]]
    if not scored:
        return info.get("metric"), None
    floor = any("floor" in e for e in scored) or ("floor" in info and not any("ceiling" in e for e in scored))
    worst = (min if floor else max)(scored, key=lambda e: e["score"])
    bound = worst.get("floor", worst.get("ceiling", info.get("floor", info.get("ceiling"))))
    name = str(worst.get("metric", info.get("metric", "score")))
    if worst.get("set_samples"):  # a seeded subset of the evaluation set (eval_samples): say so
        name += f" {worst.get('samples')}/{worst['set_samples']}"
    return name, Limit(float(worst["score"]), bound, floor=floor)


def _latency(
    records: list[dict[str, Any]], info: Mapping[str, Any]
) -> tuple[tuple[float, float, float] | None, Limit | None]:
    """The latency check's numbers (the worst p95 of the tests that checked it), else the most-measured test's."""
    timed = [r for r in records if isinstance(r.get("latency_us"), dict)]
    checked = [r for r in timed if r.get("latency_limit_us") is not None]
    chosen = _worst(checked, lambda r: r["latency_us"].get("p95", r["latency_us"]["median"])) or _worst(
        timed, lambda r: r["latency_us"].get("count", 0)
    )
    if chosen is None:
        return None, None
    stats = chosen["latency_us"]
    p50, p95 = float(stats["median"]), float(stats.get("p95", stats["median"]))
    worst_max = max(float(r["latency_us"].get("max", r["latency_us"]["median"])) for r in timed)
    limit = chosen.get("latency_limit_us")
    if limit is None:
        limit = (info.get("budget") or {}).get("latency_us")
    return (p50, p95, worst_max), Limit(p95, limit)


def _arena(records: list[dict[str, Any]], info: Mapping[str, Any]) -> Limit | None:
    used = [int(r["arena_used_bytes"]) for r in records if r.get("arena_used_bytes") is not None]
    if not used:
        return None
    limits = [r["arena_limit_bytes"] for r in records if r.get("arena_limit_bytes") is not None]
    limit = min(limits) if limits else (info.get("budget") or {}).get("arena_bytes")
    return Limit(max(used), limit)


# --- rendering --------------------------------------------------------------------------------------------


def _us(values: Sequence[float]) -> str:
    """Latencies in one unit: ``3.2 / 5.4 / 33.9 µs`` or ``2.21 / 2.25 / 2.4 ms``."""
    if max(values) >= 1000:
        return " / ".join(f"{v / 1000:.3g}" for v in values) + " ms"
    return " / ".join(f"{v:.3g}" for v in values) + " µs"


def _bytes(value: float | None) -> str:
    return "—" if value is None else f"{int(value):,} B"


def _headroom(limit: Limit | None) -> Text:
    pct = limit.headroom_pct if limit else None
    if pct is None:
        return Text("—", style="dim")
    text = f"{pct:+.0f} %".replace("-", MINUS)
    return Text(text, style="green" if pct >= 0 else "bold red")


def model_table(s: ModelSummary) -> Group:
    """The summary table of one target and model, under a title line (fits 80 columns)."""
    verdict = "red" if s.failed else "green" if s.passed else "yellow"
    title = Text.assemble(
        (f"{s.target} · {s.model}", "bold"),
        ": ",
        (f"{s.passed} passed", "green" if s.passed else ""),
        ", ",
        (f"{s.failed} failed", "red" if s.failed else ""),
        ", ",
        (f"{s.skipped} skipped", "yellow" if s.skipped else ""),
    )
    table = Table(box=box.SIMPLE_HEAD, border_style=verdict, pad_edge=False, show_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("measured", no_wrap=True)
    table.add_column("limit", no_wrap=True)
    table.add_column("headroom", justify="right", no_wrap=True)
    if s.score is not None:
        bound = "—" if s.score.limit is None else f"{'floor' if s.score.floor else 'ceiling'} {s.score.limit:g}"
        table.add_row(s.metric or "score", f"{s.score.measured:.4f}", bound, _headroom(s.score))
    elif s.metric:
        table.add_row(s.metric, Text("not evaluated", style="dim"), "", "")
    if s.latency_us is not None and s.latency is not None:
        budget = "—" if s.latency.limit is None else f"p95 ≤ {_us([s.latency.limit])}"
        table.add_row("latency p50/p95/max", _us(s.latency_us), budget, _headroom(s.latency))
    if s.arena is not None:
        size = f" of {s.arena_size_bytes:,}" if s.arena_size_bytes else ""
        budget = "—" if s.arena.limit is None else f"≤ {_bytes(s.arena.limit)}"
        table.add_row("arena used / size", f"{s.arena.measured:,.0f}{size} B", budget, _headroom(s.arena))
    if s.model_flash_bytes is not None or s.image_flash_bytes is not None:
        image = "" if s.image_flash_bytes is None else f" / image {_bytes(s.image_flash_bytes)}"
        table.add_row("flash: model" + (" / image" if image else ""), f"{_bytes(s.model_flash_bytes)}{image}", "", "")
    if s.image_ram_bytes is not None:
        table.add_row("RAM: image", _bytes(s.image_ram_bytes), "", "")
    return Group(title, table)


def run_state(metrics: Mapping[str, Any]) -> Text:
    """``complete`` in green, or ``INCOMPLETE: <why>`` in red."""
    if metrics.get("complete", True):
        return Text("complete", style="green")
    return Text(f"INCOMPLETE: {metrics.get('incomplete_reason') or 'the run did not finish'}", style="bold red")


def summary(metrics: Mapping[str, Any], out_dir: Path | None = None) -> RenderableType:
    """The whole end-of-run summary: the run's state and counts, one table per target and model, the failures."""
    parts: list[RenderableType] = []
    for model in summarize(metrics):
        parts.append(model_table(model))
    counts = metrics.get("summary") or {}
    line = Text.assemble(
        (f"{counts.get('tests', 0)} tests: ", "bold"),
        (f"{counts.get('passed', 0)} passed", "green"),
        ", ",
        (f"{counts.get('failed', 0)} failed", "red" if counts.get("failed") else ""),
        ", ",
        (f"{counts.get('skipped', 0)} skipped", "yellow" if counts.get("skipped") else ""),
        f" on {', '.join(metrics.get('targets') or []) or 'no target'}; ",
        run_state(metrics),
    )
    parts.append(line)
    failures = [t for t in metrics.get("tests") or [] if t.get("status") == "FAIL"]
    for failed in failures[:FAILURES_SHOWN]:
        what = f"{failed['target']} {failed['framework']}: {failed['test']}: {failed.get('message', '')}"
        parts.append(Text.assemble(("FAIL ", "red"), what))
    if len(failures) > FAILURES_SHOWN:
        parts.append(Text(f"... and {len(failures) - FAILURES_SHOWN} more failures: every test is in run.log", "red"))
    if out_dir is not None:
        log = out_dir / "run.log"
        parts.append(Text(f"bundle: {out_dir}" + (f" (per-test detail: {log})" if log.is_file() else "")))
    return Group(*parts)


def tests_table(metrics: Mapping[str, Any]) -> Table:
    """Every test with what it measured: the per-test detail (``run.log``, ``hil report --tests``)."""
    several = len(metrics.get("targets") or []) > 1
    table = Table(title=f"Tests on {', '.join(metrics.get('targets') or []) or 'no target'}")
    columns = ["target"] if several else []
    columns += ["framework", "test", "status", "model", "inferences", "latency median µs", "arena used B", "golden",
                "outcome"]  # fmt: skip
    for column in columns:
        table.add_column(column, overflow="fold")
    for test in metrics.get("tests") or []:
        status = f"[{STATUS_COLOURS.get(test['status'], 'white')}]{test['status']}[/]"
        for name, m in (test.get("models") or {"": {}}).items():
            golden, evaluation, events = m.get("golden"), m.get("evaluation"), m.get("events")
            outcome = f"{evaluation['metric']} {evaluation['score']:.4f}" if evaluation else ""
            if events:
                outcome = f"events {events['matched']}/{events['expected']}, {len(events['unexpected'])} unexpected"
            latency = m.get("latency_us")
            row = [escape(test["target"])] if several else []
            row += [
                escape(test["framework"]),
                escape(test["test"]),
                status,
                escape(name),
                str(m.get("inferences", "")),
                f"{latency['median']:.1f}" if latency else "",
                str(m.get("arena_used_bytes", "")),
                f"{golden['vectors'] - golden['mismatched']}/{golden['vectors']}" if golden else "",
                escape(outcome),
            ]
            table.add_row(*row)
    return table


def write_run_log(path: Path, metrics: Mapping[str, Any]) -> None:
    """``run.log``: the per-test table and the summary, as plain text."""
    with path.open("w", encoding="utf-8") as f:
        console = Console(file=f, width=LOG_WIDTH, no_color=True, emoji=False, highlight=False)
        console.print(tests_table(metrics))
        console.print(summary(metrics))
