"""Run the Robot and pytest HIL suites against one target and gather every result in one folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.backends import BOARD_ERROR_ENV, BenchRequest, backend_class, unavailable_reason
from hil.config import HilConfig, Target
from hil.errors import BackendUnavailable, BoardError, ConfigError
from hil.metrics import METRICS_DIR, merge_metrics

SUITES = ("robot", "pytest")
SUITE_TIMEOUT_S = 3600.0


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
            raise ConfigError(f"no {framework} suites at {suites[framework]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir / METRICS_DIR, ignore_errors=True)  # metrics of this run only
    env = os.environ | {"HIL_TARGET": target.name, "HIL_RESULTS": str(out_dir)}
    if config.source:
        env["HIL_CONFIG"] = str(config.source)
    if config.lab_file:
        env["HIL_LAB"] = str(config.lab_file)
    bench = bench or BenchRequest(out_dir / "artifacts" / target.board_id)
    board_error = None
    try:
        with backend_class(target.backend).hold_for_run(target, config, bench) as held:
            outcomes = _run_frameworks(config, target, out_dir, frameworks, suites, env | held, on_start)
    except BoardError as err:
        board_error = str(err)
        outcomes = _run_frameworks(config, target, out_dir, frameworks, suites, env | {BOARD_ERROR_ENV: board_error},
                                   on_start)  # fmt: skip
    return RunSummary(target.name, out_dir, tuple(outcomes), merge_metrics(out_dir), board_error)


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
        try:
            code = subprocess.run(argv, cwd=config.root, env=env, timeout=SUITE_TIMEOUT_S, check=False).returncode
        except subprocess.TimeoutExpired:
            code = 124
        junit = out_dir / ("junit-robot.xml" if framework == "robot" else "junit-pytest.xml")
        outcomes.append(SuiteOutcome(framework, code, round(time.monotonic() - started, 2), junit))
    return outcomes
