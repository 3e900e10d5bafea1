"""Ctrl-C and SIGTERM on ``hil run``: one line, every child stopped, results kept, exit 130/143."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from marked_runs import MARKER, wait_for_twin

from hil.backends._process import marked_processes

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "tests" / "e2e" / "hil_suites"  # suites that run until they are stopped


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    left = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if state[state.rindex(")") + 2 :][0] != "Z":
            left.add(pid)
    return left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts processes through /proc")
@pytest.mark.parametrize(
    ("sig", "suite", "exit_code", "word"),
    [(signal.SIGINT, "robot", 130, "interrupted"), (signal.SIGTERM, "pytest", 143, "terminated")],
    ids=["sigint-in-robot", "sigterm-in-pytest"],
)
def test_signal_on_hil_run_stops_every_child_and_keeps_results(
    tmp_path: Path, sig: signal.Signals, suite: str, exit_code: int, word: str
) -> None:
    marker = uuid.uuid4().hex
    out = tmp_path / "out"
    suites = SUITES / f"slow_suite.{'robot' if suite == 'robot' else 'py'}"
    argv = [sys.executable, "-m", "hil.cli", "run", "--suite", suite, f"--{suite}-suites", str(suites)]
    argv += ["--out", str(out)]
    with (tmp_path / "console.txt").open("w+b") as console:
        hil = subprocess.Popen(
            argv, cwd=ROOT, env=os.environ | {MARKER: marker}, stdout=console, stderr=subprocess.STDOUT
        )
        try:
            wait_for_twin(marker, hil)
            time.sleep(1.0)  # the test is under way
            descendants = _children(hil.pid)
            hil.send_signal(sig)
            code = hil.wait(timeout=90)
        finally:
            if hil.poll() is None:
                hil.kill()
                hil.wait()
        console.seek(0)
        output = console.read().decode(errors="replace")
    left = _alive(descendants) | set(marked_processes(MARKER, marker))
    for pid in left:  # don't leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left running: {left}\n{output[-3000:]}"
    assert code == exit_code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    hil_lines = [line for line in output.splitlines() if line.startswith(f"{word}:")]
    assert len(hil_lines) == 1, output[-3000:]
    assert str(out) in hil_lines[0]
    metrics = json.loads((out / "metrics.json").read_text())  # merged from what the suite recorded
    assert metrics["schema"] == "tinyml-hil.metrics/2"
    assert metrics["complete"] is False
    assert metrics["incomplete_reason"] == ("interrupted (Ctrl-C)" if sig == signal.SIGINT else "terminated (SIGTERM)")
