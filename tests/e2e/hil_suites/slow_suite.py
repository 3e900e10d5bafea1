"""A HIL suite that runs inferences until it is stopped (used by test_run_signals.py).

Not collected by the project's own test run; run by ``hil run --suite pytest --pytest-suites
tests/e2e/hil_suites/slow_suite.py``.
"""

from __future__ import annotations

import time

import numpy as np

from hil.device import Device

RUN_FOR_S = 120.0


def test_inferences_until_stopped(dut: Device) -> None:
    deadline = time.monotonic() + RUN_FOR_S
    while time.monotonic() < deadline:
        dut.infer("sine", np.zeros((1, 1), dtype=np.int8))
