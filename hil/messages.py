"""The payloads of the wire protocol's messages, both sides: one pack/unpack pair per message type.

Frames around them, message types and error codes are :mod:`hil.protocol`; ``docs/protocol.md``
("Messages") is the specification and ``docs/protocol-vectors.txt`` the shared vectors.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from hil.protocol import BUILD_ID_DIGITS, SHA256_DIGITS, MalformedPayload
from hil.results import (
    TFLITE_TYPE_CODES,
    TFLITE_TYPES,
    UNKNOWN_U32,
    DeviceInfo,
    MemoryReport,
    ModelInfo,
    OpProfile,
    TensorSpec,
)


class _Reader:
    """A payload's fields in order; a shortfall, bad text or leftover bytes is ``MalformedPayload``."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self._pos + size > len(self._data):
            raise MalformedPayload(f"payload ends at byte {len(self._data)}, needed {self._pos + size}")
        values = struct.unpack_from(fmt, self._data, self._pos)
        self._pos += size
        return values

    def u8(self) -> int:
        return self.take("<B")[0]

    def string(self) -> str:
        (length,) = self.take("<B")
        (raw,) = self.take(f"<{length}s")
        try:
            text = raw.decode()
        except UnicodeDecodeError as err:
            raise MalformedPayload(f"string is not UTF-8: {raw!r}") from err
        if "\0" in text:
            raise MalformedPayload(f"string contains a NUL byte: {raw!r}")  # C would read 'sine\0x' as 'sine'
        return text

    def rest(self) -> bytes:
        data = self._data[self._pos :]
        self._pos = len(self._data)
        return data

    def done(self) -> None:
        if self._pos != len(self._data):
            raise MalformedPayload(f"{len(self._data) - self._pos} unexpected trailing bytes")


def _string(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 255:
        raise ValueError(f"string of {len(raw)} bytes does not fit the protocol (max 255): {text[:40]!r}...")
    return bytes([len(raw)]) + raw


def _u32_or_unknown(value: int | None) -> int:
    return UNKNOWN_U32 if value is None else value


def _known(value: int) -> int | None:
    return None if value == UNKNOWN_U32 else value


def _hex_string(r: _Reader, digits: int, what: str) -> str:
    text = r.string()
    if len(text) != digits or text.strip("0123456789abcdef"):
        raise MalformedPayload(f"{what} {text!r} is not {digits} lowercase hex digits")
    return text


# --- INFO ---------------------------------------------------------------------------------


def pack_info(info: DeviceInfo) -> bytes:
    head = struct.pack("<BHIB", info.protocol_version, info.max_payload_bytes, info.clock_hz, info.model_count)
    strings = (info.firmware_version, info.board, info.runtime, info.build_id)
    return head + b"".join(_string(text) for text in strings)


def unpack_info(payload: bytes) -> DeviceInfo:
    r = _Reader(payload)
    version, max_payload, clock_hz, count = r.take("<BHIB")
    firmware, board, runtime = r.string(), r.string(), r.string()
    build_id = _hex_string(r, BUILD_ID_DIGITS, "INFO build id")
    info = DeviceInfo(version, max_payload, clock_hz, count, firmware, board, runtime, build_id)
    r.done()
    return info


# --- MODEL_INFO ---------------------------------------------------------------------------


def pack_tensor_spec(spec: TensorSpec) -> bytes:
    code = TFLITE_TYPE_CODES[spec.dtype]
    return struct.pack(f"<BB{len(spec.shape)}H", code, len(spec.shape), *spec.shape) + struct.pack(
        "<fi", spec.scale, spec.zero_point
    )


def _read_tensor_spec(r: _Reader) -> TensorSpec:
    code, ndims = r.take("<BB")
    if code not in TFLITE_TYPES:
        raise MalformedPayload(f"unknown tensor type code {code}")
    shape = r.take(f"<{ndims}H")
    scale, zero_point = r.take("<fi")
    return TensorSpec(TFLITE_TYPES[code], tuple(shape), scale, zero_point)


def pack_model_info(model: ModelInfo) -> bytes:
    return (
        _string(model.name)
        + struct.pack("<II", model.arena_size_bytes, model.arena_used_bytes)
        + pack_tensor_spec(model.input)
        + pack_tensor_spec(model.output)
        + _string(model.sha256)
    )


def unpack_model_info(payload: bytes) -> ModelInfo:
    r = _Reader(payload)
    name = r.string()
    arena_size, arena_used = r.take("<II")
    specs = _read_tensor_spec(r), _read_tensor_spec(r)
    model = ModelInfo(name, arena_size, arena_used, *specs, _hex_string(r, SHA256_DIGITS, f"MODEL_INFO {name} sha256"))
    r.done()
    return model


def pack_model_info_request(index: int) -> bytes:
    return struct.pack("<B", index)


def unpack_model_info_request(payload: bytes) -> int:
    r = _Reader(payload)
    index = r.u8()
    r.done()
    return index


# --- INFER --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InferRequest:
    model: str
    dtype_code: int
    data: bytes


def pack_infer_request(request: InferRequest) -> bytes:
    return _string(request.model) + struct.pack("<B", request.dtype_code) + request.data


def unpack_infer_request(payload: bytes) -> InferRequest:
    r = _Reader(payload)
    return InferRequest(r.string(), r.u8(), r.rest())


@dataclass(frozen=True, slots=True)
class InferReply:
    ticks: int
    arena_used_bytes: int
    output: bytes


def pack_infer_reply(reply: InferReply) -> bytes:
    return struct.pack("<QI", reply.ticks, reply.arena_used_bytes) + reply.output


def unpack_infer_reply(payload: bytes) -> InferReply:
    r = _Reader(payload)
    ticks, arena_used = r.take("<QI")
    return InferReply(ticks, arena_used, r.rest())


# --- MEMORY, PROFILE, ERROR ---------------------------------------------------------------


def pack_memory(report: MemoryReport) -> bytes:
    fields = (report.stack_size_bytes, report.stack_used_bytes, report.heap_size_bytes, report.heap_used_bytes)
    return struct.pack("<4I", *(_u32_or_unknown(v) for v in fields))


def unpack_memory(payload: bytes) -> MemoryReport:
    r = _Reader(payload)
    values = r.take("<4I")
    r.done()
    return MemoryReport(*(_known(v) for v in values))


def pack_profile(ops: list[OpProfile]) -> bytes:
    return struct.pack("<H", len(ops)) + b"".join(_string(op.tag) + struct.pack("<Q", op.ticks) for op in ops)


def unpack_profile(payload: bytes) -> list[OpProfile]:
    r = _Reader(payload)
    (count,) = r.take("<H")
    ops = [OpProfile(r.string(), r.take("<Q")[0]) for _ in range(count)]
    r.done()
    return ops


@dataclass(frozen=True, slots=True)
class ErrorReply:
    code: int
    message: str


def pack_error(reply: ErrorReply) -> bytes:
    message = reply.message.encode()[:255].decode(errors="ignore")  # a reply must never fail to encode
    return struct.pack("<B", reply.code) + _string(message)


def unpack_error(payload: bytes) -> ErrorReply:
    r = _Reader(payload)
    reply = ErrorReply(r.u8(), r.string())
    r.done()
    return reply


# --- streaming ------------------------------------------------------------------------------

SOURCE_FED = 0
SOURCE_SENSOR = 1
NO_IDLE_CLASS = 0xFF


@dataclass(frozen=True, slots=True)
class StreamStart:
    model: str
    source: int
    hop: int
    idle_class: int  # NO_IDLE_CLASS: every class may raise events
    threshold: float
    refractory_samples: int


def pack_stream_start(start: StreamStart) -> bytes:
    fields = struct.pack("<BHBfH", start.source, start.hop, start.idle_class, start.threshold, start.refractory_samples)
    return _string(start.model) + fields


def unpack_stream_start(payload: bytes) -> StreamStart:
    r = _Reader(payload)
    model = r.string()
    start = StreamStart(model, *r.take("<BHBfH"))
    r.done()
    return start


def pack_feed(samples: np.ndarray) -> bytes:
    """``samples``: (count, channels) in physical units, sent as little-endian float32."""
    return struct.pack("<H", len(samples)) + np.ascontiguousarray(samples, dtype="<f4").tobytes()


def unpack_feed(payload: bytes, channels: int) -> np.ndarray:
    r = _Reader(payload)
    (count,) = r.take("<H")
    data = r.rest()
    if len(data) != count * channels * 4:
        raise MalformedPayload(
            f"FEED of {count} samples x {channels} channels needs {count * channels * 4} bytes, got {len(data)}"
        )
    return np.frombuffer(data, dtype="<f4").reshape(count, channels)


@dataclass(frozen=True, slots=True)
class FeedReply:
    samples_total: int
    inferences: int
    events: int


def pack_feed_reply(reply: FeedReply) -> bytes:
    return struct.pack("<IHH", reply.samples_total, reply.inferences, reply.events)


def unpack_feed_reply(payload: bytes) -> FeedReply:
    r = _Reader(payload)
    reply = FeedReply(*r.take("<IHH"))
    r.done()
    return reply


@dataclass(frozen=True, slots=True)
class StreamTotals:
    samples: int
    inferences: int
    events: int


def pack_stream_totals(totals: StreamTotals) -> bytes:
    return struct.pack("<III", totals.samples, totals.inferences, totals.events)


def unpack_stream_totals(payload: bytes) -> StreamTotals:
    r = _Reader(payload)
    totals = StreamTotals(*r.take("<III"))
    r.done()
    return totals


@dataclass(frozen=True, slots=True)
class Event:
    """A detection the device raised while streaming; ``sample`` counts samples since STREAM_START."""

    sample: int
    model: str
    class_index: int
    score: float
    ticks: int


def pack_event(event: Event) -> bytes:
    return (
        struct.pack("<I", event.sample)
        + _string(event.model)
        + struct.pack("<BfQ", event.class_index, event.score, event.ticks)
    )


def unpack_event(payload: bytes) -> Event:
    r = _Reader(payload)
    (sample,) = r.take("<I")
    model = r.string()
    event = Event(sample, model, *r.take("<BfQ"))
    r.done()
    return event


def event_line(event: Event) -> bytes:
    return (
        f"HIL EVENT {event.model} class={event.class_index} score={event.score:.3f} sample={event.sample}\r\n".encode()
    )
