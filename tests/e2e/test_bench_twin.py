"""The bench end to end with the reference twin behind a pty described as a board.

The protocol side of ``board:`` targets — leases, handing the board to the suite processes,
identity checks, board errors, quarantine, locks between concurrent runs — on real processes.
Flashing it is played by ``flaky_flasher.py``, a test double that fails a given number of times.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.lab.state import BoardLock
from hil.twin import PTY_LINE_PREFIX

ROOT = Path(__file__).resolve().parents[2]
FLAKY_FLASHER = Path(__file__).parent / "bench" / "flaky_flasher.py"
SINE_SUITE = ROOT / "tests" / "hil" / "test_sine.py"


@pytest.fixture
def twin_pty(tmp_path: Path) -> Iterator[str]:
    """A reference twin serving sine on a pty, owned by this test."""
    argv = [sys.executable, "-m", "hil.twin", "--models", str(ROOT / "models"), "--model", "sine", "--board", "twin"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=(tmp_path / "twin.log").open("wb")) as twin:
        assert twin.stdout is not None
        line = twin.stdout.readline().decode().strip()
        assert line.startswith(PTY_LINE_PREFIX), line
        yield line.removeprefix(PTY_LINE_PREFIX)
        twin.terminate()
        twin.wait(timeout=10)


def _lab(tmp_path: Path, pty: str, **keys: object) -> Path:
    entry = {"id": "twin-1", "platform": "twin", "product": "reference twin", "runner": "command",
             "serial": pty, "boot_timeout_s": 5, "flash_retries": 2, "quarantine_after": 2,
             "flash_command": f"{sys.executable} {FLAKY_FLASHER} {tmp_path / 'attempts'} 0 {{bin}}"}  # fmt: skip
    entry |= keys
    path = tmp_path / "lab.yaml"
    path.write_text(json.dumps([entry]))  # JSON is YAML
    return path


def _hil(tmp_path: Path, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"HIL_LAB_STATE": str(tmp_path / "state"), "COLUMNS": "200"}
    argv = [sys.executable, "-m", "hil.cli", "--lab", str(tmp_path / "lab.yaml"), *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    out = tmp_path / "out"
    return _hil(tmp_path, "run", "--target", "board:twin-1", "--suite", "pytest", "--pytest-suites", str(SINE_SUITE),
                "--out", str(out), *extra)  # fmt: skip


def _image(tmp_path: Path, build_id: str) -> Path:
    path = tmp_path / f"app-{build_id}.bin"
    path.write_bytes(b"\x00" * 64 + b"HIL_BUILD_ID=" + build_id.encode() + b"\x00")
    return path


def _twin_build_id(tmp_path: Path) -> str:
    listed = _hil(tmp_path, "flash", "--target", "board:twin-1", "--out", str(tmp_path / "probe"))
    assert listed.returncode == 0, listed.stdout
    return re.search(r"device_build_id\s*│\s*([0-9a-f]{16})", listed.stdout).group(1)


def test_lab_list_shows_the_board_and_its_target(tmp_path: Path, twin_pty: str) -> None:
    _lab(tmp_path, twin_pty)
    result = _hil(tmp_path, "lab", "list")
    assert result.returncode == 0, result.stdout
    assert "twin-1" in result.stdout
    assert "board:twin" in result.stdout


def test_suites_run_on_a_board_and_record_board_and_build(tmp_path: Path, twin_pty: str) -> None:
    _lab(tmp_path, twin_pty)
    result = _run(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    device = next(r for r in metrics["devices"] if r["target"] == "board:twin-1")
    assert device["facts"]["board_id"] == "twin-1"
    assert re.fullmatch(r"[0-9a-f]{16}", device["build_id"])
    junit = ET.parse(tmp_path / "out" / "junit-pytest.xml")
    properties = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert properties["board_id"] == "twin-1"
    assert properties["firmware_build_id"] == device["build_id"]
    assert BoardLock(tmp_path / "state", "twin-1").holder() is None  # released after the run


def test_flash_retries_then_runs_the_flashed_build(tmp_path: Path, twin_pty: str) -> None:
    _lab(tmp_path, twin_pty)
    build_id = _twin_build_id(tmp_path)
    _lab(tmp_path, twin_pty, flash_command=f"{sys.executable} {FLAKY_FLASHER} {tmp_path / 'attempts'} 2 {{bin}}")
    result = _run(tmp_path, "--firmware", str(_image(tmp_path, build_id)))
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "attempts").read_text().count("\n") == 3  # failed twice, then flashed


def test_board_running_another_build_is_refused(tmp_path: Path, twin_pty: str) -> None:
    _lab(tmp_path, twin_pty)
    result = _run(tmp_path, "--firmware", str(_image(tmp_path, "feedfacefeedface")))
    assert result.returncode == 3, result.stdout[-3000:]
    assert "flashed feedfacefeedface" in result.stdout


def test_flash_that_always_fails_is_a_board_error_then_quarantine(tmp_path: Path, twin_pty: str) -> None:
    _lab(tmp_path, twin_pty, flash_command=f"{sys.executable} {FLAKY_FLASHER} {tmp_path / 'attempts'} 99 {{bin}}")
    image = str(_image(tmp_path, "0123456789abcdef"))
    first = _run(tmp_path, "--firmware", image)
    assert first.returncode == 3, first.stdout[-3000:]
    assert "flashing failed 3 time(s)" in first.stdout
    assert "stand-in flasher: failing on purpose" in first.stdout  # the runner's output tail
    junit = ET.parse(tmp_path / "out" / "junit-pytest.xml").getroot()
    errors = list(junit.iter("error"))
    assert errors
    assert "board twin-1" in errors[0].get("message", "")
    second = _run(tmp_path, "--firmware", image)
    assert second.returncode == 3
    assert "quarantined after 2 failed runs" in second.stdout
    third = _run(tmp_path, "--firmware", image)
    assert third.returncode == 2
    assert "release-quarantine twin-1" in third.stdout
    assert "since" in _hil(tmp_path, "lab", "list").stdout
    assert _hil(tmp_path, "lab", "release-quarantine", "twin-1").returncode == 0


def test_second_run_on_a_held_board_fails_or_waits(tmp_path: Path, twin_pty: str) -> None:
    _lab(tmp_path, twin_pty)
    hold = (
        "import sys, time\nfrom pathlib import Path\nfrom hil.lab.state import BoardLock\n"
        "lock = BoardLock(Path(sys.argv[1]), 'twin-1')\nassert lock.try_acquire('another run')\n"
        "print('held', flush=True)\ntime.sleep(float(sys.argv[2]))\n"
    )
    with subprocess.Popen([sys.executable, "-c", hold, str(tmp_path / "state"), "4"], stdout=subprocess.PIPE) as other:
        assert other.stdout is not None
        assert other.stdout.readline() == b"held\n"
        refused = _run(tmp_path)
        assert refused.returncode == 2, refused.stdout[-2000:]
        assert f"board twin-1 is in use by pid {other.pid}" in refused.stdout
        started = time.monotonic()
        waited = _run(tmp_path, "--wait", "60")
        assert waited.returncode == 0, waited.stdout[-3000:]
        assert time.monotonic() - started > 1.0
        other.wait(timeout=10)


def _start_twin(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    argv = [sys.executable, "-m", "hil.twin", "--models", str(ROOT / "models"), "--model", "sine", "--board", "twin"]
    twin = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log.open("ab"))
    assert twin.stdout is not None
    return twin, twin.stdout.readline().decode().strip().removeprefix(PTY_LINE_PREFIX)


def test_console_that_goes_away_fails_that_test_and_the_next_gets_the_board_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hil.errors import DeviceLost
    from hil.session import HilSession

    console = tmp_path / "ttyBOARD"  # like /dev/serial/by-id/...: gone while the board re-enumerates
    first, pty = _start_twin(tmp_path / "twin.log")
    console.symlink_to(pty)
    _lab(tmp_path, str(console))
    monkeypatch.setenv("HIL_LAB", str(tmp_path / "lab.yaml"))
    monkeypatch.setenv("HIL_LAB_STATE", str(tmp_path / "state"))
    session = HilSession("pytest", "board:twin-1", out_dir=tmp_path / "out")
    second = None
    try:
        session.device().infer_values("sine", [1.0])
        first.kill()
        first.wait(timeout=10)
        console.unlink()
        with pytest.raises(DeviceLost):  # the test that was running fails clearly...
            session.device().infer_values("sine", [1.0])
        replugged: list[subprocess.Popen[bytes]] = []

        def replug() -> None:
            twin, pty = _start_twin(tmp_path / "twin.log")
            replugged.append(twin)
            console.symlink_to(pty)

        timer = threading.Timer(1.0, replug)  # the port returns while the next test waits for it
        timer.start()
        result = session.device().infer_values("sine", [1.0])  # ...and the next one gets the board back
        timer.join()
        second = replugged[0]
        assert result.output.shape == (1, 1)
    finally:
        session.close()
        for twin in (first, second):
            if twin is not None:
                twin.kill()
                twin.wait(timeout=10)
    assert BoardLock(tmp_path / "state", "twin-1").holder() is None
