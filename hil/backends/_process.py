"""Child processes that never outlive the harness: own process group, parent-death signal, watchdog, bounded stops.

Every process a backend or ``hil build`` starts (Renode, QEMU, native_sim, the twin, west) is a
:class:`ChildProcess`, started once and stopped with terminate → bounded wait → kill. With
``own_group=True`` it leads its own session (a Ctrl-C in the terminal reaches only the harness,
which stops it in order), Linux kills it when the thread that started it dies (the parent-death
signal), and stopping it ends its whole group, so what a launcher script started (``mono`` under
Renode's ``renode`` script, the compilers under ``west``) goes too. With ``watchdog=True`` a
small process also ends that group once the harness is gone, ``kill -9`` included: the
parent-death signal reaches only the direct child, not what it started.

The runner also marks every process of a run with an environment variable and ends whatever
still carries it when the run is over (:func:`end_marked_processes`), the cookie Jenkins'
ProcessTreeKiller uses for the same purpose: it finds descendants that started sessions of their own.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

STOP_TIMEOUT_S = 5.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_POLL_S = 0.05

# Runs as `python -c` with the harness pid and the child's process group: when the harness is gone,
# terminate then kill the group; quit when the group is gone. It has its own session, so Ctrl-C
# in a terminal reaches the harness (which stops the child itself) but not the watchdog.
WATCHDOG_SOURCE = """
import os, signal, sys, time
owner, group = int(sys.argv[1]), int(sys.argv[2])
def alive():
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
while alive():
    if os.getppid() != owner:
        for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 0.0)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            end = time.monotonic() + wait_s
            while time.monotonic() < end and alive():
                time.sleep(0.05)
        break
    time.sleep(0.25)
"""


def parent_death_signal(sig: signal.Signals = signal.SIGKILL) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send ``sig`` to the child when the thread that started it dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: nothing to load in the child
    except (OSError, AttributeError):
        return None

    def set_pdeathsig() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return set_pdeathsig


class ChildProcess:
    """One child process; its output (stdout unless given, and stderr) is appended to ``log``.

    ``own_group``: it leads its own session, gets SIGKILL when the thread that started it dies
    (start it from a thread that lives as long as it should: pytest and Robot run fixtures on
    the main thread), and :meth:`stop` ends its whole group. ``watchdog`` (implies ``own_group``):
    a watchdog process ends the group when the harness is gone. ``stop_timeout_s`` bounds each
    wait of :meth:`stop` (after SIGTERM, after SIGKILL). Use it as a context manager, or call
    :meth:`stop`; both are safe to repeat.
    """

    def __init__(
        self,
        what: str,
        argv: list[str],
        log: Path,
        *,
        own_group: bool = False,
        watchdog: bool = False,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        **popen: Any,
    ) -> None:
        self.what = what
        self.own_group = own_group or watchdog
        self.stop_timeout_s = stop_timeout_s
        if self.own_group:
            popen |= {"start_new_session": True, "preexec_fn": parent_death_signal()}
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                argv, stdout=popen.pop("stdout", out), stderr=popen.pop("stderr", out), **popen
            )
        self.pid = self._proc.pid
        self.pgid = self.pid if self.own_group else None  # a new session's leader leads its process group
        self._watchdog: subprocess.Popen[bytes] | None = None
        if watchdog:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", WATCHDOG_SOURCE, str(os.getpid()), str(self.pid)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def popen(self) -> subprocess.Popen[bytes] | None:
        return self._proc

    def exit_reason(self) -> str | None:
        if self._proc is None or (code := self._proc.poll()) is None:
            return None
        if code < 0:
            return f"{self.what} (pid {self._proc.pid}) was killed by {signal.Signals(-code).name}"
        return f"{self.what} (pid {self._proc.pid}) exited with code {code}"

    def wait(self, timeout_s: float) -> int | None:
        """Its exit code once it has exited (waiting at most ``timeout_s``); None while it runs."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Terminate, wait, kill (the whole group if it leads one); reap it; stop the watchdog."""
        proc, self._proc = self._proc, None
        if proc is not None:
            end_process(proc, self.stop_timeout_s, group=self.own_group)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            end_process(watchdog, self.stop_timeout_s)


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to process group ``pgid``; False if the group is gone."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):  # gone, or the id now belongs to someone else
        return False


def end_process(proc: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S, *, group: bool = False) -> None:
    """Terminate, wait, then kill (the whole group if the child leads one); close its pipes and reap it."""
    with proc, deferred_signals():
        if proc.poll() is None:
            if not (group and signal_group(proc.pid, signal.SIGTERM)):
                proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout_s)
        if group:
            signal_group(proc.pid, signal.SIGKILL)  # what the leader left behind in its group


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while a cleanup runs, so a second Ctrl-C cannot cut it short."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError, ValueError):  # no pthread_sigmask here
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def marked_processes(key: str, value: str) -> list[int]:
    """Pids of the live processes whose environment holds ``key=value`` (Linux /proc; elsewhere none)."""
    needle = f"{key}={value}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") and not _is_zombie(entry):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or another user's
            continue
    return found


def _is_zombie(entry: Path) -> bool:
    stat = (entry / "stat").read_text()
    return stat[stat.rindex(")") + 2 :].startswith("Z")


def end_marked_processes(key: str, value: str, timeout_s: float = STOP_TIMEOUT_S) -> list[int]:
    """Terminate, then kill, every process carrying ``key=value``; return the pids that were found."""
    found = marked_processes(key, value)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = marked_processes(key, value)
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while left and time.monotonic() < deadline:
            time.sleep(_POLL_S)
            left = marked_processes(key, value)
        if not left:
            break
    return found
