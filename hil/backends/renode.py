"""The Renode backend: Zephyr firmware in the Renode emulator, one Renode process per device.

``start()`` finds Renode (``$RENODE``, ``PATH``, or an install made by ``renode-run``), runs it
headless with its monitor on a 127.0.0.1 port, writes a ``.resc`` script for the target into the
artifacts folder and ``include``\\ s it through the monitor, starts the emulation, and hands back
``socket://127.0.0.1:<port>``: the console UART bridged to a server socket terminal. Restarting
the device means a new Renode process; stopping asks the monitor to ``quit`` and then signals
Renode's whole process group. Renode cannot outlive the harness: it gets SIGKILL when the
harness dies (Linux ``PR_SET_PDEATHSIG``) and a small watchdog process kills its process group
(which holds ``mono`` when ``renode`` is a launcher script) once the harness is gone.

Measurements come from the monitor: :meth:`RenodeBackend.counters` reads the CPU's executed
instructions and the virtual time, :meth:`RenodeBackend.cost_of` measures one action (e.g. an
inference) with them. :meth:`RenodeBackend.save_snapshot` saves the emulation (``Save``);
:meth:`RenodeBackend.play_into_sensor` feeds a stimulus recording to the emulated sensor.

Renode facts used here were read in Renode 1.14.0's sources: command-line options in
renode-infrastructure ``src/UI/Options.cs`` and ``CommandLineInterface.cs``; the monitor's
telnet handshake in ``src/Emulator/Main/Utilities/SocketServerProvider.cs``; prompts and error
texts in ``ShellProvider.cs``, ``Monitor.cs``, ``MonitorCommands.cs`` and AntShell's
``CommandInteraction.cs``; terminals in ``Backends/Terminals/ServerSocketTerminal.cs``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, TypeVar

from hil import resd
from hil.backends import Backend, EmulatorCost, SensorPlayback, firmware_image, free_tcp_port, missing_firmware
from hil.backends._process import ChildProcess, end_process
from hil.config import HilConfig, Target, truthy
from hil.errors import BackendUnavailable, ConfigError, DeviceLost, DeviceTimeout, HilError, SensorUnavailable
from hil.options import RenodeOptions
from hil.phases import COST, COUNTERS, FIND, MONITOR, RUN, SCRIPT, SPAWN, PhaseLog
from hil.stimuli import Stimulus
from hil.tools import RENODE_MIN_VERSION

log = logging.getLogger(__name__)
T = TypeVar("T")

RENODE_EXECUTABLE = "renode"
VERSION_TIMEOUT_S = 30.0  # `renode --version` starts the whole runtime (mono or .NET)
MONITOR_COMMAND_TIMEOUT_S = 30.0
MONITOR_SCRIPT_TIMEOUT_S = 120.0  # platform loading; repls that ApplySVD from the net may wait on it
SNAPSHOT_TIMEOUT_S = 120.0
CONNECT_RETRY_S = 0.1
QUIT_TIMEOUT_S = 10.0
KILL_TIMEOUT_S = 5.0
CONSOLE_TERMINAL = "hil_console"
INSTALL_HINT = (
    "install Renode >= {min} (a .deb or portable .tar.gz from https://github.com/renode/renode/releases, "
    "or `pip install renode-run && renode-run download`), then set $RENODE to it or put renode on PATH"
)


def _min_version_text() -> str:
    return ".".join(str(n) for n in RENODE_MIN_VERSION)


# --- finding Renode ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenodeInstallation:
    """Where Renode is, how it was found, its version, and why it cannot be used (if so)."""

    path: Path | None
    version: str | None = None
    found_by: str = ""
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.path is not None and self.problem is None

    @property
    def version_tuple(self) -> tuple[int, int, int] | None:
        return parse_version(self.version or "")

    def why_not(self) -> str:
        hint = INSTALL_HINT.format(min=_min_version_text())
        if self.path is None:
            detail = f" ({self.problem})" if self.problem else ""
            return f"renode not found{detail}: {hint}"
        return f"Renode at {self.path} (found via {self.found_by}) is unusable: {self.problem}"


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``(1, 14, 0)`` from ``Renode, version 1.14.0.25149 (81da46c1-202308081346)``."""
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def renode_run_installs(home: Path) -> list[tuple[Path, str]]:
    """Renode executables installed by ``renode-run download``, newest choice first.

    renode-run keeps its state in ``~/.config/renode``: ``renode-run.json`` (``default``: variant →
    folder, ``installations``: folder → version) since 2024, ``renode-run.path`` (one folder)
    before; downloads go to ``renode-run.download/``.
    """
    base = home / ".config" / "renode"
    folders: list[tuple[Path, str]] = []
    config = base / "renode-run.json"
    with contextlib.suppress(OSError, ValueError, AttributeError):
        data = json.loads(config.read_text())
        folders += [(Path(p), str(config)) for p in (data.get("default") or {}).values()]
        folders += [(Path(p), str(config)) for p in (data.get("installations") or {})]
    legacy = base / "renode-run.path"
    with contextlib.suppress(OSError):
        folders.append((Path(legacy.read_text().strip()), str(legacy)))
    download = base / "renode-run.download"
    if download.is_dir():
        found = sorted(download.glob(f"**/{RENODE_EXECUTABLE}"), key=lambda p: p.stat().st_mtime, reverse=True)
        folders += [(p.parent, str(download)) for p in found]
    seen: set[Path] = set()
    result = []
    for folder, where in folders:
        exe = folder / RENODE_EXECUTABLE
        if exe not in seen and _is_executable(exe):
            seen.add(exe)
            result.append((exe, where))
    return result


def renode_version(path: Path) -> str | None:
    """The version ``renode --version`` prints, e.g. ``1.14.0``; None if it printed none."""
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    numbers = parse_version(out.stdout + out.stderr)
    return ".".join(str(n) for n in numbers) if numbers else None


def _checked(path: Path, found_by: str) -> RenodeInstallation:
    version = renode_version(path)
    if version is None:
        return RenodeInstallation(path, None, found_by, f"`{path} --version` printed no version")
    if (parse_version(version) or (0, 0, 0)) < RENODE_MIN_VERSION:
        hint = INSTALL_HINT.format(min=_min_version_text())
        return RenodeInstallation(
            path, version, found_by, f"version {version} is older than {_min_version_text()}: {hint}"
        )
    return RenodeInstallation(path, version, found_by)


def find_renode(environ: Mapping[str, str] | None = None, home: Path | None = None) -> RenodeInstallation:
    """Renode from ``$RENODE`` (executable or folder), else ``PATH``, else renode-run's install."""
    env = os.environ if environ is None else environ
    if value := env.get("RENODE"):
        path = Path(value)
        if path.is_dir():
            path = path / RENODE_EXECUTABLE
        if not _is_executable(path):
            return RenodeInstallation(None, None, "$RENODE", f"$RENODE={value} is not an executable or its folder")
        return _checked(path, "$RENODE")
    if found := shutil.which(RENODE_EXECUTABLE, path=env.get("PATH", os.defpath)):
        return _checked(Path(found), "PATH")
    installs = renode_run_installs(home or Path(env.get("HOME") or Path.home()))
    if installs:
        exe, where = installs[0]
        return _checked(exe, f"renode-run ({where})")
    return RenodeInstallation(None, None, "", "not in $RENODE, PATH or renode-run's ~/.config/renode")


# --- sensors -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SensorModel:
    """A Renode accelerometer model: its repl type, usual I2C address, set-up and how it is fed."""

    key: str
    repl_type: str
    address: int
    setup: tuple[str, ...] = ()  # monitor commands; {path} is the peripheral's path
    feed: str = "file"  # "file": a samples file through a Feed command; "resd": a RESD file


SENSOR_MODELS: Mapping[str, SensorModel] = MappingProxyType(
    {
        # ADXL345.cs: a FIFO of fed samples; FIFO_STATUS reports min(queued, MaxFifoDepth) entries, and
        # Zephyr's driver reads them all per fetch. Depth 1 makes one fetch take exactly one sample.
        "adxl345": SensorModel("adxl345", "Sensors.ADXL345", 0x1D, ("{path} MaxFifoDepth 1",)),
        "lsm9ds1": SensorModel("lsm9ds1", "Sensors.LSM9DS1_IMU", 0x6B),
        "lsm6dso": SensorModel("lsm6dso", "Sensors.LSM6DSO_IMU", 0x6A, feed="resd"),
    }
)


@dataclass(frozen=True, slots=True)
class BusDefinition:
    """A bus some stock platform lacks in older Renode versions, added from a repl line."""

    repl: str
    missing_before: tuple[int, int, int]  # the first Renode version whose stock platform has it
    model: str | None = None  # our own peripheral model (hil/backends/renode_models), compiled by Renode


RENODE_MODELS = Path(__file__).with_name("renode_models")

_STM32F4_I2C1 = BusDefinition(
    # Renode 1.14's stm32f4.repl has no I2C; 1.15 added i2c1 (as STM32F1_I2C). Renode 1.14's own
    # STM32F4_I2C cannot carry Zephyr's sensor reads (docs/renode.md): our polled-transfer model can.
    "i2c1: I2C.Hil_STM32F4_I2C @ sysbus 0x40005400",
    (1, 15, 0),
    "Hil_STM32F4_I2C.cs",
)
KNOWN_BUSES: Mapping[tuple[str, str], BusDefinition] = MappingProxyType(
    {
        (platform, "i2c1"): _STM32F4_I2C1
        for platform in (
            "platforms/cpus/stm32f4.repl",
            "platforms/boards/stm32f4_discovery.repl",
            "platforms/boards/stm32f4_discovery-kit.repl",
        )
    }
)


# No stock Renode platform (1.14 to 1.16) has a DWT, so CYCCNT reads 0. Renode's Miscellaneous.DWT
# counts virtual time at the given frequency, but only as finely as Renode advances virtual time,
# so short intervals can read 0 cycles; SysTick-based kernel cycles (what our firmware falls back to
# when CYCCNT does not move) are finer. Hence no DWT unless a target asks for one.
DWT_ADDRESS = 0xE0001000


def options(target: Target) -> RenodeOptions:
    """``target``'s Renode options (typed and checked when the configuration loaded)."""
    return target.options_as(RenodeOptions)


def dwt_frequency_hz(target: Target) -> int:
    """The DWT frequency to add for ``target`` (option ``dwt_frequency_hz``); 0: no DWT."""
    return options(target).dwt_frequency_hz


@dataclass(frozen=True, slots=True)
class Accelerometer:
    """The target's accelerometer: ``sysbus.<bus>.<name>``, its model and I2C address."""

    path: str
    bus: str
    name: str
    model: SensorModel
    address: int


def accelerometer(target: Target) -> Accelerometer | None:
    """The target's ``accelerometer`` option resolved to a sensor model; None if it has none."""
    opts = options(target)
    path = opts.accelerometer
    if not path:
        return None
    parts = path.split(".")  # sysbus.<bus>.<name>, checked when the configuration loaded
    name = parts[-1]
    key = opts.accelerometer_model or next((k for k in SENSOR_MODELS if name.startswith(k)), "")
    if key.lower() not in SENSOR_MODELS:
        raise ConfigError(
            f"target {target.name}: cannot tell the sensor model of {path!r}; set accelerometer_model "
            f"to one of {', '.join(SENSOR_MODELS)}"
        )
    model = SENSOR_MODELS[key.lower()]
    address = model.address if opts.accelerometer_address is None else opts.accelerometer_address
    return Accelerometer(path, ".".join(parts[1:-1]), name, model, address)


# --- the script ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenodeScript:
    """The monitor commands that build one target's machine; ``text`` is them as a ``.resc``."""

    machine: str
    commands: tuple[str, ...]
    text: str


def _platform_token(target: Target, config: HilConfig) -> str:
    platform = options(target).platform
    local = (config.root / platform).resolve()
    # A path next to the user's hil.toml wins; otherwise Renode resolves it (e.g. its platforms/ folder).
    return resd.monitor_path(local) if local.is_file() else "@" + platform.replace(" ", "\\ ")


def build_script(
    target: Target,
    config: HilConfig,
    *,
    firmware: Path,
    console_port: int,
    renode_version: tuple[int, int, int] = RENODE_MIN_VERSION,
) -> RenodeScript:
    """The ``.resc`` for ``target``: platform, missing sensor (and bus), console bridge, firmware.

    Target options used: ``platform``, ``console``, ``accelerometer`` (+ ``accelerometer_model``,
    ``accelerometer_address``, ``accelerometer_bus_repl``), ``dwt_frequency_hz``, ``cpu``,
    ``performance_mips``, ``renode_commands`` (extra monitor commands run after the sensors are added)
    and ``reset_commands`` (run after each machine reset, in the script's ``reset`` macro).
    """
    opts = options(target)
    machine = target.board_id
    commands = [
        "using sysbus",
        f"$bin?={resd.monitor_path(firmware)}",
        f'mach create "{machine}"',
        f"machine LoadPlatformDescription {_platform_token(target, config)}",
    ]
    if sensor := accelerometer(target):
        bus_repl = opts.accelerometer_bus_repl
        known = KNOWN_BUSES.get((opts.platform, sensor.bus))
        if not bus_repl and known and renode_version < known.missing_before:
            bus_repl = known.repl
            if known.model:
                commands.append(f"include {resd.monitor_path(RENODE_MODELS / known.model)}")
        if bus_repl:
            commands.append(f'machine LoadPlatformDescriptionFromString "{bus_repl}"')
        commands.append(
            f'machine LoadPlatformDescriptionFromString "{sensor.name}: {sensor.model.repl_type} '
            f'@ {sensor.bus} 0x{sensor.address:x}"'
        )
        commands += [step.format(path=sensor.path) for step in sensor.model.setup]
    if dwt_hz := dwt_frequency_hz(target):
        commands.append(
            f'machine LoadPlatformDescriptionFromString "dwt: Miscellaneous.DWT @ sysbus 0x{DWT_ADDRESS:X} '
            f'{{ frequency: {dwt_hz} }}"'
        )
    if opts.performance_mips:
        commands.append(f"{opts.cpu} PerformanceInMips {int(opts.performance_mips)}")
    commands += opts.renode_commands
    # Run after every machine reset (Renode resets peripherals to their repl values), e.g. a clock rate.
    reset_commands = ["sysbus LoadELF $bin", *opts.reset_commands]
    commands += [
        f'emulation CreateServerSocketTerminal {console_port} "{CONSOLE_TERMINAL}" false',
        f"connector Connect {opts.console} {CONSOLE_TERMINAL}",
        "macro reset\n" + '"""\n' + "".join(f"    {c}\n" for c in reset_commands) + '"""',
        "runMacro $reset",
    ]
    header = [
        f":name: tinyml-hil {target.name}",
        f":description: generated by tinyml-hil for one run; `renode <this file>` then `start` rebuilds the machine "
        f"(console on TCP port {console_port})",
        "",
    ]
    return RenodeScript(machine, tuple(commands), "\n".join(header + commands) + "\n")


# --- the monitor -------------------------------------------------------------------------------------

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
OPT_BINARY, OPT_ECHO, OPT_SGA = 0, 1, 3
_WE_WILL = {OPT_BINARY}  # options we agree to do when asked (DO x -> WILL x)
_THEY_MAY = {OPT_BINARY, OPT_ECHO, OPT_SGA}  # options we let the server do (WILL x -> DO x)
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_78]")
_PROMPT = re.compile(r"\(([\w.:-]{1,80})\) $")
# Monitor.cs, MonitorCommands.cs, IncludeFileCommand.cs, MachCommand.cs (WriteError texts of Renode 1.14).
_ERROR_STARTS = (
    "There was an error executing command",
    "No such command or device",
    "Could not tokenize here",
    "Bad parameters for command",
    "Could not find file",
    "No such file",
    "Errors during compilation or loading",
    "Invalid platform type",
    "No machine selected",
    "Select active machine",
    "Wrong machine number",
    "Could not find emulation element",
    "Peripheral not found",
)
# Offline, repls whose init runs `ApplySVD @https://...` print this and carry on (the SVD only names registers):
# logged at info level, not raised.
_WARNING_STARTS = ("Failed to download",)


def _telnet_reply(command: int, option: int) -> bytes:
    """Our answer to one negotiation: accept what we support, refuse the rest, ignore refusals."""
    if command == DO:
        return bytes([IAC, WILL if option in _WE_WILL else WONT, option])
    if command == WILL:
        return bytes([IAC, DO if option in _THEY_MAY else DONT, option])
    return b""  # DONT / WONT need no answer for options we never enabled


class MonitorClient:
    """Renode's monitor over its telnet port: one command at a time, its output up to the next prompt.

    Renode 1.14 sends four negotiations on connect (DO BINARY, WILL ECHO, WILL SUPPRESS-GO-AHEAD,
    WONT LINEMODE), then reads and discards exactly 9 bytes before it listens to commands: bytes sent
    before our 9 answer bytes would be lost. Later versions also send DO NAWS and parse answers. We
    answer every negotiation as it arrives and send nothing else until the first prompt.
    """

    def __init__(
        self, sock: socket.socket, *, name: str, transcript: IO[str] | None = None, phases: PhaseLog | None = None
    ) -> None:
        self._sock = sock
        self._phases = phases or PhaseLog(None)
        self._name = name
        self._raw = bytearray()  # received, not yet through the telnet filter
        self._text = bytearray()  # telnet-filtered bytes of the current exchange
        self._transcript = transcript
        self._replied: set[tuple[int, int]] = set()
        self._prompts = {"monitor"}
        self.banner = ""
        self.prompt = ""

    def expect_machine(self, name: str) -> None:
        """The monitor prompts ``(<machine>) `` once a machine of that name is created and selected."""
        self._prompts.add(name)

    @classmethod
    def connect(
        cls,
        port: int,
        *,
        timeout_s: float,
        name: str = "Renode",
        host: str = "127.0.0.1",
        exit_reason: Callable[[], str | None] = lambda: None,
        transcript: IO[str] | None = None,
        phases: PhaseLog | None = None,
    ) -> MonitorClient:
        """Connect (retrying while Renode starts up) and read up to the first prompt."""
        deadline = time.monotonic() + timeout_s
        while True:
            if reason := exit_reason():
                raise DeviceLost(f"{reason} before its monitor opened on port {port}")
            try:
                sock = socket.create_connection((host, port), timeout=min(1.0, timeout_s))
                break
            except OSError as err:
                if time.monotonic() >= deadline:
                    raise DeviceTimeout(
                        f"{name} monitor on {host}:{port} did not accept a connection within {timeout_s:g} s ({err}); "
                        "Renode may be slow to start here: raise boot_timeout_s of the target"
                    ) from err
                time.sleep(CONNECT_RETRY_S)
        client = cls(sock, name=name, transcript=transcript, phases=phases)
        try:
            client.banner = client._read_until_prompt(max(0.1, deadline - time.monotonic()), "the first prompt")
        except BaseException:
            client.close()
            raise
        return client

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
        if self._transcript:
            self._transcript.flush()

    def __enter__(self) -> MonitorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # telnet ------------------------------------------------------------------------------------

    def _filter_telnet(self) -> None:
        """Move bytes from ``_raw`` to ``_text``, answering negotiations; keep a partial sequence."""
        raw, i = self._raw, 0
        while i < len(raw):
            byte = raw[i]
            if byte != IAC:
                self._text.append(byte)
                i += 1
                continue
            if i + 1 >= len(raw):
                break
            command = raw[i + 1]
            if command == IAC:
                self._text.append(IAC)
                i += 2
            elif command in (DO, DONT, WILL, WONT):
                if i + 2 >= len(raw):
                    break
                option = raw[i + 2]
                if (command, option) not in self._replied:
                    self._replied.add((command, option))
                    if reply := _telnet_reply(command, option):
                        self._sock.sendall(reply)
                i += 3
            elif command == SB:
                end = raw.find(bytes([IAC, SE]), i + 2)
                if end < 0:
                    break
                i = end + 2
            else:
                i += 2  # NOP, GA and friends
        del raw[:i]

    # reading -------------------------------------------------------------------------------------

    def _clean(self) -> str:
        text = _ANSI.sub(b"", bytes(self._text)).decode("utf-8", errors="replace")
        return "".join(ch for ch in text if ch in "\n\t" or ch >= " ")

    def _prompt_at_end(self, text: str) -> re.Match[str] | None:
        """The prompt ending ``text``: ``(monitor) `` or ``(<machine>) ``, on its own line or a known name."""
        found = _PROMPT.search(text)
        if found and (found.start() == 0 or text[found.start() - 1] == "\n" or found[1] in self._prompts):
            return found
        return None

    def _read_until_prompt(self, timeout_s: float, waiting_for: str) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            text = self._clean()
            if found := self._prompt_at_end(text):
                self.prompt = found[1]
                self._text.clear()
                if self._transcript:
                    self._transcript.write(text)
                return text[: found.start()]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = text[-400:].strip() or "nothing"
                raise DeviceTimeout(
                    f"{self._name} monitor gave no prompt within {timeout_s:g} s while waiting for {waiting_for}; "
                    f"it printed: {tail}"
                )
            self._sock.settimeout(min(remaining, 0.5))
            try:
                chunk = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError as err:
                raise DeviceLost(
                    f"{self._name} monitor connection failed while waiting for {waiting_for}: {err}"
                ) from err
            if not chunk:
                raise DeviceLost(
                    f"{self._name} closed its monitor connection while we waited for {waiting_for} (did Renode exit?)"
                )
            self._raw += chunk
            self._filter_telnet()

    # commands -------------------------------------------------------------------------------------

    def execute(self, command: str, timeout_s: float = MONITOR_COMMAND_TIMEOUT_S, *, check: bool = True) -> str:
        """Run one monitor command; return its output. With ``check``, Renode's error texts raise ConfigError."""
        if "\n" in command or "\r" in command:
            raise ConfigError(f"one monitor command per line: {command!r}; put multi-line commands in a script")
        with self._phases.span(MONITOR, command=command.split(" ", 1)[0]):
            self._send(command)
            output = self._read_until_prompt(timeout_s, f"`{command}`")
        lines = output.split("\n")
        # The monitor echoes what we type. Before the echo may come what another monitor printed
        # meanwhile (Renode's robot server runs keywords in its own monitor): not ours to judge.
        echo = next((i for i, line in enumerate(lines) if line.strip() == command.strip()), -1)
        if echo > 0:
            log.debug("%s: before `%s` the monitor printed: %s", self._name, command, "\n".join(lines[:echo]))
        lines = lines[echo + 1 :]
        body = "\n".join(line.rstrip() for line in lines).strip("\n")
        problems = [line.strip() for line in lines if line.strip().startswith(_ERROR_STARTS)]
        for line in lines:
            if line.strip().startswith(_WARNING_STARTS):
                log.info("%s: %s (while running `%s`)", self._name, line.strip(), command)
        if check and problems:
            raise ConfigError(f"{self._name} refused `{command}`: {body}")
        return body

    def send_quit(self) -> None:
        """Ask Renode to exit; it closes the connection instead of prompting again."""
        with contextlib.suppress(OSError):
            self._send("quit")

    def _send(self, command: str) -> None:
        if self._transcript:
            self._transcript.write(f"[sent] {command}\n")
        try:
            self._sock.sendall(command.encode() + b"\n")  # one Enter: the shell treats \r and \n alike
        except OSError as err:
            raise DeviceLost(f"{self._name} monitor connection failed while sending `{command}`: {err}") from err


# --- measurements ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmulatorCounters:
    """The CPU's executed instructions and the emulation's virtual time at one moment."""

    instructions: int
    virtual_time_s: float


def parse_number(text: str) -> int:
    """A monitor number in any of its modes: ``0x1A2B``, ``6699`` or ``0x1A2B (6699)``."""
    found = re.search(r"-?(?:0x[0-9A-Fa-f]+|\d+)", text)
    if not found:
        raise ConfigError(f"expected a number from the Renode monitor, got {text.strip()!r}")
    return int(found[0], 0)


def parse_virtual_time(text: str) -> float:
    """Seconds from ``currentTime`` output: ``Current virtual time: 00:00:01.234567``."""
    found = re.search(r"virtual time:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", text, re.IGNORECASE)
    if not found:
        raise ConfigError(f"expected `Current virtual time: HH:MM:SS.ffffff` from Renode, got {text.strip()!r}")
    return int(found[1]) * 3600 + int(found[2]) * 60 + float(found[3])


# --- process supervision -------------------------------------------------------------------------------

# Runs as `python -c` with the harness pid and Renode's process group: when the harness is gone,
# terminate then kill the group; quit when the group is gone. It has its own session, so Ctrl-C
# in a terminal reaches the harness (which stops Renode itself) but not the watchdog.
WATCHDOG_SOURCE = """
import os, signal, sys, time
owner, group = int(sys.argv[1]), int(sys.argv[2])
def alive():
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
while alive():
    if os.getppid() != owner:
        for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 0.0)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            end = time.monotonic() + wait_s
            while time.monotonic() < end and alive():
                time.sleep(0.05)
        break
    time.sleep(0.25)
"""
PR_SET_PDEATHSIG = 1


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGKILL the child when its parent dies; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: nothing to load in the child
    except (OSError, AttributeError):
        return None

    def set_pdeathsig() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    return set_pdeathsig


class SupervisedProcess:
    """A child in its own process group that cannot outlive us: parent-death signal plus a watchdog.

    The parent-death signal follows the thread that started the child: start it from a thread
    that lives as long as the device (pytest and Robot run fixtures on the main thread).
    """

    def __init__(
        self,
        what: str,
        argv: list[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.what = what
        self.child = ChildProcess(
            what,
            argv,
            log_path,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_parent_death_signal(),
            cwd=cwd,
            env=None if env is None else dict(env),
        )
        popen = self.child.popen
        assert popen is not None
        self.pgid = popen.pid  # a new session's leader leads its process group
        self._watchdog: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG_SOURCE, str(os.getpid()), str(self.pgid)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int | None:
        return self.child.popen.pid if self.child.popen else None

    def exit_reason(self) -> str | None:
        return self.child.exit_reason()

    def wait(self, timeout_s: float) -> bool:
        """True if the child exited within ``timeout_s``."""
        popen = self.child.popen
        if popen is None:
            return True
        try:
            popen.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _signal_group(self, sig: signal.Signals) -> bool:
        try:
            os.killpg(self.pgid, sig)
            return True
        except ProcessLookupError:
            return False
        except PermissionError as err:  # the id was reused by someone else's group
            log.warning("not signalling process group %d: %s", self.pgid, err)
            return False

    def stop(self) -> None:
        """Terminate, then kill, the whole group; reap the child; stop the watchdog. Safe to call twice."""
        if self.child.popen is not None and not self.wait(0):
            self._signal_group(signal.SIGTERM)
            if not self.wait(KILL_TIMEOUT_S):
                self._signal_group(signal.SIGKILL)
        self._signal_group(signal.SIGKILL)  # what the launcher left behind (mono under a `renode` script)
        self.child.stop()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            end_process(watchdog, KILL_TIMEOUT_S)


# --- the backend ---------------------------------------------------------------------------------------


def _distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        if (port := free_tcp_port()) not in ports:
            ports.append(port)
    return ports


class RenodeBackend(Backend):
    """One Renode process per device; see the module docstring for the sequence."""

    _renode: SupervisedProcess | None = None
    _monitor: MonitorClient | None = None
    _install: RenodeInstallation | None = None
    _transcript: IO[str] | None = None
    _script_path: Path | None = None
    _monitor_port: int = 0
    _console_port: int = 0
    _robot_port: int = 0

    @classmethod
    def unavailable_reason(cls, target: Target, config: HilConfig) -> str | None:
        return cls._reason(target, config, find_renode())

    @staticmethod
    def _reason(target: Target, config: HilConfig, install: RenodeInstallation) -> str | None:
        if not install.usable:
            return install.why_not()
        if reason := missing_firmware(target, config):
            return reason
        try:
            accelerometer(target)
        except ConfigError as err:
            return str(err)
        return None

    # life cycle ------------------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.artifacts_dir / "renode.log"

    @property
    def robot_server_url(self) -> str | None:
        """Renode's Robot Framework remote server (``Library  Remote  <url>``), if started."""
        return f"http://127.0.0.1:{self._robot_port}/" if self._robot_port else None

    def _wants_robot_server(self) -> bool:
        return options(self.target).robot_server or truthy(os.environ.get("HIL_RENODE_ROBOT", ""))

    def start(self) -> str:
        with self.phases.span(FIND):
            install = find_renode()
        if reason := self._reason(self.target, self.config, install):
            raise BackendUnavailable(reason)
        assert install.path is not None
        self._install = install
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self._monitor_port, self._console_port, robot_port = _distinct_ports(3)
        script = build_script(
            self.target,
            self.config,
            firmware=firmware_image(self.target, self.config),
            console_port=self._console_port,
            renode_version=install.version_tuple or RENODE_MIN_VERSION,
        )
        self._script_path = self.artifacts_dir / f"renode-{self.target.board_id}.resc"
        self._script_path.write_text(script.text)
        argv = [str(install.path), "--disable-xwt", "--plain", "--port", str(self._monitor_port)]
        if fixed := options(self.target).robot_server_port:
            robot_port = fixed
        if fixed or self._wants_robot_server():
            self._robot_port = robot_port
            argv += ["--robot-server-port", str(robot_port)]
        with self.log_path.open("a") as banner:
            banner.write(f"\n--- tinyml-hil: {' '.join(argv)}\n")
        # Renode deletes every <temp dir>/renode-* folder not named after a running Renode's pid when it
        # starts and stops (TemporaryFilesManager.Cleanup): a private temp dir keeps it away from others' files.
        private_tmp = self.artifacts_dir / "renode-tmp"
        private_tmp.mkdir(exist_ok=True)
        env = os.environ | {"TMPDIR": str(private_tmp)}
        spawned = time.monotonic()
        self._renode = SupervisedProcess("Renode", argv, self.log_path, cwd=self.artifacts_dir, env=env)
        try:
            self._transcript = (self.artifacts_dir / "renode-monitor.log").open("a", encoding="utf-8")
            self._monitor = MonitorClient.connect(
                self._monitor_port,
                timeout_s=self.target.boot_timeout_s,
                name=f"Renode ({self.target.name})",
                exit_reason=self.exit_reason,
                transcript=self._transcript,
                phases=self.phases,
            )
            self.phases.add(SPAWN, spawned, time.monotonic())
            self._monitor.expect_machine(script.machine)
            with self.phases.span(SCRIPT):
                self.execute(f"include {resd.monitor_path(self._script_path)}", MONITOR_SCRIPT_TIMEOUT_S)
            with self.phases.span(RUN):
                self.execute("start")
        except BaseException:
            self.stop()
            raise
        return f"socket://127.0.0.1:{self._console_port}"

    def stop(self) -> None:
        monitor, self._monitor = self._monitor, None
        renode, self._renode = self._renode, None
        if monitor is not None:
            monitor.send_quit()
        if renode is not None:
            if monitor is not None and not renode.wait(QUIT_TIMEOUT_S):
                log.warning("Renode did not quit within %g s: terminating it", QUIT_TIMEOUT_S)
            renode.stop()
        if monitor is not None:
            monitor.close()
        transcript, self._transcript = self._transcript, None
        if transcript is not None:
            transcript.close()
        self._robot_port = 0

    def exit_reason(self) -> str | None:
        return self._renode.exit_reason() if self._renode else None

    def facts(self) -> dict[str, str]:
        install = self._install or find_renode()
        facts = {
            "renode": install.version or "not found",
            "renode_path": str(install.path or ""),
            "renode_found_by": install.found_by,
            "platform": options(self.target).platform,
            "firmware": str(firmware_image(self.target, self.config)),
            "renode_log": str(self.log_path),
        }
        if self._script_path:
            facts["renode_script"] = str(self._script_path)
        if self.robot_server_url:
            facts["renode_robot_server"] = self.robot_server_url
            facts["renode_machine"] = self.target.board_id  # the name build_script gives the machine
        return facts

    # the monitor ------------------------------------------------------------------------------------

    @property
    def monitor(self) -> MonitorClient:
        if self._monitor is None:
            raise HilError(f"{self.target.name}: Renode is not running: open the device first")
        return self._monitor

    def execute(self, command: str, timeout_s: float = MONITOR_COMMAND_TIMEOUT_S) -> str:
        """Run a monitor command; a refusal names the command, Renode's answer and the log to read."""
        try:
            return self.monitor.execute(command, timeout_s)
        except HilError as err:
            reason = self.exit_reason()
            where = f"; Renode's log: {self.log_path}" + (f"; script: {self._script_path}" if self._script_path else "")
            raise type(err)(f"{err}{f' ({reason})' if reason else ''}{where}") from err

    def counters(self) -> EmulatorCounters:
        """Executed instructions of the target's CPU (option ``cpu``, default sysbus.cpu) and virtual time."""
        cpu = options(self.target).cpu
        with self.phases.span(COUNTERS):
            instructions = parse_number(self.execute(f"{cpu} ExecutedInstructions"))
            return EmulatorCounters(instructions, parse_virtual_time(self.execute("currentTime")))

    def cost_of(self, action: Callable[[], T]) -> tuple[T, EmulatorCost]:
        """Run ``action`` (e.g. one ``device.infer``) and return its result with what it cost in Renode."""
        before = self.counters()
        started = time.monotonic()
        result = action()
        ended = time.monotonic()
        after = self.counters()
        cost = EmulatorCost(
            after.instructions - before.instructions, after.virtual_time_s - before.virtual_time_s, ended - started
        )
        self.phases.add(COST, started, ended, instructions=cost.instructions, virtual_s=round(cost.virtual_time_s, 6))
        return result, cost

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Pause the emulation for the block (e.g. to read state consistently), then resume it."""
        self.execute("pause")
        try:
            yield
        finally:
            self.execute("start")

    def machine_reset(self) -> Callable[[], object] | None:
        """``machine Reset`` (the script's reset macro reloads the ELF); target option
        ``reset_between_tests = false`` keeps the machine running from test to test."""
        if not options(self.target).reset_between_tests:
            return None
        return lambda: self.execute("machine Reset")

    def save_snapshot(self, path: Path) -> Path:
        """Save the whole emulation (Renode's ``Save``) to ``path``; load it with ``Load @path`` in Renode.

        The console's socket terminal is not part of a snapshot (Renode marks it transient).
        """
        path = path.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.execute(f"Save {resd.monitor_path(path)}", SNAPSHOT_TIMEOUT_S)
        return path

    def play_into_sensor(self, stimulus: Stimulus) -> SensorPlayback:
        """Queue a stimulus recording in the target's emulated accelerometer (sensor source 1 streams).

        File-fed models hand out one sample per sample read (the firmware reads at the model's
        rate in virtual time); RESD-fed models follow virtual time from now on. The playback is
        over once the virtual time of the whole recording, plus one hop, has passed.
        """
        sensor = accelerometer(self.target)
        if sensor is None:
            raise SensorUnavailable(
                f"target {self.target.name} has no emulated accelerometer: "
                + str(
                    options(self.target).sensor_unavailable
                    or "set accelerometer (e.g. sysbus.i2c1.adxl345) in hil.toml, with the firmware built for a "
                    "sensor at that address"
                )
            )
        stem = f"stimulus-{stimulus.path.stem}-{sensor.name}"
        now_s = self.counters().virtual_time_s
        if sensor.model.feed == "resd":
            path = resd.stimulus_to_resd(stimulus, self.artifacts_dir / f"{stem}.resd")
            self.execute(resd.resd_feed_command(sensor.path, path, sample_offset_ns=-round(now_s * resd.NS_PER_S)))
        else:
            path = resd.write_feed_file(stimulus, self.artifacts_dir / f"{stem}.data", sensor.model.key)
            self.execute(resd.feed_file_command(sensor.path, path, sensor.model.key))
        return _VirtualTimePlayback(path, stimulus, self, now_s)


# The last window's inference and its event frame must fit in this much virtual time after the
# recording's last sample (gesture on a 64 MHz M4: ~10 ms).
PLAYBACK_TAIL_S = 0.5
PLAYBACK_RATE_MARGIN = 1.05


class _VirtualTimePlayback(SensorPlayback):
    def __init__(self, path: Path, stimulus: Stimulus, backend: RenodeBackend, fed_at_s: float) -> None:
        super().__init__(path, stimulus)
        self._backend = backend
        # Timer ticks round the firmware's sample period up (20 ms is 656 ticks of 32768 Hz on nRF):
        # allow a few percent more than the recording.
        self._until_s = (
            fed_at_s + stimulus.duration_s * PLAYBACK_RATE_MARGIN + 1 / stimulus.sample_rate_hz + PLAYBACK_TAIL_S
        )

    def played(self) -> bool:
        return self._backend.counters().virtual_time_s >= self._until_s
