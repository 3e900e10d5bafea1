"""Every HIL suite in a real Renode, on renode:nrf52840dk and renode:stm32f4_disco.

Skipped, with the reason printed, when Renode (``$RENODE``, PATH or renode-run) or the target's
firmware ELF is missing: these tests never pass without running the firmware in Renode.
``$HIL_CONFIG`` may name a hil.toml whose ``build_dir`` holds the firmware.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hil.backends import firmware_image
from hil.backends.renode import RenodeBackend, find_renode
from hil.config import load_config
from hil.device import Device
from hil.options import RenodeOptions

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("renode:nrf52840dk", "renode:stm32f4_disco")
RUN_TIMEOUT_S = 3600
SUITES = ROOT / "tests" / "e2e" / "hil_suites"


def _require(target_name: str) -> None:
    """Skip (printing why) unless Renode and this target's firmware are here."""
    renode = find_renode()
    if not renode.usable:
        reason = f"{target_name}: {renode.why_not()}"
        print(f"SKIP {reason}")
        pytest.skip(reason)
    config = load_config(root=ROOT)  # $HIL_CONFIG may point build_dir at firmware built elsewhere
    elf = firmware_image(config.target(target_name), config)
    if not elf.is_file():
        reason = f"{target_name}: firmware ELF {elf} is missing: build it with `hil build --target {target_name}`"
        print(f"SKIP {reason}")
        pytest.skip(reason)


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_every_suite_passes_in_renode(target: str, tmp_path: Path) -> None:
    _require(target)
    argv = [sys.executable, "-m", "hil.cli", "run", "--target", target, "--out", str(tmp_path)]
    argv += ["--robot-suites", str(ROOT / "robot_tests"), "--pytest-suites", str(ROOT / "tests" / "hil")]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["summary"]["failed"] == 0
    assert metrics["summary"]["passed"] > 0
    devices = [d for d in metrics["devices"] if d["target"] == target]
    assert devices
    assert devices[0]["facts"]["renode"].startswith("1.")
    artifacts = tmp_path / "artifacts" / target.replace(":", "-")  # each framework's device: <framework>/
    assert (artifacts / "robot" / "renode.log").is_file()
    assert (artifacts / "pytest" / f"renode-{target.replace(':', '-')}.resc").is_file()
    # The gesture recordings went through the emulated accelerometer too, in both frameworks;
    # a target that cannot have one (renode:stm32f4_disco, see docs/renode.md) skips them saying why.
    sensor_tests = [t for t in metrics["tests"] if "sensor" in t["test"] or "Accelerometer" in t["test"]]
    assert len(sensor_tests) == 4
    if load_config(root=ROOT).target(target).options_as(RenodeOptions).sensor_unavailable:
        assert all(t["status"] == "SKIP" and "no emulated accelerometer" in t["message"] for t in sensor_tests)
    else:
        assert all(t["status"] == "PASS" for t in sensor_tests), sensor_tests
        assert list(artifacts.rglob("stimulus-sequence-*.data")) or list(artifacts.rglob("stimulus-sequence-*.resd"))
    # One Renode for all the Robot suites of the run: each suite takes over the machine after a reset.
    robot_spans = [json.loads(line) for line in (artifacts / "robot" / "phases.jsonl").read_text().splitlines()]
    assert sum(span["phase"] == "emulator.spawn" for span in robot_spans) == 1
    # Latency checks counted instructions and virtual time per inference.
    costs = [m["emulated_cost"] for t in metrics["tests"] for m in t["models"].values() if "emulated_cost" in m]
    assert costs
    assert all(c["instructions_median"] > 0 for c in costs)


@pytest.mark.slow
def test_renode_keywords_act_on_the_machine_our_keywords_drive(tmp_path: Path) -> None:
    target = TARGETS[0]
    _require(target)
    result = _robot(SUITES / "renode_keywords.robot", target, tmp_path, HIL_RENODE_ROBOT="1")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "2 tests, 2 passed, 0 failed" in result.stdout


def test_renode_keywords_are_skipped_with_the_reason_elsewhere(tmp_path: Path) -> None:
    result = _robot(SUITES / "renode_keywords.robot", "reference", tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "2 tests, 0 passed, 0 failed, 2 skipped" in result.stdout
    assert "reference has no Renode robot server" in result.stdout


def _robot(suite: Path, target: str, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "robot", "--outputdir", str(out), "--variable", f"HIL_TARGET:{target}", str(suite)]
    return subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False, env=os.environ | env
    )


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_inference_cost_and_snapshot_in_renode(target: str, tmp_path: Path) -> None:
    _require(target)
    config = load_config(root=ROOT)
    with Device(config.target(target), config, tmp_path) as dut:
        backend = dut.backend
        assert isinstance(backend, RenodeBackend)
        counts = [backend.cost_of(lambda: dut.infer_values("sine", [1.5708]))[1].instructions for _ in range(6)]
        snapshot = backend.save_snapshot(tmp_path / "snapshot.save")
    assert min(counts) > 0
    # The same inference costs the same instructions, give or take the UART interrupts around it. A
    # measurement whose window (two monitor round trips: long on a busy host) caught the firmware's
    # 20 ms idle tick also counts that wake-up (~1,600 on nRF52840): the least of a few is the request's.
    first, then = min(counts[:3]), min(counts[3:])
    assert abs(then - first) < 0.05 * first + 2000, counts
    assert snapshot.stat().st_size > 0


ISOLATION_SUITE = SUITES / "isolation_suite.py"


def _isolation_run(target: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest", str(ISOLATION_SUITE), f"--hil-target={target}", f"--hil-out={tmp_path}"]
    argv += ["-p", "no:cacheprovider", "-v", "-rs"]
    return subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False, env=os.environ | env
    )


@pytest.mark.slow
def test_each_test_starts_from_a_clean_device_after_the_machine_reset(tmp_path: Path) -> None:
    """What a test leaves behind (a running stream, half a frame, samples queued in the sensor) is gone
    for the next one: the machine reset between tests is a real reset, however fast."""
    target = TARGETS[0]
    _require(target)
    result = _isolation_run(target, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout


@pytest.mark.slow
def test_the_isolation_suite_sees_dirt_when_the_reset_is_turned_off(tmp_path: Path) -> None:
    """The control: the same machine with reset_between_tests = false fails the second test, or the
    suite would prove nothing."""
    target = TARGETS[0]
    _require(target)
    config = load_config(root=ROOT)
    catalog = tomllib.loads((ROOT / "hil" / "targets.toml").read_text(encoding="utf-8"))["targets"][target]
    table = catalog | {"firmware": str(firmware_image(config.target(target), config)), "reset_between_tests": False}
    lines = [f"models_dir = {json.dumps(str(config.models_dir))}", f'[targets."{target}-noreset"]']
    lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    user = tmp_path / "hil.toml"
    user.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _isolation_run(f"{target}-noreset", tmp_path / "out", HIL_CONFIG=str(user))
    assert "1 failed, 1 passed" in result.stdout, result.stdout[-4000:]
    assert "the device did not boot again between the tests" in result.stdout
