"""The ``hil`` command: targets, doctor, run, report, models."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from hil import __version__, doctables, tools
from hil.backends import BenchRequest, unavailable_reason
from hil.config import HilConfig, load_config
from hil.errors import BackendUnavailable, ConfigError, HilError
from hil.lab import cli as lab_cli
from hil.models import ModelZoo, verify_model
from hil.progress import RunProgress
from hil.report import cli as report_cli
from hil.report.bundle import read_bundle
from hil.report.merge import merge_bundles, merged_view
from hil.report.summary import summary as run_summary
from hil.report.summary import tests_table
from hil.runner import MODELS_DIR_ENV, SUITE_TIMEOUT_S, SUITES, RunRequest, default_jobs, run, suite_dirs, suites_in
from hil.session import EVAL_SAMPLES_ENV

# CI logs are wide; no emoji codes: "board:x:" in a message must stay as written.
console = Console(emoji=False) if sys.stdout.isatty() else Console(width=160, emoji=False)
# Exit codes (docs/bench.md): 0 all passed, 1 a test failed, 2 usage, configuration or a missing
# tool, 3 a bench board could not be brought up (flash, power, console, boot), 130 interrupted.
EXIT_FAILED = 1
EXIT_UNAVAILABLE = 2
EXIT_BOARD_ERROR = lab_cli.EXIT_BOARD_ERROR


def _mark(ok: bool) -> str:
    return "[green]yes[/green]" if ok else "[red]no[/red]"


def cmd_targets(config: HilConfig, args: argparse.Namespace) -> int:
    rows = []
    for target in config.targets.values():
        reason = unavailable_reason(target, config)
        rows.append(
            {
                "target": target.name,
                "backend": target.backend,
                "board": target.zephyr_board or "",
                "available": reason is None,
                "why_not": reason or "",
                "description": target.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"Targets ({config.source or 'built-in catalog'})")
    for column in ("target", "backend", "Zephyr board", "available", "why not / description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        detail = row["why_not"] or row["description"]
        table.add_row(row["target"], row["backend"], row["board"], _mark(row["available"]), detail)
    console.print(table)
    return 0


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _doctor_zephyr(config: HilConfig, table: Table) -> None:
    """The Zephyr workspace (found as ``hil build`` finds it) and whether this Python has Zephyr's requirements."""
    from hil.build import find_workspace

    try:
        workspace = find_workspace(config)
    except ConfigError as err:  # an unreadable .west/config
        table.add_row("Zephyr workspace", _mark(False), str(err))
        return
    base = workspace.path
    if base is None:
        detail = f"not found: {workspace.source}; see docs/firmware.md ('Workspace') for west init / west update"
        table.add_row("Zephyr workspace", _mark(False), detail)
        return
    table.add_row(
        "Zephyr workspace", _mark(True), f"{base} (Zephyr {tools.zephyr_version(base)}), from {workspace.source}"
    )
    try:
        needed = tools.python_requirements(base)
    except ConfigError as err:
        table.add_row("Zephyr Python requirements", _mark(False), str(err))
        return
    detail = (
        f"all {len(needed.checked)} of {needed.file} installed in {sys.executable}"
        if needed.ok
        else f"{'; '.join(needed.problems)}; install them: {needed.pip_command()}"
    )
    table.add_row("Zephyr Python requirements", _mark(needed.ok), detail)


def cmd_doctor(config: HilConfig, args: argparse.Namespace) -> int:  # noqa: ARG001 - uniform signature
    from serial.tools import list_ports

    table = Table(title=f"tinyml-hil {__version__}: what this machine has")
    for column in ("check", "ok", "detail"):
        table.add_column(column, overflow="fold")
    for package in ("tflite-micro", "robotframework", "pyserial", "tensorflow", "west", "pyelftools"):
        found = _package_version(package)
        table.add_row(f"python: {package}", _mark(found is not None), found or "not installed")
    _doctor_zephyr(config, table)
    from hil.backends.renode.install import renode_tool  # backends are imported when used (hil.backends)

    for tool in (
        renode_tool(),
        tools.simple("qemu-system-arm"),
        tools.simple("arm-none-eabi-gcc"),
        tools.simple("west"),
        *tools.zephyr_build_tools(),
    ):
        detail = f"{tool.path} ({tool.version or 'version unknown'})" if tool.usable else tool.why_not()
        table.add_row(tool.name, _mark(tool.usable), detail)
    ports = [f"{p.device} ({p.description}, {p.hwid})" for p in list_ports.comports()]
    table.add_row("serial ports", _mark(bool(ports)), "; ".join(ports) or "none found")
    console.print(table)
    return 0


def cmd_run(config: HilConfig, args: argparse.Namespace) -> int:
    if args.models_dir:
        models_dir = args.models_dir.resolve()
        config = dataclasses.replace(config, models_dir=models_dir)
        os.environ[MODELS_DIR_ENV] = str(models_dir)  # the suite processes load the same zoo
    if args.eval_samples is not None:
        if args.eval_samples < 1:
            raise ConfigError(f"--eval-samples must be at least 1, got {args.eval_samples}")
        os.environ[EVAL_SAMPLES_ENV] = str(args.eval_samples)  # read by the suite processes' sessions
    targets = tuple(config.target(name) for name in args.target or [config.default_target])
    out_dir = (args.out or config.results_dir).resolve()
    frameworks = SUITES if args.suite == "all" else (args.suite,)
    suites = suites_in(args.suites.resolve(), args.suite) if args.suites else suite_dirs(config)
    if args.suites and args.suite == "all":
        frameworks = tuple(f for f in SUITES if f in suites or getattr(args, f"{f}_suites"))
    suites["robot"] = (args.robot_suites or suites.get("robot") or suite_dirs(config)["robot"]).resolve()
    suites["pytest"] = (args.pytest_suites or suites.get("pytest") or suite_dirs(config)["pytest"]).resolve()
    if args.runner_args and len(frameworks) != 1:
        raise ConfigError("arguments after -- go to one framework: add --suite robot or --suite pytest")
    if args.firmware and sum(t.backend == "board" for t in targets) > 1:
        raise ConfigError("--firmware is one image: run one board target at a time with it")
    request = RunRequest(
        targets=targets,
        out_dir=out_dir,
        frameworks=frameworks,
        suites=suites,
        jobs=args.jobs or default_jobs(),
        suite_timeout_s=args.suite_timeout,
        runner_args={frameworks[0]: tuple(args.runner_args)} if args.runner_args else {},
        bench=BenchRequest(
            artifacts_dir=out_dir,  # each board target's own artifacts folder is set by the runner
            firmware=args.firmware,
            fixtures=tuple(args.fixture or ()),
            wait_s=args.wait,
            ignore_quarantine=args.ignore_quarantine,
            force_flash=args.firmware is not None,  # a configured firmware is skipped when the board runs it
        ),
        wait_s=args.wait,
        command=tuple(args.command_line),
    )
    try:
        with RunProgress(console, frameworks) as progress:
            summary = run(config, request, progress)
    except BackendUnavailable as err:
        console.print(f"[red]error:[/red] {escape(str(err))}", soft_wrap=True)
        return EXIT_UNAVAILABLE
    except (KeyboardInterrupt, Terminated) as err:
        what = f"stopped the suites and every process they started; results so far in {out_dir}, marked incomplete"
        return _interrupted(err, what)
    console.print(run_summary(summary.metrics, out_dir))
    report_cli.print_run_predictions(config, out_dir, summary.metrics, console)  # calibrated by hil compare
    for target, error in summary.board_errors.items():
        console.print(f"[red]board error[/red] on {target} (no test ran): {escape(error)}", soft_wrap=True)
    if summary.board_errors:
        return EXIT_BOARD_ERROR
    for outcome in summary.usage_errors:
        tail = (
            outcome.console.read_text(errors="replace").strip().splitlines()[-3:] if outcome.console.is_file() else []
        )
        console.print(f"[red]error:[/red] {escape(outcome.ended_early or '')}: {escape(' '.join(tail))} "
                      f"(see {outcome.console})", soft_wrap=True)  # fmt: skip
    if summary.usage_errors:
        return EXIT_UNAVAILABLE
    return 0 if summary.ok else EXIT_FAILED


def cmd_build(config: HilConfig, args: argparse.Namespace) -> int:
    from hil.build import BuildFailed, build_firmware

    target = config.target(args.target or config.default_target)
    try:
        result = build_firmware(config, target, args.pristine, console)
    except BuildFailed as err:
        console.print(f"[red]build failed:[/red] {escape(str(err))}", soft_wrap=True)
        return EXIT_FAILED
    console.print(f"firmware: {result.image}")
    return 0


def cmd_report(config: HilConfig, args: argparse.Namespace) -> int:
    """Read only: bundles are read, never rewritten; ``--out`` writes a merged bundle elsewhere."""
    dirs = [d.resolve() for d in args.dirs]
    notes: tuple[str, ...] = ()
    if args.out:
        metrics = merge_bundles(config, dirs, args.out.resolve(), args.wait)
        shown = [(args.out.resolve(), metrics)]
    elif len(dirs) == 1:
        bundle = read_bundle(dirs[0])
        metrics, notes, shown = bundle.metrics, bundle.notes, [(dirs[0], bundle.metrics)]
    else:
        metrics = merged_view(dirs)
        shown = [(d, read_bundle(d).metrics) for d in dirs]
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    if args.tests:
        console.print(tests_table(metrics))
    console.print(run_summary(metrics, args.out.resolve() if args.out else dirs[0] if len(dirs) == 1 else None))
    report_cli.report_html(config, args, shown, console)  # predicted board latency; --html, --history
    return 0 if metrics["summary"]["failed"] == 0 and metrics.get("complete", True) else EXIT_FAILED


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def cmd_models(config: HilConfig, args: argparse.Namespace) -> int:
    zoo = ModelZoo(config.models_dir)
    names = args.names or zoo.names()
    if args.action == "verify":
        failures = 0
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("verifying with TFLM", total=len(names))
            for name in names:
                result = verify_model(zoo, name)
                failures += not result.ok
                verdict = "[green]ok[/green]" if result.ok else "[red]FAIL[/red]"
                agreement = (
                    "TF Lite interpreter not checked (TensorFlow not installed)"
                    if result.tflite_max_abs_diff is None
                    else f"TF Lite interpreter within {result.tflite_max_abs_diff} step(s) of TFLM"
                )
                detail = "; ".join(result.problems) or (
                    f"golden vectors bit-exact; sha256, arena and {result.int8_score:.4f} score agree; {agreement}"
                )
                console.print(f"{verdict} {name}: {detail}")
                progress.advance(task)
        return EXIT_FAILED if failures else 0
    table = Table(title=f"Models in {zoo.root}")
    columns = ("model", "task", "input", "output", "ops", "flash B", "arena size B", "arena used B", "metric", "float",
               "int8", "floor / ceiling")  # fmt: skip
    for column in columns:
        table.add_column(column, overflow="fold")
    for name in names:
        m = zoo.manifest(name)
        score = m.metric
        bound = f"{'≥' if score.higher_is_better else '≤'} {score.threshold}"
        table.add_row(name, m.task, m.input.describe(), m.output.describe(), ", ".join(m.ops), str(m.flash_bytes),
                      str(m.arena_bytes), str(m.arena_used_bytes), score.name, _score(score.float_score),
                      _score(score.int8_score), bound)  # fmt: skip
    console.print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hil", description="Hardware-in-the-loop tests for TinyML firmware.")
    parser.add_argument("--version", action="version", version=f"tinyml-hil {__version__}")
    parser.add_argument("--config", type=Path, help="hil.toml to use (default: $HIL_CONFIG or ./hil.toml)")
    parser.add_argument("--lab", type=Path, help="lab file: a twister hardware map (default: [lab] file, ./lab.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    lab_cli.register(sub, console)

    targets = sub.add_parser("targets", help="list every target with its availability on this machine")
    targets.add_argument("--json", action="store_true", help="print JSON instead of a table")
    targets.set_defaults(func=cmd_targets)

    sub.add_parser("doctor", help="check the tools backends need").set_defaults(func=cmd_doctor)

    run = sub.add_parser("run", help="run the Robot and pytest HIL suites against one or more targets",
                         usage="hil run [options] [-- ARGS for the framework of --suite]")  # fmt: skip
    run.add_argument("--target", action="append", help="target name, repeatable: one sub-bundle per target "
                     "(default: reference, or default_target in hil.toml)")  # fmt: skip
    run.add_argument("--jobs", "-j", type=int, help="suites at once: targets, and the Robot and pytest halves of a "
                     f"target, side by side (default: one per core, {default_jobs()} here)")  # fmt: skip
    run.add_argument("--suite-timeout", type=float, default=SUITE_TIMEOUT_S, metavar="SECONDS",
                     help=f"stop a framework's suites after this long (default: {SUITE_TIMEOUT_S:g})")  # fmt: skip
    run.add_argument("--suite", choices=(*SUITES, "all"), default="all", help="which suites to run (default: all)")
    run.add_argument("--out", type=Path, help="results directory (default: results/)")
    run.add_argument(
        "--suites",
        type=Path,
        help="folder of your own suites, anywhere: its *.robot files run with Robot, its test_*.py with pytest",
    )
    run.add_argument("--models-dir", type=Path, help="model zoo to use (default: models_dir in hil.toml, or models/)")
    run.add_argument("--eval-samples", type=int, metavar="N", help="score each evaluation set on a seeded subset "
                     "of N samples (default: the target's eval_samples, else all); always reported")  # fmt: skip
    run.add_argument("--robot-suites", type=Path, help="Robot suite file or folder (default: robot_tests/)")
    run.add_argument("--pytest-suites", type=Path, help="pytest HIL suite file or folder (default: tests/hil/)")
    lab_cli.add_bench_options(run)
    run.add_argument("runner_args", nargs="*", metavar="-- ARGS",
                     help="passed to robot or pytest as given, e.g. -- -k golden, -- --include smoke")  # fmt: skip
    run.set_defaults(func=cmd_run)

    build = sub.add_parser("build", help="build the firmware for a target with west (needs a Zephyr workspace)")
    build.add_argument("--target", help="target name, e.g. qemu:mps2_an385")
    build.add_argument("--pristine", action="store_true", help="start from an empty build directory")
    build.set_defaults(func=cmd_build)
    doctables.register(sub)  # hil docs tables: the docs' memory and latency tables from builds and results

    report = sub.add_parser("report", help="summarise one or more results bundles (read only); merge them with --out")
    report.add_argument("dirs", type=Path, nargs="+", metavar="DIR", help="results bundles, e.g. one per CI job")
    report.add_argument("--out", type=Path, help="write the merged bundle here (rebot, JUnit, metrics)")
    report.add_argument("--tests", action="store_true", help="also print every test (the table in run.log)")
    report.add_argument("--wait", type=float, nargs="?", const=lab_cli.WAIT_FOREVER_S, default=0.0,
                        metavar="SECONDS", help="queue for a busy --out")  # fmt: skip
    report_cli.add_report_options(report)
    report.set_defaults(func=cmd_report)
    report_cli.register(sub, console)  # hil baseline save|compare|list, hil compare

    models = sub.add_parser("models", help="list the model zoo, or verify it with the TFLM runtime")
    models.add_argument("action", nargs="?", choices=("list", "verify"), default="list")
    models.add_argument("names", nargs="*", help="models to show or verify (default: all)")
    models.set_defaults(func=cmd_models)
    return parser


EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(SystemExit):
    """SIGTERM (a CI job cancelled), raised where the main thread is so every ``with`` unwinds."""


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C: boards, places and children are released."""
    del signum, frame
    raise Terminated(EXIT_TERMINATED)


def _interrupted(err: BaseException, what: str) -> int:
    """The one line an interrupted command prints, and its exit code."""
    terminated = isinstance(err, Terminated)
    console.print(f"[red]{'terminated' if terminated else 'interrupted'}[/red]: {what}", soft_wrap=True)
    return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(argv)
    except (KeyboardInterrupt, Terminated) as err:
        return _interrupted(err, "stopped what was running and released the bench")


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    args.command_line = ["hil", *(sys.argv[1:] if argv is None else argv)]
    if args.lab:
        os.environ["HIL_LAB"] = str(args.lab.resolve())  # the suite processes read the same lab file
    try:
        config = load_config(args.config)
        return args.func(config, args)
    except HilError as err:
        console.print(f"[red]error:[/red] {escape(str(err))}", soft_wrap=True)
        return EXIT_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
