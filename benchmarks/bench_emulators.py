"""Where the wall time of a full HIL run goes on each emulated target, phase by phase.

    python benchmarks/bench_emulators.py [--target T ...] [--out DIR] [--json FILE] [--compare BEFORE.json]
    python benchmarks/bench_emulators.py --from-results DIR --target T --wall-s S   # a run made before

For every emulated target of the configuration (``renode:*``, ``qemu:*``, ``native_sim``; or those
given with ``--target``) that can run here, runs the full suites with ``hil run --target T`` and
reads back the spans every device wrote to ``phases.jsonl`` (``hil.phases``): finding and starting
the emulator, loading the platform, our C# models and the firmware, boot and handshake,
per-test resets, inference and other requests, sensor feeding, monitor round trips. Each row of
the table is a phase's share of the run's wall time; what no span covers is Robot/pytest, the
checks and the reports. A second table gives, per model, the emulated instructions of one
inference (latency checks), the host time of its request and the effective MIPS (instructions
per host second). Targets that cannot run are listed with the reason and skipped.

``--json`` keeps everything (rows, models, pass/fail counts, the load average) so runs can be
compared; ``--compare`` prints a before/after table against such a file. The machine's load
average is printed with every run: numbers from a busy machine are only comparable to numbers
from the same machine under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hil import phases as ph
from hil.backends import unavailable_reason
from hil.config import HilConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
EMULATED = ("renode", "qemu", "native")
RUN_TIMEOUT_S = 3600.0

# (key, label, phases): a span counts in the row of its nearest enclosing phase of ph.ABSORBING (or its own).
ROWS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("find", "find the emulator (version check)", (ph.FIND,)),
    ("spawn", "emulator start (process → monitor/console)", (ph.SPAWN,)),
    ("script", "machine script (all of it where not split below)", (ph.SCRIPT,)),
    ("platform", "platform description (.repl)", (ph.PLATFORM,)),
    ("model", "compile our C# models (console bridge, I2C)", (ph.MODEL,)),
    ("firmware", "firmware load (ELF)", (ph.FIRMWARE,)),
    ("run", "start the emulation", (ph.RUN,)),
    ("boot", "boot until the firmware answers", (ph.BOOT,)),
    ("handshake", "handshake (INFO, MODEL_INFO)", (ph.HANDSHAKE,)),
    ("reset", "per-test machine reset → answering", (ph.RESET,)),
    ("infer", "inference requests (INFER)", (f"{ph.REQUEST}.INFER",)),
    ("requests", "other requests", (ph.REQUEST,)),
    ("sensor", "sensor feeding (recording played)", (ph.SENSOR,)),
    ("counters", "instruction-counter reads (monitor)", (ph.COUNTERS,)),
    ("monitor", "other monitor round trips", (ph.MONITOR,)),
    ("stop", "emulator stop", (ph.STOP,)),
)
REST = ("harness", "Robot/pytest, checks, reports (no span)")
WAKE_MIN = 1000  # instructions: more than this above an input's lowest count is an idle wake-up (nRF ~1,600)
STARTUP = ("find", "spawn", "script", "platform", "model", "firmware", "run")


@dataclass
class Row:
    seconds: float = 0.0
    count: int = 0


@dataclass
class ModelCost:
    inferences: int
    instructions_median: float
    host_ms_median: float
    mips: float


@dataclass
class TargetRun:
    target: str
    wall_s: float
    exit_code: int
    load_avg: tuple[float, float, float]
    summary: dict[str, int]
    rows: dict[str, Row] = field(default_factory=dict)
    models: dict[str, ModelCost] = field(default_factory=dict)
    monitor_round_trips: int = 0
    monitor_s: float = 0.0
    emulated_instructions: dict[str, list[float]] = field(default_factory=dict)  # metrics.json, per test
    tests: dict[str, str] = field(default_factory=dict)  # test -> status
    suites_s: dict[str, float] = field(default_factory=dict)  # framework -> its process's wall time
    instructions: dict[str, list[list[int]]] = field(default_factory=dict)  # model -> each latency check's counts
    cpu_s: float = 0.0  # user + system seconds of the run and every process it waited for (emulators included)

    @property
    def busy_s(self) -> float:
        """The suites' time added up (more than the wall time when they ran side by side)."""
        return sum(self.suites_s.values()) or self.wall_s


def row_of(phase: str) -> str | None:
    for key, _, names in ROWS:
        if phase in names:
            return key
    if phase.startswith(f"{ph.REQUEST}."):
        return "requests"
    return None


def load_spans(out_dir: Path) -> list[dict[str, Any]]:
    spans = []
    for path in sorted(out_dir.glob("artifacts/**/" + ph.PHASES_FILE)):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                spans.append(json.loads(line))
    return spans


def _forest(spans: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any] | None, float]]:
    """Each span with its parent (the innermost span of its process that holds it) and its own time."""
    result = []
    by_pid: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for span in spans:
        by_pid[span["pid"]].append(span)
    for group in by_pid.values():
        group.sort(key=lambda s: (s["t0"], -s["t1"]))
        stack: list[dict[str, Any]] = []
        children_s: dict[int, float] = defaultdict(float)
        parents: dict[int, dict[str, Any] | None] = {}
        for span in group:
            while stack and stack[-1]["t1"] < span["t1"] - 1e-6:
                stack.pop()
            parent = stack[-1] if stack else None
            parents[id(span)] = parent
            if parent is not None:
                children_s[id(parent)] += span["t1"] - span["t0"]
            stack.append(span)
        for span in group:
            own = max(0.0, span["t1"] - span["t0"] - children_s[id(span)])
            result.append((span, parents[id(span)], own))
    return result


def attribute(spans: list[dict[str, Any]]) -> tuple[dict[str, Row], int, float]:
    """Rows of the table from the spans; also the monitor round trips (count, seconds) they hold."""
    forest = _forest(spans)
    parent_of = {id(span): parent for span, parent, _ in forest}
    rows = {key: Row() for key, _, _ in ROWS}
    monitor_n, monitor_s = 0, 0.0
    for span, _, own in forest:
        if span["phase"] == ph.MONITOR:
            monitor_n += 1
            monitor_s += span["t1"] - span["t0"]
        owner: dict[str, Any] | None = span
        holder = span
        while owner is not None:
            if owner["phase"] in ph.ABSORBING:
                holder = owner
            owner = parent_of.get(id(owner))
        key = row_of(holder["phase"])
        if key is None:
            continue  # device.open / cost: their own time is the harness's
        rows[key].seconds += own
        if holder is span:
            rows[key].count += 1
    return rows, monitor_n, monitor_s


def measured_inferences(spans: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Per model, each inference measured in instructions: (instructions, host seconds of its request)."""
    measured: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for model, checks in latency_checks(spans).items():
        measured[model] = [pair for check in checks for pair in check]
    return measured


def latency_checks(spans: list[dict[str, Any]]) -> dict[str, list[list[tuple[int, float]]]]:
    """Per model, each latency check's inferences in order (the check cycles through the golden inputs
    from the first, so the k-th inference of every check had the same input)."""
    found = sorted(
        (parent["pid"], parent["t0"], span.get("model", "?"), parent["instructions"], parent["t1"] - parent["t0"])
        for span, parent, _ in _forest(spans)
        if span["phase"] == f"{ph.REQUEST}.INFER" and parent is not None and parent["phase"] == ph.COST
    )
    checks: dict[str, list[list[tuple[int, float]]]] = defaultdict(list)
    last: tuple[int, str] | None = None
    for pid, _, model, instructions, host_s in found:
        if (pid, model) != last:
            checks[model].append([])
            last = (pid, model)
        checks[model][-1].append((instructions, host_s))
    return checks


def model_costs(spans: list[dict[str, Any]]) -> dict[str, ModelCost]:
    """Per model: median instructions and host time of one inference, and the effective MIPS."""
    measured = measured_inferences(spans)
    return {
        model: ModelCost(
            len(pairs),
            statistics.median(i for i, _ in pairs),
            statistics.median(s for _, s in pairs) * 1e3,
            sum(i for i, _ in pairs) / max(1e-9, sum(s for _, s in pairs)) / 1e6,
        )
        for model, pairs in sorted(measured.items())
    }


def read_run(target: str, out_dir: Path, wall_s: float, exit_code: int) -> TargetRun:
    metrics_path = out_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {"summary": {}, "tests": []}
    spans = load_spans(out_dir)
    rows, monitor_n, monitor_s = attribute(spans)
    covered = sum(r.seconds for r in rows.values())
    suites_s = {s["framework"]: s["duration_s"] for s in metrics.get("suites") or [] if "duration_s" in s}
    rows[REST[0]] = Row(max(0.0, (sum(suites_s.values()) or wall_s) - covered), 0)
    instructions: dict[str, list[float]] = defaultdict(list)
    for test in metrics["tests"]:
        for model, facts in (test.get("models") or {}).items():
            if "emulated_cost" in facts:
                instructions[model].append(facts["emulated_cost"]["instructions_median"])
    return TargetRun(
        target,
        round(wall_s, 2),
        exit_code,
        os.getloadavg(),
        dict(metrics["summary"]),
        rows,
        model_costs(spans),
        monitor_n,
        monitor_s,
        dict(instructions),
        {f"{t['framework']}:{t['test']}": t["status"] for t in metrics["tests"]},
        suites_s,
        {model: [[i for i, _ in check] for check in checks] for model, checks in latency_checks(spans).items()},
    )


def run_target(config: HilConfig, target: str, out_dir: Path, extra: list[str], console: Console) -> TargetRun:
    argv = [sys.executable, "-m", "hil.cli", "run", "--target", target, "--out", str(out_dir), *extra]
    console.print(f"[bold]{target}[/bold]: {' '.join(argv[2:])} (load average {os.getloadavg()[0]:.1f})")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    started, cpu_before = time.monotonic(), _children_cpu_s()
    with (out_dir.parent / f"{out_dir.name}.log").open("w") as log:
        proc = subprocess.run(argv, cwd=config.root, stdout=log, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S)
    run = read_run(target, out_dir, time.monotonic() - started, proc.returncode)
    run.cpu_s = round(_children_cpu_s() - cpu_before, 1)
    return run


def _children_cpu_s() -> float:
    """CPU seconds of the processes this one waited for, and of theirs (less sensitive to load than wall time)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def phase_table(run: TargetRun) -> Table:
    s = run.summary
    title = (
        f"{run.target}: {run.wall_s:.1f} s wall, {s.get('passed', 0)} passed, {s.get('failed', 0)} failed, "
        f"{s.get('skipped', 0)} skipped (exit {run.exit_code}; load {run.load_avg[0]:.1f}"
        + (f"; {run.cpu_s:.0f} CPU-s" if run.cpu_s else "")
        + ")"
    )
    if len(run.suites_s) > 1 and run.busy_s > run.wall_s * 1.2:
        side = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in sorted(run.suites_s.items()))
        title += f"; suites side by side: {side}"
    table = Table(title=title)
    for column, justify in (("phase", "left"), ("n", "right"), ("s", "right"), ("share", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    labels = {key: label for key, label, _ in ROWS} | {REST[0]: REST[1]}
    for key, row in run.rows.items():
        if row.seconds >= 0.005 or row.count:
            table.add_row(labels[key], str(row.count or ""), f"{row.seconds:.1f}", f"{row.seconds / run.busy_s:.0%}")
    table.add_row(f"of which monitor round trips ({run.monitor_round_trips})", "", f"{run.monitor_s:.1f}", "")
    table.add_row("suites' time (share base)", "", f"{run.busy_s:.1f}", "100%")
    return table


def model_table(run: TargetRun) -> Table:
    table = Table(title=f"{run.target}: one inference (latency checks)")
    for column in ("model", "n", "instructions", "host ms", "effective MIPS"):
        table.add_column(column, justify="right")
    for model, cost in run.models.items():
        table.add_row(
            model, str(cost.inferences), f"{cost.instructions_median:,.0f}", f"{cost.host_ms_median:.1f}",
            f"{cost.mips:.0f}",
        )  # fmt: skip
    return table


def compare_table(before: dict[str, Any], after: TargetRun) -> Table:
    table = Table(title=f"{after.target}: before → after")
    for column in ("phase", "before s", "after s", "speed-up"):
        table.add_column(column, justify="right" if column != "phase" else "left")
    labels = {key: label for key, label, _ in ROWS} | {REST[0]: REST[1]}

    def add(label: str, was: float, now: float) -> None:
        if was >= 0.005 or now >= 0.005:
            table.add_row(label, f"{was:.1f}", f"{now:.1f}", f"{was / now:.1f}x" if now > 0.005 else "")

    for key, label in labels.items():
        add(label, before["rows"].get(key, {}).get("seconds", 0.0), after.rows.get(key, Row()).seconds)
    startup = [before["rows"].get(k, {}).get("seconds", 0.0) for k in STARTUP], [after.rows[k].seconds for k in STARTUP]
    add("emulator start-up, all of the above", sum(startup[0]), sum(startup[1]))
    add("suites' time added up", sum((before.get("suites_s") or {}).values()) or before["wall_s"], after.busy_s)
    if before.get("cpu_s") and after.cpu_s:
        add("CPU seconds (all processes)", before["cpu_s"], after.cpu_s)
    if after.wall_s > 0:  # unknown for --from-results without --wall-s
        add("total wall", before["wall_s"], after.wall_s)
    return table


def instruction_table(before: dict[str, Any], after: TargetRun) -> Table:
    """Instructions of one inference before and after, input by input.

    The k-th inference of every latency check had the same golden input. Its wake-free count is
    the lowest seen for that input; an inference above it by about one of the firmware's idle
    wake-ups (its 20 ms main-loop tick fell inside the window between the two counter reads)
    counts as "with wake-ups". Same wake-free counts before and after mean the firmware does the
    same work per request; the medians differ by how often the window caught a wake-up.
    """
    table = Table(title=f"{after.target}: emulated instructions per inference, before → after")
    for column in ("model", "median before", "median after", "same wake-free count ±1k", "with wake-ups b/a"):
        table.add_column(column, justify="right")
    was_all: dict[str, list[list[int]]] = before.get("instructions") or {}
    for model in sorted(set(was_all) | set(after.instructions)):
        now = after.instructions.get(model, [])
        was = _as_checks(was_all.get(model, []), len(now[0]) if now else 0)
        inputs = max((len(c) for c in was + now), default=0)
        same = compared = 0
        woke = [0, 0]
        for k in range(inputs):
            b = [c[k] for c in was if len(c) > k]
            a = [c[k] for c in now if len(c) > k]
            floor = min(b + a)
            woke[0] += sum(v - floor > WAKE_MIN for v in b)
            woke[1] += sum(v - floor > WAKE_MIN for v in a)
            if b and a and min(b) - floor <= WAKE_MIN and min(a) - floor <= WAKE_MIN:
                compared += 1
                same += abs(min(b) - min(a)) <= WAKE_MIN  # the UART handling varies by a few hundred
        flat_b, flat_a = [v for c in was for v in c], [v for c in now for v in c]
        table.add_row(
            model,
            f"{statistics.median(flat_b):,.0f}" if flat_b else "",
            f"{statistics.median(flat_a):,.0f}" if flat_a else "",
            f"{same}/{compared} inputs",
            f"{woke[0]}/{len(flat_b)} → {woke[1]}/{len(flat_a)}",
        )
    return table


def _as_checks(values: list[Any], size: int) -> list[list[int]]:
    """Inferences grouped by latency check; files written before they were grouped hold one flat list."""
    if values and isinstance(values[0], int):
        size = size or len(values)
        return [values[start : start + size] for start in range(0, len(values), size)]
    return values


def emulated_targets(config: HilConfig, wanted: Iterable[str]) -> list[str]:
    names = list(wanted) or [name for name, t in config.targets.items() if t.backend in EMULATED]
    return [config.target(name).name for name in names]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", default=[], help="a target to run (default: every emulated one)")
    out = ROOT / "bench-results" / "emulators"  # not results/, which holds one run bundle
    parser.add_argument("--out", type=Path, default=out, help="the runs' bundles, a folder per target")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    parser.add_argument("--compare", type=Path, help="a JSON file of an earlier run: print before/after")
    parser.add_argument("--from-results", type=Path, help="read a finished `hil run --out` folder instead of running")
    parser.add_argument("--wall-s", type=float, default=0.0, help="with --from-results: the run's wall time")
    parser.add_argument("--cpu-s", type=float, default=0.0, help="with --from-results: the run's CPU seconds")
    parser.add_argument("hil_run_args", nargs="*", help="more `hil run` arguments (after --)")
    args = parser.parse_args()
    if args.from_results and not args.target:
        parser.error("--from-results reads one run: name its --target")
    console = Console()
    config = load_config()
    before = json.loads(args.compare.read_text()) if args.compare else {}
    runs: list[TargetRun] = []
    skipped: dict[str, str] = {}
    for name in emulated_targets(config, args.target):
        target = config.target(name)
        if args.from_results:
            run = read_run(name, args.from_results, args.wall_s, 0)
            run.cpu_s = args.cpu_s
        elif reason := unavailable_reason(target, config):
            skipped[name] = reason
            console.print(f"[yellow]skipped[/yellow] {name}: {reason}")
            continue
        else:
            out = args.out / target.board_id
            run = run_target(config, name, out, args.hil_run_args, console)
        runs.append(run)
        console.print(phase_table(run))
        if run.models:
            console.print(model_table(run))
        if name in before.get("runs", {}):
            console.print(compare_table(before["runs"][name], run))
            console.print(instruction_table(before["runs"][name], run))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cores": os.cpu_count(), "skipped": skipped}
        payload["runs"] = {run.target: asdict(run) for run in runs}
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
        console.print(f"measurements: {args.json}")
    return 0 if all(run.exit_code == 0 for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
