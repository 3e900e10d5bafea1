"""The `hil` command end to end, on the reference twin through a real pty."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def hil(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "hil.cli", *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False)


def test_targets_lists_every_target_with_availability() -> None:
    rows = {row["target"]: row for row in json.loads(hil("targets", "--json").stdout)}
    assert rows["reference"]["available"] is True
    for name in ("renode:nrf52840dk", "renode:stm32f4_disco", "qemu:mps2_an385", "native_sim", "board:nucleo_f411re"):
        assert name in rows
        assert rows[name]["available"] or rows[name]["why_not"]


def test_run_on_renode_without_renode_names_renode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENODE", "/nonexistent/renode")
    result = hil("run", "--target", "renode:nrf52840dk")
    assert result.returncode == 2
    assert "renode not found" in result.stdout
    assert "$RENODE" in result.stdout


def test_run_with_unknown_target_fails_clearly() -> None:
    result = hil("run", "--target", "nosuch")
    assert result.returncode == 2
    assert "unknown target 'nosuch'" in result.stdout


def test_full_run_on_reference_writes_every_report(tmp_path: Path) -> None:
    result = hil("run", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["summary"]["failed"] == 0
    assert metrics["summary"]["passed"] >= 15
    assert {t["framework"] for t in metrics["tests"]} == {"robot", "pytest"}
    for name in ("output.xml", "log.html", "report.html", "junit-robot.xml", "junit-pytest.xml"):
        assert (tmp_path / name).is_file(), name
    assert ET.parse(tmp_path / "junit-pytest.xml").getroot().find(".//testcase") is not None
    golden = [t for t in metrics["tests"] if "golden" in t["models"].get("sine", {})]
    assert golden
    assert all(t["models"]["sine"]["golden"]["mismatched"] == 0 for t in golden)
    sensor = [t for t in metrics["tests"] if "sensor" in t["test"] or "Accelerometer" in t["test"]]
    assert [t["status"] for t in sensor] == ["PASS"] * 4  # the twin's emulated accelerometer


def test_sensor_tests_skip_with_the_reason_on_a_device_without_a_sensor(tmp_path: Path) -> None:
    config = tmp_path / "hil.toml"
    config.write_text(
        f'models_dir = "{ROOT / "models"}"\n'
        '[targets."reference:no-sensor"]\nbackend = "reference"\naccelerometer = false\n'
        'models = ["gesture"]\n'
    )
    result = hil(
        "--config", str(config), "run", "--target", "reference:no-sensor", "--out", str(tmp_path / "out"),
        "--robot-suites", "robot_tests/model_zoo.robot", "--pytest-suites", "tests/hil/test_models.py",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    tests = json.loads((tmp_path / "out" / "metrics.json").read_text())["tests"]
    sensor = [t for t in tests if "sensor" in t["test"] or "Accelerometer" in t["test"]]
    assert len(sensor) == 4
    for test in sensor:
        assert test["status"] == "SKIP"
        assert "reference:no-sensor has no emulated sensor" in test["message"]
    over_the_wire = [t for t in tests if "protocol" in t["test"] or "Time Window" in t["test"]]
    assert over_the_wire
    assert all(t["status"] == "PASS" for t in over_the_wire)


def test_killed_twin_fails_one_test_clearly_and_the_rest_still_run(tmp_path: Path) -> None:
    suite = "tests/e2e/hil_suites/killed_suite.py"
    started = time.monotonic()
    result = hil("run", "--suite", "pytest", "--pytest-suites", suite, "--out", str(tmp_path))
    assert time.monotonic() - started < 60, "a dead device must not run out long timeouts"
    assert result.returncode == 1
    tests = {t["test"]: t for t in json.loads((tmp_path / "metrics.json").read_text())["tests"]}
    assert tests["test_before_the_kill"]["status"] == "PASS"
    assert tests["test_device_killed_mid_test"]["status"] == "FAIL"
    assert "reference twin" in tests["test_device_killed_mid_test"]["message"]
    assert "killed by SIGKILL" in tests["test_device_killed_mid_test"]["message"]
    assert tests["test_after_the_kill"]["status"] == "PASS"
    assert tests["test_after_the_kill"]["device_restarted"]
    assert (tmp_path / "junit-pytest.xml").is_file()


def test_report_summarises_a_results_folder(tmp_path: Path) -> None:
    hil("run", "--suite", "robot", "--out", str(tmp_path))
    result = hil("report", "--tests", str(tmp_path))
    assert result.returncode == 0
    assert "Inference Matches Golden Vectors" in result.stdout


def test_report_on_empty_folder_says_what_to_do(tmp_path: Path) -> None:
    result = hil("report", str(tmp_path))
    assert result.returncode == 2
    assert "hil run" in result.stdout


def test_models_verify_passes() -> None:
    result = hil("models", "verify")
    assert result.returncode == 0, result.stdout
    assert "ok sine" in result.stdout


def test_build_without_a_zephyr_workspace_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZEPHYR_BASE", raising=False)
    result = hil("build", "--target", "qemu:mps2_an385")
    assert result.returncode == 2
    message = " ".join(result.stdout.split())  # rich wraps long lines
    assert "no Zephyr workspace" in message
    assert "west init -l" in message
