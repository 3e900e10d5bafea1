"""Glue to TFLM's own Python runtime (the ``tflite-micro`` package): load, measure, invoke."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from hil.errors import ConfigError
from hil.results import TensorSpec

# The runtime pulls in TensorFlow's C++ logging; keep its INFO banners out of our output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

Interpreter = Any  # tflite_micro's runtime.Interpreter; its module is imported lazily
ARENA_ALIGN_BYTES = 16
_ALLOCATION_TOTAL = re.compile(rb"Arena allocation total (\d+) bytes")


def _runtime() -> ModuleType:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as err:
        raise ConfigError("the TFLM Python runtime is missing: pip install --pre tflite-micro") from err
    return runtime


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[bytes]]:
    """Capture fd 2: TFLM's C++ logs there directly, past Python's sys.stderr."""
    sink: list[bytes] = []
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            yield sink
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            sink.append(tmp.read())


def _allocate(model: bytes, arena_bytes: int) -> Interpreter:
    with captured_stderr() as log:
        try:
            return _runtime().Interpreter.from_bytes(model, arena_size=arena_bytes)
        except (RuntimeError, ValueError) as err:
            failure = err
    raise ConfigError(f"TFLM could not allocate the model in {arena_bytes} bytes: {failure}; {log[0][-300:]!r}")


GENEROUS_ARENA_BYTES = 4 << 20


def interpreter(model: bytes, arena_bytes: int, name: str = "model") -> Interpreter:
    """A TFLM interpreter with tensors allocated in an arena of ``arena_bytes``.

    TFLM's Python runtime segfaults, instead of failing, for some arenas just below the smallest
    that fits (sine: 2048 and 2176 bytes crash, 2192 fits). So an arena is first checked: below
    what TFLM places in a generous arena it is too small outright; otherwise it is tried once in a
    child process (remembered per model hash and size in the user's cache). A too small arena is a
    ConfigError naming the model and the bytes it needs.
    """
    if arena_bytes < GENEROUS_ARENA_BYTES:
        placed = arena_used_bytes(_allocate(model, GENEROUS_ARENA_BYTES))
        if arena_bytes < placed or not _fits_in_child(model, arena_bytes):
            needed = minimal_arena_bytes(model)
            raise ConfigError(
                f"{name}: an arena of {arena_bytes} bytes is too small: TFLM needs {needed} bytes "
                f"({placed} of them for tensors); set arena_bytes in its manifest to at least {needed}"
            )
    return _allocate(model, arena_bytes)


def _fits_in_child(model: bytes, arena_bytes: int) -> bool:
    digest = hashlib.sha256(model).hexdigest()[:32]
    known = _probe_cache() / f"{digest}-{arena_bytes}.fits"
    if known.exists():
        return True
    with tempfile.NamedTemporaryFile(suffix=".tflite") as file:
        file.write(model)
        file.flush()
        if not _fits(file.name, arena_bytes):
            return False
    with contextlib.suppress(OSError):  # a cache we cannot write only costs the next probe
        known.parent.mkdir(parents=True, exist_ok=True)
        known.touch()
    return True


def _probe_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinyml-hil" / "arena-probes"


def _fits(path: str, arena_bytes: int) -> bool:
    """Whether the model at ``path`` allocates in ``arena_bytes``, tried in a child (which may crash)."""
    probe = [sys.executable, "-m", "hil.tflm", "fits", path, str(arena_bytes)]
    return subprocess.run(probe, capture_output=True, timeout=120, check=False).returncode == 0


SMALLEST_PROBED_ARENA_BYTES = 1024


def minimal_arena_bytes(model: bytes, upper_bytes: int = 4 << 20) -> int:
    """Smallest arena (a multiple of 16, at least 1 KiB) in which TFLM allocates the model, by bisection.

    Each probe runs in a child process: for some too-small arenas TFLM's Python runtime
    segfaults instead of failing (seen with 2048 bytes for models/sine).
    """
    with tempfile.NamedTemporaryFile(suffix=".tflite") as file:
        file.write(model)
        file.flush()

        def fits(size: int) -> bool:
            return _fits(file.name, size)

        # Double up to the first arena that fits, then bisect below it.
        size = SMALLEST_PROBED_ARENA_BYTES
        while not fits(size):
            size *= 2
            if size > upper_bytes:
                raise ConfigError(f"model does not fit even a {upper_bytes}-byte arena")
        lo, hi = size // 2 // ARENA_ALIGN_BYTES, size // ARENA_ALIGN_BYTES
        while lo < hi:
            mid = (lo + hi) // 2
            if fits(mid * ARENA_ALIGN_BYTES):
                hi = mid
            else:
                lo = mid + 1
        return hi * ARENA_ALIGN_BYTES


def arena_used_bytes(interp: Interpreter) -> int:
    """Bytes the RecordingMicroAllocator placed in the arena: MicroInterpreter::arena_used_bytes()."""
    with captured_stderr() as log:
        interp.print_allocations()
    found = _ALLOCATION_TOTAL.search(log[0])
    if not found:
        raise ConfigError(f"TFLM did not report its arena allocation: {log[0][:200]!r}")
    return int(found.group(1))


def tensor_spec(details: dict) -> TensorSpec:
    q = details["quantization_parameters"]
    scales, zero_points = q["scales"], q["zero_points"]
    return TensorSpec(
        dtype=np.dtype(details["dtype"]).name,
        shape=tuple(int(d) for d in details["shape"]),
        scale=float(scales[0]) if len(scales) else 0.0,
        zero_point=int(zero_points[0]) if len(zero_points) else 0,
    )


def invoke(interp: Interpreter, tensor: np.ndarray) -> np.ndarray:
    interp.set_input(tensor, 0)
    interp.invoke()
    return np.array(interp.get_output(0), copy=True)


def op_names(model: bytes) -> list[str]:
    """Builtin operator names the model uses, in first-use order."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    m = _runtime().convert_bytearray_to_object(bytearray(model))
    seen: list[str] = []
    for subgraph in m.subgraphs:
        for op in subgraph.operators or []:
            code = _runtime().get_builtin_code_from_operator_code(m.operatorCodes[op.opcodeIndex])
            if names[code] not in seen:
                seen.append(names[code])
    return seen


if __name__ == "__main__" and sys.argv[1:2] == ["fits"]:
    _allocate(Path(sys.argv[2]).read_bytes(), int(sys.argv[3]))  # exits non-zero (or crashes) unless it fits
