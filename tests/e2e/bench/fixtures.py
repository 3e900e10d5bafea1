"""The emulated bench's fixture: a board that emulated_board.py switches, as a lab file's power commands would.

conftest.py makes the fixture available; tests import the rest from here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import emulated_board as switch  # the module; `emulated_board` is the fixture
import pytest

POWER_TIMEOUT_S = 30.0  # `on` gives up on its own after 20 s


@dataclass(frozen=True, slots=True)
class EmulatedBoard:
    """A powered emulated board and the commands that switch it (argv lists, ready for a lab file)."""

    dir: Path
    console: Path  # a symlink to the pty; it exists only while the board is on
    gdb_port: int  # on 127.0.0.1, the same across power cycles
    on_argv: list[str]
    off_argv: list[str]
    reset_argv: list[str]


def run_power_command(argv: list[str]) -> str:
    """Run one of the board's commands as the harness would; its output, or an AssertionError that shows it."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=POWER_TIMEOUT_S, check=False)
    assert done.returncode == 0, f"{argv[2]} exited with {done.returncode}: {done.stdout}{done.stderr}"
    return done.stdout


def board_command(command: str, board_dir: Path, *options: str) -> list[str]:
    return [sys.executable, str(Path(switch.__file__).resolve()), command, "--dir", str(board_dir), *options]


@pytest.fixture
def emulated_board(tmp_path: Path) -> Iterator[EmulatedBoard]:
    """An mps2-an385 board in QEMU, on and blank (halted, nothing flashed), owned by this test process."""
    if shutil.which(switch.QEMU) is None:
        pytest.skip(f"{switch.QEMU} not found: apt-get install qemu-system-arm")
    board_dir = tmp_path / "board"
    on_argv = board_command("on", board_dir, "--owner-pid", str(os.getpid()))
    off_argv = board_command("off", board_dir)
    run_power_command(on_argv)
    try:
        gdb_port = switch.read_gdb_port(board_dir)
        assert gdb_port is not None
        yield EmulatedBoard(
            board_dir, switch.console_path(board_dir), gdb_port, on_argv, off_argv, board_command("reset", board_dir)
        )
    finally:
        run_power_command(off_argv)
