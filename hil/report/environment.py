"""What a run records about where it ran: host, tools, the suites' git commit, and each target's identity.

``environment`` in ``metrics.json`` (docs/metrics.md): the firmware image a target runs (sha256,
the build id in it, flash/RAM from ``hil build``'s memory report) and the models it serves with
their budgets for that target, so a bundle can be read without the model zoo at hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import socket
import subprocess
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from hil import protocol
from hil.backends import firmware_image
from hil.checks import bound_name
from hil.config import HilConfig, Target
from hil.errors import HilError
from hil.models import ModelZoo

TOOLS = ("tinyml-hil", "robotframework", "pytest", "tflite-micro", "numpy", "pyserial", "pydantic", "west", "labgrid")
GIT_TIMEOUT_S = 10.0


def _package(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _git(folder: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def suite_source(path: Path) -> dict[str, Any]:
    """Where a framework's suites are and the git commit they are at (``null`` outside git)."""
    folder = path if path.is_dir() else path.parent
    commit = _git(folder, "rev-parse", "HEAD")
    dirty = None if commit is None else bool(_git(folder, "status", "--porcelain", "--", str(path)))
    return {"path": str(path), "git_commit": commit, "git_dirty": dirty}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def image_identity(image: Path | None) -> dict[str, Any] | None:
    """A firmware image: path, sha256, the build id in it, and sizes from ``hil build``'s memory report."""
    if image is None:
        return None
    if image.is_dir():  # a Zephyr build directory
        image = next((image / "zephyr" / n for n in ("zephyr.elf", "zephyr.exe") if (image / "zephyr" / n).is_file()),
                     image)  # fmt: skip
    if not image.is_file():
        return None
    data = image.read_bytes()
    found: dict[str, Any] = {"path": str(image), "sha256": hashlib.sha256(data).hexdigest()}
    found["build_id"] = protocol.find_build_id(data)
    report = image.parent.parent / "hil-memory.json"  # <build>/zephyr/zephyr.elf -> <build>/hil-memory.json
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sizes = json.loads(report.read_text())
        found |= {k: v for k, v in sizes.items() if k.endswith("_bytes") and isinstance(v, int)}
    return found


def target_identity(config: HilConfig, target: Target, firmware: Path | None = None) -> dict[str, Any]:
    """What a target is: backend, board, firmware image and the models it serves with their budgets."""
    image: Path | None = firmware
    if image is None and target.backend not in ("reference", "board"):
        image = next(
            (p for n in ("zephyr.elf", "zephyr.exe") if (p := firmware_image(target, config, n)).is_file()), None
        )
    zoo = ModelZoo(config.models_dir)
    served = getattr(target.options, "models", None) or zoo.names()
    models: dict[str, Any] = {}
    for name in served:
        try:
            manifest = zoo.manifest(name)
        except HilError:
            continue  # the run reports a broken model folder itself
        budget = manifest.budget(target.name)
        models[name] = {
            "tflite": str(manifest.tflite_path),
            "sha256": manifest.sha256,
            "flash_bytes": manifest.flash_bytes,
            "arena_bytes": manifest.arena_bytes,
            "arena_used_bytes": manifest.arena_used_bytes,
            "metric": manifest.metric.name,
            bound_name(manifest.metric): manifest.metric.threshold,
            "budget": {"latency_us": budget.latency_us, "arena_bytes": budget.arena_bytes},
        }
    return {
        "backend": target.backend,
        "board_id": target.board_id,
        "description": target.description,
        "zephyr_board": target.zephyr_board,
        "image": image_identity(image),
        "models": models,
    }


def environment(
    config: HilConfig,
    targets: Sequence[Target],
    suites: Mapping[str, Path],
    command: Sequence[str],
    firmware: Path | None = None,
) -> dict[str, Any]:
    """The host, the tools, the suites' git commit and every target's identity (``environment`` in metrics.json)."""
    return {
        "command": list(command),
        "host": host_identity(),
        "tools": {name: v for name in TOOLS if (v := _package(name)) is not None},
        "suites": {framework: suite_source(path) for framework, path in suites.items()},
        "targets": {t.name: target_identity(config, t, firmware if t.backend == "board" else None) for t in targets},
    }


def host_identity() -> dict[str, Any]:
    return {
        "name": socket.gethostname(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count() or 1,
        "python": platform.python_version(),
    }
