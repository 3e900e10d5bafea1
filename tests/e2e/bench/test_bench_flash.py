"""`hil flash` and `hil lab` on the emulated bench: a QEMU board flashed through its GDB server.

The board is described in a lab file exactly as a physical one (runner gdb, power commands,
console path); the image is the bench's bare-metal test image, so no Zephyr is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures import EmulatedBoard
from image import build_image

ROOT = Path(__file__).resolve().parents[3]
BUILD_ID = "5eed0123abcd4567"


def _lab(tmp_path: Path, board: EmulatedBoard, **keys: object) -> Path:
    entry = {"id": "qemu-1", "platform": "mps2/an385", "product": "QEMU mps2-an385", "runner": "gdb",
             "gdb_server": f"127.0.0.1:{board.gdb_port}", "gdb_reset": "monitor system_reset",
             "serial": str(board.console), "power_on": board.on_argv, "power_off": board.off_argv,
             "boot_timeout_s": 5, "flash_retries": 1, "quarantine_after": 3}  # fmt: skip
    path = tmp_path / "lab.yaml"
    path.write_text(json.dumps([{k: v for k, v in (entry | keys).items() if v is not None}]))  # None: leave out
    return path


def _hil(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"HIL_LAB_STATE": str(tmp_path / "state"), "COLUMNS": "200"}
    argv = [sys.executable, "-m", "hil.cli", "--lab", str(tmp_path / "lab.yaml"), *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture
def gdb_for_arm() -> None:
    if not any(os.access(Path(d) / "gdb-multiarch", os.X_OK) for d in os.environ["PATH"].split(os.pathsep)):
        pytest.skip("gdb-multiarch not found: make system-deps (apt-get install gdb-multiarch)")


@pytest.mark.usefixtures("gdb_for_arm")
def test_flash_loads_through_gdb_and_checks_the_banner_build(tmp_path: Path, emulated_board: EmulatedBoard) -> None:
    _lab(tmp_path, emulated_board)
    elf = build_image(tmp_path / "img", BUILD_ID)
    listed = _hil(tmp_path, "lab", "list")
    assert "qemu-1" in listed.stdout
    assert "board:mps2_an385" in listed.stdout
    result = _hil(tmp_path, "flash", "--target", "board:qemu-1", "--firmware", str(elf), "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert BUILD_ID in result.stdout
    assert "gdb/gdb" in result.stdout


@pytest.mark.usefixtures("gdb_for_arm")
def test_board_silent_after_flash_is_a_board_error_with_the_board_named(
    tmp_path: Path, emulated_board: EmulatedBoard
) -> None:
    _lab(tmp_path, emulated_board, reset=["runner"])
    elf = build_image(tmp_path / "img", BUILD_ID, silent=True)
    result = _hil(tmp_path, "flash", "--target", "board:qemu-1", "--firmware", str(elf), "--out", str(tmp_path / "o"))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "board qemu-1" in result.stdout
    assert "not ready within 5 s" in result.stdout
    assert "console tail" in result.stdout


@pytest.mark.usefixtures("gdb_for_arm")
def test_flash_of_a_board_that_is_off_power_cycles_between_attempts(
    tmp_path: Path, emulated_board: EmulatedBoard
) -> None:
    subprocess.run(emulated_board.off_argv, check=True, timeout=30, capture_output=True)
    _lab(tmp_path, emulated_board)
    elf = build_image(tmp_path / "img", BUILD_ID)
    result = _hil(tmp_path, "flash", "--target", "board:qemu-1", "--firmware", str(elf), "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stdout + result.stderr  # attempt 1 fails, power cycle, attempt 2 works
    assert BUILD_ID in result.stdout


def test_corrupt_image_is_refused_before_anything_is_flashed(tmp_path: Path, emulated_board: EmulatedBoard) -> None:
    _lab(tmp_path, emulated_board, flash_retries=0)
    elf = build_image(tmp_path / "img", BUILD_ID)
    corrupt = tmp_path / "corrupt.elf"
    corrupt.write_bytes(elf.read_bytes()[:120])  # an ELF header whose sections are cut off
    result = _hil(tmp_path, "flash", "--target", "board:qemu-1", "--firmware", str(corrupt), "--out", str(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{corrupt}: not a usable ELF image" in " ".join(result.stdout.split())


@pytest.mark.usefixtures("gdb_for_arm")
def test_gdb_server_that_does_not_answer_fails_the_connect_step(tmp_path: Path, emulated_board: EmulatedBoard) -> None:
    subprocess.run(emulated_board.off_argv, check=True, timeout=30, capture_output=True)
    _lab(tmp_path, emulated_board, flash_retries=0, power_on=None, power_off=None)  # off, and nobody to switch it on
    elf = build_image(tmp_path / "img", BUILD_ID)
    result = _hil(tmp_path, "flash", "--target", "board:qemu-1", "--firmware", str(elf), "--out", str(tmp_path))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "HIL-GDB FAILED connect" in result.stdout
