"""``hil run`` options for results and for suites that live outside this repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ROBOT_SUITE = """\
*** Settings ***
Library           hil.robot.HilLibrary
Suite Setup       Open Device
Suite Teardown    Close Device

*** Test Cases ***
My Sine Matches Its Golden Vectors
    Output Should Match Golden    sine
"""

PYTEST_SUITE = """\
from hil.session import HilSession


def test_my_sine_matches_its_golden_vectors(hil: HilSession) -> None:
    hil.check_golden("sine")
"""


def hil(*args: str, cwd: Path = ROOT, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "hil.cli", *args]
    env = {k: v for k, v in os.environ.items() if k not in ("HIL_CONFIG", "HIL_TARGET", "HIL_RESULTS")}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith("error: ")
    return lines[0]


def test_out_pointing_at_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    taken = tmp_path / "results.txt"
    taken.write_text("not a folder")
    line = _one_line_error(hil("run", "--out", str(taken)))
    assert f"results directory {taken} is a file" in line


def test_out_below_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    taken = tmp_path / "results.txt"
    taken.write_text("not a folder")
    line = _one_line_error(hil("run", "--out", str(taken / "run1")))
    assert f"cannot write results to {taken / 'run1'}" in line


def test_out_pointing_at_a_read_only_folder_is_a_one_line_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        read_only = Path("/sys/kernel")  # root writes through permission bits; sysfs refuses even root
        if not read_only.is_dir():
            pytest.skip("running as root without /sys/kernel: no folder root cannot write")
    else:
        read_only = tmp_path / "locked"
        read_only.mkdir()
        read_only.chmod(0o555)
    line = _one_line_error(hil("run", "--out", str(read_only)))
    assert f"cannot write results to {read_only}" in line
    assert "writable directory" in line


def test_suites_and_models_outside_the_repository_run(tmp_path: Path) -> None:
    suites = tmp_path / "my_suites"
    suites.mkdir()
    (suites / "my_sine.robot").write_text(ROBOT_SUITE)
    (suites / "test_my_sine.py").write_text(PYTEST_SUITE)
    zoo = tmp_path / "my_zoo"
    shutil.copytree(ROOT / "models" / "sine", zoo / "sine", ignore=shutil.ignore_patterns("__pycache__"))
    result = hil("run", "--suites", str(suites), "--models-dir", str(zoo), "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {(t["framework"], t["status"]) for t in metrics["tests"]} == {("robot", "PASS"), ("pytest", "PASS")}
    assert [set(device["models"]) for device in metrics["devices"]] == [{"sine"}, {"sine"}]  # only my zoo's model


def test_suites_folder_without_suites_says_what_it_looked_for(tmp_path: Path) -> None:
    line = _one_line_error(hil("run", "--suites", str(tmp_path)))
    assert f"no robot (*.robot) or pytest (test_*.py, *_test.py) suites in {tmp_path}" in line
