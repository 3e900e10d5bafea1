"""How hil run fills its --jobs slots: longest suites first, a bench board's halves in turn."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from hil.config import load_config
from hil.errors import ConfigError
from hil.runner import RunObserver, RunRequest, _Lane, _Scheduler, _Unit, holds_a_resource, run, suite_dirs

ROOT = Path(__file__).resolve().parents[2]


def _scheduler(tmp_path: Path, jobs: int, estimates: dict[tuple[str, str], float]) -> tuple[_Scheduler, list[str]]:
    config = load_config(root=ROOT)
    targets = (config.target("reference"), config.target("board:nrf52840dk"))
    request = RunRequest(targets, tmp_path, jobs=jobs)
    subs = {t.name: tmp_path / t.board_id for t in targets}
    scheduler = _Scheduler(config, request, suite_dirs(config), subs, "run-1", None, RunObserver(), estimates)
    started: list[str] = []

    def start(lane: _Lane, unit: _Unit) -> None:  # instead of a process
        started.append(f"{unit.target.name} {unit.framework}")
        lane.active += 1
        scheduler.running.append(unit)

    def hold(lane: _Lane, first: _Unit) -> None:  # instead of leasing and flashing a board
        del first
        lane.hold = contextlib.ExitStack()

    scheduler._start = start  # type: ignore[method-assign]
    scheduler._hold = hold  # type: ignore[method-assign]
    return scheduler, started


def test_a_bench_board_holds_its_run_and_the_twin_does_not() -> None:
    config = load_config(root=ROOT)
    assert holds_a_resource(config.target("board:nrf52840dk"))
    assert not holds_a_resource(config.target("reference"))


def test_the_longest_suites_start_first_and_a_board_runs_one_suite_at_a_time(tmp_path: Path) -> None:
    estimates = {("reference", "robot"): 1.0, ("reference", "pytest"): 5.0, ("board:nrf52840dk", "robot"): 9.0,
                 ("board:nrf52840dk", "pytest"): 8.0}  # fmt: skip
    scheduler, started = _scheduler(tmp_path, jobs=3, estimates=estimates)
    scheduler._start_ready()
    # the board's pytest half (8 s) waits for its robot half: one board, one suite at a time
    assert started == ["board:nrf52840dk robot", "reference pytest", "reference robot"]


def test_without_estimates_targets_start_in_the_order_given(tmp_path: Path) -> None:
    scheduler, started = _scheduler(tmp_path, jobs=2, estimates={})
    scheduler._start_ready()
    assert started == ["reference robot", "reference pytest"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"jobs": 0}, "--jobs must be at least 1"),
        ({"suite_timeout_s": 0.0}, "--suite-timeout must be a positive number"),
        ({"targets": ()}, "no target to run"),
    ],
)
def test_a_bad_request_is_refused_before_anything_starts(tmp_path: Path, change: dict, says: str) -> None:
    config = load_config(root=ROOT)
    given = {"targets": (config.target("reference"),), "out_dir": tmp_path / "out", "jobs": 1} | change
    request = RunRequest(**given)
    with pytest.raises(ConfigError, match=says):
        run(config, request)
    assert not (tmp_path / "out").exists()


def test_the_same_target_twice_is_refused(tmp_path: Path) -> None:
    config = load_config(root=ROOT)
    request = RunRequest((config.target("reference"), config.target("reference")), tmp_path / "out")
    with pytest.raises(ConfigError, match="target reference is given twice"):
        run(config, request)


def test_a_board_target_with_one_framework_takes_its_board_for_that_suite(tmp_path: Path) -> None:
    config = load_config(root=ROOT)
    target = config.target("board:nrf52840dk")
    request = RunRequest((target,), tmp_path, frameworks=("pytest",), jobs=2)
    scheduler = _Scheduler(config, request, suite_dirs(config), {target.name: tmp_path}, "run-1", None, RunObserver())
    held: list[str] = []

    def hold(lane: _Lane, first: _Unit) -> None:
        held.append(f"{first.target.name} {first.framework} {first.sub_dir}")
        lane.hold = contextlib.ExitStack()

    def start(lane: _Lane, unit: _Unit) -> None:
        lane.active += 1
        scheduler.running.append(unit)

    scheduler._hold = hold  # type: ignore[method-assign]
    scheduler._start = start  # type: ignore[method-assign]
    scheduler._start_ready()
    assert held == [f"board:nrf52840dk pytest {tmp_path}"]
