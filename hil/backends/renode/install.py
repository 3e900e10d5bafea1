"""Finding Renode: ``$RENODE``, ``PATH``, or an install made by ``renode-run``, and its version.

``find_renode()`` asks the executable its version (``renode --version`` starts the whole runtime,
about a second with Mono): use it where the answer is shown (``hil targets``, ``hil doctor``, the
check before a run). Starting a device needs only the path (``find_renode(ask_version=False)``):
the backend reads the version from the banner of Renode's monitor instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hil.tools import Tool

RENODE_EXECUTABLE = "renode"
RENODE_MIN_VERSION = (1, 14, 0)
VERSION_TIMEOUT_S = 30.0  # `renode --version` starts the whole runtime (mono or .NET)
INSTALL_HINT = (
    "install Renode >= {min} (a .deb or portable .tar.gz from https://github.com/renode/renode/releases, "
    "or `pip install renode-run && renode-run download`), then set $RENODE to it or put renode on PATH"
)


def min_version_text() -> str:
    return ".".join(str(n) for n in RENODE_MIN_VERSION)


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
        hint = INSTALL_HINT.format(min=min_version_text())
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


def with_version(install: RenodeInstallation, version: str | None, asked: str) -> RenodeInstallation:
    """``install`` with its version (as ``asked`` gave it), unusable if there is none or it is too old."""
    if version is None:
        return RenodeInstallation(install.path, None, install.found_by, f"{asked} printed no version")
    if (parse_version(version) or (0, 0, 0)) < RENODE_MIN_VERSION:
        hint = INSTALL_HINT.format(min=min_version_text())
        problem = f"version {version} is older than {min_version_text()}: {hint}"
        return RenodeInstallation(install.path, version, install.found_by, problem)
    return RenodeInstallation(install.path, version, install.found_by)


def find_renode(
    environ: Mapping[str, str] | None = None, home: Path | None = None, *, ask_version: bool = True
) -> RenodeInstallation:
    """Renode from ``$RENODE`` (executable or folder), else ``PATH``, else renode-run's install.

    With ``ask_version`` (default) it runs ``renode --version`` and refuses versions before 1.14;
    without, the version is unknown (None) and the caller reads it elsewhere (the monitor's banner).
    """
    env = os.environ if environ is None else environ
    found = _locate(env, home)
    if found.path is None or not ask_version:
        return found
    return with_version(found, renode_version(found.path), f"`{found.path} --version`")


def _locate(env: Mapping[str, str], home: Path | None) -> RenodeInstallation:
    if value := env.get("RENODE"):
        path = Path(value)
        if path.is_dir():
            path = path / RENODE_EXECUTABLE
        if not _is_executable(path):
            return RenodeInstallation(None, None, "$RENODE", f"$RENODE={value} is not an executable or its folder")
        return RenodeInstallation(path, None, "$RENODE")
    if found := shutil.which(RENODE_EXECUTABLE, path=env.get("PATH", os.defpath)):
        return RenodeInstallation(Path(found), None, "PATH")
    installs = renode_run_installs(home or Path(env.get("HOME") or Path.home()))
    if installs:
        exe, where = installs[0]
        return RenodeInstallation(exe, None, f"renode-run ({where})")
    return RenodeInstallation(None, None, "", "not in $RENODE, PATH or renode-run's ~/.config/renode")


def renode_tool() -> Tool:
    """Renode as the backend finds it, for ``hil doctor``."""
    found = find_renode()
    if found.path is None:
        return Tool("renode", None, problem=found.why_not())
    return Tool("renode", found.path, found.version, found.problem)
