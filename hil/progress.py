"""Progress of a run, per target: which suites run, how many tests are done, how many failed.

On a terminal a live rich display (one line per target); in a CI log one plain line as each
framework starts and ends on a target. Counts come from the per-test lines the suites write.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from hil.metrics import METRICS_DIR
from hil.runner import RunObserver, SuiteOutcome

REFRESH_S = 0.5


def _counts(sub_dir: Path) -> tuple[int, int, int]:
    """Tests recorded so far in a sub-bundle: (done, failed, skipped)."""
    done = failed = skipped = 0
    for path in (sub_dir / METRICS_DIR).glob("*.jsonl"):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if '"kind": "test"' in line:
                done += 1
                failed += '"status": "FAIL"' in line
                skipped += '"status": "SKIP"' in line
    return done, failed, skipped


class RunProgress(RunObserver):
    """Shows a run's progress on ``console``; use as a context manager around :func:`hil.runner.run`."""

    def __init__(self, console: Console, frameworks: tuple[str, ...]) -> None:
        self.console = console
        self.frameworks = frameworks
        self.live = console.is_terminal
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[state]}"),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.sub_dirs: Mapping[str, Path] = {}
        self.states: dict[str, dict[str, str]] = {}
        self._refreshed = 0.0

    def __enter__(self) -> RunProgress:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.tick(force=True)
            self.progress.stop()

    def run_started(self, run_id: str, sub_dirs: Mapping[str, Path]) -> None:
        self.sub_dirs = sub_dirs
        for target in sub_dirs:
            self.states[target] = {}
            if self.live:
                self.tasks[target] = self.progress.add_task(target, total=None, state="queued")
        if not self.live:
            self.console.print(f"run {run_id}: {', '.join(sub_dirs)}", soft_wrap=True)

    def suite_started(self, target: str, framework: str) -> None:
        self.states[target][framework] = "running"
        if not self.live:
            self.console.print(f"{target}: {framework} started", soft_wrap=True)
        self.tick(force=True)

    def suite_finished(self, outcome: SuiteOutcome) -> None:
        state = "passed" if outcome.exit_code == 0 else "timed out" if outcome.timed_out else "failed"
        self.states[outcome.target][outcome.framework] = state
        if not self.live:
            done, failed, skipped = _counts(self.sub_dirs[outcome.target])
            self.console.print(
                f"{outcome.target}: {outcome.framework} {state} in {outcome.duration_s:.1f} s "
                f"({done} tests so far on {outcome.target}: {failed} failed, {skipped} skipped)",
                soft_wrap=True,
            )
        self.tick(force=True)

    def tick(self, force: bool = False) -> None:
        if not self.live or (not force and time.monotonic() - self._refreshed < REFRESH_S):
            return
        self._refreshed = time.monotonic()
        for target, task in self.tasks.items():
            done, failed, skipped = _counts(self.sub_dirs[target])
            suites = ", ".join(f"{f} {s}" for f, s in self.states[target].items()) or "queued"
            colour = "red" if failed else "green"
            state = f"[{colour}]{done} tests[/] ({failed} failed, {skipped} skipped) · {suites}"
            finished = all(self.states[target].get(f) not in (None, "running") for f in self.frameworks)
            self.progress.update(task, state=state, completed=1 if finished else 0, total=1 if finished else None)
