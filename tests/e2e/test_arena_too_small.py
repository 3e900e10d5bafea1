"""An arena too small for a model is a clear error naming the model and the bytes it needs, never a segfault.

TFLM's Python runtime crashes (SIGSEGV) for some arenas just below the smallest that fits:
for sine, 2048 bytes crashes and 2192 fits.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SINE_NEEDS = "TFLM needs 2192 bytes"


@pytest.fixture
def small_arena_zoo(tmp_path: Path) -> Path:
    zoo = tmp_path / "zoo"
    shutil.copytree(ROOT / "models" / "sine", zoo / "sine")
    manifest = zoo / "sine" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["arena_bytes"] = 2048  # a size at which TFLM's runtime segfaults instead of failing
    manifest.write_text(json.dumps(data, indent=2))
    return zoo


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
                          env=os.environ | (env or {}))  # fmt: skip


def test_models_verify_names_the_model_and_the_bytes_it_needs(small_arena_zoo: Path) -> None:
    done = _run(
        sys.executable, "-m", "hil.cli", "models", "verify", "sine", env={"HIL_MODELS_DIR": str(small_arena_zoo)}
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "sine: an arena of 2048 bytes is too small" in done.stdout
    assert SINE_NEEDS in done.stdout


def test_twin_refuses_to_start_with_the_same_message(small_arena_zoo: Path) -> None:
    done = _run(sys.executable, "-m", "hil.twin", "--models", str(small_arena_zoo), "--model", "sine")
    assert done.returncode == 2
    assert f"HIL-TWIN ERROR sine: an arena of 2048 bytes is too small: {SINE_NEEDS}" in done.stdout
