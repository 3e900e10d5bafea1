"""The Renode backend without Renode: discovery, generated scripts, the monitor client, start and stop.

Two test doubles stand in for Renode, both defined here:

* ``ScriptedRenodeMonitor``: a real 127.0.0.1 socket in a thread that speaks Renode 1.14's monitor
  protocol (telnet negotiation, swallowing the first 9 bytes it receives, banner, prompts,
  echoed commands, scripted answers).
* ``FAKE_RENODE_SOURCE``: a small executable named ``renode`` that does the same as a process
  (``--version``, ``--port``, ``include`` of our script, a console socket terminal, ``quit``), so
  ``RenodeBackend.start/stop`` run end to end.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hil import resd
from hil.backends import free_tcp_port
from hil.backends import renode as rb
from hil.backends.renode import backend as renode_backend
from hil.backends.renode.script import options
from hil.config import HilConfig, load_config
from hil.errors import BackendUnavailable, ConfigError, DeviceLost, DeviceTimeout, SensorUnavailable
from hil.stimuli import load_stimulus

RENODE_1_14_NEGOTIATION = bytes([255, 253, 0, 255, 251, 1, 255, 251, 3, 255, 252, 34])
RENODE_1_16_NEGOTIATION = bytes([255, 253, 0, 255, 253, 31, 255, 251, 1, 255, 251, 3, 255, 252, 34])
OUR_1_14_ANSWER = bytes([255, 251, 0, 255, 253, 1, 255, 253, 3])


# --- test double: Renode's monitor on a socket ----------------------------------------------------


class ScriptedRenodeMonitor:
    """Renode's telnet monitor, scripted: answers each known command line, then prompts."""

    def __init__(
        self,
        replies: dict[str, bytes | str] | None = None,
        *,
        negotiation: bytes = RENODE_1_14_NEGOTIATION,
        swallow: int = 9,
        prompt: str = "monitor",
        silent: tuple[str, ...] = (),
        hang_up_on: tuple[str, ...] = (),
        foreign: dict[str, str] | None = None,
        port: int = 0,
    ) -> None:
        self.replies = replies or {}
        self.foreign = foreign or {}  # output of another monitor (Renode's robot server) before the echo
        self.negotiation, self.swallow, self.prompt = negotiation, swallow, prompt
        self.silent, self.hang_up_on = silent, hang_up_on
        self.swallowed = b""
        self.telnet_answers = b""
        self.received: list[str] = []
        self._server = socket.create_server(("127.0.0.1", port))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._server.accept()
        with conn:
            conn.sendall(self.negotiation)
            while len(self.swallowed) < self.swallow:  # SocketServerProvider reads exactly 9 bytes
                self.swallowed += conn.recv(self.swallow - len(self.swallowed))
            conn.sendall(b"\n\rRenode, version 1.14.0.25149 (81da46c1-202308081346)\n\r\n\r" + self._prompt())
            pending = b""
            while chunk := conn.recv(4096):
                pending += chunk
                pending = self._strip_telnet(pending)
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if not self._answer(conn, line.decode()):
                        return

    def _strip_telnet(self, data: bytes) -> bytes:
        out, i = bytearray(), 0
        while i < len(data):
            if data[i] == 255 and i + 2 < len(data):
                self.telnet_answers += data[i : i + 3]
                i += 3
            else:
                out.append(data[i])
                i += 1
        return bytes(out)

    def _prompt(self) -> bytes:
        return f"({self.prompt}) ".encode()

    def _answer(self, conn: socket.socket, line: str) -> bool:
        self.received.append(line)
        conn.sendall(self.foreign.get(line, "").encode())
        conn.sendall(line.encode() + b"\n\r")  # echo, as the shell does
        if line in self.hang_up_on:
            return False
        if line in self.silent:
            return True
        reply = self.replies.get(line, b"")
        reply = reply.encode() if isinstance(reply, str) else reply
        conn.sendall(reply + self._prompt())
        return True

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def monitor_double() -> Iterator[type[ScriptedRenodeMonitor]]:
    made: list[ScriptedRenodeMonitor] = []

    class Tracked(ScriptedRenodeMonitor):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    yield Tracked
    for double in made:
        double.close()


def _client(double: ScriptedRenodeMonitor, timeout_s: float = 5.0) -> rb.MonitorClient:
    return rb.MonitorClient.connect(double.port, timeout_s=timeout_s)


# --- the monitor client ----------------------------------------------------------------------------


def test_monitor_answers_renode_1_14_negotiation_with_exactly_nine_bytes(monitor_double) -> None:
    double = monitor_double({"version": "Renode, version 1.14.0.25149\n\r"})
    with _client(double) as client:
        assert client.execute("version") == "Renode, version 1.14.0.25149"
    assert double.swallowed == OUR_1_14_ANSWER
    assert double.received == ["version"], "the first command must not be eaten by the negotiation"


def test_monitor_ignores_what_another_monitor_printed_before_our_command(monitor_double) -> None:
    # Renode's robot server runs its commands in a monitor of its own, whose output reaches ours too.
    double = monitor_double(
        {"Save @x": ""}, foreign={"Save @x": "0x1CF9BE\n\rBad parameters for command mach\n\rmach\n\r"}
    )
    with _client(double) as client:
        assert client.execute("Save @x") == ""


def test_monitor_banner_holds_the_renode_version(monitor_double) -> None:
    with _client(monitor_double()) as client:
        assert rb.parse_version(client.banner) == (1, 14, 0)
        assert client.prompt == "monitor"


def test_monitor_refuses_options_it_does_not_support_in_newer_negotiation(monitor_double) -> None:
    double = monitor_double({"help": "ok\n\r"}, negotiation=RENODE_1_16_NEGOTIATION, swallow=0)
    with _client(double) as client:
        assert client.execute("help") == "ok"
    assert bytes([255, 252, 31]) in double.telnet_answers  # WONT NAWS
    assert bytes([255, 251, 0]) in double.telnet_answers  # WILL BINARY


def test_execute_returns_the_output_without_echo_or_prompt(monitor_double) -> None:
    double = monitor_double({"sysbus.cpu ExecutedInstructions": "0x1F4\n\r"})
    with _client(double) as client:
        assert client.execute("sysbus.cpu ExecutedInstructions") == "0x1F4"


def test_renode_error_text_raises_with_renodes_words(monitor_double) -> None:
    command = "machine LoadPlatformDescription @x.repl"
    answer = "There was an error executing command 'machine'\n\rCould not find file 'x.repl'\n\r"
    with _client(monitor_double({command: answer})) as client, pytest.raises(ConfigError) as err:
        client.execute(command)
    assert f"refused `{command}`" in str(err.value)
    assert "Could not find file 'x.repl'" in str(err.value)


def test_errors_can_be_read_instead_of_raised(monitor_double) -> None:
    with _client(monitor_double({"sysbus.i2c1": "No such command or device: sysbus.i2c1\n\r"})) as client:
        assert client.execute("sysbus.i2c1", check=False).startswith("No such command or device")


def test_offline_svd_download_failure_is_only_logged(monitor_double, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    answer = "Failed to download https://dl.antmicro.com/x.svd.gz, see log for details.\n\r"
    with _client(monitor_double({"machine LoadPlatformDescription @p.repl": answer})) as client:
        client.execute("machine LoadPlatformDescription @p.repl")
    assert "Failed to download" in caplog.text


def test_command_without_prompt_times_out_naming_the_command(monitor_double) -> None:
    with _client(monitor_double(silent=("currentTime",))) as client:
        started = time.monotonic()
        with pytest.raises(DeviceTimeout, match="`currentTime`"):
            client.execute("currentTime", timeout_s=0.5)
        assert time.monotonic() - started < 3


def test_monitor_hanging_up_is_device_lost(monitor_double) -> None:
    with _client(monitor_double(hang_up_on=("quit",))) as client, pytest.raises(DeviceLost, match="did Renode exit"):
        client.execute("quit")


def test_escapes_and_doubled_iac_are_cleaned_from_output(monitor_double) -> None:
    double = monitor_double({"show": b"\x1b[;031mred\x1b[0m and \xff\xff\n\r"})
    with _client(double) as client:
        assert client.execute("show") == "red and \ufffd"


def test_prompt_of_a_known_machine_ends_output_without_a_newline(monitor_double) -> None:
    double = monitor_double({"sysbus.cpu PC": "0x8000"}, prompt="renode-stm32f4_disco")
    with _client(double) as client:
        client.expect_machine("renode-stm32f4_disco")
        assert client.execute("sysbus.cpu PC") == "0x8000"


def test_connect_retries_until_renode_listens() -> None:
    port = free_tcp_port()
    doubles: list[ScriptedRenodeMonitor] = []
    timer = threading.Timer(0.4, lambda: doubles.append(ScriptedRenodeMonitor(port=port)))
    timer.start()
    try:
        with rb.MonitorClient.connect(port, timeout_s=5) as client:
            assert client.prompt == "monitor"
    finally:
        timer.join()
        for double in doubles:
            double.close()


def test_connect_stops_waiting_when_renode_has_exited() -> None:
    with pytest.raises(DeviceLost, match="exited with code 1 before its monitor opened"):
        rb.MonitorClient.connect(free_tcp_port(), timeout_s=5, exit_reason=lambda: "Renode exited with code 1")


def test_connect_timeout_says_what_to_raise() -> None:
    with pytest.raises(DeviceTimeout, match="boot_timeout_s"):
        rb.MonitorClient.connect(free_tcp_port(), timeout_s=0.3)


def test_multi_line_commands_are_refused(monitor_double) -> None:
    with _client(monitor_double()) as client, pytest.raises(ConfigError, match="one monitor command per line"):
        client.execute('macro reset\n"""')


@pytest.mark.parametrize(("text", "value"), [("0x1F4", 500), ("500", 500), ("0x1F4 (500)", 500)])
def test_numbers_parse_in_every_monitor_number_mode(text: str, value: int) -> None:
    assert rb.parse_number(text) == value


def test_virtual_time_parses_from_current_time() -> None:
    text = "Current virtual time: 01:02:03.000250\nCurrent real time: 00:00:09.1"
    assert rb.parse_virtual_time(text) == pytest.approx(3723.00025)
    with pytest.raises(ConfigError, match="Current virtual time"):
        rb.parse_virtual_time("nonsense")


# --- finding Renode -----------------------------------------------------------------------------------


def _fake_renode(folder: Path, version: str = "1.14.0.25149") -> Path:
    """A stand-in `renode` that only answers --version (as `Renode, version X (hash)`)."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "renode"
    exe.write_text(f"#!/bin/sh\necho 'Renode, version {version} (81da46c1-202308081346)'\n")
    exe.chmod(0o755)
    return exe


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    empty = tmp_path / "empty-path"
    empty.mkdir(exist_ok=True)
    return {"PATH": str(empty), "HOME": str(tmp_path / "home"), **extra}


def test_missing_renode_message_names_renode_and_how_to_install(tmp_path: Path) -> None:
    found = rb.find_renode(_env(tmp_path))
    assert not found.usable
    message = found.why_not()
    assert message.startswith("renode not found")
    for needed in ("Renode >= 1.14.0", "github.com/renode/renode/releases", "renode-run download", "$RENODE", "PATH"):
        assert needed in message


def test_bad_renode_variable_is_named_in_the_message(tmp_path: Path) -> None:
    message = rb.find_renode(_env(tmp_path, RENODE="/nonexistent/renode")).why_not()
    assert "renode not found ($RENODE=/nonexistent/renode is not an executable" in message


def test_renode_variable_may_name_the_folder(tmp_path: Path) -> None:
    exe = _fake_renode(tmp_path / "r")
    found = rb.find_renode(_env(tmp_path, RENODE=str(tmp_path / "r")))
    assert (found.path, found.version, found.found_by, found.usable) == (exe, "1.14.0", "$RENODE", True)


def test_renode_on_path_is_found(tmp_path: Path) -> None:
    _fake_renode(tmp_path / "bin")
    found = rb.find_renode({"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path)})
    assert found.usable
    assert found.found_by == "PATH"


def test_renode_older_than_1_14_is_refused_with_the_reason(tmp_path: Path) -> None:
    _fake_renode(tmp_path / "bin", "1.13.3.1234")
    found = rb.find_renode({"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path)})
    assert not found.usable
    assert "version 1.13.3 is older than 1.14.0" in found.why_not()


def test_renode_run_install_is_found_from_its_json_config(tmp_path: Path) -> None:
    home = tmp_path / "home"
    install = home / ".config/renode/renode-run.download/dotnet-portable/renode-1.16.1+20260216git1234abcd"
    exe = _fake_renode(install, "1.16.1.0")
    config = home / ".config/renode/renode-run.json"
    config.write_text(json.dumps({"version": "2.0", "default": {"dotnet-portable": str(install)}}))
    found = rb.find_renode(_env(tmp_path))
    assert (found.path, found.version) == (exe, "1.16.1")
    assert found.found_by == f"renode-run ({config})"


def test_renode_run_legacy_path_file_is_honoured(tmp_path: Path) -> None:
    exe = _fake_renode(tmp_path / "opt/renode_1.14.0_portable")
    legacy = tmp_path / "home/.config/renode/renode-run.path"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(str(exe.parent))
    assert rb.find_renode(_env(tmp_path)).path == exe


# --- generated scripts -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> HilConfig:
    return load_config(root=Path(__file__).resolve().parents[2])


RENODE_TARGETS = ("renode:nrf52840dk", "renode:arduino_nano_33_ble", "renode:stm32f4_disco", "renode:nucleo_f411re")


def test_every_built_in_renode_target_is_covered(catalog: HilConfig) -> None:
    assert {t.name for t in catalog.targets.values() if t.backend == "renode"} == set(RENODE_TARGETS)


@pytest.mark.parametrize("name", RENODE_TARGETS)
def test_script_builds_machine_bridges_console_and_loads_firmware(catalog: HilConfig, name: str) -> None:
    target = catalog.target(name)
    script = rb.build_script(target, catalog, firmware=Path("/fw/zephyr.elf"), console_port=4567)
    lines = script.text.splitlines()
    assert lines[0] == f":name: tinyml-hil {name}"
    assert "$bin?=@/fw/zephyr.elf" in lines
    assert f'mach create "{target.board_id}"' in lines
    assert f"machine LoadPlatformDescription @{options(target).platform}" in lines
    # our batched console bridge: Renode compiles it, then it listens on the console port
    assert lines.index(f"include @{rb.RENODE_MODELS / 'HilSocketTerminal.cs'}") < lines.index(
        'emulation CreateHilSocketTerminal 4567 "hil_console"'
    )
    assert f"connector Connect {options(target).console} hil_console" in lines
    assert lines.index(f'mach create "{target.board_id}"') < lines.index(
        'emulation CreateHilSocketTerminal 4567 "hil_console"'
    )
    assert "logLevel 3" in lines  # warnings of unmodelled registers cost emulation time: errors only
    # 1 ms: an idle Renode syncs 1,000 times a second, not 10,000; the nRF targets keep Renode's 100 us,
    # as their firmware times inferences with an RTC that Renode moves on at sync points only
    quantum = "0.000100" if "nrf52840.repl" in options(target).platform else "0.001000"
    assert f'emulation SetGlobalQuantum "{quantum}"' in lines
    assert lines.index("sysbus LoadELF $bin") > lines.index(f"connector Connect {options(target).console} hil_console")
    assert script.commands[-1] == "runMacro $reset"
    assert "start" not in script.commands  # the backend starts the emulation after the script ran


def test_renode_s_own_console_terminal_on_request(catalog: HilConfig) -> None:
    target = catalog.target("renode:nrf52840dk")
    target = dataclasses.replace(target, options=target.options.model_copy(update={"console_terminal": "renode"}))
    lines = rb.build_script(target, catalog, firmware=Path("/fw/zephyr.elf"), console_port=4567).text.splitlines()
    assert 'emulation CreateServerSocketTerminal 4567 "hil_console" false' in lines
    assert not any("HilSocketTerminal" in line for line in lines)


def arm_elf(path: Path, sections: list[tuple[int, int]], loads: list[tuple[int, int, int]]) -> Path:
    """A minimal 32-bit little-endian Arm ELF: (address, flags) sections, (vaddr, paddr, size) PT_LOAD segments."""
    ehsize, phentsize, shentsize = 52, 32, 40
    phoff, shoff = ehsize, ehsize + phentsize * len(loads)
    header = struct.pack(
        "<16sHHIIIIIHHHHHH", b"\x7fELF\x01\x01\x01" + bytes(9), 2, 40, 1, 0, phoff, shoff, 0, ehsize,
        phentsize, len(loads), shentsize, len(sections) + 1, 0,
    )  # fmt: skip
    program = b"".join(struct.pack("<IIIIIIII", 1, 0, v, pa, size, size, 5, 4) for v, pa, size in loads)
    null = bytes(shentsize)
    table = b"".join(struct.pack("<IIIIIIIIII", 0, 1, flags, address, 0, 16, 0, 0, 4, 0) for address, flags in sections)
    path.write_bytes(header + program + null + table)
    return path


def test_vector_table_is_where_renode_guesses_it_after_a_load(tmp_path: Path) -> None:
    alloc, plain = 0x2, 0x0
    stm32 = arm_elf(
        tmp_path / "stm32.elf",
        [(0x20000000, alloc), (0x08000000, alloc), (0x00000000, plain)],  # data (stored in flash), vectors, debug
        [(0x08000000, 0x08000000, 0x4000), (0x20000000, 0x08004000, 0x100)],
    )
    assert rb.script.vector_table_address(stm32) == 0x08000000
    booted = arm_elf(tmp_path / "nano.elf", [(0x10000, alloc), (0x20000000, alloc)], [(0x10000, 0x10000, 0x100)])
    assert rb.script.vector_table_address(booted) == 0x10000  # an image behind a bootloader
    assert rb.script.vector_table_address(tmp_path / "missing.elf") is None
    (tmp_path / "not.elf").write_bytes(b"\x7fELF")
    assert rb.script.vector_table_address(tmp_path / "not.elf") is None


def test_a_reset_points_the_core_at_the_vector_table_instead_of_loading_the_image_again(
    catalog: HilConfig, tmp_path: Path
) -> None:
    image = arm_elf(tmp_path / "fw.elf", [(0x08000000, 0x2)], [(0x08000000, 0x08000000, 0x100)])
    script = rb.build_script(catalog.target("renode:stm32f4_disco"), catalog, firmware=image, console_port=1)
    assert script.commands.count("sysbus LoadELF $bin") == 1  # once, at the start
    macro = 'macro reset\n"""\n    sysbus.cpu VectorTableOffset 0x8000000\n    nvic Frequency 168000000\n"""'
    assert macro in script.commands
    assert script.commands[-1] == "runMacro $reset"


def _stm32f4_disco_script(catalog: HilConfig, version: tuple[int, int, int]) -> rb.RenodeScript:
    target = catalog.target("renode:stm32f4_disco")
    return rb.build_script(target, catalog, firmware=Path("/fw.elf"), console_port=1, renode_version=version)


def test_stm32f4_disco_gets_our_i2c1_model_and_an_adxl345_on_renode_1_14(catalog: HilConfig) -> None:
    script = _stm32f4_disco_script(catalog, (1, 14, 0))
    model = script.commands.index(f"include {resd.monitor_path(rb.RENODE_MODELS / 'Hil_STM32F4_I2C.cs')}")
    bus = script.commands.index(
        'machine LoadPlatformDescriptionFromString "i2c1: I2C.Hil_STM32F4_I2C @ sysbus 0x40005400"'
    )
    sensor = script.commands.index('machine LoadPlatformDescriptionFromString "adxl345: Sensors.ADXL345 @ i2c1 0x1d"')
    assert model < bus < sensor
    assert script.commands[sensor + 1] == "sysbus.i2c1.adxl345 MaxFifoDepth 1"
    # Zephyr's SysTick rate, not the repl's 72 MHz, after every machine reset too
    # /fw.elf is no Arm image we can read: a reset loads it again; then Zephyr's SysTick rate.
    assert 'macro reset\n"""\n    sysbus LoadELF $bin\n    nvic Frequency 168000000\n"""' in script.commands
    assert (rb.RENODE_MODELS / "Hil_STM32F4_I2C.cs").is_file()


def test_stm32f4_disco_uses_the_stock_i2c1_from_renode_1_15(catalog: HilConfig) -> None:
    script = _stm32f4_disco_script(catalog, (1, 15, 0))
    assert not any("I2C." in c or (c.startswith("include") and "I2C" in c) for c in script.commands)
    assert 'machine LoadPlatformDescriptionFromString "adxl345: Sensors.ADXL345 @ i2c1 0x1d"' in script.commands


@pytest.mark.parametrize("name", RENODE_TARGETS)
def test_built_in_targets_get_no_dwt(catalog: HilConfig, name: str) -> None:
    # Renode's DWT advances only as finely as virtual time; the firmware's SysTick fallback is finer.
    script = rb.build_script(catalog.target(name), catalog, firmware=Path("/f"), console_port=1)
    assert not any("DWT" in command for command in script.commands)


def test_nrf52840dk_gets_an_adxl345_at_0x53_on_twi0_fed_one_sample_per_fetch(catalog: HilConfig) -> None:
    script = rb.build_script(catalog.target("renode:nrf52840dk"), catalog, firmware=Path("/f"), console_port=1)
    sensor = script.commands.index('machine LoadPlatformDescriptionFromString "adxl345: Sensors.ADXL345 @ twi0 0x53"')
    assert script.commands[sensor + 1] == "sysbus.twi0.adxl345 MaxFifoDepth 1"


def test_nano_33_ble_gets_an_lsm9ds1_on_twi1(catalog: HilConfig) -> None:
    script = rb.build_script(catalog.target("renode:arduino_nano_33_ble"), catalog, firmware=Path("/f"), console_port=1)
    assert 'machine LoadPlatformDescriptionFromString "lsm9ds1: Sensors.LSM9DS1_IMU @ twi1 0x6b"' in script.commands


def _user_config(tmp_path: Path, table: str) -> HilConfig:
    (tmp_path / "hil.toml").write_text(textwrap.dedent(table))
    return load_config(tmp_path / "hil.toml")


def test_user_target_with_its_own_repl_sensor_and_commands(tmp_path: Path) -> None:
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards/my board.repl").write_text("// my board\n")
    config = _user_config(
        tmp_path,
        """
        [targets."renode:mine"]
        backend = "renode"
        platform = "boards/my board.repl"
        console = "sysbus.uart1"
        accelerometer = "sysbus.i2c0.imu"
        accelerometer_model = "lsm6dso"
        accelerometer_address = "0x6b"
        accelerometer_bus_repl = "i2c0: I2C.Foo @ sysbus 0x4000"
        performance_mips = 250
        dwt_frequency_hz = 64000000
        renode_commands = ["emulation SetGlobalQuantum \\"0.0001\\""]
        """,
    )
    script = rb.build_script(config.target("renode:mine"), config, firmware=tmp_path / "fw.elf", console_port=9)
    platform = str(tmp_path / "boards/my board.repl").replace(" ", "\\ ")
    assert f"machine LoadPlatformDescription @{platform}" in script.commands
    assert script.commands[6:12] == (
        'machine LoadPlatformDescriptionFromString "i2c0: I2C.Foo @ sysbus 0x4000"',
        'machine LoadPlatformDescriptionFromString "imu: Sensors.LSM6DSO_IMU @ i2c0 0x6b"',
        'machine LoadPlatformDescriptionFromString "dwt: Miscellaneous.DWT @ sysbus 0xE0001000 '
        '{ frequency: 64000000 }"',
        "sysbus.cpu PerformanceInMips 250",
        'emulation SetGlobalQuantum "0.001000"',  # option quantum_s (default 1 ms) ...
        'emulation SetGlobalQuantum "0.0001"',  # ... which the target's own renode_commands may change
    )


def test_accelerometer_that_is_not_a_sysbus_path_is_refused_when_the_config_loads(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"hil\.toml:6: .*accelerometer: must be sysbus\.<bus>\.<name>"):
        _user_config(
            tmp_path,
            """
            [targets."renode:bad"]
            backend = "renode"
            platform = "p.repl"
            console = "sysbus.uart0"
            accelerometer = "i2c1.adxl345"
            """,
        )


def test_accelerometer_of_unknown_model_says_to_set_accelerometer_model(tmp_path: Path) -> None:
    config = _user_config(
        tmp_path,
        """
        [targets."renode:bad"]
        backend = "renode"
        platform = "p.repl"
        console = "sysbus.uart0"
        accelerometer = "sysbus.i2c1.bmi270"
        """,
    )
    with pytest.raises(ConfigError, match="set accelerometer_model"):
        rb.build_script(config.target("renode:bad"), config, firmware=Path("/f"), console_port=1)


def test_target_without_console_is_refused_when_the_config_loads(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"hil\.toml:1: targets\.\"renode:x\": missing key 'console': the UART"):
        _user_config(tmp_path, '[targets."renode:x"]\nbackend = "renode"\nplatform = "p.repl"\n')


def _live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (read from /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _wait_gone(pgid: int, timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (alive := _live_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


# --- the backend against a fake Renode process ------------------------------------------------------------------

FAKE_RENODE_SOURCE = r"""
import os, signal, socket, subprocess, sys, threading

def record(line):
    with open(os.environ["FAKE_RENODE_RECORD"], "a") as f:
        f.write(line + "\n")

args = sys.argv[1:]
if "--version" in args:
    print("Renode, version 1.14.0.25149 (81da46c1-202308081346)")
    sys.exit(0)
record("argv " + " ".join(args))
record("tmpdir " + os.environ.get("TMPDIR", ""))
if os.environ.get("FAKE_RENODE_EXIT"):
    sys.exit(int(os.environ["FAKE_RENODE_EXIT"]))
if os.environ.get("FAKE_RENODE_STUBBORN"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    record("grandchild %d" % subprocess.Popen(["sleep", "300"]).pid)

def listen(port):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    return server

def console(server, keep):
    conn, _ = server.accept()
    keep.append(conn)
    conn.sendall(b"HIL BOOT fw=fake proto=2 board=fake build=0123456789abcdef\r\nHIL READY\r\n")

monitor = listen(int(args[args.index("--port") + 1]))
print("Monitor available in telnet mode", flush=True)
conn, _ = monitor.accept()
conn.sendall(bytes([255, 253, 0, 255, 251, 1, 255, 251, 3, 255, 252, 34]))
answer = b""
while len(answer) < 9:
    answer += conn.recv(9 - len(answer))
record("negotiation " + answer.hex())
prompt, keep, instructions, virtual_us = "monitor", [], 1000, 0

def send(text):
    conn.sendall(text.replace("\n", "\n\r").encode())

send("\nRenode, version 1.14.0.25149 (81da46c1-202308081346)\n\n(monitor) ")
SCRIPT = ("using ", "$bin", "mach create", "machine LoadPlatformDescription", "logLevel", "connector Connect",
          "sysbus LoadELF", "emulation ", "runMacro", "sysbus.")

def script_line(command):
    global prompt
    if "@/nonexistent" in command:
        return "There was an error executing command 'machine'\nCould not find file '/nonexistent/x.repl'"
    if command.startswith("mach create"):
        prompt = command.split('"')[1]
    if command.startswith(("emulation CreateServerSocketTerminal", "emulation CreateHilSocketTerminal")):
        keep.append(listen(int(command.split()[2])))  # listening before `start`, as in Renode
        threading.Thread(target=console, args=(keep[-1], keep), daemon=True).start()
    return ""

pending = b""
while True:
    data = conn.recv(4096)
    if not data:
        break
    pending += data
    while b"\n" in pending:
        raw, pending = pending.split(b"\n", 1)
        line = raw.decode()
        record("cmd " + line)
        out = ""
        if line.startswith("include @") and not line.endswith(".cs"):
            for command in open(line[9:].replace("\\ ", " ")).read().splitlines():
                if out := script_line(command):
                    break
        elif line.startswith("include @"):
            pass  # Renode compiles the C# model
        elif line.endswith(" ExecutedInstructions"):
            instructions += 12345
            out = "0x%X" % instructions
        elif line == "currentTime":
            virtual_us += 2500
            out = "Current virtual time: 00:00:%02d.%06d\nCurrent real time: 00:00:01.0" % divmod(virtual_us, 10**6)
        elif line.startswith('python "') and "ExecutedInstructions" in line:
            if os.environ.get("FAKE_RENODE_NO_PYTHON"):
                out = "No such command or device: python"
            else:
                instructions += 12345
                virtual_us += 2500
                out = "%d 00:00:%02d.%06d" % ((instructions,) + divmod(virtual_us, 10**6))
        elif line == "emulation GetTimeSourceInfo":
            out = "Elapsed Virtual Time: 00:00:00.000000\nAdvance immediately: False\nQuantum: 00:00:00.000100"
        elif line.startswith("emulation RunFor "):
            virtual_us += round(float(line.split('"')[1]) * 10**6)
        elif line.startswith("Save @"):
            with open(line[6:].replace("\\ ", " "), "w") as f:
                f.write("snapshot")
        elif line == "quit":
            if os.environ.get("FAKE_RENODE_STUBBORN"):
                continue
            send("quit\nRenode is quitting\n")
            sys.exit(0)
        elif line.startswith(SCRIPT):
            out = script_line(line)
        elif line not in ("start", "pause", "machine Reset") and " Feed" not in line:
            out = "No such command or device: " + line.split()[0]
        send(line + "\n" + (out + "\n" if out else "") + "(%s) " % prompt)
"""


@pytest.fixture
def fake_renode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$RENODE points at the fake; returns the file where it records argv, negotiation and commands."""
    exe = tmp_path / "fake-renode" / "renode"
    exe.parent.mkdir()
    exe.write_text(f"#!{sys.executable}\n{FAKE_RENODE_SOURCE}")
    exe.chmod(0o755)
    record = tmp_path / "fake-renode" / "record.txt"
    monkeypatch.setenv("RENODE", str(exe))
    monkeypatch.setenv("FAKE_RENODE_RECORD", str(record))
    monkeypatch.delenv("HIL_RENODE_ROBOT", raising=False)
    return record


def _backend(tmp_path: Path, platform: str = "platforms/cpus/nrf52840.repl", extra: str = "") -> rb.RenodeBackend:
    (tmp_path / "fw").mkdir(exist_ok=True)
    (tmp_path / "fw/zephyr.elf").write_bytes(b"\x7fELF")
    config = _user_config(
        tmp_path,
        f"""
        [targets."renode:fake"]
        backend = "renode"
        platform = "{platform}"
        console = "sysbus.uart0"
        firmware = "fw/zephyr.elf"
        boot_timeout_s = 20
        {extra}
        """,
    )
    return rb.RenodeBackend(config.target("renode:fake"), config, tmp_path / "artifacts dir")


def _recorded(record: Path) -> list[str]:
    return record.read_text().splitlines() if record.exists() else []


def test_backend_starts_renode_headless_and_bridges_the_console(tmp_path: Path, fake_renode: Path) -> None:
    backend = _backend(tmp_path)
    try:
        url = backend.start()
        assert url.startswith("socket://127.0.0.1:")
        # A raw socket: pyserial's socket:// open() drains bytes that already arrived.
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5) as console:
            assert (
                console.makefile("rb").readline() == b"HIL BOOT fw=fake proto=2 board=fake build=0123456789abcdef\r\n"
            )
        facts = backend.facts()
    finally:
        backend.stop()
    recorded = _recorded(fake_renode)
    argv = recorded[0].split()
    assert argv[1:4] == ["--disable-xwt", "--plain", "--port"]
    assert "--console" not in argv  # --console would put the monitor on stdin instead of the port
    # Renode deletes <temp dir>/renode-* folders of other processes: it gets a temp dir of its own.
    assert recorded[1] == f"tmpdir {backend.artifacts_dir / 'renode-tmp'}"
    assert recorded[2] == "negotiation " + OUR_1_14_ANSWER.hex()
    script = backend.artifacts_dir / "renode-renode-fake.resc"
    # The script's commands in steps: the platform and the firmware alone (each timed as its phase), the
    # rest in runs from files of their own; then the time source, then start.
    end = recorded.index("cmd emulation GetTimeSourceInfo")
    assert recorded[end + 1] == "cmd start"
    sent = []
    for line in recorded[3:end]:
        step = line.removeprefix("cmd ")
        if step.startswith("include @") and "renode-renode-fake-" in step:
            sent += Path(step.removeprefix("include @").replace("\\ ", " ")).read_text().splitlines()
        else:
            sent.append(step)
    assert sent == [line for line in script.read_text().splitlines() if line and not line.startswith(":")]
    assert "cmd machine LoadPlatformDescription @platforms/cpus/nrf52840.repl" in recorded[3:end]
    assert "cmd sysbus LoadELF $bin" in recorded[3:end]
    assert len(recorded[3:end]) <= 6  # monitor round trips for the whole script
    assert recorded[-1] == "cmd quit"
    assert "connector Connect sysbus.uart0 hil_console" in script.read_text()
    assert facts["renode"] == "1.14.0"
    assert facts["renode_found_by"] == "$RENODE"
    assert facts["renode_script"] == str(script)
    assert "Monitor available in telnet mode" in (backend.artifacts_dir / "renode.log").read_text()
    assert "[sent] start" in (backend.artifacts_dir / "renode-monitor.log").read_text()
    assert backend.exit_reason() is None  # stopped and forgotten
    backend.stop()  # twice is fine


@pytest.mark.usefixtures("fake_renode")
def test_backend_measures_instructions_and_virtual_time(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    try:
        backend.start()
        assert backend.counters() == rb.EmulatorCounters(1000 + 12345, 0.0025)
        result, cost = backend.cost_of(lambda: "inferred")
    finally:
        backend.stop()
    assert result == "inferred"
    assert (cost.instructions, cost.virtual_time_s) == (12345, pytest.approx(0.0025))
    assert cost.as_dict()["instructions"] == 12345


@pytest.mark.parametrize("python", [True, False], ids=["monitor-python", "two-commands"])
def test_counters_take_one_round_trip_where_the_monitor_has_python(
    tmp_path: Path, fake_renode: Path, monkeypatch: pytest.MonkeyPatch, python: bool
) -> None:
    if not python:
        monkeypatch.setenv("FAKE_RENODE_NO_PYTHON", "1")
    backend = _backend(tmp_path)
    try:
        backend.start()
        first, second = backend.counters(), backend.counters()
    finally:
        backend.stop()
    assert (second.instructions - first.instructions, second.virtual_time_s - first.virtual_time_s) == (
        12345,
        pytest.approx(0.0025),
    )
    commands = [line[4:] for line in _recorded(fake_renode) if line.startswith("cmd ")]
    reads = commands[commands.index("start") + 1 : commands.index("quit")]
    if python:
        assert reads == [rb.counters_python("sysbus.cpu")] * 2
    else:  # asked once, then the two plain commands
        assert reads == [rb.counters_python("sysbus.cpu"), *["sysbus.cpu ExecutedInstructions", "currentTime"] * 2]


def test_monitor_numbers_parse() -> None:
    assert rb.parse_counters("1911720 00:00:00.235300\n") == rb.EmulatorCounters(1911720, pytest.approx(0.2353))
    assert rb.monitor.parse_quantum("State: Idle\nQuantum: 00:00:00.000100\n") == "0.000100"
    assert rb.monitor.parse_quantum("no quantum here") == "0.000100"
    with pytest.raises(ConfigError, match=r"expected `<instructions> <HH:MM:SS\.ffffff>`"):
        rb.parse_counters("Traceback: name 'x' is not defined")


def test_backend_saves_snapshots(tmp_path: Path, fake_renode: Path) -> None:
    backend = _backend(tmp_path)
    try:
        backend.start()
        saved = backend.save_snapshot(tmp_path / "snap shots" / "failed.save")
    finally:
        backend.stop()
    assert saved.read_text() == "snapshot"
    assert f"cmd Save {resd.monitor_path(saved)}" in _recorded(fake_renode)


def _read_feed_file(path: Path) -> str:
    return path.read_text()


def _read_resd_samples(path: Path) -> list[list[int]]:
    (block,) = resd.read_resd(path)
    return block.samples.tolist()


@pytest.mark.parametrize(
    ("sensor", "read", "fed_content", "command"),
    [
        # a samples file, one sample per register read, in the ADXL345's 4 mg/LSB
        ("adxl345", _read_feed_file, "0 0 1024\n512 0 1024\n", "FeedSample {path}"),
        # RESD in µg, shifted so its first sample is the fake's current virtual time (2.5 ms)
        (
            "lsm6dso",
            _read_resd_samples,
            [[0, 0, 1_000_000], [500_000, 0, 1_000_000]],
            "FeedAccelerationSamplesFromRESD {path} 0 0 -2500000",
        ),
    ],
)
def test_backend_plays_a_stimulus_into_the_accelerometer(
    tmp_path: Path,
    fake_renode: Path,
    sensor: str,
    read: Callable[[Path], object],
    fed_content: object,
    command: str,
) -> None:
    stimulus = tmp_path / "wave.csv"
    stimulus.write_text("t_s,accel_x_g,accel_y_g,accel_z_g\n0,0,0,1\n0.02,0.5,0,1\n")
    backend = _backend(tmp_path, extra=f'accelerometer = "sysbus.i2c1.{sensor}"')
    try:
        backend.start()
        playback = backend.play_into_sensor(load_stimulus(stimulus))
        played = playback.played()  # the fake's virtual time stands still
    finally:
        backend.stop()
    assert read(playback.path) == fed_content
    assert f"cmd sysbus.i2c1.{sensor} " + command.format(path=resd.monitor_path(playback.path)) in _recorded(
        fake_renode
    )
    assert not played


def test_recording_runs_to_its_end_at_once_in_virtual_time(tmp_path: Path, fake_renode: Path) -> None:
    stimulus = tmp_path / "wave.csv"
    stimulus.write_text("t_s,accel_x_g,accel_y_g,accel_z_g\n0,0,0,1\n0.02,0.5,0,1\n")
    backend = _backend(tmp_path, extra='accelerometer = "sysbus.i2c1.adxl345"')
    try:
        backend.start()
        playback = backend.play_into_sensor(load_stimulus(stimulus))  # fed at 2.5 ms of virtual time
        assert playback.run_to_end(timeout_s=10)
        assert playback.played()
    finally:
        backend.stop()
    commands = [line[4:] for line in _recorded(fake_renode) if line.startswith("cmd ")]
    first = commands.index("pause")
    run_for = commands[first + 4]
    assert commands[first : first + 8] == [
        "pause",  # RunFor runs a paused emulation
        rb.counters_python("sysbus.cpu"),  # 5 ms: what is left of the recording is counted from here
        "emulation SetGlobalAdvanceImmediately true",
        'emulation SetGlobalQuantum "0.010000"',  # target option fast_forward_quantum_s
        run_for,
        'emulation SetGlobalQuantum "0.000100"',  # back to what the script left
        "emulation SetGlobalAdvanceImmediately false",
        "start",
    ]
    recording = load_stimulus(stimulus)
    until_s = 0.0025 + recording.duration_s * 1.05 + 1 / recording.sample_rate_hz + 0.5
    assert run_for == f'emulation RunFor "{until_s - 0.005:.6f}"'


def test_backend_without_an_accelerometer_cannot_play_into_one(tmp_path: Path, fake_renode: Path) -> None:
    del fake_renode
    stimulus = tmp_path / "still.csv"
    stimulus.write_text("t_s,accel_x_g,accel_y_g,accel_z_g\n0,0,0,1\n0.02,0,0,1\n")
    for folder in ("plain", "said"):
        (tmp_path / folder).mkdir()
    plain = _backend(tmp_path / "plain")
    said_why = _backend(tmp_path / "said", extra='sensor_unavailable = "the bench has no breakout"')
    for backend, reason in ((plain, "set accelerometer"), (said_why, "the bench has no breakout")):
        try:
            backend.start()
            with pytest.raises(SensorUnavailable, match=f"no emulated accelerometer: {reason}"):
                backend.play_into_sensor(load_stimulus(stimulus))
        finally:
            backend.stop()


def test_script_error_fails_start_with_renodes_words_and_the_log(tmp_path: Path, fake_renode: Path) -> None:
    backend = _backend(tmp_path, platform="/nonexistent/x.repl")
    with pytest.raises(ConfigError) as err:
        backend.start()
    message = str(err.value)
    assert "Could not find file '/nonexistent/x.repl'" in message
    assert str(backend.artifacts_dir / "renode.log") in message
    assert _recorded(fake_renode)[-1] == "cmd quit", "a failed start must stop Renode"


@pytest.mark.usefixtures("fake_renode")
def test_renode_exiting_at_start_reports_its_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_RENODE_EXIT", "3")
    with pytest.raises(DeviceLost, match=r"Renode \(pid \d+\) exited with code 3 before its monitor opened"):
        _backend(tmp_path).start()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process groups from /proc (Linux)")
def test_stop_kills_a_renode_that_ignores_quit_and_sigterm(
    tmp_path: Path, fake_renode: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_RENODE_STUBBORN", "1")
    monkeypatch.setattr(renode_backend, "QUIT_TIMEOUT_S", 0.5)
    monkeypatch.setattr(renode_backend, "KILL_TIMEOUT_S", 0.5)
    backend = _backend(tmp_path)
    backend.start()
    assert backend._renode is not None
    pgid = backend._renode.pgid
    backend.stop()
    grandchild = int(next(line for line in _recorded(fake_renode) if line.startswith("grandchild")).split()[1])
    assert _wait_gone(pgid, 5) == []
    assert grandchild not in _live_members(pgid), "mono-like children of the launcher must die too"


def test_robot_server_is_started_on_request(tmp_path: Path, fake_renode: Path) -> None:
    backend = _backend(tmp_path, extra="robot_server = true")
    try:
        backend.start()
        url = backend.robot_server_url
        facts = backend.facts()
    finally:
        backend.stop()
    argv = _recorded(fake_renode)[0].split()
    port = argv[argv.index("--robot-server-port") + 1]
    assert url == f"http://127.0.0.1:{port}/"
    assert facts["renode_robot_server"] == url


def test_robot_server_port_can_be_fixed(tmp_path: Path, fake_renode: Path) -> None:
    port = free_tcp_port()
    backend = _backend(tmp_path, extra=f"robot_server_port = {port}")
    try:
        backend.start()
        assert backend.robot_server_url == f"http://127.0.0.1:{port}/"
    finally:
        backend.stop()
    assert f"--robot-server-port {port}" in _recorded(fake_renode)[0]


@pytest.mark.usefixtures("fake_renode")
def test_unavailable_reasons_name_what_is_missing(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    assert rb.RenodeBackend.unavailable_reason(backend.target, backend.config) is None
    (tmp_path / "fw/zephyr.elf").unlink()
    reason = rb.RenodeBackend.unavailable_reason(backend.target, backend.config)
    assert reason is not None
    assert "firmware for renode:fake not built" in reason


def test_start_without_renode_is_backend_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENODE", str(tmp_path / "nope"))
    with pytest.raises(BackendUnavailable, match="renode not found"):
        _backend(tmp_path).start()


def test_machine_reset_between_tests_is_renodes_machine_reset(tmp_path: Path, fake_renode: Path) -> None:
    backend = _backend(tmp_path)
    try:
        backend.start()
        reset = backend.machine_reset()
        assert reset is not None
        reset()
    finally:
        backend.stop()
    assert "cmd machine Reset" in _recorded(fake_renode)


def test_machine_reset_between_tests_can_be_turned_off(tmp_path: Path) -> None:
    assert _backend(tmp_path, extra="reset_between_tests = false").machine_reset() is None
