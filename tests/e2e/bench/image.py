"""Builds the emulated bench's test image (``image/bench_image.c``) with Debian's arm-none-eabi-gcc."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

IMAGE_SOURCES = Path(__file__).resolve().parent / "image"
BUILD_ID_KEY = b"HIL_BUILD_ID="
BUILD_ID = re.compile(r"[0-9a-f]{16}")
COMPILE_TIMEOUT_S = 60.0
CFLAGS = ["-mcpu=cortex-m3", "-mthumb", "-nostdlib", "-ffreestanding", "-O2", "-Wall", "-Wextra", "-Werror"]


def build_image(out_dir: Path, build_id: str, *, silent: bool = False) -> Path:
    """Compile the image for ``build_id`` (16 lowercase hex digits) and return its ELF; .hex and .bin lie beside it.

    ``silent`` builds the variant that prints nothing: a board that stays silent after a flash.
    Skips the calling test when arm-none-eabi-gcc is not installed.
    """
    if not BUILD_ID.fullmatch(build_id):
        raise ValueError(f"build id {build_id!r} is not 16 lowercase hex digits")
    gcc, objcopy = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-objcopy")
    if gcc is None or objcopy is None:
        pytest.skip("arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi")
    out_dir.mkdir(parents=True, exist_ok=True)
    elf = out_dir / f"bench-image-{build_id}{'-silent' if silent else ''}.elf"
    defines = [f'-DBUILD_ID="{build_id}"', *(["-DSILENT"] if silent else [])]
    linker_script, source = IMAGE_SOURCES / "bench_image.ld", IMAGE_SOURCES / "bench_image.c"
    _run([gcc, *CFLAGS, *defines, "-T", str(linker_script), "-o", str(elf), str(source)])
    _run([objcopy, "-O", "ihex", str(elf), str(elf.with_suffix(".hex"))])
    _run([objcopy, "-O", "binary", str(elf), str(elf.with_suffix(".bin"))])
    return elf


def read_build_id(image: Path) -> str | None:
    """The build id an image file (ELF or raw binary) carries, found by its ``HIL_BUILD_ID=`` marker."""
    found = re.search(re.escape(BUILD_ID_KEY) + rb"([0-9a-f]{16})\0", image.read_bytes())
    return found[1].decode() if found else None


def _run(argv: list[str]) -> None:
    try:
        subprocess.run(argv, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, check=True)
    except subprocess.CalledProcessError as err:
        raise RuntimeError(
            f"{Path(argv[0]).name} failed with exit code {err.returncode}: {err.stderr.strip()}"
        ) from err
