"""Resources: the lab file, which says where each board is and how it is flashed and powered.

The file is Zephyr twister's hardware map as it is (a YAML list of boards: ``id``, ``platform``,
``product``, ``runner``, ``runner_params``, ``serial``, ``baud``, ``serial_pty``, ``fixtures``,
``connected``, ``probe_id``, ``pre_script``/``post_script``/``post_flash_script``, ...), so a map
made by ``twister --generate-hardware-map`` works unchanged. Each entry may add our own keys
(:data:`OUR_KEYS`): power commands, flash method and retries, a GDB server, a labgrid place.

Every error names the file, the line and the key.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hil.config import Target
from hil.errors import ConfigError

RUNNERS = ("jlink", "pyocd", "openocd", "nrfjprog", "nrfutil", "stm32cubeprogrammer", "bossac", "gdb", "command")
RESET_METHODS = ("protocol", "runner", "power")
DEFAULT_BAUD = 115200

# Twister's keys (zephyr scripts/schemas/twister/hwmap-schema.yaml); those we do not use are
# accepted and kept so that a twister map loads unchanged.
TWISTER_KEYS = (
    "id", "platform", "product", "runner", "runner_params", "serial", "baud", "serial_pty", "fixtures",
    "connected", "available", "probe_id", "notes", "pre_script", "post_script", "post_flash_script",
    "flash_timeout", "flash_with_test", "flash_before", "script_param",
)  # fmt: skip
OUR_KEYS = (
    "flash_retries", "flash_command", "gdb_server", "gdb", "gdb_reset", "chip", "openocd_config",
    "power_on", "power_off", "power_cycle", "power_off_s", "reset", "quarantine_after", "dtr_rts",
    "boot_timeout_s", "place", "coordinator",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a file, for error messages."""

    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class LabBoard:
    """One board on the bench: where it is and how to flash, reset and power it."""

    id: str
    platforms: tuple[str, ...]
    runner: str
    product: str = ""
    connected: bool = True
    available: bool = True
    runner_params: tuple[str, ...] = ()
    serial: str | None = None
    serial_pty: str | None = None
    baud: int = DEFAULT_BAUD
    fixtures: tuple[str, ...] = ()
    probe_id: str | None = None
    notes: str = ""
    pre_script: str | None = None
    post_script: str | None = None
    post_flash_script: str | None = None
    flash_timeout_s: float = 120.0
    # our keys
    flash_retries: int = 2
    flash_command: str | None = None
    gdb_server: str | None = None
    gdb: str | None = None
    gdb_reset: str = "monitor reset"
    chip: str | None = None
    openocd_config: tuple[str, ...] = ()
    power_on: tuple[str, ...] = ()
    power_off: tuple[str, ...] = ()
    power_cycle: tuple[str, ...] = ()
    power_off_s: float = 1.0
    reset: tuple[str, ...] = RESET_METHODS
    quarantine_after: int = 3
    dtr_rts: bool = True
    boot_timeout_s: float = 30.0
    place: str | None = None
    coordinator: str | None = None
    where: Where | None = field(default=None, compare=False)

    @property
    def platform(self) -> str:
        return self.platforms[0]

    @property
    def has_power(self) -> bool:
        return bool(self.power_on and self.power_off) or bool(self.power_cycle) or self.place is not None

    def console_url(self) -> str | None:
        """The console as a pyserial URL or path (``serial_pty`` boards are served by a program)."""
        return self.serial

    def runs_on(self, platform: str) -> bool:
        """Whether this board is a ``platform`` (``nrf52840dk`` names ``nrf52840dk/nrf52840`` too)."""
        wanted = _platform_key(platform)
        return any(
            _platform_key(p) == wanted or ("/" in p and _platform_key(p.split("/")[0]) == wanted)
            for p in self.platforms
        )


def _platform_key(platform: str) -> str:
    """``nrf52840dk/nrf52840`` (Zephyr 3.7) and ``nrf52840dk_nrf52840`` (older twister maps) alike."""
    return platform.strip().lower().replace("/", "_")


# --- reading the file -------------------------------------------------------------------------


def _text(where: str, key: str, value: Any) -> str:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # twister writes probe ids that look like numbers
    raise ConfigError(f"{where}: {key}: expected a non-empty string, got {value!r}")


def _strings(where: str, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value:
        return tuple(_text(where, key, item) for item in value)
    raise ConfigError(f"{where}: {key}: expected a string or a list of strings, got {value!r}")


def _command(where: str, key: str, value: Any) -> tuple[str, ...]:
    """A command line: a list of arguments, or one string split like a shell would (never run by one)."""
    if isinstance(value, list):
        return _strings(where, key, value)
    try:
        argv = tuple(shlex.split(_text(where, key, value)))
    except ValueError as err:
        raise ConfigError(f"{where}: {key}: cannot split the command: {err}") from err
    return argv


def _number(kind: type, low: float) -> Callable[[str, str, Any], Any]:
    def convert(where: str, key: str, value: Any) -> Any:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value == value  # NaN != NaN
        if not ok or (kind is int and not float(value).is_integer()) or value < low or value == float("inf"):
            noun = "an integer" if kind is int else "a number"
            raise ConfigError(f"{where}: {key}: expected {noun} ≥ {low:g}, got {value!r}")
        return kind(value)

    return convert


def _flag(where: str, key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: {key}: expected true or false, got {value!r}")


def _choices(options: tuple[str, ...]) -> Callable[[str, str, Any], tuple[str, ...]]:
    def convert(where: str, key: str, value: Any) -> tuple[str, ...]:
        values = _strings(where, key, value)
        for item in values:
            if item not in options:
                raise ConfigError(f"{where}: {key}: {item!r} is not one of {', '.join(options)}")
        return values

    return convert


def _runner(where: str, key: str, value: Any) -> str:
    return _choices(RUNNERS)(where, key, value)[0]


def _ignored(where: str, key: str, value: Any) -> Any:  # noqa: ARG001 - uniform converter signature
    return value


# key in the file -> (field name, converter)
_FIELDS: dict[str, tuple[str, Callable[[str, str, Any], Any]]] = {
    "id": ("id", _text),
    "platform": ("platforms", _strings),
    "product": ("product", _text),
    "runner": ("runner", _runner),
    "runner_params": ("runner_params", _strings),
    "serial": ("serial", _text),
    "serial_pty": ("serial_pty", _text),
    "baud": ("baud", _number(int, 1)),
    "fixtures": ("fixtures", _strings),
    "connected": ("connected", _flag),
    "available": ("available", _flag),
    "probe_id": ("probe_id", _text),
    "notes": ("notes", _text),
    "pre_script": ("pre_script", _text),
    "post_script": ("post_script", _text),
    "post_flash_script": ("post_flash_script", _text),
    "flash_timeout": ("flash_timeout_s", _number(float, 1)),
    "flash_with_test": ("", _ignored),
    "flash_before": ("", _ignored),
    "script_param": ("", _ignored),
    "flash_retries": ("flash_retries", _number(int, 0)),
    "flash_command": ("flash_command", _text),
    "gdb_server": ("gdb_server", _text),
    "gdb": ("gdb", _text),
    "gdb_reset": ("gdb_reset", _text),
    "chip": ("chip", _text),
    "openocd_config": ("openocd_config", _strings),
    "power_on": ("power_on", _command),
    "power_off": ("power_off", _command),
    "power_cycle": ("power_cycle", _command),
    "power_off_s": ("power_off_s", _number(float, 0)),
    "reset": ("reset", _choices(RESET_METHODS)),
    "quarantine_after": ("quarantine_after", _number(int, 1)),
    "dtr_rts": ("dtr_rts", _flag),
    "boot_timeout_s": ("boot_timeout_s", _number(float, 0.1)),
    "place": ("place", _text),
    "coordinator": ("coordinator", _text),
}
assert set(_FIELDS) == set(TWISTER_KEYS) | set(OUR_KEYS)
_REQUIRED = ("id", "platform", "runner")


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _board(path: Path, node: yaml.MappingNode) -> LabBoard:
    constructor = yaml.constructor.SafeConstructor()
    values: dict[str, Any] = {}
    seen: set[str] = set()
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node.value)
        where = f"{path}:{line}"
        if key not in _FIELDS:
            raise ConfigError(f"{where}: unknown key {key!r}{_suggest(key, _FIELDS)}")
        if key in seen:
            raise ConfigError(f"{where}: {key} given twice")
        seen.add(key)
        try:
            value = constructor.construct_object(value_node, deep=True)
        except yaml.YAMLError as err:
            raise ConfigError(f"{where}: {key}: {err}") from err
        name, convert = _FIELDS[key]
        if name:
            values[name] = convert(where, key, value)
    start = Where(path, node.start_mark.line + 1)
    for key in _REQUIRED:
        if key not in seen:
            label = f"board {values['id']!r}" if "id" in values else "board entry"
            raise ConfigError(f"{start}: {label} has no {key}")
    board = LabBoard(**values, where=start)
    _check_methods(board)
    return board


def _check_methods(board: LabBoard) -> None:
    where = f"{board.where}: board {board.id!r}"
    if board.runner == "gdb" and not board.gdb_server:
        raise ConfigError(f"{where}: runner gdb needs gdb_server (host:port of the GDB server, e.g. 127.0.0.1:3333)")
    if board.runner == "command" and not board.flash_command:
        raise ConfigError(f"{where}: runner command needs flash_command (a template with {{elf}}, {{hex}}, {{bin}})")
    if bool(board.power_on) != bool(board.power_off):
        raise ConfigError(f"{where}: give both power_on and power_off, or neither")
    if not board.serial and not board.serial_pty and not board.place:
        raise ConfigError(f"{where}: no console: give serial (a port or pyserial URL), serial_pty or a labgrid place")


def load_lab_file(path: Path) -> tuple[LabBoard, ...]:
    """The boards of a lab file; a :class:`ConfigError` naming file and line for anything wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read lab file {path}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        line = err.object.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {err.start}): save it as UTF-8") from err
    try:
        root = yaml.compose(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: not valid YAML: {err.problem or err.context}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if root is None:
        return ()
    if not isinstance(root, yaml.SequenceNode):
        raise ConfigError(f"{path}:{root.start_mark.line + 1}: a lab file is a list of boards (twister hardware map)")
    boards: list[LabBoard] = []
    for item in root.value:
        if not isinstance(item, yaml.MappingNode):
            raise ConfigError(f"{path}:{item.start_mark.line + 1}: each board is a mapping of keys (id, platform, ...)")
        board = _board(path, item)
        if any(b.id == board.id for b in boards):
            raise ConfigError(f"{board.where}: board id {board.id!r} appears twice")
        boards.append(board)
    return tuple(boards)


def board_from_target(target: Target) -> LabBoard:
    """A ``[targets."board:…"]`` entry of hil.toml as a one-board lab (keeps such entries working)."""
    where = f"target {target.name}"
    options = target.options.as_written()
    serial = options.pop("serial", None)
    runner = options.pop("runner", "command" if options.get("flash_command") else "openocd")
    values: dict[str, Any] = {"id": target.name.removeprefix("board:"), "serial": serial}
    values["platforms"] = (target.zephyr_board or target.name.removeprefix("board:"),)
    values["runner"] = _runner(where, "runner", runner)
    values["boot_timeout_s"] = target.boot_timeout_s
    for key, value in options.items():
        if key in _FIELDS and key not in _REQUIRED:
            name, convert = _FIELDS[key]
            if name:
                values[name] = convert(where, key, value)
    return LabBoard(**values)
