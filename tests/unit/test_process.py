"""The one supervisor of child processes (hil.backends._process.ChildProcess): nothing outlives the harness.

Renode, QEMU, native_sim, the twin and ``hil build``'s west all run under it; these tests use
``sh`` and ``sleep`` as the children, and a real harness process that is killed with SIGKILL.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil.backends._process import ChildProcess

LINUX_PROC = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process groups from /proc (Linux)")


def live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (read from /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def wait_gone(pgid: int, timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (alive := live_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


HARNESS = """
import sys, time
from pathlib import Path
from hil.backends._process import ChildProcess
child = ChildProcess("launcher", ["sh", "-c", "sleep 300 & sleep 300"], Path(sys.argv[1]), watchdog=True)
print(child.pgid, flush=True)
time.sleep(300)
"""


@LINUX_PROC
def test_child_group_dies_when_the_harness_is_killed(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HARNESS, str(tmp_path / "child.log")], stdout=subprocess.PIPE, text=True
    ) as harness:
        assert harness.stdout is not None
        pgid = int(harness.stdout.readline())
        time.sleep(0.3)
        assert len(live_members(pgid)) == 3  # sh and its two sleeps
        harness.kill()
        harness.wait(timeout=5)
    assert wait_gone(pgid, 10) == [], "the child's process group outlived the harness"


@LINUX_PROC
def test_stop_kills_a_group_that_ignores_sigterm(tmp_path: Path) -> None:
    child = ChildProcess(
        "stubborn", ["sh", "-c", "trap '' TERM; sleep 300 & wait"], tmp_path / "log", watchdog=True, stop_timeout_s=0.5
    )
    time.sleep(0.3)
    started = time.monotonic()
    assert child.pgid is not None
    child.stop()
    assert time.monotonic() - started < 5
    assert wait_gone(child.pgid, 5) == []
    child.stop()  # twice is fine


@LINUX_PROC
def test_leaving_the_block_ends_the_group(tmp_path: Path) -> None:
    with ChildProcess("west", ["sh", "-c", "sleep 300 & sleep 300"], tmp_path / "log", own_group=True) as child:
        pgid = child.pgid
        assert pgid == child.pid
        time.sleep(0.2)
    assert pgid is not None
    assert wait_gone(pgid, 5) == []


def test_exit_reason_and_wait_report_how_it_ended(tmp_path: Path) -> None:
    with ChildProcess("quick", ["sh", "-c", "echo hello; exit 3"], tmp_path / "log") as child:
        assert child.wait(5) == 3
        assert child.exit_reason() == f"quick (pid {child.pid}) exited with code 3"
    assert "hello" in (tmp_path / "log").read_text()


def test_wait_is_none_while_it_runs(tmp_path: Path) -> None:
    with ChildProcess("sleeper", ["sleep", "30"], tmp_path / "log", own_group=True) as child:
        assert child.wait(0.1) is None
        assert child.exit_reason() is None


@pytest.mark.parametrize(
    ("module", "name"), [("hil.backends.qemu", "QEMU"), ("hil.backends.native", "native_sim"), ("hil.build", "west")]
)
def test_emulators_and_west_run_under_the_supervisor_with_a_watchdog(module: str, name: str) -> None:
    source = Path(__import__(module, fromlist=["_"]).__file__).read_text()
    assert "ChildProcess(" in source, f"{name} must run as a ChildProcess"
    assert "watchdog=True" in source, f"{name} must not outlive the harness (watchdog)"
    assert "subprocess.Popen(" not in source, f"{name} starts no process of its own"
