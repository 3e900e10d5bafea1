"""The results bundle: fresh folder per run, lock, schema, read-back, merge and the 80-column summary."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from hil.config import load_config
from hil.errors import ConfigError
from hil.metrics import RUN_ID_ENV, MetricsRecorder
from hil.report.bundle import (
    RUNNING,
    OutLock,
    ResultsBusy,
    RunRecord,
    open_bundle,
    read_bundle,
    schema_path,
    write_metrics,
)
from hil.report.environment import environment, image_identity
from hil.report.merge import merge_bundles, merged_view
from hil.report.summary import SUMMARY_WIDTH, summarize, summary
from hil.results import DeviceInfo, InferenceResult

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
STIMULUS = ROOT / "models" / "gesture" / "stimuli" / "sequence.csv"


def _validate(metrics: dict[str, Any]) -> None:
    jsonschema.validate(metrics, json.loads(schema_path().read_text()))


def _record_tests(
    sub_dir: Path, target: str, monkeypatch: pytest.MonkeyPatch, run_id: str, failed: bool = False
) -> None:
    """What a suite process writes while it runs: a device record and two tests, one with a streamed stimulus."""
    monkeypatch.setenv(RUN_ID_ENV, run_id)
    recorder = MetricsRecorder(sub_dir, "pytest", target)
    recorder.device_opened(DeviceInfo(2, 4096, 1_000_000, 1, "twin-0.1.0", target, "tflm", "0123456789abcdef"), {})
    recorder.start_test("suite", "test_latency")
    for latency in (40.0, 50.0, 60.0, 900.0):
        recorder.on_inference(InferenceResult("sine", np.zeros((1, 1), np.int8), int(latency), 1_000_000, 1760, b""))
    recorder.model_fact("sine", "latency_limit_us", 1000.0)
    console = sub_dir / "artifacts" / target.replace(":", "-") / "console" / "suite.test_latency.log"
    console.parent.mkdir(parents=True, exist_ok=True)
    console.write_text("hil ready\n")
    recorder.note("console_log", str(console))
    recorder.end_test("FAIL" if failed else "PASS", "boom" if failed else "")
    recorder.start_test("suite", "test_events")
    recorder.model_fact("gesture", "events", {"matched": 4, "expected": 4, "unexpected": [], "missed": [],
                                              "stimulus": STIMULUS.name, "stimulus_file": str(STIMULUS)})  # fmt: skip
    recorder.model_fact("gesture", "evaluation", {"metric": "accuracy", "score": 0.97, "floor": 0.95, "samples": 10})
    recorder.end_test("PASS")
    junit = ET.Element("testsuite", {"name": f"HIL on {target}", "tests": "2", "failures": str(int(failed))})
    ET.ElementTree(junit).write(sub_dir / "junit-pytest.xml")
    monkeypatch.delenv(RUN_ID_ENV)


def _run(tmp: Path, out_name: str, targets: list[str], monkeypatch: pytest.MonkeyPatch, **kw: Any) -> RunRecord:
    """A finished run into ``tmp/out_name``, built the way hil run builds it."""
    config = load_config(root=ROOT)
    out = tmp / out_name
    subs = {t: out if len(targets) == 1 else out / t.replace(":", "-") for t in targets}
    env = environment(config, [config.target(t) for t in targets], {"pytest": ROOT / "tests" / "hil"}, ["hil", "run"])
    run_id = f"run-{out_name}"
    record = RunRecord(run_id, out, tuple(targets), subs, env)
    open_bundle(out, record.first_metrics())
    for target, sub in subs.items():
        sub.mkdir(exist_ok=True)
        _record_tests(sub, target, monkeypatch, run_id, **kw)
    write_metrics(record, True)
    return record


def test_a_finished_run_validates_against_the_json_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(tmp_path, "out", ["reference"], monkeypatch)
    metrics = json.loads((run.out_dir / "metrics.json").read_text())
    _validate(metrics)
    assert metrics["complete"] is True
    assert metrics["summary"] == {"tests": 2, "passed": 2, "failed": 0, "skipped": 0}
    assert {t["run_id"] for t in metrics["tests"]} == {run.run_id}
    assert metrics["environment"]["targets"]["reference"]["models"]["sine"]["budget"]["latency_us"] > 0
    assert metrics["environment"]["suites"]["pytest"]["git_commit"]


def test_paths_in_the_bundle_are_relative_and_the_stimulus_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run(tmp_path, "out", ["reference"], monkeypatch)
    metrics = json.loads((run.out_dir / "metrics.json").read_text())
    tests = {t["test"]: t for t in metrics["tests"]}
    assert tests["test_latency"]["console_log"] == "artifacts/reference/console/suite.test_latency.log"
    assert (run.out_dir / tests["test_latency"]["console_log"]).is_file()
    events = tests["test_events"]["models"]["gesture"]["events"]
    assert events["stimulus_file"] == "stimuli/sequence.csv"
    assert (run.out_dir / "stimuli" / "sequence.csv").read_bytes() == STIMULUS.read_bytes()
    assert (run.out_dir / "stimuli" / "sequence.expected.csv").is_file()
    (stimulus,) = metrics["stimuli"]
    assert stimulus["source"] == str(STIMULUS)


def test_a_new_run_replaces_the_previous_bundle_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _run(tmp_path, "out", ["reference"], monkeypatch)
    (first.out_dir / "junit-robot.xml").write_text("<testsuite/>")  # the earlier run had Robot too
    again = RunRecord("run-2", first.out_dir, first.targets, first.sub_dirs, first.environment)
    open_bundle(first.out_dir, again.first_metrics())
    assert sorted(p.name for p in first.out_dir.iterdir()) == ["metrics.json"]
    metrics = read_bundle(first.out_dir).metrics
    assert metrics["run_id"] == "run-2"
    assert metrics["complete"] is False
    assert metrics["incomplete_reason"] == RUNNING
    assert not list(tmp_path.glob(".out.*"))  # no staging folder left beside it


def test_out_holding_files_that_are_not_a_bundle_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    record = RunRecord("r", tmp_path, ("reference",), {"reference": tmp_path}, {})
    with pytest.raises(ConfigError, match=r"holds files that are not a hil results bundle \(notes.txt\)"):
        open_bundle(tmp_path, record.first_metrics())
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_second_lock_on_the_same_out_is_refused_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "results"
    with OutLock(out) as first:
        first.acquire("hil run --target reference")
        started = time.monotonic()
        with pytest.raises(ResultsBusy, match=rf"in use by pid {os.getpid()} .*hil run --target reference"):
            OutLock(out).acquire("another run", wait_s=0.6)
        assert time.monotonic() - started >= 0.5  # it queued for the time it was given
    with OutLock(out) as again:
        again.acquire("after the first")  # released: free at once


def test_a_direct_run_starts_a_fresh_metrics_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = tmp_path / "metrics" / "pytest.jsonl"
    old.parent.mkdir()
    old.write_text('{"kind": "test", "framework": "pytest", "test": "old", "target": "reference", "status": "PASS"}\n')
    os.utime(old, (time.time() - 60, time.time() - 60))  # written before this process started
    monkeypatch.delenv(RUN_ID_ENV, raising=False)
    recorder = MetricsRecorder(tmp_path, "pytest", "reference")
    recorder.start_test("suite", "new")
    recorder.end_test("PASS")
    MetricsRecorder(tmp_path, "pytest", "reference")  # a second session of the same test run appends
    assert [json.loads(line)["test"] for line in old.read_text().splitlines()] == ["new"]


def test_under_hil_run_records_carry_the_run_id_and_append(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUN_ID_ENV, "run-7")
    for name in ("a", "b"):
        recorder = MetricsRecorder(tmp_path, "robot", "reference")
        recorder.start_test("suite", name)
        recorder.end_test("PASS")
    records = [json.loads(line) for line in (tmp_path / "metrics" / "robot.jsonl").read_text().splitlines()]
    assert [(r["test"], r["run_id"]) for r in records] == [("a", "run-7"), ("b", "run-7")]


def test_an_interrupted_run_reads_back_incomplete_with_its_recorded_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(root=ROOT)
    out = tmp_path / "out"
    record = RunRecord("run-x", out, ("reference",), {"reference": out}, environment(config, [], {}, []))
    open_bundle(out, record.first_metrics())
    _record_tests(out, "reference", monkeypatch, "run-x")  # recorded, never merged: hil was killed
    bundle = read_bundle(out)
    assert not bundle.complete
    assert bundle.incomplete_reason == RUNNING
    assert bundle.metrics["summary"]["tests"] == 2
    assert json.loads((out / "metrics.json").read_text())["tests"] == []  # read only


def test_two_bundles_merge_into_one_with_every_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _run(tmp_path, "shard-a", ["reference"], monkeypatch)
    b = _run(tmp_path, "shard-b", ["renode:nrf52840dk"], monkeypatch, failed=True)
    config = load_config(root=ROOT)
    merged = merge_bundles(config, [a.out_dir, b.out_dir], tmp_path / "merged")
    _validate(merged)
    assert merged == json.loads((tmp_path / "merged" / "metrics.json").read_text())
    assert merged["targets"] == ["reference", "renode:nrf52840dk"]
    assert merged["bundles"] == {"reference": "reference", "renode:nrf52840dk": "renode-nrf52840dk"}
    assert merged["summary"] == {"tests": 4, "passed": 3, "failed": 1, "skipped": 0}
    assert [r["run_id"] for r in merged["runs"]] == ["run-shard-a", "run-shard-b"]
    logs = [test["console_log"] for test in merged["tests"] if "console_log" in test]
    assert logs, "no merged test record kept its console log"
    assert all((tmp_path / "merged" / log).is_file() for log in logs)
    suites = ET.parse(tmp_path / "merged" / "junit-pytest.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["HIL on reference", "HIL on renode:nrf52840dk"]
    assert merged_view([a.out_dir, b.out_dir])["summary"] == merged["summary"]  # the same, in memory only


def test_summary_has_one_table_per_target_and_model_within_80_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run(tmp_path, "out", ["reference", "renode:stm32f4_disco"], monkeypatch, failed=True)
    metrics = read_bundle(run.out_dir).metrics
    buffer = io.StringIO()
    console = Console(file=buffer, width=SUMMARY_WIDTH, record=True, color_system=None, legacy_windows=False)
    console.print(summary(metrics, run.out_dir))
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= SUMMARY_WIDTH
    assert not any("…" in line for line in lines), "a cell was cut"
    titles = [line for line in lines if " · " in line]
    assert [t.rsplit(":", 1)[0].strip() for t in titles] == [
        "reference · gesture",
        "reference · sine",
        "renode:stm32f4_disco · gesture",
        "renode:stm32f4_disco · sine",
    ]
    sine = next(s for s in summarize(metrics) if s.target == "reference" and s.model == "sine")
    assert sine.latency_us == (55.0, pytest.approx(774.0), 900.0)  # p50, p95, max: the budget is checked on p95
    assert sine.latency is not None
    assert sine.latency.limit == 1000.0
    text = buffer.getvalue()
    assert "p95 ≤ 1 ms" in text
    assert "+23 %" in text  # latency headroom: (1000 - 774) / 1000
    assert "floor 0.95" in text
    assert "FAIL reference pytest: test_latency: boom" in " ".join(text.split())
    assert "complete" in text


def test_a_firmware_image_is_identified_by_hash_build_id_and_sizes(tmp_path: Path) -> None:
    elf = tmp_path / "build" / "zephyr" / "zephyr.elf"
    elf.parent.mkdir(parents=True)
    elf.write_bytes(b"\x7fELF" + b"\x00" * 60 + b"HIL_BUILD_ID=0123456789abcdef\x00")
    (tmp_path / "build" / "hil-memory.json").write_text(json.dumps({"flash_bytes": 81920, "ram_bytes": 40960}))
    for given in (elf, tmp_path / "build"):  # the image, or the Zephyr build folder holding it
        image = image_identity(given)
        assert image is not None
        assert image["path"] == str(elf)
        assert image["sha256"] == hashlib.sha256(elf.read_bytes()).hexdigest()
        assert image["build_id"] == "0123456789abcdef"
        assert (image["flash_bytes"], image["ram_bytes"]) == (81920, 40960)
    assert image_identity(tmp_path / "missing.elf") is None
