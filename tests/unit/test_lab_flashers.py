"""Flasher argv for every runner tool, checked against the tools' documented flags.

Tools we cannot install here (J-Link, nRF, ST, bossac, openocd) are replaced by ``RecordingTool``,
a test double that records its argv; pyocd is run for real.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from hil.config import load_config
from hil.errors import BoardError
from hil.lab.bench import Lab, Lease
from hil.lab.flashers import CommandFlasher, GdbFlasher, ToolFlasher, WestFlasher, flasher_for
from hil.lab.image import FirmwareImage, load_image
from hil.lab.inventory import LabBoard
from hil.lab.strategy import BoardStrategy

BUILD_ID = "0123456789abcdef"

RECORDING_TOOL = """#!{python}
import json, os, sys
with open(os.environ["RECORDING_TOOL_LOG"], "a") as f:
    f.write(json.dumps(sys.argv) + "\\n")
sys.exit(int(os.environ.get("RECORDING_TOOL_EXIT", "0")))
"""


def _intel_hex(data: bytes) -> str:
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        record = bytes([len(chunk), offset >> 8, offset & 0xFF, 0]) + chunk
        lines.append(":" + (record + bytes([-sum(record) & 0xFF])).hex().upper())
    return "\n".join([*lines, ":00000001FF"]) + "\n"


@pytest.fixture
def image(tmp_path: Path) -> FirmwareImage:
    data = b"\x00" * 40 + b"HIL_BUILD_ID=" + BUILD_ID.encode() + b"\x00" + b"\xff" * 20
    (tmp_path / "app.hex").write_text(_intel_hex(data))
    return replace(load_image(tmp_path / "app.hex", tmp_path / "made"), bin=tmp_path / "app.bin")


@pytest.fixture
def recording_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-ins for vendor tools on PATH; each call appends its argv to the returned file."""
    bin_dir = tmp_path / "recording-tools"
    bin_dir.mkdir()
    for tool in ("JLinkExe", "nrfjprog", "nrfutil", "STM32_Programmer_CLI", "bossac", "openocd", "west"):
        path = bin_dir / tool
        path.write_text(RECORDING_TOOL.format(python=sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "argv.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("RECORDING_TOOL_LOG", str(log))
    return log


def _board(runner: str, **keys: object) -> LabBoard:
    return LabBoard(id="b1", platforms=("p",), runner=runner, serial="/dev/ttyACM0", **keys)  # type: ignore[arg-type]


def _recorded(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.parametrize(
    ("runner", "keys", "expected"),
    [
        ("nrfjprog", {"probe_id": "683"}, ["-f", "NRF52", "--program", "{hex}", "--sectorerase", "--verify", "--reset",
                                           "--snr", "683"]),
        ("nrfutil", {"probe_id": "683"}, ["device", "program", "--firmware", "{hex}", "--options",
                                          "chip_erase_mode=ERASE_RANGES_TOUCHED_BY_FIRMWARE,verify=VERIFY_READ",
                                          "--serial-number", "683"]),
        ("stm32cubeprogrammer", {"probe_id": "066"}, ["-c", "port=SWD", "sn=066", "-w", "{hex}", "-v", "-rst"]),
        ("bossac", {}, ["-p", "/dev/ttyACM0", "-R", "-e", "-w", "-v", "-b", "{bin}"]),
    ],
)  # fmt: skip
def test_tool_flasher_argv(
    runner: str, keys: dict, expected: list[str], image: FirmwareImage, recording_tools: Path, tmp_path: Path
) -> None:
    result = ToolFlasher(_board(runner, **keys), tmp_path / "flash.log").flash(image)
    assert result.ok
    forms = {"{hex}": str(image.hex), "{bin}": str(image.bin)}
    assert _recorded(recording_tools)[0][1:] == [forms.get(arg, arg) for arg in expected]


def test_jlink_runs_a_commander_script_that_stops_on_error(
    image: FirmwareImage, recording_tools: Path, tmp_path: Path
) -> None:
    board = _board("jlink", chip="nRF52840_xxAA", probe_id="683")
    ToolFlasher(board, tmp_path / "flash.log").flash(image)
    argv = _recorded(recording_tools)[0]
    assert argv[1:9] == ["-nogui", "1", "-ExitOnError", "1", "-if", "swd", "-speed", "auto"]
    assert argv[9:13] == ["-device", "nRF52840_xxAA", "-SelectEmuBySN", "683"]
    script = Path(argv[argv.index("-CommanderScript") + 1]).read_text()
    assert f'loadfile "{image.hex}"' in script
    assert script.endswith("exit\n")


def test_openocd_programs_the_elf_with_the_board_config(recording_tools: Path, tmp_path: Path) -> None:
    elf = tmp_path / "zephyr.elf"
    image = FirmwareImage(elf, None, elf, None, None, BUILD_ID, "0" * 64)
    board = _board("openocd", openocd_config=("board/st_nucleo_f4.cfg",), probe_id="066")
    ToolFlasher(board, tmp_path / "flash.log").flash(image)
    assert _recorded(recording_tools)[0][1:] == [
        "-f", "board/st_nucleo_f4.cfg", "-c", "adapter serial 066", "-c", f"program {elf} verify reset exit",
    ]  # fmt: skip


def test_west_flash_uses_the_build_dir_runner_and_probe(recording_tools: Path, tmp_path: Path) -> None:
    build = tmp_path / "build"
    image = FirmwareImage(build / "zephyr/zephyr.elf", build, None, None, None, None, "0" * 64)
    board = _board("jlink", probe_id="683", runner_params=("--tool-opt=-speed 4000",))
    flasher = flasher_for(board, image, tmp_path / "flash.log")
    assert isinstance(flasher, WestFlasher)
    flasher.flash(image)
    assert _recorded(recording_tools)[0][1:] == [
        "flash", "--skip-rebuild", "-d", str(build), "--runner", "jlink", "--dev-id", "683", "--",
        "--tool-opt=-speed 4000",
    ]  # fmt: skip


def test_command_flasher_fills_the_template(image: FirmwareImage, tmp_path: Path) -> None:
    board = _board("command", flash_command="my-flash --hex {hex} --probe {probe_id} --port {port}", probe_id="9")
    plan = CommandFlasher(board, tmp_path / "log").plan(image)
    assert plan.argv == ("my-flash", "--hex", str(image.hex), "--probe", "9", "--port", "/dev/ttyACM0")


def test_gdb_flasher_checks_every_step(tmp_path: Path) -> None:
    board = _board("gdb", gdb_server="127.0.0.1:1234", gdb_reset="monitor system_reset")
    elf = tmp_path / "app.elf"
    plan = GdbFlasher(board, tmp_path / "log").plan(FirmwareImage(elf, None, elf, None, None, None, "0"))
    script = Path(plan.argv[plan.argv.index("-x") + 1]).read_text()
    assert plan.argv[-1] == str(elf)
    for step in ("target extended-remote 127.0.0.1:1234", "compare-sections", "MIS-MATCHED", "monitor system_reset"):
        assert step in script


def test_image_build_id_is_read_from_hex_before_flashing(image: FirmwareImage) -> None:
    assert image.build_id == BUILD_ID


def test_pyocd_without_a_probe_is_a_board_error_with_its_message(
    image: FirmwareImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyocd = Path(sys.executable).parent / "pyocd"
    if not pyocd.exists():
        pytest.skip("pyocd is not installed in this environment (pip install pyocd)")
    monkeypatch.setenv("PATH", f"{pyocd.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HIL_LAB_STATE", str(tmp_path / "state"))
    config = load_config(root=tmp_path)
    board = LabBoard(id="dk", platforms=("p",), runner="pyocd", chip="nrf52840", serial=str(tmp_path / "no-port"),
                     flash_retries=0, boot_timeout_s=1)  # fmt: skip
    lab = Lab(config, (board,), None)
    with pytest.raises(BoardError, match=r"board dk \(tool/pyocd\): flashing failed 1 time.*exited with 1") as caught:
        BoardStrategy(lab, Lease(board, board.serial or ""), tmp_path).bring_up(image)
    assert "No connected debug probes" in str(caught.value)
    assert lab.quarantine.health("dk").failures_in_a_row == 1
