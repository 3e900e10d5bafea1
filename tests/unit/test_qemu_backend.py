"""The QEMU backend without QEMU: what it counts per inference, and how it starts QEMU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hil.backends.qemu import QemuBackend, console_args, uses_semihosting
from hil.config import load_config
from hil.options import FirmwareOptions
from hil.results import InferenceResult

ROOT = Path(__file__).resolve().parents[2]


def _backend(tmp_path: Path) -> QemuBackend:
    config = load_config(root=ROOT)
    return QemuBackend(config.target("qemu:mps2_an385"), config, tmp_path)


def test_an_inference_costs_its_ticks_in_instructions(tmp_path: Path) -> None:
    # mps2/an385: SysTick at 25 MHz (40 ns a tick); -icount shift=3: 8 ns an instruction.
    result = InferenceResult("sine", np.zeros((1, 1), dtype=np.int8), 1234, 25_000_000, 512, b"")
    same, cost = _backend(tmp_path).cost_of(lambda: result)
    assert same is result
    assert cost is not None
    assert cost.instructions == 1234 * 5
    assert cost.virtual_time_s == pytest.approx(1234 / 25e6)
    assert cost.host_time_s >= 0


def test_what_is_not_an_inference_has_no_cost(tmp_path: Path) -> None:
    assert _backend(tmp_path).cost_of(lambda: "memory report") == ("memory report", None)


def test_an_image_built_with_the_semihosting_port_is_told_apart_by_its_kconfig_symbol(tmp_path: Path) -> None:
    # Zephyr's configs.c makes each enabled option an absolute symbol, its name in .strtab.
    with_port, without = tmp_path / "semihost.elf", tmp_path / "uart.elf"
    with_port.write_bytes(b"\x7fELF" + bytes(64) + b"\0CONFIG_HIL_PORT_SEMIHOST\0CONFIG_SERIAL\0")
    without.write_bytes(b"\x7fELF" + bytes(64) + b"\0CONFIG_HIL_PORT_SEMIHOST_X\0CONFIG_SERIAL\0")
    assert uses_semihosting(with_port)
    assert not uses_semihosting(without)


def test_the_protocol_port_is_a_tcp_server_on_loopback_either_way(tmp_path: Path) -> None:
    uart = console_args(5555, False, tmp_path / "uart.log")
    assert uart == ["-serial", "tcp:127.0.0.1:5555,server=on,wait=on,nodelay=on"]
    semihosting = console_args(5555, True, tmp_path / "uart.log")
    assert semihosting[semihosting.index("-chardev") + 1] == (
        "socket,id=hil,host=127.0.0.1,port=5555,server=on,wait=on,nodelay=on"
    )
    assert semihosting[semihosting.index("-semihosting-config") + 1] == "enable=on,target=native,chardev=hil"
    assert semihosting[semihosting.index("-serial") + 1] == f"file:{tmp_path / 'uart.log'}"  # the boot banner


def test_the_catalog_builds_qemu_mps2_an385_with_the_semihosting_port() -> None:
    config = load_config(root=ROOT)
    options = config.target("qemu:mps2_an385").options_as(FirmwareOptions)
    assert list(options.firmware_conf) == ["qemu.conf"]
    assert "CONFIG_HIL_PORT_SEMIHOST=y" in (config.firmware_dir / "qemu.conf").read_text().splitlines()
