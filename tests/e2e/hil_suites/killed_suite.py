"""A HIL suite whose second test kills the device's process mid-test (used by test_cli.py).

Not collected by the project's own test run (the name does not start with ``test_``); run by
``hil run --suite pytest --pytest-suites tests/e2e/hil_suites/killed_suite.py``.
"""

from __future__ import annotations

import os
import signal

import numpy as np

from hil.device import Device
from hil.session import HilSession


def test_before_the_kill(hil: HilSession) -> None:
    hil.check_golden("sine")


def test_device_killed_mid_test(dut: Device) -> None:
    os.kill(dut.backend.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    dut.infer("sine", np.zeros((1, 1), dtype=np.int8))


def test_after_the_kill(hil: HilSession) -> None:
    hil.check_golden("sine")
