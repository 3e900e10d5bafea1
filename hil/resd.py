"""Sensor stimuli for Renode: RESD files, and feed commands for sensor models that cannot read RESD.

RESD ("Renode Sensor Data") is Renode's binary format for recorded sensor data. The layout
below is the one Renode's reader accepts (renode-infrastructure
``src/Emulator/Main/Utilities/RESD/``: ``RESDParser.cs`` in Renode 1.14, ``LowLevelRESDParser.cs``
later, ``DataBlock.cs``, ``MetadataBlock.cs``, ``MetadataValue.cs``, ``RESDSample.cs``).
All integers are little-endian.

File header, 8 bytes::

    "RESD"  u8 version (1)  3 zero bytes

then blocks, back to back, each::

    u8 block type       1 = arbitrary timestamps, 2 = constant frequency
    u16 sample type     1 temperature, 2 acceleration, 3 angular rate, 4 voltage, 5 ECG, ...
    u16 channel id
    u64 size            bytes of this block after these 13 header bytes
    u64 start time      ns of virtual time
    u64 period          ns between samples (constant-frequency blocks only)
    u64 metadata size   bytes of the metadata entries that follow (0: none)
    metadata entries    NUL-terminated key, u8 value type, value (see ``MetaType``)
    samples             constant frequency: sample after sample;
                        arbitrary timestamps: u64 timestamp (ns) before each sample

An acceleration sample is three i32 in micro-g (µg); Renode's LSM6DSO model divides them by
10^6 to get g. Renode 1.14 reads constant-frequency blocks only and skips other block types.

Sensor models without RESD support in Renode 1.14 (ADXL345, LSM9DS1) take samples through
monitor commands instead: :func:`feed_sample_commands` or, for long recordings, a samples file
fed with one command (:func:`write_feed_file`, :func:`feed_file_command`). Those models hand out
one queued sample per read of their data registers, whatever the virtual time, so the firmware
must read its sensor exactly once per sample period.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from hil.errors import ConfigError
from hil.stimuli import Stimulus

MAGIC = b"RESD"
VERSION = 1
HEADER_PADDING_BYTES = 3
BLOCK_HEADER = struct.Struct("<BHHQ")  # block type, sample type, channel id, size
NS_PER_S = 1_000_000_000
MICRO_G_PER_G = 1_000_000
STANDARD_GRAVITY_MS2 = 9.80665
UNIT_IN_G = {"g": 1.0, "mg": 1e-3, "ms2": 1.0 / STANDARD_GRAVITY_MS2}


class BlockType(enum.IntEnum):
    ARBITRARY_TIMESTAMP = 1
    CONSTANT_FREQUENCY = 2


class SampleType(enum.IntEnum):
    TEMPERATURE = 0x0001
    ACCELERATION = 0x0002
    ANGULAR_RATE = 0x0003
    VOLTAGE = 0x0004
    ECG = 0x0005


# Per sample type: numpy dtype of one channel value and channels per sample (RESDSample.cs).
_SAMPLE_LAYOUT: dict[SampleType, tuple[str, int]] = {
    SampleType.TEMPERATURE: ("<i4", 1),
    SampleType.ACCELERATION: ("<i4", 3),
    SampleType.ANGULAR_RATE: ("<i4", 3),
    SampleType.VOLTAGE: ("<u4", 1),
    SampleType.ECG: ("<i4", 1),
}


_BLOCK_TYPES = frozenset(int(t) for t in BlockType)
_SAMPLE_TYPES = frozenset(int(t) for t in _SAMPLE_LAYOUT)


class MetaType(enum.IntEnum):
    """Metadata value types as ``MetadataValue.cs`` numbers them (0 is reserved)."""

    INT8 = 0x01
    UINT8 = 0x02
    INT16 = 0x03
    UINT16 = 0x04
    INT32 = 0x05
    UINT32 = 0x06
    INT64 = 0x07
    UINT64 = 0x08
    FLOAT = 0x09
    DOUBLE = 0x0A
    STRING = 0x0B
    BLOB = 0x0C


_META_FORMATS = {
    MetaType.INT8: "<b",
    MetaType.UINT8: "<B",
    MetaType.INT16: "<h",
    MetaType.UINT16: "<H",
    MetaType.INT32: "<i",
    MetaType.UINT32: "<I",
    MetaType.INT64: "<q",
    MetaType.UINT64: "<Q",
    MetaType.FLOAT: "<f",
    MetaType.DOUBLE: "<d",
}


@dataclass(frozen=True, slots=True)
class MetaValue:
    """One typed metadata value; strings are UTF-8 without NUL, blobs are raw bytes."""

    type: MetaType
    value: int | float | str | bytes


@dataclass(frozen=True, slots=True)
class ResdBlock:
    """One data block: ``samples`` is (N, channels) of the sample type's integer dtype.

    ``timestamps_ns`` is set for arbitrary-timestamp blocks only; ``period_ns`` for
    constant-frequency blocks only.
    """

    sample_type: SampleType
    channel: int
    start_time_ns: int
    samples: np.ndarray
    period_ns: int | None = None
    timestamps_ns: np.ndarray | None = None
    metadata: Mapping[str, MetaValue] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def block_type(self) -> BlockType:
        return BlockType.CONSTANT_FREQUENCY if self.timestamps_ns is None else BlockType.ARBITRARY_TIMESTAMP

    def __post_init__(self) -> None:
        dtype, channels = _layout(self.sample_type)
        if self.samples.ndim != 2 or self.samples.shape[1] != channels:
            raise ConfigError(
                f"RESD {self.sample_type.name} samples must be (N, {channels}); got shape {self.samples.shape}"
            )
        if not 0 <= self.channel <= 0xFFFF or self.start_time_ns < 0:
            raise ConfigError(f"RESD block: channel must fit u16 and start time be >= 0 ns (got {self.channel})")
        if self.timestamps_ns is None:
            if self.period_ns is None or self.period_ns <= 0:
                raise ConfigError("a constant-frequency RESD block needs a positive period_ns")
        elif len(self.timestamps_ns) != len(self.samples) or self.period_ns is not None:
            raise ConfigError("an arbitrary-timestamp RESD block needs one timestamp per sample and no period")
        info = np.iinfo(np.dtype(dtype))
        if len(self.samples) and (self.samples.min() < info.min or self.samples.max() > info.max):
            raise ConfigError(f"RESD {self.sample_type.name} samples do not fit {np.dtype(dtype).name}")


def _layout(sample_type: SampleType) -> tuple[str, int]:
    try:
        return _SAMPLE_LAYOUT[SampleType(sample_type)]
    except (KeyError, ValueError):
        raise ConfigError(f"RESD sample type {sample_type!r} is not supported here") from None


# --- writing -----------------------------------------------------------------------------------


def _pack_metadata(metadata: Mapping[str, MetaValue]) -> bytes:
    out = bytearray()
    for key, meta in metadata.items():
        if "\0" in key:
            raise ConfigError(f"RESD metadata key {key!r} contains NUL")
        out += key.encode() + b"\0" + bytes([meta.type])
        if meta.type == MetaType.STRING:
            out += str(meta.value).encode() + b"\0"
        elif meta.type == MetaType.BLOB:
            blob = bytes(meta.value)  # type: ignore[arg-type]
            out += struct.pack("<I", len(blob)) + blob
        else:
            out += struct.pack(_META_FORMATS[meta.type], meta.value)
    return bytes(out)


def pack_block(block: ResdBlock) -> bytes:
    dtype, _ = _layout(block.sample_type)
    metadata = _pack_metadata(block.metadata)
    body = bytearray(struct.pack("<Q", block.start_time_ns))
    if block.timestamps_ns is None:
        body += struct.pack("<Q", block.period_ns)
    body += struct.pack("<Q", len(metadata)) + metadata
    samples = np.ascontiguousarray(block.samples, dtype=dtype)
    if block.timestamps_ns is None:
        body += samples.tobytes()
    else:
        stamped = np.zeros(len(samples), dtype=[("t", "<u8"), ("v", dtype, (samples.shape[1],))])
        stamped["t"], stamped["v"] = block.timestamps_ns, samples
        body += stamped.tobytes()
    return BLOCK_HEADER.pack(block.block_type, block.sample_type, block.channel, len(body)) + bytes(body)


def write_resd(path: Path, blocks: Sequence[ResdBlock]) -> Path:
    """Write ``blocks`` as a RESD file Renode can read; returns ``path``."""
    data = MAGIC + bytes([VERSION]) + bytes(HEADER_PADDING_BYTES) + b"".join(pack_block(b) for b in blocks)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- reading (our round-trip check; Renode has its own reader) ------------------------------------


class _Cursor:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise ConfigError(f"{self.path}: RESD file ends inside {what} at byte {self.pos} (needs {n} more bytes)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def cstring(self, what: str) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise ConfigError(f"{self.path}: unterminated {what} at byte {self.pos}")
        text = self.data[self.pos : end].decode()
        self.pos = end + 1
        return text


def _read_metadata(cur: _Cursor) -> dict[str, MetaValue]:
    (size,) = cur.unpack("<Q", "metadata size")
    end = cur.pos + size
    metadata: dict[str, MetaValue] = {}
    while cur.pos < end:
        key = cur.cstring("metadata key")
        (code,) = cur.unpack("<B", "metadata type")
        try:
            kind = MetaType(code)
        except ValueError:
            raise ConfigError(f"{cur.path}: invalid RESD metadata type {code} at byte {cur.pos - 1}") from None
        if kind == MetaType.STRING:
            value: int | float | str | bytes = cur.cstring("metadata string")
        elif kind == MetaType.BLOB:
            (length,) = cur.unpack("<I", "blob length")
            value = cur.take(length, "blob")
        else:
            (value,) = cur.unpack(_META_FORMATS[kind], "metadata value")
        metadata[key] = MetaValue(kind, value)
    if cur.pos != end:
        raise ConfigError(f"{cur.path}: RESD metadata is {cur.pos - (end - size)} bytes, its header says {size}")
    return metadata


def read_resd(path: Path) -> tuple[ResdBlock, ...]:
    """Parse a RESD file; blocks of sample types we do not know are skipped as Renode does."""
    cur = _Cursor(path.read_bytes(), path)
    magic = cur.take(4, "magic")
    if magic != MAGIC:
        raise ConfigError(f"{path}: not a RESD file (magic {magic!r}, expected {MAGIC!r})")
    (version,) = cur.unpack("<B", "version")
    if version != VERSION:
        raise ConfigError(f"{path}: RESD version {version}; Renode reads version {VERSION}")
    if cur.take(HEADER_PADDING_BYTES, "header padding") != bytes(HEADER_PADDING_BYTES):
        raise ConfigError(f"{path}: RESD header padding must be {HEADER_PADDING_BYTES} zero bytes")
    blocks = []
    while cur.pos < len(cur.data):
        block_type, sample_type, channel, size = cur.unpack(BLOCK_HEADER.format, "block header")
        end = cur.pos + size
        if block_type not in _BLOCK_TYPES or sample_type not in _SAMPLE_TYPES:
            cur.take(size, "skipped block")
            continue
        dtype, channels = _SAMPLE_LAYOUT[SampleType(sample_type)]
        (start,) = cur.unpack("<Q", "start time")
        period = cur.unpack("<Q", "period")[0] if block_type == BlockType.CONSTANT_FREQUENCY else None
        metadata = _read_metadata(cur)
        raw = cur.take(end - cur.pos, "samples")
        if block_type == BlockType.CONSTANT_FREQUENCY:
            width = np.dtype(dtype).itemsize * channels
            if len(raw) % width:
                raise ConfigError(f"{path}: block at byte {end - size} holds a partial sample")
            samples, stamps = np.frombuffer(raw, dtype=dtype).reshape(-1, channels), None
        else:
            record = np.dtype([("t", "<u8"), ("v", dtype, (channels,))])
            if len(raw) % record.itemsize:
                raise ConfigError(f"{path}: block at byte {end - size} holds a partial sample")
            table = np.frombuffer(raw, dtype=record)
            samples, stamps = table["v"].reshape(-1, channels), table["t"].astype(np.int64)
        blocks.append(
            ResdBlock(
                SampleType(sample_type),
                channel,
                start,
                samples.copy(),
                period,
                stamps,
                MappingProxyType(metadata),
            )
        )
    return tuple(blocks)


# --- from stimulus recordings ----------------------------------------------------------------------


def acceleration_in_g(stimulus: Stimulus) -> np.ndarray:
    """The stimulus as (N, 3) float64 in g; fails unless it is a 3-axis acceleration recording."""
    if len(stimulus.channels) != 3:
        raise ConfigError(
            f"{stimulus.path}: an accelerometer takes 3 channels (x, y, z); the stimulus has {list(stimulus.channels)}"
        )
    if stimulus.unit not in UNIT_IN_G:
        raise ConfigError(
            f"{stimulus.path}: cannot convert unit {stimulus.unit!r} to acceleration; use one of {sorted(UNIT_IN_G)}"
        )
    return stimulus.samples.astype(np.float64) * UNIT_IN_G[stimulus.unit]


def _round_half_away(values: np.ndarray) -> np.ndarray:
    return np.trunc(values + np.copysign(0.5, values)).astype(np.int64)


def stimulus_to_resd(stimulus: Stimulus, path: Path, *, channel: int = 0, start_time_ns: int = 0) -> Path:
    """Write a 3-axis acceleration stimulus as one constant-frequency RESD block in µg.

    The block starts at ``start_time_ns`` plus the stimulus's first timestamp; its period is the
    stimulus's median sample interval. Metadata records the source file and the rate.
    """
    micro_g = _round_half_away(acceleration_in_g(stimulus) * MICRO_G_PER_G)
    period_ns = round(NS_PER_S / stimulus.sample_rate_hz)
    metadata = {
        "source": MetaValue(MetaType.STRING, stimulus.path.name),
        "sample_rate_hz": MetaValue(MetaType.DOUBLE, float(stimulus.sample_rate_hz)),
        "unit": MetaValue(MetaType.STRING, "ug"),
    }
    block = ResdBlock(
        SampleType.ACCELERATION,
        channel,
        start_time_ns + round(float(stimulus.times_s[0]) * NS_PER_S),
        micro_g,
        period_ns,
        metadata=MappingProxyType(metadata),
    )
    return write_resd(path, [block])


# --- monitor feed commands for sensor models without RESD ------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedFormat:
    """How one Renode sensor model takes acceleration samples through the monitor.

    ``scale`` converts g to the model's argument; integer models get rounded integers.
    """

    model: str
    command: str
    scale: float
    integer: bool
    limit: float  # largest magnitude the model's argument type holds


# ADXL345.cs: FeedSample(short x, short y, short z, int repeat); the data registers return the
# value shifted right by (range + 2) in 10-bit mode or by 2 in full resolution, so one unit is
# 1/1024 g in every range for a driver that scales by the datasheet's nominal 3.9 mg/LSB
# (Zephyr 3.7's driver at ±16 g: LSB = 1/32 g = 32 units). Files: "x y z" ints per line.
# LSM9DS1_IMU.cs: FeedAccelerationSample(decimal x, decimal y, decimal z, uint repeat) in g;
# files: "x y z" decimals per line, '#' comments.
FEED_FORMATS: Mapping[str, FeedFormat] = MappingProxyType(
    {
        "adxl345": FeedFormat("adxl345", "FeedSample", 1024.0, True, 32767),
        "lsm9ds1": FeedFormat("lsm9ds1", "FeedAccelerationSample", 1.0, False, 16.0),
    }
)


def feed_format(model: str) -> FeedFormat:
    try:
        return FEED_FORMATS[model.lower()]
    except KeyError:
        known = ", ".join(FEED_FORMATS)
        raise ConfigError(f"no monitor feed format for sensor model {model!r}: known are {known}") from None


def _feed_rows(stimulus: Stimulus, fmt: FeedFormat) -> list[str]:
    """The samples as "x y z" argument strings in the model's units."""
    values = acceleration_in_g(stimulus) * fmt.scale
    if len(values) and float(np.abs(values).max()) > fmt.limit:
        peak = float(np.abs(values).max()) / fmt.scale
        raise ConfigError(
            f"{stimulus.path}: peak {peak:.3f} g does not fit {fmt.model} {fmt.command} "
            f"(at most {fmt.limit / fmt.scale:g} g): scale the recording or pick another sensor model"
        )
    if fmt.integer:
        return [" ".join(str(int(v)) for v in row) for row in _round_half_away(values)]
    return [" ".join(_decimal(float(v)) for v in row) for row in values]


def _decimal(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def feed_sample_commands(stimulus: Stimulus, peripheral: str, model: str) -> list[str]:
    """One monitor command per sample, e.g. ``sysbus.i2c1.adxl345 FeedSample 126 -10 1010``."""
    fmt = feed_format(model)
    return [f"{peripheral} {fmt.command} {row}" for row in _feed_rows(stimulus, fmt)]


def write_feed_file(stimulus: Stimulus, path: Path, model: str) -> Path:
    """The samples file the model's ``Feed...Sample @file`` command reads: one "x y z" line per sample."""
    fmt = feed_format(model)
    lines = _feed_rows(stimulus, fmt)
    if not fmt.integer:  # SensorSamplesFifo skips '#' lines; ADXL345.cs has no comment syntax
        lines.insert(0, f"# {stimulus.path.name} in g")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def monitor_path(path: Path) -> str:
    """A path as a Renode monitor path token: ``@`` plus the absolute path, spaces escaped."""
    return "@" + str(path.resolve()).replace(" ", "\\ ")


def feed_file_command(peripheral: str, path: Path, model: str) -> str:
    return f"{peripheral} {feed_format(model).command} {monitor_path(path)}"


def resd_feed_command(peripheral: str, path: Path, *, channel: int = 0, sample_offset_ns: int = 0) -> str:
    """``FeedAccelerationSamplesFromRESD`` for models that read RESD (LSM6DSO_IMU in Renode 1.14).

    Renode looks a sample up at (virtual time + ``sample_offset_ns``); pass minus the virtual
    time at which the recording should start.
    """
    return f"{peripheral} FeedAccelerationSamplesFromRESD {monitor_path(path)} {channel} 0 {sample_offset_ns}"
