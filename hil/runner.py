"""Run the Robot and pytest HIL suites against one or more targets, into one results bundle.

Every target gets its own device and sub-bundle; each framework's suites run in their own
process, leading their own process group (a Ctrl-C in the terminal reaches only ``hil``), and up
to ``jobs`` of them at once: targets side by side, and the Robot and pytest halves of a target
side by side where its backend starts one device per process (emulators, the twin). A bench
board is held once around both halves of its target, which then run one after the other.

When ``hil`` is interrupted (Ctrl-C, SIGTERM) every running suite gets SIGINT, stops its tests,
tears its device down and writes its reports; the groups are then ended, every process marked
with this run's ``HIL_RUN_ID`` is ended, and the bundle is written marked incomplete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.backends import BOARD_ERROR_ENV, Backend, BenchRequest, backend_class, unavailable_reason
from hil.backends._process import deferred_signals, end_marked_processes, end_process, parent_death_signal
from hil.config import HilConfig, Target
from hil.errors import BackendUnavailable, BoardError, ConfigError
from hil.metrics import RUN_ID_ENV
from hil.models import ModelZoo
from hil.report.bundle import (
    RUNNING,
    OutLock,
    RunRecord,
    check_out_dir,
    new_run_id,
    open_bundle,
    previous_durations,
    write_metrics,
)
from hil.report.environment import environment
from hil.report.merge import combine_reports
from hil.session import DEVICE_ARTIFACTS_ENV

log = logging.getLogger(__name__)

SUITES = ("robot", "pytest")
SUITE_TIMEOUT_S = 3600.0  # default of --suite-timeout
SUITE_STOP_GRACE_S = 30.0  # an interrupted suite tears its device down and writes its reports
POLL_S = 0.05  # poll() is one waitpid per running suite
RUN_MARKER = RUN_ID_ENV  # in the environment of every process a run starts, however deep
MODELS_DIR_ENV = "HIL_MODELS_DIR"  # overrides models_dir of the configuration (hil run --models-dir)
SUITE_FILES = {"robot": ("*.robot",), "pytest": ("test_*.py", "*_test.py")}  # what each framework collects
JUNIT = {"robot": "junit-robot.xml", "pytest": "junit-pytest.xml"}
EXIT_TIMED_OUT = 124
# Exit codes that mean the framework did not run its tests to the end (beyond failures).
_USAGE = {"robot": {252: "rejected its arguments or found no tests to run"},
          "pytest": {4: "rejected its arguments", 5: "collected no tests"}}  # fmt: skip
_CRASHED = {"robot": {251: "printed its help", 253: "was stopped", 255: "stopped on an internal error"},
            "pytest": {2: "was interrupted", 3: "stopped on an internal error"}}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SuiteOutcome:
    target: str
    framework: str
    exit_code: int
    duration_s: float
    junit: Path
    console: Path
    timed_out: bool = False
    args: tuple[str, ...] = ()

    @property
    def usage_error(self) -> bool:
        return self.exit_code in _USAGE[self.framework]

    @property
    def ended_early(self) -> str | None:
        """Why the framework did not run its suites to the end, or None if it did (failures or not)."""
        if self.timed_out:
            return f"{self.framework} suites on {self.target} timed out"
        what = _USAGE[self.framework].get(self.exit_code) or _CRASHED[self.framework].get(self.exit_code)
        if what is None and self.exit_code < 0:
            what = f"was killed by {signal.Signals(-self.exit_code).name}"
        return f"{self.framework} on {self.target} {what} (exit {self.exit_code})" if what else None

    def as_record(self, sub_dir: Path) -> dict[str, Any]:
        return {
            "target": self.target,
            "framework": self.framework,
            "exit_code": self.exit_code,
            "duration_s": self.duration_s,
            "timed_out": self.timed_out,
            "console": os.path.relpath(self.console, sub_dir),
            "junit": os.path.relpath(self.junit, sub_dir),
            "args": list(self.args),
        }


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What one ``hil run`` runs: targets, suites, where the bundle goes, how many suites at once."""

    targets: tuple[Target, ...]
    out_dir: Path
    frameworks: tuple[str, ...] = SUITES
    suites: Mapping[str, Path] | None = None
    jobs: int = 1
    suite_timeout_s: float = SUITE_TIMEOUT_S
    runner_args: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # framework -> pass-through
    bench: BenchRequest | None = None  # for board targets; artifacts_dir is set per target
    wait_s: float = 0.0  # queue for a busy --out (and a busy board)
    command: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_id: str
    out_dir: Path
    targets: tuple[str, ...]
    sub_dirs: Mapping[str, Path]
    outcomes: tuple[SuiteOutcome, ...]
    metrics: dict[str, Any]
    board_errors: Mapping[str, str]  # target -> the rig failed before any of its tests could run

    @property
    def ok(self) -> bool:
        return not self.board_errors and all(o.exit_code == 0 for o in self.outcomes)

    @property
    def usage_errors(self) -> list[SuiteOutcome]:
        return [o for o in self.outcomes if o.usage_error]


class RunObserver:
    """What a run tells its caller as it goes (the CLI shows progress per target); every method optional."""

    def run_started(self, run_id: str, sub_dirs: Mapping[str, Path]) -> None:
        """The bundle is in place; the suites start next."""

    def suite_started(self, target: str, framework: str) -> None:
        """A framework started on a target."""

    def suite_finished(self, outcome: SuiteOutcome) -> None:
        """A framework ended on a target."""

    def tick(self) -> None:
        """Called a few times a second while suites run."""


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


def default_jobs() -> int:
    """Suites at once by default: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def holds_a_resource(target: Target) -> bool:
    """True if the backend holds something for the whole run (a bench board): its suites then run in turn."""
    cls = backend_class(target.backend)
    return any("hold_for_run" in vars(k) for k in cls.__mro__ if issubclass(k, Backend) and k is not Backend)


def _check(config: HilConfig, request: RunRequest, suites: Mapping[str, Path]) -> None:
    """Everything that can be wrong before a device starts: one clear error (exit 2)."""
    if not request.targets:
        raise ConfigError("no target to run: give --target")
    names = [t.name for t in request.targets]
    boards = [t.board_id for t in request.targets]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"target {name} is given twice: give each --target once")
    for board_id in boards:
        if boards.count(board_id) > 1:
            twins = [t.name for t in request.targets if t.board_id == board_id]
            raise ConfigError(f"targets {' and '.join(twins)} would share the results folder {board_id}/")
    if request.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {request.jobs}")
    if not request.suite_timeout_s > 0:
        raise ConfigError(f"--suite-timeout must be a positive number of seconds, got {request.suite_timeout_s:g}")
    for target in request.targets:
        if reason := unavailable_reason(target, config):
            raise BackendUnavailable(f"{target.name} cannot run here: {reason}")
    for framework in request.frameworks:
        if framework not in SUITES:
            raise ConfigError(f"unknown suite kind {framework!r}: use robot, pytest or all")
        if not suites[framework].exists():
            raise ConfigError(
                f"no {framework} suites at {suites[framework]}: point --suites (or --{framework}-suites) at yours"
            )
    ModelZoo(config.models_dir).check()  # every model folder, before any device starts: one clear error
    for target in request.targets:
        backend_class(target.backend).check_target(target, config)


def run(config: HilConfig, request: RunRequest, observer: RunObserver | None = None) -> RunSummary:
    """Run the suites of every target into one fresh bundle at ``request.out_dir``.

    A bench board is taken and brought up once for both frameworks. If that fails, its suites
    still run so that every test reports the board error (JUnit ``<error>``, Robot ``board-error``).
    """
    observer = observer or RunObserver()
    suites = dict(request.suites or suite_dirs(config))
    _check(config, request, suites)
    out_dir = request.out_dir
    check_out_dir(out_dir)  # a file, an unwritable folder or someone else's files: said before waiting for the lock
    run_id = new_run_id()
    names = tuple(t.name for t in request.targets)
    sub_dirs = {t.name: out_dir if len(request.targets) == 1 else out_dir / t.board_id for t in request.targets}
    with OutLock(out_dir) as lock:
        lock.acquire(" ".join(request.command) or f"hil run {' '.join(names)}", request.wait_s)
        firmware = request.bench.firmware if request.bench else None
        used = {f: suites[f] for f in request.frameworks}
        record = RunRecord(run_id, out_dir, names, sub_dirs, environment(config, request.targets, used,
                                                                           request.command, firmware))  # fmt: skip
        estimates = previous_durations(out_dir)  # of the run this one replaces: longest suites start first
        open_bundle(out_dir, record.first_metrics())
        for sub_dir in sub_dirs.values():
            sub_dir.mkdir(exist_ok=True)
        write_metrics(record, False, RUNNING)  # each sub-bundle says so from the start
        observer.run_started(run_id, sub_dirs)
        scheduler = _Scheduler(config, request, suites, sub_dirs, run_id, lock.fd, observer, estimates)
        try:
            scheduler.run()
            record.suites = [o.as_record(sub_dirs[o.target]) for o in scheduler.outcomes]
            if len(names) > 1:
                combine_reports(out_dir, list(sub_dirs.values()), f"HIL on {', '.join(names)}")
        except BaseException as err:  # interrupted or crashed: keep what the suites recorded, marked incomplete
            with deferred_signals():
                record.suites = [o.as_record(sub_dirs[o.target]) for o in scheduler.outcomes]
                write_metrics(record, False, _reason(err))
            raise
        finally:
            with deferred_signals():  # bounded: terminate, then kill, each within STOP_TIMEOUT_S
                left = end_marked_processes(RUN_MARKER, run_id)
            if left:
                log.warning("ended %d process(es) the suites left running: %s", len(left), left)
        early = [why for o in scheduler.outcomes if (why := o.ended_early)]
        metrics = write_metrics(record, not early, "; ".join(early))
    return RunSummary(run_id, out_dir, names, sub_dirs, tuple(scheduler.outcomes), metrics, scheduler.board_errors)


def _reason(err: BaseException) -> str:
    if isinstance(err, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(err, SystemExit):
        return "terminated (SIGTERM)"
    return f"hil stopped on an error: {type(err).__name__}: {err}"


def _argv(framework: str, target: Target, suites: Path, out_dir: Path, extra: Sequence[str]) -> list[str]:
    if framework == "robot":
        return [
            sys.executable, "-m", "robot",
            "--name", f"HIL on {target.name}",
            "--outputdir", str(out_dir),
            "--output", "output.xml", "--log", "log.html", "--report", "report.html",
            "--xunit", JUNIT["robot"],
            "--variable", f"HIL_TARGET:{target.name}",
            "--console", "verbose", "--consolecolors", "off",
            *extra,
            str(suites),
        ]  # fmt: skip
    return [
        sys.executable, "-m", "pytest", str(suites),
        f"--hil-target={target.name}", f"--hil-out={out_dir}",
        f"--junitxml={out_dir / JUNIT['pytest']}", "-o", f"junit_suite_name=HIL on {target.name}",
        "-p", "no:cacheprovider", "-p", "no:labgrid", "-rs", "-v",
        *extra,
    ]  # fmt: skip


@dataclass(slots=True)
class _Unit:
    """One framework's suites on one target: a process."""

    target: Target
    framework: str
    sub_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    stop_by: float | None = None  # asked to stop (timeout): its group is ended after this
    timed_out: bool = False

    @property
    def console(self) -> Path:
        return self.sub_dir / f"console-{self.framework}.txt"


@dataclass(slots=True)
class _Lane:
    """A target's units, its hold on the bench (if any) and what it hands to its suites."""

    target: Target
    pending: deque[_Unit]
    serial: bool
    active: int = 0
    hold: contextlib.ExitStack | None = None
    env: dict[str, str] = field(default_factory=dict)


class _Scheduler:
    """Starts units as slots free up, polls them, stops them on timeout or interrupt. Main thread only:
    the suites' parent-death signal is tied to the thread that starts them."""

    def __init__(
        self,
        config: HilConfig,
        request: RunRequest,
        suites: Mapping[str, Path],
        sub_dirs: Mapping[str, Path],
        run_id: str,
        lock_fd: int | None,
        observer: RunObserver,
        estimates: Mapping[tuple[str, str], float] | None = None,
    ) -> None:
        self.config = config
        self.estimates = estimates or {}
        self.request = request
        self.suites = suites
        self.observer = observer
        self.lock_fds = (lock_fd,) if lock_fd is not None else ()
        self.lanes = [
            _Lane(t, deque(_Unit(t, f, sub_dirs[t.name]) for f in request.frameworks), holds_a_resource(t))
            for t in request.targets
        ]
        self.running: list[_Unit] = []
        self.outcomes: list[SuiteOutcome] = []
        self.board_errors: dict[str, str] = {}
        self.env = os.environ | {RUN_MARKER: run_id}
        if config.source:
            self.env["HIL_CONFIG"] = str(config.source)
        if config.lab_file:
            self.env["HIL_LAB"] = str(config.lab_file)

    def run(self) -> None:
        try:
            while self.running or any(lane.pending for lane in self.lanes):
                self._poll()
                self._start_ready()  # a slot that just freed up is filled at once
                self.observer.tick()
                if self.running:
                    time.sleep(POLL_S)
        except BaseException:
            self._stop_all()
            raise
        finally:
            for lane in self.lanes:
                self._release(lane)

    def _start_ready(self) -> None:
        """Fill free slots, longest suites first (as long as they took in the bundle this run replaces):
        the last ones to finish are then the short ones, and the slots stay busy to the end."""
        while len(self.running) < self.request.jobs:
            ready = [(lane, unit) for lane in self.lanes if not (lane.serial and lane.active)
                     for unit in (list(lane.pending)[:1] if lane.serial else lane.pending)]  # fmt: skip
            if not ready:
                return
            lane, unit = max(ready, key=lambda pair: self.estimates.get((pair[1].target.name, pair[1].framework), 0.0))
            lane.pending.remove(unit)
            if lane.hold is None:
                self._hold(lane, unit)
            self._start(lane, unit)

    def _hold(self, lane: _Lane, first: _Unit) -> None:
        """Take what the target's backend holds for the run (a bench board: leased, flashed, booted)."""
        target = lane.target
        template = self.request.bench or BenchRequest(Path())
        sub_dir = first.sub_dir  # the lane's first unit: with one framework, nothing else is pending
        bench = dataclasses.replace(template, artifacts_dir=sub_dir / "artifacts" / target.board_id)
        lane.hold = contextlib.ExitStack()
        try:
            lane.env = lane.hold.enter_context(backend_class(target.backend).hold_for_run(target, self.config, bench))
        except BoardError as err:
            self.board_errors[target.name] = str(err)
            lane.env = {BOARD_ERROR_ENV: str(err)}

    def _release(self, lane: _Lane) -> None:
        hold, lane.hold = lane.hold, None
        if hold is not None:
            with deferred_signals():
                hold.close()

    def _start(self, lane: _Lane, unit: _Unit) -> None:
        target = unit.target
        self.observer.suite_started(target.name, unit.framework)
        extra = self.request.runner_args.get(unit.framework, ())
        argv = _argv(unit.framework, target, self.suites[unit.framework], unit.sub_dir, extra)
        device_dir = unit.sub_dir / "artifacts" / target.board_id / unit.framework
        env = self.env | {"HIL_TARGET": target.name, "HIL_RESULTS": str(unit.sub_dir),
                          DEVICE_ARTIFACTS_ENV: str(device_dir)} | lane.env  # fmt: skip
        with unit.console.open("wb") as console:
            unit.proc = subprocess.Popen(
                argv,
                cwd=self.config.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=parent_death_signal(signal.SIGTERM),  # if hil is killed, the suite still tears down
                pass_fds=self.lock_fds,  # the --out lock stays taken while any suite still writes
            )
        unit.started = time.monotonic()
        lane.active += 1
        self.running.append(unit)

    def _poll(self) -> None:
        for unit in list(self.running):
            assert unit.proc is not None
            code = unit.proc.poll()
            if code is None:
                now = time.monotonic()
                if unit.stop_by is None and now - unit.started > self.request.suite_timeout_s:
                    log.warning("%s suites on %s ran past %g s: stopping them", unit.framework, unit.target.name,
                                self.request.suite_timeout_s)  # fmt: skip
                    unit.timed_out = True
                    unit.stop_by = now + SUITE_STOP_GRACE_S
                    with contextlib.suppress(ProcessLookupError):
                        unit.proc.send_signal(signal.SIGINT)  # stops as a Ctrl-C would: teardown, reports
                    continue
                if unit.stop_by is None or now < unit.stop_by:
                    continue
            self._finish(unit)

    def _finish(self, unit: _Unit) -> None:
        assert unit.proc is not None
        end_process(unit.proc, group=True)  # and whatever it left in its group
        code = EXIT_TIMED_OUT if unit.timed_out else unit.proc.returncode
        outcome = SuiteOutcome(
            unit.target.name,
            unit.framework,
            code,
            round(time.monotonic() - unit.started, 2),
            unit.sub_dir / JUNIT[unit.framework],
            unit.console,
            unit.timed_out,
            tuple(self.request.runner_args.get(unit.framework, ())),
        )
        self.running.remove(unit)
        self.outcomes.append(outcome)
        lane = next(ln for ln in self.lanes if ln.target is unit.target)
        lane.active -= 1
        if not lane.pending and not lane.active:
            self._release(lane)  # the board is free for others as soon as its suites are done
        self.observer.suite_finished(outcome)

    def _stop_all(self) -> None:
        """Ask every running suite to stop as a Ctrl-C would, wait a while, then end their groups."""
        for unit in self.running:
            if unit.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    unit.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + SUITE_STOP_GRACE_S
        try:
            for unit in self.running:
                assert unit.proc is not None
                unit.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except (subprocess.TimeoutExpired, KeyboardInterrupt, SystemExit):
            pass  # too slow, or asked again: end the groups now
        for unit in list(self.running):
            with deferred_signals():
                self._finish(unit)
