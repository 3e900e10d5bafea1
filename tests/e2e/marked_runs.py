"""Helpers for e2e tests that start ``hil`` in the background and find its processes by an env marker."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from hil.backends._process import marked_processes

MARKER = "HIL_TEST_MARKER"  # set in the started hil's environment; every process it starts inherits it
STARTUP_TIMEOUT_S = 120.0


def wait_for_twin(marker: str, hil: subprocess.Popen[bytes]) -> None:
    """Return once a reference twin carrying ``marker`` runs; fail the test if ``hil`` exits or time runs out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and hil.poll() is None:
        for pid in marked_processes(MARKER, marker):
            try:
                if b"hil.twin" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return
            except OSError:
                continue
        time.sleep(0.2)
    pytest.fail(f"the reference twin did not start within {STARTUP_TIMEOUT_S:g} s (hil exit code {hil.poll()})")
