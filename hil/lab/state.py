"""The lab's state on this machine: one lock per board, and the quarantine record.

A board lock is an exclusive ``flock`` on ``<state_dir>/locks/<board>.lock``: the OS drops it
the moment its holder dies (``kill -9`` included), so a lock is never stale. The holder writes
who it is (pid, user, host, since) into the file for ``hil lab list``; that text is only read
while the lock is actually held.

The quarantine record counts each board's bring-up failures in a row; at the board's
``quarantine_after`` it is quarantined until ``hil lab release-quarantine``.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from hil.errors import ConfigError

LOCK_POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class Holder:
    pid: int
    user: str
    host: str
    since: str
    purpose: str = ""

    def describe(self) -> str:
        return (
            f"pid {self.pid} ({self.user}@{self.host}, since {self.since}{', ' + self.purpose if self.purpose else ''})"
        )


def _safe_name(board_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in board_id)


def _state_path(state_dir: Path, *parts: str) -> Path:
    path = state_dir.joinpath(*parts)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot use the lab state directory {state_dir}: {err.strerror or err}") from err
    return path


class BoardLock:
    """An exclusive, crash-safe claim on one board by this process."""

    def __init__(self, state_dir: Path, board_id: str) -> None:
        self.board_id = board_id
        self.path = _state_path(state_dir, "locks", f"{_safe_name(board_id)}.lock")
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self, purpose: str = "") -> bool:
        """Take the lock if it is free; never blocks."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        holder = Holder(os.getpid(), getpass.getuser(), socket.gethostname(), _now(), purpose)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(holder)).encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)  # closing drops the flock

    def holder(self) -> Holder | None:
        """Who holds the board now (this process included), or None if it is free."""
        if self._fd is not None:
            return _read_holder(self.path)
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(self.path) or Holder(0, "?", "?", "?")
        finally:
            os.close(fd)  # also drops the probe's shared lock
        return None


def _read_holder(path: Path) -> Holder | None:
    try:
        return Holder(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class BoardHealth:
    failures_in_a_row: int = 0
    quarantined_since: str | None = None
    last_error: str = ""


class Quarantine:
    """Per-board failure counts and quarantine, shared by every run on this machine."""

    def __init__(self, state_dir: Path) -> None:
        self.path = _state_path(state_dir, "quarantine.json")

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict]]:
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            records = self._read()
            before = json.dumps(records, sort_keys=True)
            yield records
            if json.dumps(records, sort_keys=True) != before:
                partial = self.path.with_suffix(".partial")
                partial.write_text(json.dumps(records, indent=2, sort_keys=True))
                partial.replace(self.path)
        finally:
            os.close(fd)

    def _read(self) -> dict[str, dict]:
        try:
            records = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a damaged record must not keep boards out forever: start counting afresh
        return records if isinstance(records, dict) else {}

    def health(self, board_id: str) -> BoardHealth:
        record = self._read().get(board_id, {})
        try:
            return BoardHealth(**record)
        except TypeError:
            return BoardHealth()

    def record_failure(self, board_id: str, error: str, quarantine_after: int) -> BoardHealth:
        with self._locked() as records:
            old = records.get(board_id, {})
            count = int(old.get("failures_in_a_row", 0)) + 1
            since = old.get("quarantined_since") or (_now() if count >= quarantine_after else None)
            records[board_id] = asdict(BoardHealth(count, since, error[:500]))
            return BoardHealth(**records[board_id])

    def record_success(self, board_id: str) -> None:
        with self._locked() as records:
            records.pop(board_id, None)

    def release(self, board_id: str) -> bool:
        """Take ``board_id`` out of quarantine; False if it was not in it."""
        with self._locked() as records:
            return records.pop(board_id, None) is not None


def wait_until(deadline: float) -> bool:
    """Sleep one poll step unless the deadline has passed; False once it has."""
    if time.monotonic() >= deadline:
        return False
    time.sleep(min(LOCK_POLL_S, max(0.0, deadline - time.monotonic())))
    return True
