"""`hil lab` from the command line: a twister hardware map as it is, and a scan with nothing attached."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from serial.tools import list_ports

ROOT = Path(__file__).resolve().parents[2]

# The shape `twister --generate-hardware-map` writes.
TWISTER_MAP = """\
- connected: true
  id: 000683759358
  platform: nrf52840dk/nrf52840
  product: J-Link
  runner: jlink
  serial: /dev/serial/by-id/usb-SEGGER_J-Link_000683759358-if00
- connected: true
  id: 0670FF495157
  platform: nucleo_f411re
  product: STM32 STLink
  runner: openocd
  serial: /dev/ttyACM7
"""


def _hil(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "200", "HIL_LAB_STATE": str(tmp_path / "s")}
    argv = [sys.executable, "-m", "hil.cli", *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_lab_list_prints_the_boards_of_a_twister_map(tmp_path: Path) -> None:
    (tmp_path / "map.yaml").write_text(TWISTER_MAP)
    result = _hil(tmp_path, "--lab", str(tmp_path / "map.yaml"), "lab", "list")
    assert result.returncode == 0, result.stdout + result.stderr
    for expected in ("000683759358", "board:nrf52840dk", "0670FF495157", "board:nucleo_f411re"):
        assert expected in result.stdout


def test_lab_check_names_what_stops_each_board(tmp_path: Path) -> None:
    (tmp_path / "map.yaml").write_text(TWISTER_MAP)
    result = _hil(tmp_path, "--lab", str(tmp_path / "map.yaml"), "lab", "check")
    assert result.returncode == 1  # no port, no JLinkExe, no openocd here
    assert "console port /dev/ttyACM7 does not exist" in result.stdout
    assert "JLinkExe (runner jlink) is not installed" in " ".join(result.stdout.split())


def test_lab_scan_with_nothing_attached_says_so(tmp_path: Path) -> None:
    probes = [p for p in list_ports.comports() if p.vid is not None]
    result = _hil(tmp_path, "lab", "scan")
    assert result.returncode == 0, result.stdout + result.stderr
    if not probes:
        assert "no debug probe or known board attached" in result.stdout
