"""Board locks the OS releases when their holder dies, and the quarantine record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hil.lab.state import BoardLock, Quarantine

HOLD_LOCK = """
import sys, time
from pathlib import Path
from hil.lab.state import BoardLock
lock = BoardLock(Path(sys.argv[1]), "dk-1")
assert lock.try_acquire("held by a test child")
print("held", flush=True)
time.sleep(60)
"""


def test_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    first, second = BoardLock(tmp_path, "dk-1"), BoardLock(tmp_path, "dk-1")
    assert first.try_acquire("run A")
    assert not second.try_acquire("run B")
    holder = second.holder()
    assert holder is not None
    assert holder.pid == os.getpid()
    assert holder.purpose == "run A"
    first.release()
    assert second.holder() is None
    assert second.try_acquire("run B")
    second.release()


def test_lock_of_a_killed_holder_is_free_at_once(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == b"held\n"
        lock = BoardLock(tmp_path, "dk-1")
        assert not lock.try_acquire()
        assert lock.holder().pid == child.pid
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    started = time.monotonic()
    assert lock.try_acquire()
    assert time.monotonic() - started < 0.5
    lock.release()


def test_quarantine_after_n_failures_in_a_row_and_release(tmp_path: Path) -> None:
    quarantine = Quarantine(tmp_path)
    assert quarantine.record_failure("dk-1", "flash failed", 2).quarantined_since is None
    quarantine.record_success("dk-1")  # a good run resets the count
    assert quarantine.record_failure("dk-1", "flash failed", 2).failures_in_a_row == 1
    health = quarantine.record_failure("dk-1", "flash failed again", 2)
    assert health.quarantined_since
    assert health.last_error == "flash failed again"
    assert quarantine.health("other").quarantined_since is None  # other boards unaffected
    assert quarantine.release("dk-1")
    assert quarantine.health("dk-1").failures_in_a_row == 0


def test_damaged_quarantine_record_starts_afresh(tmp_path: Path) -> None:
    (tmp_path / "quarantine.json").write_text("{not json")
    assert Quarantine(tmp_path).health("dk-1").failures_in_a_row == 0
