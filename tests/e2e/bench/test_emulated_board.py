"""The emulated bench: an image built here, flashed through QEMU's GDB server, boots and prints on the console.

These tests pin the behaviour that the bench's gdb flasher relies on. Each step is checked by its output, not by gdb's
exit status.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from fixtures import EmulatedBoard, board_command, run_power_command
from image import build_image, read_build_id

BUILD_ID = "0123456789abcdef"
GDB = "gdb-multiarch"
GDB_TIMEOUT_S = 30.0
BOOT_TIMEOUT_S = 5.0
BANNER = f"HIL BOOT fw=bench-image proto=2 board=mps2_an385 build={BUILD_ID}\r\nHIL READY\r\n".encode()


@pytest.fixture
def gdb() -> str:
    if shutil.which(GDB) is None:
        pytest.skip(f"{GDB} not found: apt-get install gdb-multiarch")
    return GDB


def run_gdb(gdb: str, elf: Path, port: int, *commands: str) -> subprocess.CompletedProcess[str]:
    argv = [gdb, "-nx", "-batch", "-ex", "set confirm off", "-ex", "set tcp auto-retry off"]  # no 15 s of retries
    for command in (f"target extended-remote 127.0.0.1:{port}", *commands):
        argv += ["-ex", command]
    return subprocess.run([*argv, str(elf)], capture_output=True, text=True, timeout=GDB_TIMEOUT_S, check=False)


def flash(gdb: str, elf: Path, port: int) -> subprocess.CompletedProcess[str]:
    """The gdb flasher's sequence: load, verify, reset, let it run."""
    return run_gdb(gdb, elf, port, "load", "compare-sections", "monitor system_reset", "detach")


def open_console(board: EmulatedBoard) -> serial.Serial:
    # QEMU drops UART output while nobody has the pty open (chardev/char-pty.c char_pty_chr_write()),
    # so the console is opened before every reset.
    return serial.serial_for_url(str(board.console), baudrate=115200, timeout=BOOT_TIMEOUT_S, write_timeout=1.0)


def test_image_carries_its_build_id(tmp_path: Path) -> None:
    elf = build_image(tmp_path, BUILD_ID)
    silent = build_image(tmp_path, BUILD_ID, silent=True)
    assert elf.with_suffix(".hex").read_text().startswith(":")
    for image in (elf, elf.with_suffix(".bin"), silent):
        assert f"HIL_BUILD_ID={BUILD_ID}\0".encode() in image.read_bytes()
        assert read_build_id(image) == BUILD_ID


def test_flashed_image_boots_with_its_build_id(gdb: str, emulated_board: EmulatedBoard, tmp_path: Path) -> None:
    elf = build_image(tmp_path, BUILD_ID)
    with open_console(emulated_board) as console:
        done = flash(gdb, elf, emulated_board.gdb_port)
        assert done.returncode == 0, done.stderr
        assert "Loading section .text" in done.stdout
        assert re.search(r"^Section \.text, range 0x0 -- 0x[0-9a-f]+: matched\.$", done.stdout, re.MULTILINE)
        assert "MIS-MATCHED" not in done.stdout
        assert console.read_until(b"HIL READY\r\n") == BANNER


def test_reset_boots_the_flashed_image_again(gdb: str, emulated_board: EmulatedBoard, tmp_path: Path) -> None:
    with open_console(emulated_board) as console:
        flash(gdb, build_image(tmp_path, BUILD_ID), emulated_board.gdb_port)
        assert console.read_until(b"HIL READY\r\n") == BANNER
        run_power_command(emulated_board.reset_argv)
        assert console.read_until(b"HIL READY\r\n") == BANNER


def test_silent_image_prints_nothing(gdb: str, emulated_board: EmulatedBoard, tmp_path: Path) -> None:
    with open_console(emulated_board) as console:
        done = flash(gdb, build_image(tmp_path, BUILD_ID, silent=True), emulated_board.gdb_port)
        assert ": matched." in done.stdout
        console.timeout = 1.0
        assert console.read(1) == b""


def test_power_off_removes_console_and_gdb_server(gdb: str, emulated_board: EmulatedBoard, tmp_path: Path) -> None:
    run_power_command(emulated_board.off_argv)
    assert not os.path.lexists(emulated_board.console)
    done = run_gdb(gdb, build_image(tmp_path, BUILD_ID), emulated_board.gdb_port)
    assert f"127.0.0.1:{emulated_board.gdb_port}: Connection refused." in done.stderr


def test_power_cycle_erases_the_image_and_keeps_the_gdb_port(
    gdb: str, emulated_board: EmulatedBoard, tmp_path: Path
) -> None:
    elf = build_image(tmp_path, BUILD_ID)
    assert ": matched." in flash(gdb, elf, emulated_board.gdb_port).stdout
    run_power_command(emulated_board.off_argv)
    run_power_command(emulated_board.on_argv)
    assert emulated_board.console.is_symlink()
    assert (emulated_board.dir / "gdb_port").read_text().strip() == str(emulated_board.gdb_port)
    # `disconnect`, not `detach`: a blank board must not run (QEMU aborts on the lockup, see emulated_board.py).
    done = run_gdb(gdb, elf, emulated_board.gdb_port, "compare-sections", "disconnect")
    assert re.search(r"^Section \.text, range 0x0 -- 0x[0-9a-f]+: MIS-MATCHED!$", done.stdout, re.MULTILINE)


def test_failed_load_exits_zero_and_boots_the_old_image(
    gdb: str, emulated_board: EmulatedBoard, tmp_path: Path
) -> None:
    truncated = tmp_path / "truncated.elf"
    truncated.write_bytes(build_image(tmp_path, BUILD_ID).read_bytes()[:3000])
    with open_console(emulated_board) as console:
        flash(gdb, build_image(tmp_path, BUILD_ID), emulated_board.gdb_port)
        assert console.read_until(b"HIL READY\r\n") == BANNER
        done = flash(gdb, truncated, emulated_board.gdb_port)
        assert done.returncode == 0  # the last command, detach, succeeded: the flasher must read each step's output
        assert "not in executable format: file format not recognized" in done.stderr
        assert "Loading section" not in done.stdout
        assert console.read_until(b"HIL READY\r\n") == BANNER  # reset and detach still ran


def test_lockup_powers_the_board_off(gdb: str, emulated_board: EmulatedBoard, tmp_path: Path) -> None:
    run_gdb(gdb, build_image(tmp_path, BUILD_ID), emulated_board.gdb_port, "detach")  # a blank board runs
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and os.path.lexists(emulated_board.console):
        time.sleep(0.05)
    assert not os.path.lexists(emulated_board.console)
    assert "Lockup: can't escalate" in (emulated_board.dir / "qemu.log").read_text()


def test_killing_the_owner_powers_the_board_off(tmp_path: Path) -> None:
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not found: apt-get install qemu-system-arm")
    board_dir = tmp_path / "board"
    owner_source = (
        "import os, subprocess, sys, time\n"
        "argv = sys.argv[1:] + ['--owner-pid', str(os.getpid())]\n"
        "subprocess.run(argv, check=True, timeout=30, stdout=subprocess.DEVNULL)\n"
        "print('on', flush=True)\n"
        "time.sleep(60)\n"
    )
    argv = [sys.executable, "-c", owner_source, *board_command("on", board_dir)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as owner:
        try:
            assert owner.stdout is not None
            assert owner.stdout.readline() == "on\n"
            assert int((board_dir / "qemu.pid").read_text()) in board_processes(board_dir)
            owner.send_signal(signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and board_processes(board_dir):
                time.sleep(0.05)
        finally:
            owner.kill()
    assert board_processes(board_dir) == [], "QEMU or its supervisor outlived the owner"
    assert not os.path.lexists(board_dir / "console")


def board_processes(board_dir: Path) -> list[int]:
    """Live processes (not zombies) whose command line names the board's directory."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.fsencode(board_dir) in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found
