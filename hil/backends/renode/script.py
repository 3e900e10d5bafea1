"""The Renode script of a target: platform, the sensor (and bus) it lacks, console bridge, firmware.

:func:`build_script` turns a target's options (``RenodeOptions``) into the monitor commands that
build its machine, kept as a ``.resc`` in the artifacts folder so that ``renode <file>`` followed
by ``start`` rebuilds the same machine by hand.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from hil import resd
from hil.backends.renode.install import RENODE_MIN_VERSION
from hil.config import HilConfig, Target
from hil.errors import ConfigError
from hil.options import RenodeOptions

CONSOLE_TERMINAL = "hil_console"
CONSOLE_TERMINAL_MODEL = "HilSocketTerminal.cs"  # our batched bridge (models/), compiled by Renode
EM_ARM, PT_LOAD, SHT_NULL, SHF_ALLOC = 40, 1, 0, 0x2  # <elf.h>
# Renode's LogLevel values (renode-infrastructure src/Emulator/Main/Logging/LogLevel.cs).
LOG_LEVELS: Mapping[str, int] = MappingProxyType({"noisy": -1, "debug": 0, "info": 1, "warning": 2, "error": 3})


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
    model: str | None = None  # our own peripheral model (hil/backends/renode/models), compiled by Renode


RENODE_MODELS = Path(__file__).with_name("models")

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


@dataclass(frozen=True, slots=True)
class RenodeScript:
    """The monitor commands that build one target's machine; ``text`` is them as a ``.resc``."""

    machine: str
    commands: tuple[str, ...]
    text: str


def vector_table_address(image: Path) -> int | None:
    """Where a 32-bit little-endian Arm ELF's vector table is, as Renode guesses it after a load: the
    lowest load (physical) address of its allocated sections (``SymbolLookup.FirstNotNullSectionAddress``,
    ``CortexM.InitPCAndSP``). None for any other file (or one that cannot be read)."""
    try:
        with image.open("rb") as f:
            data = f.read(1 << 20)
            header = struct.unpack_from("<16sHHIIIIIHHHHHH", data)
            ident, machine, phoff, shoff = header[0], header[2], header[5], header[6]
            phentsize, phnum, shentsize, shnum = header[9], header[10], header[11], header[12]
            if ident[:4] != b"\x7fELF" or ident[4] != 1 or ident[5] != 1 or machine != EM_ARM:
                return None
            f.seek(phoff)
            program = [struct.unpack_from("<IIIIII", f.read(phentsize)) for _ in range(phnum)]
            f.seek(shoff)
            sections = [struct.unpack_from("<IIIIII", f.read(shentsize)) for _ in range(shnum)]
    except (OSError, struct.error):
        return None
    loads = [(vaddr, paddr, memsz) for kind, _, vaddr, paddr, _, memsz in program if kind == PT_LOAD]
    addresses = []
    for _, kind, flags, address, _, _ in sections:
        if kind != SHT_NULL and flags & SHF_ALLOC:
            # A section in a loaded segment is at its load address (initialised data: in flash).
            lma = next((address - v + p for v, p, size in loads if v <= address < v + size), address)
            addresses.append(lma)
    return min(addresses, default=None)


def _platform_token(target: Target, config: HilConfig) -> str:
    platform = options(target).platform
    local = (config.root / platform).resolve()
    # A path next to the user's hil.toml wins; otherwise Renode resolves it (e.g. its platforms/ folder).
    return resd.monitor_path(local) if local.is_file() else "@" + platform.replace(" ", "\\ ")


def _console_terminal(kind: str, port: int) -> str:
    """The monitor command that puts the console UART's other end on TCP ``port`` of 127.0.0.1."""
    if kind == "renode":  # Renode's own: a send() per byte, then its writer thread spins for 60 ms
        return f'emulation CreateServerSocketTerminal {port} "{CONSOLE_TERMINAL}" false'
    return f'emulation CreateHilSocketTerminal {port} "{CONSOLE_TERMINAL}"'


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
    ``performance_mips``, ``renode_commands`` (extra monitor commands run after the sensors are added),
    ``reset_commands`` (run after each machine reset, in the script's ``reset`` macro) and
    ``log_level`` (Renode's log level, "error" by default: the warnings about registers a platform
    does not model come thousands of times a run and cost emulation time) and ``quantum_s``
    (Renode's time quantum, 1 ms by default).

    The firmware is loaded once. For an Arm image a machine reset does not load it again: Renode
    keeps memory across ``machine Reset`` (``MappedMemory.Reset`` leaves it as it is), the firmware
    never writes its flash, and the Cortex-M core takes its stack pointer and entry from the vector
    table (``CortexM.InitPCAndSP``); RAM is set up by the firmware's own start-up, as on a board.
    The reset macro points the core at that table (``VectorTableOffset``): a reset forgets the
    loaded ELF (``SystemBus.Reset`` makes a new ``SymbolLookup``), from which Renode guessed it,
    and the guess falls back to 0, right for an nRF52840 (flash at 0), not for an STM32 (flash
    at 0x08000000). That takes 0.1-0.2 s off every reset. Other images are loaded again.
    """
    opts = options(target)
    machine = target.board_id
    # Our console bridge is compiled first: it needs no machine, and the compile is its own timed step.
    bridge = (
        [f"include {resd.monitor_path(RENODE_MODELS / CONSOLE_TERMINAL_MODEL)}"]
        if opts.console_terminal == "hil"
        else []
    )
    commands = [
        *bridge,
        "using sysbus",
        f"$bin?={resd.monitor_path(firmware)}",
        f'mach create "{machine}"',
        f"logLevel {LOG_LEVELS[opts.log_level]}",
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
    # Renode's default quantum (100 us) syncs its time source 10,000 times a virtual second, also while
    # the CPU idles waiting for the host: ~0.4 of a core here. 1 ms costs ~0.17; a request's bytes then
    # wait up to 1 ms for the next sync point, and nothing the firmware computes changes.
    commands.append(f'emulation SetGlobalQuantum "{opts.quantum_s:.6f}"')
    commands += opts.renode_commands
    commands += [
        _console_terminal(opts.console_terminal, console_port),
        f"connector Connect {opts.console} {CONSOLE_TERMINAL}",
        "sysbus LoadELF $bin",
    ]
    vectors = vector_table_address(firmware)
    restart = ["sysbus LoadELF $bin"] if vectors is None else [f"{opts.cpu} VectorTableOffset 0x{vectors:X}"]
    # Run after every machine reset (Renode resets peripherals to their repl values), e.g. a clock rate.
    macro = "macro reset\n" + '"""\n' + "".join(f"    {c}\n" for c in [*restart, *opts.reset_commands]) + '"""'
    commands += [macro, "runMacro $reset"]
    header = [
        f":name: tinyml-hil {target.name}",
        f":description: generated by tinyml-hil for one run; `renode <this file>` then `start` rebuilds the machine "
        f"(console on TCP port {console_port})",
        "",
    ]
    return RenodeScript(machine, tuple(commands), "\n".join(header + commands) + "\n")
