"""Finding the external tools backends need, and asking them their versions.

Below the backends: nothing here imports them (Renode, which takes more finding, is in
``hil.backends.renode.install``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VERSION_TIMEOUT_S = 20.0
INSTALL_HINTS = {
    "qemu-system-arm": "install it: apt install qemu-system-arm",
    "arm-none-eabi-gcc": "install it: apt install gcc-arm-none-eabi picolibc-arm-none-eabi",
    "west": "install it: pip install 'tinyml-hil[build]' (or pip install west)",
}


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


def simple(name: str, version_flag: str = "--version") -> Tool:
    path = find_on_path(name)
    if path is None:
        return Tool(name, None)
    return Tool(name, path, _version([str(path), version_flag]))


def zephyr_base(configured: Path | None) -> Path | None:
    """The Zephyr tree: the configured path, else ``$ZEPHYR_BASE``; None if neither is a Zephyr tree."""
    candidate = configured or (Path(os.environ["ZEPHYR_BASE"]) if os.environ.get("ZEPHYR_BASE") else None)
    if candidate and (candidate / "VERSION").is_file() and (candidate / "cmake").is_dir():
        return candidate
    return None


def zephyr_version(base: Path) -> str:
    fields = dict(re.findall(r"^(\w+)\s*=\s*(\S*)", (base / "VERSION").read_text(), re.MULTILINE))
    return f"{fields.get('VERSION_MAJOR')}.{fields.get('VERSION_MINOR')}.{fields.get('PATCHLEVEL')}"
