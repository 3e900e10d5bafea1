"""``hil baseline``, ``hil compare`` and the HTML side of ``hil report``: argument parsing and printing only.

The work is done in :mod:`hil.report.baseline`, :mod:`hil.report.compare` and :mod:`hil.report.html`.
Exit codes: 0 fine, 1 a regression (``baseline compare``) or a failed test (``report``), 2 usage or
missing data.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hil.config import HilConfig
from hil.errors import ConfigError
from hil.models import ModelZoo
from hil.report import baseline, compare
from hil.report.runs import Run, load_run, model_views

EXIT_REGRESSION = 1
EXIT_MISSING = 2
DEFAULT_HTML = Path("hil-report.html")
VERDICT_STYLE = {"REGRESSION": "bold red", "missing": "bold red", "improved": "green", "new": "yellow", "ok": "green"}


def _zoo(config: HilConfig) -> ModelZoo | None:
    return ModelZoo(config.models_dir) if config.models_dir.is_dir() else None


def _db(config: HilConfig, args: argparse.Namespace) -> Path:
    return (args.db or baseline.default_path(config.root)).resolve()


def _calibration(config: HilConfig, args: argparse.Namespace) -> Path:
    return (getattr(args, "calibration", None) or compare.default_calibration_path(config.root)).resolve()


# --- hil report: --html, --history -----------------------------------------------------------------


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """The HTML report's options on ``hil report``."""
    parser.add_argument("--html", type=Path, help=f"write the self-contained HTML report here (with --history and "
                        f"no --html: {DEFAULT_HTML})")  # fmt: skip
    parser.add_argument("--history", action="store_true", help="add each metric's trend across saved baselines")
    parser.add_argument("--db", type=Path, help="baselines database (default: $HIL_BASELINES or .hil/baselines.sqlite)")
    parser.add_argument("--calibration", type=Path, help="calibration file for predicted board latency "
                        "(default: $HIL_CALIBRATION or .hil/calibration.json)")  # fmt: skip


def report_html(
    config: HilConfig, args: argparse.Namespace, bundles: list[tuple[Path, dict[str, Any]]], console: Console
) -> None:
    """After ``hil report`` printed its table: the predicted board latencies, and the HTML if asked for.

    ``bundles``: each bundle's folder and the metrics ``hil report`` read from it.
    """
    runs = [Run(path.resolve(), metrics) for path, metrics in bundles]
    calibration = compare.read_calibration(_calibration(config, args))
    for run in runs:
        print_predictions(run, calibration, console)
    if not (args.html or args.history):
        return
    history = None
    if args.history:
        db = _db(config, args)
        history = baseline.history(db) if db.is_file() else {}
        if not history:
            console.print(f"[yellow]no baselines saved in {db}[/yellow]: the history section says so", soft_wrap=True)
    from hil.report import html  # matplotlib and jinja2 load only for a page: 0.4 s off every other hil command

    path = html.write_html((args.html or DEFAULT_HTML).resolve(), runs, zoo=_zoo(config), calibration=calibration,
                           history=history)  # fmt: skip
    console.print(f"HTML report: {path}", soft_wrap=True)


def print_run_predictions(config: HilConfig, out_dir: Path, metrics: dict[str, Any], console: Console) -> None:
    """After ``hil run``: the predicted board latency of each model on a calibrated target (``hil compare``)."""
    path = compare.default_calibration_path(config.root)
    try:
        calibration = compare.read_calibration(path)
    except ConfigError as err:  # a broken calibration file must not fail a run that passed
        console.print(f"[yellow]warning:[/yellow] {escape(str(err))}", soft_wrap=True)
        return
    if calibration:
        print_predictions(Run(out_dir, metrics), calibration, console)


def print_predictions(run: Run, calibration: dict[str, Any], console: Console) -> None:
    """Each model's latency on the calibrated board beside the emulator's own, for calibrated targets."""
    for p in compare.predictions(model_views(run), run, calibration):
        console.print(
            f"{p.target} {p.model}: median {p.own_us:.1f} µs here, predicted {p.predicted_us:.1f} µs on {p.against} "
            f"(calibration {p.factor:.4g} {p.against} cycles per {p.basis[:-1]})",
            soft_wrap=True,
        )


# --- hil baseline ------------------------------------------------------------------------------------


def register(sub: Any, console: Console) -> None:
    """``hil baseline save|compare|list`` and ``hil compare``."""
    base = sub.add_parser("baseline", help="save a run's metrics as a baseline, or gate a run on one")
    actions = base.add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=Path, help="baselines database (default: $HIL_BASELINES or "
                        ".hil/baselines.sqlite in the project)")  # fmt: skip

    save = actions.add_parser("save", parents=[common], help="store a run's metrics (target x model x metric)")
    save.add_argument("--name", help="name to compare against later (default: the run id)")
    save.add_argument("dir", type=Path, help="results bundle")
    save.set_defaults(func=lambda config, args: cmd_save(config, args, console))

    check = actions.add_parser("compare", parents=[common], help="flag regressions against a saved baseline")
    check.add_argument("--against", help="baseline name (default: the latest saved that holds each target)")
    check.add_argument("--latency-pct", type=float, help="latency regression threshold, %% (default 10)")
    check.add_argument("--memory-bytes", type=int, help="memory regression threshold, bytes (default 0)")
    check.add_argument("--score-points", type=float, help="score threshold, points = score x 100 (default 0.5)")
    check.add_argument("--instructions-pct", type=float, help="emulated instructions threshold when firmware or "
                       "model changed, %% (default 1; unchanged: exact)")  # fmt: skip
    check.add_argument("dir", type=Path, help="results bundle")
    check.set_defaults(func=lambda config, args: cmd_baseline_compare(config, args, console))

    listing = actions.add_parser("list", parents=[common], help="the saved baselines")
    listing.add_argument("--name", help="only baselines of this name")
    listing.set_defaults(func=lambda config, args: cmd_list(config, args, console))

    cmp = sub.add_parser("compare", help="compare two targets' runs: agreement, latency ratio, calibration")
    cmp.add_argument("dir_a", type=Path, help="results bundle of A (an emulator, the side calibrated)")
    cmp.add_argument("dir_b", type=Path, help="results bundle of B (a board, the reference for time)")
    cmp.add_argument("--target-a", help="target in DIR_A (needed when it holds several)")
    cmp.add_argument("--target-b", help="target in DIR_B (needed when it holds several)")
    cmp.add_argument("--calibration", type=Path, help="calibration file to update (default: $HIL_CALIBRATION or "
                     ".hil/calibration.json)")  # fmt: skip
    cmp.add_argument("--no-save", action="store_true", help="do not save the calibration factors")
    cmp.set_defaults(func=lambda config, args: cmd_compare(config, args, console))


def cmd_save(config: HilConfig, args: argparse.Namespace, console: Console) -> int:
    db = _db(config, args)
    run = load_run(args.dir.resolve())
    baseline_id, count = baseline.save(db, run, args.name, config.root, _zoo(config))
    console.print(f"saved baseline {args.name or run.run_id} (#{baseline_id}): {count} measurements of "
                  f"{', '.join(run.targets)} in {db}", soft_wrap=True)  # fmt: skip
    return 0


def cmd_list(config: HilConfig, args: argparse.Namespace, console: Console) -> int:
    db = _db(config, args)
    table = Table(title=f"Baselines in {db}")
    for column in ("#", "name", "saved", "commit", "tinyml-hil", "targets", "measurements"):
        table.add_column(column, overflow="fold")
    for b in baseline.list_baselines(db, args.name):
        targets = ", ".join(sorted({m.target for m in b.measurements}))
        table.add_row(str(b.id), escape(b.name), b.saved_at, escape(b.git_commit or ""), b.tool_version or "",
                      escape(targets), str(len(b.measurements)))  # fmt: skip
    console.print(table)
    return 0


def _thresholds(args: argparse.Namespace) -> tuple[baseline.Thresholds, set[str]]:
    given = {k: v for k in ("latency_pct", "memory_bytes", "score_points", "instructions_pct")
             if (v := getattr(args, k)) is not None}  # fmt: skip
    if any(v < 0 for v in given.values()):
        raise ConfigError("thresholds are amounts a metric may worsen by: give 0 or more")
    return baseline.Thresholds(**given), set(given)


def _value(metric: str, value: float | None) -> str:
    if value is None:
        return ""
    if metric.endswith("_us"):
        return f"{value:.1f}"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.4f}"


def _delta(d: baseline.Delta) -> str:
    if d.baseline is None or d.value is None:
        return ""
    change = d.value - d.baseline
    if d.kind == "score":
        return f"{change * 100:+.2f} points"
    if d.kind in ("memory", "count"):
        return f"{change:+.0f}" + (" B" if d.kind == "memory" else "")
    text = f"{change:+.1f}" if d.metric.endswith("_us") else f"{change:+.0f}"
    return text + (f" ({change / abs(d.baseline) * 100:+.1f} %)" if d.baseline else "")


def cmd_baseline_compare(config: HilConfig, args: argparse.Namespace, console: Console) -> int:
    thresholds, given = _thresholds(args)
    run = load_run(args.dir.resolve())
    verdict = baseline.compare(_db(config, args), run, args.against, thresholds, _zoo(config), given)
    for target, label in verdict.against.items():
        console.print(f"{target}: compared with baseline {escape(label)}", soft_wrap=True)
    table = Table(title=f"{run.run_id} against its baseline")
    for column in ("target", "model", "metric", "baseline", "this run", "delta", "threshold", "verdict", "note"):
        table.add_column(column, overflow="fold")
    for d in verdict.deltas:
        style = VERDICT_STYLE.get(d.verdict, "")
        table.add_row(escape(d.target), escape(d.model), d.metric, _value(d.metric, d.baseline),
                      _value(d.metric, d.value), _delta(d), d.limit, f"[{style}]{d.verdict}[/]" if style else d.verdict,
                      escape(d.note))  # fmt: skip
    if verdict.deltas:
        console.print(table)
    for line in verdict.missing:
        console.print(f"[red]missing:[/red] {escape(line)}", soft_wrap=True)
    regressions = sum(d.verdict == "REGRESSION" for d in verdict.deltas)
    if regressions:
        console.print(f"[red]{regressions} regression(s)[/red] beyond their thresholds", soft_wrap=True)
    elif not verdict.missing:
        console.print("[green]no regression[/green] against the baseline", soft_wrap=True)
    return verdict.exit_code


# --- hil compare -------------------------------------------------------------------------------------


def _target(run: Run, given: str | None, side: str) -> str:
    if given:
        return given
    if len(run.targets) == 1:
        return run.targets[0]
    raise ConfigError(f"{run.path} holds targets {', '.join(run.targets)}: pick one with --target-{side}")


def cmd_compare(config: HilConfig, args: argparse.Namespace, console: Console) -> int:
    run_a, run_b = load_run(args.dir_a.resolve()), load_run(args.dir_b.resolve())
    for run in (run_a, run_b):
        if not run.complete:
            console.print(f"[red]{run.path} is an incomplete run[/red]: its numbers are partial", soft_wrap=True)
    result = compare.compare_targets(run_a, _target(run_a, args.target_a, "a"), run_b,
                                     _target(run_b, args.target_b, "b"))  # fmt: skip
    print_comparison(result, console)
    if not args.no_save:
        path = _calibration(config, args)
        if compare.save_calibration(path, result):
            console.print(f"calibration for {result.target_a} saved in {path}", soft_wrap=True)
    return 0


def print_comparison(c: compare.Comparison, console: Console) -> None:
    unit = "instruction" if c.basis == "instructions" else "cycle"
    table = Table(title=f"{c.target_a} ({c.run_a}) against {c.target_b} ({c.run_b})")
    for column in ("model", "outputs (golden vectors)", "score A -> B", "delta points", "events A vs B",
                   "p50 A / B µs", "latency ratio B/A", f"calibration: B cycles per A {unit}"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for m in c.models:
        agreement = f"[green]{m.agreement}[/]" if m.bit_exact else f"[red]{m.agreement}[/]" if m.bit_exact is False \
            else m.agreement  # fmt: skip
        scores = f"{_value('', m.score_a)} -> {_value('', m.score_b)}" if m.score_a is not None else ""
        points = "" if m.score_delta_points is None else f"{m.score_delta_points:+.2f}"
        latency = f"{_value('_us', m.latency_a_us)} / {_value('_us', m.latency_b_us)}"
        ratio = "" if m.latency_ratio is None else f"{m.latency_ratio:.3f}"
        factor = "" if m.factor is None else f"{m.factor:.4g}"
        table.add_row(m.model, agreement, scores, points, escape(m.events), latency, ratio, factor)
    console.print(table)
    overall = "none (no latency on both sides)" if c.overall_factor is None else f"{c.overall_factor:.4g}"
    console.print(f"calibration factor {c.target_a} -> {c.target_b} overall: {overall} {c.target_b} cycles per "
                  f"{c.target_a} {unit}", soft_wrap=True)  # fmt: skip
    for side, models in ((c.target_a, c.only_a), (c.target_b, c.only_b)):
        if models:
            console.print(f"only measured on {side}: {', '.join(models)}", soft_wrap=True)
    for m in c.models:
        ratio = "" if m.latency_ratio is None else f", latency ratio B/A {m.latency_ratio:.3f}"
        factor = "" if m.factor is None else f", calibration factor {m.factor:.4g}"
        console.print(f"{m.model}: outputs {m.agreement}{ratio}{factor}", soft_wrap=True)
    for m in c.models:
        for finding in m.findings:
            console.print(f"[bold red]mismatch[/bold red] {m.model}: {escape(finding)}", soft_wrap=True)
    if not c.mismatched:
        console.print("[green]no mismatch[/green]: outputs, scores and events agree", soft_wrap=True)
