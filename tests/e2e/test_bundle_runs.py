"""Results bundles from real ``hil run``s on the twin: several targets, pass-through, timeout, Ctrl-C, two runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from marked_runs import MARKER, wait_for_twin

from hil.backends._process import marked_processes
from hil.report.bundle import schema_path

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
SLOW_SUITE = ROOT / "tests" / "e2e" / "hil_suites" / "slow_suite.py"  # infers until stopped
SINE_ROBOT = ROOT / "robot_tests" / "sine.robot"
SINE_PYTEST = ROOT / "tests" / "hil" / "test_sine.py"
SMALL_TWIN = """\
models_dir = "{models}"

[targets."reference:small"]
backend = "reference"
description = "a second twin that serves two models"
models = ["sine", "gesture"]
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HIL_CONFIG", "HIL_TARGET", "HIL_RESULTS")}
    return env | extra


def hil(*args: str, timeout_s: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "hil.cli", *args]
    return subprocess.run(argv, cwd=ROOT, env=_env(**env), capture_output=True, text=True, timeout=timeout_s,
                          check=False)  # fmt: skip


def _start(tmp_path: Path, name: str, *args: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``hil`` in the background, its processes marked; returns it, the marker and its console file."""
    marker = uuid.uuid4().hex
    console = tmp_path / f"{name}.txt"
    with console.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "hil.cli", *args], cwd=ROOT, env=_env(**{MARKER: marker}),
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    return proc, marker, console


def _stop(proc: subprocess.Popen[bytes], marker: str) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in marked_processes(MARKER, marker):  # don't leave them to the next test
            os.kill(pid, signal.SIGKILL)


def _metrics(folder: Path) -> dict[str, Any]:
    metrics = json.loads((folder / "metrics.json").read_text())
    jsonschema.validate(metrics, json.loads(schema_path().read_text()))
    return metrics


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of a folder with its modification time and content."""
    return {str(p): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


def _run_ids(folder: Path) -> set[str]:
    """The run id of every per-test line in a bundle."""
    return {json.loads(line).get("run_id", "") for path in folder.rglob("metrics/*.jsonl")
            for line in path.read_text().splitlines() if line.strip()}  # fmt: skip


def test_two_targets_give_sub_bundles_a_combined_bundle_and_merge_like_ci_shards(tmp_path: Path) -> None:
    config = tmp_path / "hil.toml"
    config.write_text(SMALL_TWIN.format(models=ROOT / "models"))
    out = tmp_path / "out"
    result = hil("--config", str(config), "run", "--target", "reference", "--target", "reference:small",
                 "--jobs", "2", "--robot-suites", str(SINE_ROBOT), "--pytest-suites", str(SINE_PYTEST),
                 "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    combined = _metrics(out)
    assert combined["complete"] is True
    assert combined["targets"] == ["reference", "reference:small"]
    assert combined["bundles"] == {"reference": "reference", "reference:small": "reference-small"}
    assert {t["target"] for t in combined["tests"]} == {"reference", "reference:small"}
    assert {(s["target"], s["framework"]) for s in combined["suites"]} == {
        (t, f) for t in ("reference", "reference:small") for f in ("robot", "pytest")
    }
    for target, folder in combined["bundles"].items():
        sub = _metrics(out / folder)
        assert sub["targets"] == [target]
        assert sub["run_id"] == combined["run_id"]
        assert (out / folder / "log.html").is_file()
        assert (out / folder / "artifacts" / folder / "robot" / "twin.log").is_file()  # one twin per framework
        assert (out / folder / "artifacts" / folder / "pytest" / "twin.log").is_file()
    for test in combined["tests"]:
        assert (out / test["console_log"]).is_file(), test["console_log"]
    robot = ET.parse(out / "output.xml").getroot()  # rebot merged both targets' Robot outputs
    assert {s.get("name") for s in robot.iter("suite")} >= {"HIL on reference", "HIL on reference:small"}
    suites = ET.parse(out / "junit-pytest.xml").getroot().findall("testsuite")
    assert len(suites) == 2
    assert "reference · sine" in result.stdout
    assert "reference:small · sine" in result.stdout
    assert "test_sine_of_half_pi_is_one" not in result.stdout  # per-test detail goes to run.log
    assert "test_sine_of_half_pi_is_one" in (out / "run.log").read_text()

    merged = tmp_path / "merged"  # the sub-bundles as if two CI jobs had written them
    report = hil("report", str(out / "reference"), str(out / "reference-small"), "--out", str(merged))
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-2000:]
    metrics = _metrics(merged)
    assert metrics["summary"] == combined["summary"]
    assert [r["run_id"] for r in metrics["runs"]] == [combined["run_id"]] * 2
    assert {s.get("name") for s in ET.parse(merged / "output.xml").getroot().iter("suite")} >= {
        "HIL on reference",
        "HIL on reference:small",
    }
    assert (merged / "reference-small" / "metrics.json").is_file()


@pytest.mark.parametrize(
    ("suite", "suites", "args", "names"),
    [
        ("pytest", SINE_PYTEST, ["-k", "golden"], {"test_inference_matches_golden_vectors"}),
        ("robot", SINE_ROBOT, ["--test", "Sine Of Half Pi Is One"], {"Sine Of Half Pi Is One"}),
    ],
    ids=["pytest-k", "robot-test"],
)
def test_arguments_after_double_dash_reach_the_framework(
    tmp_path: Path, suite: str, suites: Path, args: list[str], names: set[str]
) -> None:
    out = tmp_path / "out"
    result = hil("run", "--suite", suite, f"--{suite}-suites", str(suites), "--out", str(out), "--", *args)
    assert result.returncode == 0, result.stdout[-3000:]
    metrics = _metrics(out)
    assert {t["test"] for t in metrics["tests"]} == names
    (record,) = metrics["suites"]
    assert record["args"] == args


def test_arguments_after_double_dash_need_one_framework(tmp_path: Path) -> None:
    result = hil("run", "--out", str(tmp_path / "out"), "--", "-k", "golden")
    assert result.returncode == 2
    assert "add --suite robot or --suite pytest" in result.stdout


def test_a_suite_past_its_timeout_is_stopped_and_the_bundle_marked_incomplete(tmp_path: Path) -> None:
    out = tmp_path / "out"
    started = time.monotonic()
    result = hil("run", "--suite", "pytest", "--pytest-suites", str(SLOW_SUITE), "--suite-timeout", "5",
                 "--out", str(out))  # fmt: skip
    assert time.monotonic() - started < 90, "the suite ran on past its timeout"
    assert result.returncode == 1, result.stdout[-3000:]
    metrics = _metrics(out)
    assert metrics["complete"] is False
    assert metrics["incomplete_reason"] == "pytest suites on reference timed out"
    (record,) = metrics["suites"]
    assert (record["exit_code"], record["timed_out"]) == (124, True)
    assert "INCOMPLETE: pytest suites on reference timed out" in " ".join(result.stdout.split())


def test_an_interrupted_run_leaves_an_incomplete_bundle_and_no_stale_green(tmp_path: Path) -> None:
    out = tmp_path / "out"
    green = hil("run", "--suite", "robot", "--robot-suites", str(SINE_ROBOT), "--out", str(out))
    assert green.returncode == 0, green.stdout[-3000:]
    assert (out / "junit-robot.xml").is_file()
    proc, marker, console = _start(tmp_path, "slow", "run", "--suite", "pytest", "--pytest-suites", str(SLOW_SUITE),
                                   "--out", str(out))  # fmt: skip
    wait_for_twin(marker, proc)
    assert _stop(proc, marker) == 130, console.read_text()[-3000:]
    for stale in ("output.xml", "log.html", "report.html", "junit-robot.xml"):
        assert not (out / stale).exists(), f"{stale} of the earlier, green run is still there"
    metrics = _metrics(out)
    assert metrics["complete"] is False
    assert metrics["incomplete_reason"] == "interrupted (Ctrl-C)"
    assert {t["framework"] for t in metrics["tests"]} <= {"pytest"}
    before = _snapshot(out)
    report = hil("report", str(out), FORCE_COLOR="1", COLUMNS="120")
    assert report.returncode == 1  # not green, whatever passed
    assert "\x1b[1;31mINCOMPLETE: interrupted (Ctrl-C)" in report.stdout  # in red
    assert _snapshot(out) == before  # hil report only reads


def test_two_runs_into_one_out_never_interleave(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first, marker, console = _start(tmp_path, "first", "run", "--suite", "pytest", "--pytest-suites",
                                    str(SLOW_SUITE), "--out", str(out))  # fmt: skip
    second = None
    try:
        wait_for_twin(marker, first)
        refused = hil("run", "--suite", "pytest", "--pytest-suites", str(SINE_PYTEST), "--out", str(out))
        assert refused.returncode == 2, refused.stdout[-3000:]
        assert f"results folder {out} is in use by pid {first.pid}" in " ".join(refused.stdout.split())
        second = subprocess.Popen(
            [sys.executable, "-m", "hil.cli", "run", "--suite", "pytest", "--pytest-suites", str(SINE_PYTEST),
             "--out", str(out), "--wait", "120", "--", "-k", "golden"],
            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        time.sleep(2.0)
        assert second.poll() is None, "the second run did not queue for the folder"
        assert _stop(first, marker) == 130, console.read_text()[-3000:]
        output, _ = second.communicate(timeout=300)
        assert second.returncode == 0, output.decode(errors="replace")[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
        if second is not None and second.poll() is None:
            second.kill()
            second.wait()
    metrics = _metrics(out)
    assert metrics["complete"] is True
    assert _run_ids(out) == {metrics["run_id"]}  # only the second run's records
    assert {t["test"] for t in metrics["tests"]} == {"test_inference_matches_golden_vectors"}


def test_pytest_run_directly_twice_keeps_only_the_second_runs_records(tmp_path: Path) -> None:
    out = tmp_path / "direct"
    argv = [sys.executable, "-m", "pytest", str(SINE_PYTEST), "-k", "half_pi", f"--hil-out={out}", "-p",
            "no:cacheprovider", "-p", "no:labgrid", "-q"]  # fmt: skip
    for _ in range(2):
        done = subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout[-3000:]
    lines = (out / "metrics" / "pytest.jsonl").read_text().splitlines()
    assert [json.loads(line)["test"] for line in lines if '"kind": "test"' in line] == ["test_sine_of_half_pi_is_one"]
    report = hil("report", str(out))
    assert report.returncode == 0
    assert "not a hil run bundle" in report.stdout
