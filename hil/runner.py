"""Run the Robot and pytest HIL suites against one target and gather every result in one folder.

Each framework runs in its own process, leading its own process group (a Ctrl-C in the terminal
reaches only ``hil``). When ``hil`` is interrupted (Ctrl-C, SIGTERM) the running suite gets
SIGINT, stops its tests, tears its device down and writes its reports; the group is then ended,
every process marked with this run's ``HIL_RUN_ID`` is ended, and the metrics so far are merged.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.backends import BOARD_ERROR_ENV, BenchRequest, backend_class, unavailable_reason
from hil.backends._process import deferred_signals, end_marked_processes, end_process, parent_death_signal
from hil.config import HilConfig, Target
from hil.errors import BackendUnavailable, BoardError, ConfigError
from hil.metrics import METRICS_DIR, merge_metrics
from hil.models import ModelZoo

log = logging.getLogger(__name__)

SUITES = ("robot", "pytest")
SUITE_TIMEOUT_S = 3600.0
SUITE_STOP_GRACE_S = 30.0  # an interrupted suite tears its device down and writes its reports
RUN_MARKER = "HIL_RUN_ID"  # in the environment of every process a run starts, however deep
MODELS_DIR_ENV = "HIL_MODELS_DIR"  # overrides models_dir of the configuration (hil run --models-dir)
SUITE_FILES = {"robot": ("*.robot",), "pytest": ("test_*.py", "*_test.py")}  # what each framework collects


@dataclass(frozen=True, slots=True)
class SuiteOutcome:
    framework: str
    exit_code: int
    duration_s: float
    junit: Path


@dataclass(frozen=True, slots=True)
class RunSummary:
    target: str
    out_dir: Path
    outcomes: tuple[SuiteOutcome, ...]
    metrics: dict[str, Any]
    board_error: str | None = None  # the rig failed before any test could run

    @property
    def ok(self) -> bool:
        return self.board_error is None and all(o.exit_code == 0 for o in self.outcomes)


def _argv(framework: str, target: Target, suites: Path, out_dir: Path) -> list[str]:
    if framework == "robot":
        return [
            sys.executable, "-m", "robot",
            "--name", f"HIL on {target.name}",
            "--outputdir", str(out_dir),
            "--output", "output.xml", "--log", "log.html", "--report", "report.html",
            "--xunit", "junit-robot.xml",
            "--variable", f"HIL_TARGET:{target.name}",
            "--console", "verbose", "--consolecolors", "off",
            str(suites),
        ]  # fmt: skip
    return [
        sys.executable, "-m", "pytest", str(suites),
        f"--hil-target={target.name}", f"--hil-out={out_dir}",
        f"--junitxml={out_dir / 'junit-pytest.xml'}", "-o", f"junit_suite_name=HIL on {target.name}",
        "-p", "no:cacheprovider", "-p", "no:labgrid", "-rs", "-v",
    ]  # fmt: skip


def suite_dirs(config: HilConfig) -> dict[str, Path]:
    return {"robot": config.root / "robot_tests", "pytest": config.root / "tests" / "hil"}


def suites_in(folder: Path, suite: str = "all") -> dict[str, Path]:
    """The frameworks that have suites in ``folder`` (``hil run --suites``), each mapped to the folder."""
    if not folder.is_dir():
        raise ConfigError(f"--suites {folder} is not a folder: give the folder that holds your suites")
    found = {
        framework: folder
        for framework, patterns in SUITE_FILES.items()
        if any(next(folder.rglob(pattern), None) for pattern in patterns)
    }
    wanted = SUITES if suite == "all" else (suite,)
    if not any(framework in found for framework in wanted):
        kinds = " or ".join(f"{f} ({', '.join(SUITE_FILES[f])})" for f in wanted)
        raise ConfigError(f"no {kinds} suites in {folder}")
    return found


def run_suites(
    config: HilConfig,
    target: Target,
    out_dir: Path,
    frameworks: Sequence[str] = SUITES,
    suites: dict[str, Path] | None = None,
    on_start: Any = None,
    bench: BenchRequest | None = None,
) -> RunSummary:
    """Run each framework's suites in its own process; results land in ``out_dir``.

    A bench board is taken and brought up once for both frameworks. If that fails, the suites
    still run so that every test reports the board error (JUnit ``<error>``, Robot ``board-error``).
    """
    if reason := unavailable_reason(target, config):
        raise BackendUnavailable(f"{target.name} cannot run here: {reason}")
    suites = suites or suite_dirs(config)
    for framework in frameworks:
        if framework not in SUITES:
            raise ConfigError(f"unknown suite kind {framework!r}: use robot, pytest or all")
        if not suites[framework].exists():
            raise ConfigError(
                f"no {framework} suites at {suites[framework]}: point --suites (or --{framework}-suites) at yours"
            )
    ModelZoo(config.models_dir).check()  # every model folder, before any device starts: one clear error
    backend_class(target.backend).check_target(target, config)
    prepare_results_dir(out_dir)
    shutil.rmtree(out_dir / METRICS_DIR, ignore_errors=True)  # metrics of this run only
    run_id = f"{os.getpid()}-{secrets.token_hex(4)}"
    env = os.environ | {"HIL_TARGET": target.name, "HIL_RESULTS": str(out_dir), RUN_MARKER: run_id}
    if config.source:
        env["HIL_CONFIG"] = str(config.source)
    if config.lab_file:
        env["HIL_LAB"] = str(config.lab_file)
    bench = bench or BenchRequest(out_dir / "artifacts" / target.board_id)
    board_error = None
    try:
        try:
            with backend_class(target.backend).hold_for_run(target, config, bench) as held:
                outcomes = _run_frameworks(config, target, out_dir, frameworks, suites, env | held, on_start)
        except BoardError as err:
            board_error = str(err)
            outcomes = _run_frameworks(config, target, out_dir, frameworks, suites,
                                       env | {BOARD_ERROR_ENV: board_error}, on_start)  # fmt: skip
    except BaseException:  # interrupted: keep what the suites recorded before they were stopped
        with deferred_signals():
            merge_metrics(out_dir)
        raise
    finally:
        with deferred_signals():  # bounded: terminate, then kill, each within STOP_TIMEOUT_S
            left = end_marked_processes(RUN_MARKER, run_id)
        if left:
            log.warning("ended %d process(es) the suites left running: %s", len(left), left)
    return RunSummary(target.name, out_dir, tuple(outcomes), merge_metrics(out_dir), board_error)


def prepare_results_dir(out_dir: Path) -> None:
    """Create ``out_dir`` and prove it writable, or raise a ConfigError that says why not."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"results directory {out_dir} is a file: give --out a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass  # root ignores permission bits: only a real write tells
    except OSError as err:
        raise ConfigError(
            f"cannot write results to {out_dir}: {err.strerror or err}: give --out a writable directory"
        ) from err


def _run_frameworks(
    config: HilConfig,
    target: Target,
    out_dir: Path,
    frameworks: Sequence[str],
    suites: dict[str, Path],
    env: dict[str, str],
    on_start: Any,
) -> list[SuiteOutcome]:
    outcomes = []
    for framework in frameworks:
        if on_start:
            on_start(framework, suites[framework])
        started = time.monotonic()
        argv = _argv(framework, target, suites[framework], out_dir)
        code = _run_suite(argv, config.root, env)
        junit = out_dir / ("junit-robot.xml" if framework == "robot" else "junit-pytest.xml")
        outcomes.append(SuiteOutcome(framework, code, round(time.monotonic() - started, 2), junit))
    return outcomes


def _run_suite(argv: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Run one framework in its own process group; its exit code (124 on timeout)."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=parent_death_signal(signal.SIGTERM),  # if hil is killed, the suite still tears down
    )
    try:
        return proc.wait(timeout=SUITE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return 124
    except BaseException:  # Ctrl-C or SIGTERM on hil
        _interrupt(proc)
        raise
    finally:
        end_process(proc, group=True)


def _interrupt(proc: subprocess.Popen[bytes]) -> None:
    """Ask the suite to stop as a Ctrl-C would (it tears down and writes its reports) and wait a while."""
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=SUITE_STOP_GRACE_S)
    except (subprocess.TimeoutExpired, KeyboardInterrupt, SystemExit):
        pass  # too slow, or asked again: the caller ends the whole group now
