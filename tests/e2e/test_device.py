"""The Device contract over a real pty to the reference twin: failures and recovery."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hil.errors import ConfigError, DeviceLost, DeviceTimeout
from hil.session import HilSession

ZERO = np.zeros((1, 1), dtype=np.int8)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[HilSession]:
    s = HilSession("pytest", "reference", None, tmp_path)
    yield s
    s.close()


def test_killed_twin_fails_fast_with_how_it_ended(session: HilSession) -> None:
    device = session.device()
    os.kill(device.backend.pid, signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(DeviceLost, match="killed by SIGKILL"):
        device.infer("sine", ZERO)
    assert time.monotonic() - started < 2


def test_hung_twin_times_out_and_is_restarted_for_the_next_test(session: HilSession) -> None:
    device = session.device()
    pid = device.backend.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(DeviceTimeout, match=r"no INFER \(seq \d+\) within 0.3 s"):
            device.infer("sine", ZERO, timeout_s=0.3)
        assert device.lost_reason()
    finally:
        os.kill(pid, signal.SIGCONT)
    restarted = session.device()
    assert restarted.backend.pid != pid
    assert restarted.infer("sine", ZERO).output.shape == (1, 1)


def test_reset_reboots_and_answers_again(session: HilSession) -> None:
    device = session.device()
    boots = sum(line.startswith("HIL BOOT") for line in device.console_tail(100))
    device.reset()
    assert sum(line.startswith("HIL BOOT") for line in device.console_tail(100)) == boots + 1
    assert device.lost_reason() is None


def test_unknown_model_names_what_the_device_serves(session: HilSession) -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'nope': reference serves .*sine"):
        session.device().model("nope")
