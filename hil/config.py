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

The whole file is checked when it loads (:class:`HilFile`, and each target against its backend's
options model in :mod:`hil.options`): every problem is reported with the file, the line and the
key, and a misspelt key or target name gets the nearest valid one. ``$HIL_TARGET`` overrides
``default_target`` and ``$HIL_MODELS_DIR`` (what ``hil run --models-dir`` sets) ``models_dir``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import Field, ValidationError

from hil.errors import ConfigError
from hil.inputs import InputError, Loc, Problem, model_keys, problems_from, suggest
from hil.options import BACKENDS, Strict, TargetKeys, TargetOptions, Text
from hil.tomlfile import TomlFile, parse_toml, read_toml

Opts = TypeVar("Opts", bound=TargetOptions)
CATALOG = "targets.toml"


def truthy(value: object) -> bool:
    """1/true/yes/on (any case) as True; anything else False (for environment variables)."""
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Target:
    """A resource record: which backend drives the device and where its pieces are.

    ``options`` holds the backend's own keys, typed (:mod:`hil.options`); read them through
    :meth:`options_as`, e.g. ``target.options_as(RenodeOptions).platform``.
    """

    name: str
    backend: str
    description: str = ""
    zephyr_board: str | None = None
    timeout_s: float = 30.0
    boot_timeout_s: float = 30.0
    options: TargetOptions = field(default_factory=TargetOptions)

    def __post_init__(self) -> None:
        spec = BACKENDS.get(self.backend)
        if spec is None:
            raise ConfigError(
                f"target {self.name!r}: unknown backend {self.backend!r}{suggest(self.backend, BACKENDS)}: "
                f"use one of {', '.join(BACKENDS)}"
            )
        for name in ("timeout_s", "boot_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"target {self.name!r}: {name} must be a positive number of seconds, got {value!r}")
        if type(self.options) is TargetOptions and spec.options is not TargetOptions:
            try:
                object.__setattr__(self, "options", spec.options())
            except ValidationError as err:
                missing = ", ".join(str(e["loc"][-1]) for e in err.errors())
                raise ConfigError(f"target {self.name!r}: the {self.backend} backend needs {missing}") from err
        if not isinstance(self.options, spec.options):
            raise ConfigError(f"target {self.name!r}: {self.backend} targets take {spec.options.__name__}")

    @property
    def board_id(self) -> str:
        """File-name-safe name, e.g. for per-target build directories."""
        return self.name.replace(":", "-").replace("/", "_")

    def options_as(self, kind: type[Opts]) -> Opts:
        """The backend options, as the backend's own model (a :class:`ConfigError` if it is another's)."""
        if not isinstance(self.options, kind):
            raise ConfigError(f"target {self.name} is a {self.backend} target: it has no {kind.__name__}")
        return self.options


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
        raise ConfigError(f"unknown target {name!r}{suggest(name, self.targets)}: known targets are {self.known()}")

    def known(self) -> str:
        return ", ".join(self.targets)


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tinyml-hil" / "lab"


# --- the file ------------------------------------------------------------------------------------


class LabTable(Strict):
    """``[lab]``: where the lab file and the bench's state are, and a labgrid coordinator."""

    file: Text | None = None
    state_dir: Text | None = None
    coordinator: Text | None = None


class HilFile(Strict):
    """The top level of ``hil.toml``; paths are relative to the file."""

    models_dir: Text = "models"
    firmware_dir: Text = "firmware"
    build_dir: Text = "build"
    results_dir: Text = "results"
    zephyr_base: Text | None = None
    default_target: Text | None = None
    lab: LabTable = LabTable()
    targets: dict[Text, dict[str, Any]] = Field(default_factory=dict)


def _file_problems(err: ValidationError, file: TomlFile) -> list[Problem]:
    return problems_from(err, file.path, line_of=file.line_of, candidates=lambda loc: model_keys(HilFile, loc))


def target_from_table(name: str, table: dict[str, Any], file: TomlFile) -> Target:
    """A target from its table in ``file``; an :class:`InputError` lists every problem with its line."""
    loc: Loc = ("targets", name)
    backend = table.get("backend")
    if not isinstance(backend, str) or backend not in BACKENDS:
        if backend is None:
            message = f"missing key 'backend': set it to one of {', '.join(BACKENDS)}"
        else:
            hint = suggest(backend, BACKENDS) if isinstance(backend, str) else ""
            shown = repr(backend) if isinstance(backend, str) else f"{backend!r} (not a string)"
            message = f"unknown backend {shown}{hint}: use one of {', '.join(BACKENDS)}"
        where = (*loc, "backend") if backend is not None else loc
        raise InputError([Problem(file.path, file.line_of(where), where, message)])
    spec = BACKENDS[backend]
    common = {k: v for k, v in table.items() if k in TargetKeys.model_fields}
    own = {k: v for k, v in table.items() if k not in TargetKeys.model_fields}
    valid_keys = [*TargetKeys.model_fields, *spec.options.model_fields]
    hints = {name: f.description for name, f in spec.options.model_fields.items() if f.description}
    problems: list[Problem] = []
    keys = options = None
    for model, values in ((TargetKeys, common), (spec.options, own)):
        try:
            checked = model.model_validate(values)
        except ValidationError as err:
            problems += problems_from(
                err, file.path, prefix=loc, line_of=file.line_of, candidates=lambda _loc: valid_keys, hints=hints
            )
            continue
        if isinstance(checked, TargetKeys):
            keys = checked
        else:
            options = checked
    if problems or keys is None or options is None:
        raise InputError(problems)
    options._written.update(own)
    return Target(
        name=name,
        backend=backend,
        description=keys.description,
        zephyr_board=keys.zephyr_board,
        timeout_s=float(keys.timeout_s),
        boot_timeout_s=float(keys.boot_timeout_s),
        options=options,
    )


def _catalog() -> TomlFile:
    resource = files("hil").joinpath(CATALOG)
    return parse_toml(Path(str(resource)), resource.read_bytes())


def load_config(path: Path | None = None, root: Path | None = None) -> HilConfig:
    """Built-in catalog, overlaid with ``path`` (or ``$HIL_CONFIG``, or ``<root>/hil.toml`` if present)."""
    root = (root or Path.cwd()).resolve()
    if path is None and os.environ.get("HIL_CONFIG"):
        path = Path(os.environ["HIL_CONFIG"])
    if path is None and (root / "hil.toml").is_file():
        path = root / "hil.toml"
    builtin = _catalog()
    user = read_toml(path) if path else TomlFile(Path("hil.toml"), {}, {})
    if path:
        root = path.resolve().parent
    problems: list[Problem] = []
    try:
        settings = HilFile.model_validate(user.data)
    except ValidationError as err:
        problems += _file_problems(err, user)
        settings = HilFile.model_validate(_without(user.data, [p.loc for p in problems]))
    tables = {name: (table, builtin) for name, table in builtin.data.get("targets", {}).items()}
    tables |= {name: (table, user) for name, table in settings.targets.items()}
    targets: dict[str, Target] = {}
    for name, (table, file) in tables.items():
        try:
            targets[name] = target_from_table(name, table, file)
        except InputError as err:
            problems += err.problems

    def where(value: str) -> Path:
        return (root / value).resolve()

    config = HilConfig(
        root=root,
        models_dir=where(os.environ.get("HIL_MODELS_DIR") or settings.models_dir),  # hil run --models-dir
        firmware_dir=where(settings.firmware_dir),
        build_dir=where(settings.build_dir),
        results_dir=where(settings.results_dir),
        default_target=os.environ.get("HIL_TARGET") or settings.default_target or "reference",
        targets=MappingProxyType(targets),
        zephyr_base=where(settings.zephyr_base) if settings.zephyr_base else None,
        source=path,
        **_lab_settings(settings.lab, root),
    )
    if not problems:
        problems += _default_target_problems(config, user)
    if problems:
        raise InputError(sorted(problems, key=lambda p: (str(p.path), p.line or 0)))
    return config


def _without(data: dict[str, Any], bad: list[Loc]) -> dict[str, Any]:
    """``data`` less the keys (or single targets) that have problems, so that the rest can be checked."""
    drop = {loc[0] for loc in bad if loc and (loc[0] != "targets" or len(loc) == 1)}
    kept = {k: v for k, v in data.items() if k not in drop}
    if isinstance(kept.get("targets"), dict):
        bad_targets = {loc[1] for loc in bad if len(loc) > 1 and loc[0] == "targets"}
        kept["targets"] = {n: t for n, t in kept["targets"].items() if n not in bad_targets}
    return kept


def _default_target_problems(config: HilConfig, user: TomlFile) -> list[Problem]:
    """Fail early on a typo in ``default_target`` or ``$HIL_TARGET``."""
    try:
        config.target(config.default_target)
    except ConfigError as err:
        if os.environ.get("HIL_TARGET"):
            return [Problem(Path("$HIL_TARGET"), None, (), str(err))]
        loc: Loc = ("default_target",)
        return [Problem(user.path, user.line_of(loc), loc, str(err))]
    return []


def _lab_settings(table: LabTable, root: Path) -> dict[str, Any]:
    """``[lab]`` in hil.toml (file, state_dir, coordinator), with $HIL_LAB and $LG_COORDINATOR on top."""
    settings: dict[str, Any] = {}
    lab_file = os.environ.get("HIL_LAB") or table.file
    if lab_file:
        settings["lab_file"] = (root / lab_file).resolve()
    elif (root / "lab.yaml").is_file():
        settings["lab_file"] = (root / "lab.yaml").resolve()
    if state_dir := os.environ.get("HIL_LAB_STATE") or table.state_dir:
        settings["lab_state_dir"] = (root / state_dir).resolve()
    if coordinator := os.environ.get("LG_COORDINATOR") or table.coordinator:
        settings["lab_coordinator"] = coordinator
    return settings
