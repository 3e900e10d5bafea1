"""The wire protocol, both sides: message types, error codes, frames and the resynchronising decoder.

The payloads of each message type are packed and unpacked in :mod:`hil.messages`.
``docs/protocol.md`` is the specification; ``docs/protocol-vectors.txt`` holds the vectors
that this module and the firmware's C codec are both tested against.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

from hil.errors import ProtocolError

PROTOCOL_VERSION = 2
SYNC = b"\xa5\x5a"
HEADER_BYTES = 6  # sync(2) type(1) seq(1) length(2, little-endian)
CRC_BYTES = 4
FRAME_OVERHEAD_BYTES = HEADER_BYTES + CRC_BYTES
DEFAULT_MAX_PAYLOAD_BYTES = 4096
REPLY_FLAG = 0x80
UNSOLICITED_SEQ = 0  # seq of frames nobody asked for; requests use 1..255
# A receiver gives up on a partial frame after this much line silence, so a device that
# rebooted mid-frame or a host that died mid-write cannot wedge the other side.
STALE_FRAME_S = 0.1

BOOT_LINE_PREFIX = "HIL BOOT"
READY_LINE = "HIL READY"

# The firmware image holds its build id as this marker, 16 lowercase hex digits and a NUL, so a
# host can read the id of an image file before flashing it (docs/protocol.md "Firmware identity").
BUILD_ID_MARKER = b"HIL_BUILD_ID="
BUILD_ID_DIGITS = 16
SHA256_DIGITS = 64
_BUILD_ID_IN_IMAGE = re.compile(re.escape(BUILD_ID_MARKER) + rb"([0-9a-f]{%d})\x00" % BUILD_ID_DIGITS)


class MsgType(IntEnum):
    """Request types; a successful reply has type ``request | REPLY_FLAG``."""

    INFO = 0x01
    MODEL_INFO = 0x02
    INFER = 0x03
    PROFILE = 0x04
    MEMORY = 0x05
    RESET = 0x06
    ECHO = 0x07
    STREAM_START = 0x08
    FEED = 0x09
    STREAM_STOP = 0x0A
    ERROR = 0x7F
    EVENT = 0xC0  # device -> host, unsolicited (seq 0)


class ErrorCode(IntEnum):
    BAD_CRC = 1
    TOO_LARGE = 2
    UNKNOWN_TYPE = 3
    MALFORMED = 4
    UNKNOWN_MODEL = 5
    BAD_DTYPE = 6
    BAD_SIZE = 7
    INVOKE_FAILED = 8
    UNSUPPORTED = 9


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"ERROR_{code}"


def type_name(msg_type: int) -> str:
    base = msg_type & ~REPLY_FLAG if msg_type not in (MsgType.ERROR, MsgType.EVENT) else msg_type
    try:
        name = MsgType(base).name
    except ValueError:
        name = f"0x{base:02x}"
    return name + ("_REPLY" if msg_type & REPLY_FLAG and msg_type not in (MsgType.ERROR, MsgType.EVENT) else "")


class MalformedPayload(ProtocolError):
    """A frame arrived intact but its payload does not decode as its type says."""


@dataclass(frozen=True, slots=True)
class Frame:
    type: int
    seq: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class FrameFault:
    """Bytes that started like a frame but were not one; the decoder skipped the sync byte."""

    code: ErrorCode
    seq: int
    detail: str


@dataclass(frozen=True, slots=True)
class Text:
    """Bytes outside any frame: boot banner, log lines, garbage."""

    data: bytes


Item = Frame | FrameFault | Text


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a frame (max 65535)")
    body = struct.pack("<BBH", msg_type, seq, len(payload)) + payload
    return SYNC + body + struct.pack("<I", zlib.crc32(body))


class FrameDecoder:
    """Turns a byte stream into frames, faults and text; never raises on any input.

    After a bad CRC or an impossible length it drops one byte and scans again, so a frame
    that starts inside the garbage is still found.
    """

    def __init__(self, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> None:
        self.max_payload_bytes = max_payload_bytes
        self._buf = bytearray()

    @property
    def partial_frame(self) -> bool:
        """True while the buffer holds the start of a frame still waiting for bytes."""
        return self._buf.startswith(SYNC)

    def feed(self, data: bytes) -> list[Item]:
        self._buf += data
        return list(self._drain())

    def abandon_partial(self) -> list[Item]:
        """Give up on a partial frame (the line went silent) and rescan the bytes after its sync."""
        if not self.partial_frame:
            return []
        seq = self._buf[3] if len(self._buf) > 3 else UNSOLICITED_SEQ
        del self._buf[:1]
        fault = FrameFault(ErrorCode.MALFORMED, seq, "frame truncated: the line went silent mid-frame")
        return [fault, *self._drain()]

    def _drain(self) -> Iterator[Item]:
        buf = self._buf
        while buf:
            start = buf.find(SYNC)
            if start < 0:
                keep = 1 if buf.endswith(SYNC[:1]) else 0  # may be the first half of a sync
                text_end = len(buf) - keep
                if text_end:
                    yield Text(bytes(buf[:text_end]))
                    del buf[:text_end]
                return
            if start:
                yield Text(bytes(buf[:start]))
                del buf[:start]
            if len(buf) < HEADER_BYTES:
                return
            msg_type, seq, length = struct.unpack_from("<BBH", buf, 2)
            if length > self.max_payload_bytes:
                del buf[:1]
                yield FrameFault(ErrorCode.TOO_LARGE, seq, f"length {length} > max {self.max_payload_bytes}")
                continue
            end = HEADER_BYTES + length + CRC_BYTES
            if len(buf) < end:
                return
            (crc,) = struct.unpack_from("<I", buf, HEADER_BYTES + length)
            if zlib.crc32(buf[2 : HEADER_BYTES + length]) != crc:
                del buf[:1]
                yield FrameFault(ErrorCode.BAD_CRC, seq, "CRC-32 mismatch")
                continue
            yield Frame(msg_type, seq, bytes(buf[HEADER_BYTES : HEADER_BYTES + length]))
            del buf[:end]


def boot_banner(firmware_version: str, board: str, build_id: str) -> bytes:
    """The lines a device prints at boot; Renode's ``Wait For Line On Uart`` can match them."""
    boot = f"{BOOT_LINE_PREFIX} fw={firmware_version} proto={PROTOCOL_VERSION} board={board} build={build_id}"
    return f"{boot}\r\n{READY_LINE}\r\n".encode()


def find_build_id(data: bytes) -> str | None:
    """The build id in a firmware image (ELF, raw binary): the hex after ``BUILD_ID_MARKER``, or None.

    Several different ids mean the bytes are not one image (or were concatenated): that raises.
    """
    ids = sorted({m.group(1).decode() for m in _BUILD_ID_IN_IMAGE.finditer(data)})
    if len(ids) > 1:
        raise ProtocolError(f"the image holds {len(ids)} different build ids ({', '.join(ids)}): expected one")
    return ids[0] if ids else None
