"""Finding the external tools backends need, and asking them their versions.

Below the backends: nothing here imports them (Renode, which takes more finding, is in
``hil.backends.renode.install``).
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hil.errors import ConfigError

VERSION_TIMEOUT_S = 20.0
INSTALL_HINTS = {
    "qemu-system-arm": "install it: apt install qemu-system-arm",
    "arm-none-eabi-gcc": "install it: apt install gcc-arm-none-eabi picolibc-arm-none-eabi "
    "libstdc++-arm-none-eabi-picolibc",
    "west": "install it: pip install 'tinyml-hil[build]' (or pip install west)",
    "cmake": "install it: apt install cmake",
    "ninja": "install it: apt install ninja-build",
    "dtc": "install it: apt install device-tree-compiler",
    "gperf": "install it: apt install gperf",
    "git": "install it: apt install git",
}
# Oldest versions Zephyr 3.7 accepts (its docs' 'Install dependencies'; cmake/modules/FindDtc.cmake).
MIN_VERSIONS = {"cmake": (3, 20, 5), "dtc": (1, 4, 6)}
WEST_DIR = ".west"  # west's marker of a workspace's top folder (west.util.west_topdir)
REQUIREMENTS_BASE = "scripts/requirements-base.txt"  # what Zephyr needs to build, relative to ZEPHYR_BASE


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    path: Path | None
    version: str | None = None
    problem: str | None = None  # why it cannot be used (with path None: why it was not found)

    @property
    def usable(self) -> bool:
        return self.path is not None and self.problem is None

    def why_not(self) -> str:
        if self.path is None:
            hint = INSTALL_HINTS.get(self.name, "install it and put it on PATH")
            return self.problem or f"{self.name} not found: {hint}"
        return f"{self.name} at {self.path} is unusable: {self.problem}"


def _version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=VERSION_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"\d+\.\d+(\.\d+)?", out.stdout + out.stderr)
    return found.group(0) if found else None


def find_on_path(name: str, env_var: str | None = None) -> Path | None:
    if env_var and (value := os.environ.get(env_var)):
        path = Path(value)
        if path.is_dir():
            path = path / name
        return path if path.is_file() and os.access(path, os.X_OK) else None
    # Our own venv's bin (west, robot) counts even when the venv is not activated.
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    return Path(found) if found else None


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def simple(name: str, version_flag: str = "--version") -> Tool:
    """``name`` on PATH with its version; too old for Zephyr (``MIN_VERSIONS``) is a problem."""
    path = find_on_path(name)
    if path is None:
        return Tool(name, None)
    found = _version([str(path), version_flag])
    minimum = MIN_VERSIONS.get(name)
    if minimum and found and _version_tuple(found) < minimum:
        wanted = ".".join(map(str, minimum))
        return Tool(name, path, found, f"version {found} is older than the {wanted} Zephyr needs")
    return Tool(name, path, found)


def zephyr_build_tools() -> list[Tool]:
    """The host tools a Zephyr build runs besides west and the compiler (docs/firmware.md, 'Toolchains')."""
    return [simple("cmake"), simple("ninja"), simple("dtc"), simple("gperf"), simple("git")]


@dataclass(frozen=True, slots=True)
class ZephyrBase:
    """Where the Zephyr tree is, and how it was found."""

    path: Path | None  # None: not found
    source: str  # "zephyr_base in hil.toml", "$ZEPHYR_BASE", "west workspace /ws (.west/config)", or why not found
    from_west: bool = False  # found through a west workspace: west must be given ZEPHYR_BASE

    @property
    def found(self) -> bool:
        return self.path is not None


def _is_zephyr_tree(path: Path) -> bool:
    return (path / "VERSION").is_file() and (path / "cmake").is_dir()


def search_starts(root: Path, environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """Where to look for a west workspace: the configuration's folder and the current one.

    The current folder counts twice when it was reached through a symbolic link: as the shell
    names it (``$PWD``, e.g. ``ws/tinyml-hil`` linking to a checkout elsewhere) and as it is.
    """
    env = os.environ if environ is None else environ
    starts = [root]
    cwd = Path.cwd()
    logical = env.get("PWD")
    if logical and Path(logical).is_absolute() and Path(logical).resolve() == cwd.resolve():
        starts.append(Path(logical))
    starts.append(cwd)
    return tuple(dict.fromkeys(starts))


def west_workspace(starts: Iterable[Path]) -> Path | None:
    """The top folder of the west workspace holding any of ``starts``: the nearest with ``.west/config``."""
    for start in starts:
        for folder in (start, *start.parents):
            if (folder / WEST_DIR / "config").is_file():
                return folder
    return None


def workspace_zephyr_base(topdir: Path) -> Path:
    """``[zephyr] base`` of the workspace's ``.west/config`` (default ``zephyr``), relative to its top."""
    parser = configparser.ConfigParser(interpolation=None)
    config = topdir / WEST_DIR / "config"
    try:
        parser.read(config, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0].rstrip(".")
        raise ConfigError(f"{config}: not a west configuration file ({reason}): see `west config -l`") from err
    base = parser.get("zephyr", "base", fallback="zephyr").strip() or "zephyr"
    return topdir / base


def find_zephyr_base(
    configured: Path | None, starts: Iterable[Path] = (), environ: Mapping[str, str] | None = None
) -> ZephyrBase:
    """The Zephyr tree, in west's order: ``zephyr_base`` in hil.toml, ``$ZEPHYR_BASE``, then the west
    workspace around ``starts`` (its ``.west/config``; west itself need not run).

    A configured path or ``$ZEPHYR_BASE`` that is not a Zephyr tree is not passed over: it is reported.
    """
    env = os.environ if environ is None else environ
    named = [(configured, "zephyr_base in hil.toml")] if configured else []
    if env.get("ZEPHYR_BASE"):
        named.append((Path(env["ZEPHYR_BASE"]), "$ZEPHYR_BASE"))
    if named:
        path, source = named[0]
        if _is_zephyr_tree(path):
            return ZephyrBase(path, source)
        return ZephyrBase(None, f"{source} names {path}, which is not a Zephyr tree (no VERSION and cmake/)")
    starts = tuple(starts)
    topdir = west_workspace(starts)
    if topdir is None:
        where = ", ".join(str(s) for s in starts) or "nowhere"
        return ZephyrBase(
            None,
            f"no zephyr_base in hil.toml, no $ZEPHYR_BASE, and no west workspace (.west/config) above {where}",
        )
    base = workspace_zephyr_base(topdir)
    if not _is_zephyr_tree(base):
        return ZephyrBase(
            None,
            f"west workspace {topdir}: its zephyr base {base} is not a Zephyr tree (run `west update` there)",
        )
    return ZephyrBase(base, f"west workspace {topdir} (.west/config)", from_west=True)


@dataclass(frozen=True, slots=True)
class Requirements:
    """Zephyr's Python requirements (``scripts/requirements-base.txt``) against this Python."""

    file: Path
    checked: tuple[str, ...]  # every requirement that applies here
    missing: tuple[str, ...]  # those not installed, or at a version outside the specifier
    problems: tuple[str, ...]  # what is wrong with each missing one

    @property
    def ok(self) -> bool:
        return not self.missing

    def pip_command(self) -> str:
        return shlex.join([sys.executable, "-m", "pip", "install", *self.missing])


def _requirement_lines(path: Path, seen: set[Path]) -> list[str]:
    """The requirement lines of a pip requirements file, following ``-r`` includes."""
    seen.add(path.resolve())
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            included = path.parent / line.split(maxsplit=1)[1]
            if included.resolve() not in seen:
                lines += _requirement_lines(included, seen)
        elif not line.startswith("-"):
            lines.append(line)
    return lines


def python_requirements(base: Path) -> Requirements:
    """Which of ``<base>/scripts/requirements-base.txt`` this Python lacks (importlib.metadata, packaging)."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import InvalidRequirement, Requirement

    file = base / REQUIREMENTS_BASE
    if not file.is_file():
        raise ConfigError(f"{file} is missing: is {base} a Zephyr 3.x tree?")
    checked, missing, problems = [], [], []
    for line in _requirement_lines(file, set()):
        try:
            requirement = Requirement(line)
        except InvalidRequirement as err:
            raise ConfigError(f"{file}: cannot read requirement {line!r}: {err}") from err
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue  # e.g. windows-curses; sys_platform == "win32"
        checked.append(line)
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            missing.append(line)
            problems.append(f"{requirement.name} not installed")
            continue
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            missing.append(line)
            problems.append(f"{requirement.name} {installed} installed, {requirement.specifier} needed")
    return Requirements(file, tuple(checked), tuple(missing), tuple(problems))


def zephyr_version(base: Path) -> str:
    fields = dict(re.findall(r"^(\w+)\s*=\s*(\S*)", (base / "VERSION").read_text(), re.MULTILINE))
    return f"{fields.get('VERSION_MAJOR')}.{fields.get('VERSION_MINOR')}.{fields.get('PATCHLEVEL')}"
