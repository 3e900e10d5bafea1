"""Typed results passed between modules: what a device is, holds and answered."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# TfLiteType codes (tensorflow/lite/core/c/c_api_types.h) so firmware can send tensor->type unchanged.
TFLITE_TYPES: dict[int, str] = {1: "float32", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8"}
TFLITE_TYPE_CODES: dict[str, int] = {name: code for code, name in TFLITE_TYPES.items()}

UNKNOWN_U32 = 0xFFFFFFFF  # on the wire: "this device cannot measure that"


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Shape, element type and affine quantization of one tensor."""

    dtype: str
    shape: tuple[int, ...]
    scale: float = 0.0
    zero_point: int = 0

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.numpy_dtype.itemsize

    def describe(self) -> str:
        return f"{self.dtype}[{','.join(str(d) for d in self.shape)}]"

    def quantize(self, values: np.ndarray | list[float]) -> np.ndarray:
        """Map real values to this tensor's integer type as the firmware does.

        float32 arithmetic, round half away from zero (C's ``roundf``), then saturate.
        """
        if self.scale == 0.0 or self.numpy_dtype.kind == "f":
            return np.asarray(values, dtype=self.numpy_dtype).reshape(self.shape)
        info = np.iinfo(self.numpy_dtype)
        x = np.asarray(values, dtype=np.float32) / np.float32(self.scale)
        magnitude = np.abs(x)
        whole = np.floor(magnitude)
        rounded = np.copysign(whole + (magnitude - whole >= 0.5), x)  # exact: no float addition of 0.5
        q = np.clip(rounded.astype(np.float64) + self.zero_point, info.min, info.max)
        return q.astype(self.numpy_dtype).reshape(self.shape)

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        if self.scale == 0.0 or self.numpy_dtype.kind == "f":
            return np.asarray(values, dtype=np.float64)
        return (np.asarray(values, dtype=np.float64) - self.zero_point) * self.scale


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the device says about itself in its INFO reply."""

    protocol_version: int
    max_payload_bytes: int
    clock_hz: int
    model_count: int
    firmware_version: str
    board: str
    runtime: str
    build_id: str  # 16 lowercase hex digits: a hash over the inputs of the firmware build


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model the device serves, as the device reports it."""

    name: str
    arena_size_bytes: int
    arena_used_bytes: int
    input: TensorSpec
    output: TensorSpec
    sha256: str  # 64 lowercase hex digits: SHA-256 of the model's .tflite bytes


@dataclass(frozen=True, slots=True)
class MemoryReport:
    """Runtime memory of the device; ``None`` where the device cannot measure."""

    stack_size_bytes: int | None
    stack_used_bytes: int | None
    heap_size_bytes: int | None
    heap_used_bytes: int | None


@dataclass(frozen=True, slots=True)
class OpProfile:
    """Device clock ticks spent in one operator of the last inference."""

    tag: str
    ticks: int


@dataclass(frozen=True, slots=True)
class InferenceResult:
    """One inference as the device ran it, with the raw reply kept for reports."""

    model: str
    output: np.ndarray
    ticks: int
    clock_hz: int
    arena_used_bytes: int
    raw_reply: bytes = field(repr=False)

    @property
    def latency_us(self) -> float | None:
        """Device-measured inference time, or None if the device has no clock."""
        if self.clock_hz <= 0:
            return None
        return self.ticks * 1e6 / self.clock_hz
