"""Configuration: the built-in target catalog plus the user's ``hil.toml``.

A user's file (``./hil.toml``, or the path in ``$HIL_CONFIG``) may set paths and add or
override targets without code::

    models_dir = "models"
    build_dir = "build"              # firmware builds: <build_dir>/<target>/zephyr/zephyr.elf
    zephyr_base = "../zephyrproject/zephyr"   # else $ZEPHYR_BASE
    default_target = "reference"

    [targets."renode:my_board"]
    backend = "renode"
    zephyr_board = "my_board"
    platform = "/abs/path/my_board.repl"
    console = "sysbus.uart0"
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hil.errors import ConfigError

BACKEND_NAMES = ("reference", "renode", "qemu", "native", "board")
_COMMON_KEYS = {"backend", "description", "timeout_s", "boot_timeout_s", "zephyr_board"}


def truthy(value: object) -> bool:
    """1/true/yes/on (any case) as True; anything else False."""
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Target:
    """A resource record: which backend drives the device and where its pieces are."""

    name: str
    backend: str
    description: str = ""
    zephyr_board: str | None = None
    timeout_s: float = 30.0
    boot_timeout_s: float = 30.0
    options: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.backend not in BACKEND_NAMES:
            raise ConfigError(f"target {self.name!r}: unknown backend {self.backend!r}; use one of {BACKEND_NAMES}")
        if self.timeout_s <= 0 or self.boot_timeout_s <= 0:
            raise ConfigError(f"target {self.name!r}: timeouts must be positive")

    @property
    def board_id(self) -> str:
        """File-name-safe name, e.g. for per-target build directories."""
        return self.name.replace(":", "-").replace("/", "_")

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def flag(self, key: str, default: bool = False) -> bool:
        """A yes/no option: TOML booleans, or 1/true/yes/on (e.g. from an environment variable)."""
        return truthy(self.options.get(key, default))

    @classmethod
    def from_table(cls, name: str, table: dict[str, Any]) -> Target:
        if "backend" not in table:
            raise ConfigError(f"target {name!r} has no backend: set backend to one of {BACKEND_NAMES}")
        extra = {k: v for k, v in table.items() if k not in _COMMON_KEYS}
        try:
            return cls(
                name=name,
                backend=table["backend"],
                description=str(table.get("description", "")),
                zephyr_board=table.get("zephyr_board"),
                timeout_s=float(table.get("timeout_s", 30.0)),
                boot_timeout_s=float(table.get("boot_timeout_s", 30.0)),
                options=MappingProxyType(extra),
            )
        except (TypeError, ValueError) as err:
            raise ConfigError(f"target {name!r}: {err}") from err


@dataclass(frozen=True, slots=True)
class HilConfig:
    root: Path
    models_dir: Path
    firmware_dir: Path
    build_dir: Path
    results_dir: Path
    default_target: str
    targets: MappingProxyType
    zephyr_base: Path | None = None
    source: Path | None = None

    lab_file: Path | None = None
    lab_state_dir: Path = field(default_factory=lambda: _default_state_dir())
    lab_coordinator: str | None = None

    def target(self, name: str) -> Target:
        if name in self.targets:
            return self.targets[name]
        if name.startswith("board:") and len(name) > len("board:"):
            # Any board the lab file names (board:<id> or board:<platform>): the lab resolves it.
            return Target(name=name, backend="board", description="a board from the lab file")
        close = difflib.get_close_matches(name, list(self.targets), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"unknown target {name!r}: {hint}known targets are {', '.join(self.targets)}")


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tinyml-hil" / "lab"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read config {path}: {err}") from err


def load_config(path: Path | None = None, root: Path | None = None) -> HilConfig:
    """Built-in catalog, overlaid with ``path`` (or ``$HIL_CONFIG``, or ``<root>/hil.toml`` if present)."""
    root = (root or Path.cwd()).resolve()
    if path is None and os.environ.get("HIL_CONFIG"):
        path = Path(os.environ["HIL_CONFIG"])
    if path is None and (root / "hil.toml").is_file():
        path = root / "hil.toml"
    builtin = tomllib.loads(files("hil").joinpath("targets.toml").read_text())
    user = _read_toml(path) if path else {}
    if path:
        root = path.resolve().parent
    tables = {**builtin["targets"], **user.get("targets", {})}
    targets = {name: Target.from_table(name, table) for name, table in tables.items()}

    def where(key: str, default: str) -> Path:
        return (root / user.get(key, default)).resolve()

    default_target = os.environ.get("HIL_TARGET") or user.get("default_target", "reference")
    config = HilConfig(
        root=root,
        models_dir=where("models_dir", "models"),
        firmware_dir=where("firmware_dir", "firmware"),
        build_dir=where("build_dir", "build"),
        results_dir=where("results_dir", "results"),
        default_target=default_target,
        targets=MappingProxyType(targets),
        zephyr_base=where("zephyr_base", "") if user.get("zephyr_base") else None,
        source=path,
        **_lab_settings(user.get("lab", {}), root, path),
    )
    config.target(default_target)  # fail early on a typo
    return config


def _lab_settings(table: Any, root: Path, source: Path | None) -> dict[str, Any]:
    """``[lab]`` in hil.toml (file, state_dir, coordinator), with $HIL_LAB and $LG_COORDINATOR on top."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: lab must be a table: [lab] with file, state_dir, coordinator")
    unknown = set(table) - {"file", "state_dir", "coordinator"}
    if unknown:
        raise ConfigError(f"{source}: [lab] has unknown keys {sorted(unknown)}: use file, state_dir, coordinator")
    for key, value in table.items():
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{source}: [lab] {key} must be a non-empty string, got {value!r}")
    settings: dict[str, Any] = {}
    lab_file = os.environ.get("HIL_LAB") or table.get("file")
    if lab_file:
        settings["lab_file"] = (root / lab_file).resolve()
    elif (root / "lab.yaml").is_file():
        settings["lab_file"] = (root / "lab.yaml").resolve()
    if state_dir := os.environ.get("HIL_LAB_STATE") or table.get("state_dir"):
        settings["lab_state_dir"] = (root / state_dir).resolve()
    if coordinator := os.environ.get("LG_COORDINATOR") or table.get("coordinator"):
        settings["lab_coordinator"] = coordinator
    return settings
