"""The real firmware on the emulated bench: flashed through gdb into a QEMU board, then every suite.

The board's image is built here for mps2/an385 as a board's is, with the protocol on its UART:
the `qemu:mps2_an385` target's image speaks over semihosting (firmware/qemu.conf), which a board
without a debugger does not have. Needs a Zephyr workspace; skipped with the reason elsewhere (CI
has no Zephyr).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures import EmulatedBoard
from rich.console import Console

from hil.backends import firmware_image
from hil.build import build_firmware, find_workspace
from hil.config import Target, load_config
from hil.lab.image import load_image

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def zephyr_elf() -> Path:
    config = load_config()
    if not (workspace := find_workspace(config)).found:
        pytest.skip(f"no Zephyr workspace to build the bench board's firmware: {workspace.source}")
    board = Target(name="board:mps2_an385", backend="board", zephyr_board="mps2/an385")
    build_firmware(config, board, pristine=False, console=Console(quiet=True))
    return firmware_image(board, config)


def test_real_firmware_flashed_through_gdb_passes_the_suites(
    tmp_path: Path, emulated_board: EmulatedBoard, zephyr_elf: Path
) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_text(json.dumps([{
        "id": "qemu-an385", "platform": "mps2/an385", "product": "QEMU mps2-an385 as a board", "runner": "gdb",
        "gdb_server": f"127.0.0.1:{emulated_board.gdb_port}", "gdb_reset": "monitor system_reset",
        "serial": str(emulated_board.console), "power_on": emulated_board.on_argv,
        "power_off": emulated_board.off_argv, "boot_timeout_s": 20,
    }]))  # fmt: skip
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "hil.cli", "--lab", str(lab), "run", "--target", "board:qemu-an385",
            "--firmware", str(zephyr_elf), "--out", str(out)]  # fmt: skip
    env = os.environ | {"HIL_LAB_STATE": str(tmp_path / "state")}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["summary"]["failed"] == 0
    assert metrics["summary"]["passed"] >= 40
    device = metrics["devices"][0]
    assert device["build_id"] == load_image(zephyr_elf, tmp_path / "img").build_id
    assert device["facts"]["board_id"] == "qemu-an385"
    assert device["facts"]["flash_method"] == "gdb/gdb"
