"""Protocol vectors shared by the Python and C codecs: ``docs/protocol-vectors.txt``.

    python -m hil.vectors > docs/protocol-vectors.txt     # regenerate after a protocol change

Line format (fields separated by single spaces, ``-`` for empty hex):

    encode <type> <seq> <payload-hex> <frame-hex>
    decode <stream-hex> => <item> ...        item: F:<type>:<seq>:<payload-hex> | E:<code>:<seq> | T:<hex>
    reply <request-hex> => <item> ...        what a device serving the vectors model answers

The vectors model is ``sine``: input int8[1,1], output int8[1,1]. Reply vectors cover only
answers that do not depend on the model's weights, so a C test can use a stand-in model.
A reply line may hold several request frames; they go to one device in order.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

import numpy as np

from hil import messages as msg
from hil import protocol as p

T = p.MsgType


def _hex(data: bytes) -> str:
    return data.hex() or "-"


def _unhex(text: str) -> bytes:
    return b"" if text == "-" else bytes.fromhex(text)


def item_text(item: p.Item) -> str:
    if isinstance(item, p.Frame):
        return f"F:{item.type:02x}:{item.seq}:{_hex(item.payload)}"
    if isinstance(item, p.FrameFault):
        return f"E:{int(item.code)}:{item.seq}"
    return f"T:{_hex(item.data)}"


def error_item(code: p.ErrorCode, seq: int) -> str:
    """How a reply vector names an ERROR reply: its code and seq (the message text is free)."""
    return f"ERR:{int(code)}:{seq}"


def frame_item(frame: p.Frame) -> str:
    if frame.type == T.ERROR:
        return error_item(p.ErrorCode(msg.unpack_error(frame.payload).code), frame.seq)
    return item_text(frame)


@dataclass(frozen=True, slots=True)
class Vector:
    kind: str
    fields: tuple[str, ...]
    expected: tuple[str, ...]


def parse(text: str) -> list[Vector]:
    vectors = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head, _, tail = line.partition(" => ")
        kind, *fields = head.split(" ")
        vectors.append(Vector(kind, tuple(fields), tuple(tail.split(" ")) if tail else ()))
    return vectors


def _encodes() -> list[tuple[int, int, bytes]]:
    infer = msg.pack_infer_request(msg.InferRequest("sine", 9, b"\x10"))
    return [
        (T.INFO, 1, b""),
        (T.MODEL_INFO, 2, b"\x00"),
        (T.INFER, 3, infer),
        (T.ECHO, 255, bytes(range(16))),
        (T.ERROR, 7, msg.pack_error(msg.ErrorReply(p.ErrorCode.BAD_SIZE, "x"))),
    ]


def _streams() -> list[bytes]:
    a = p.encode_frame(T.INFO, 1)
    b = p.encode_frame(T.ECHO, 2, b"hello")
    corrupt = bytearray(b)
    corrupt[-1] ^= 0xFF
    too_long = p.SYNC + struct.pack("<BBH", T.ECHO, 9, p.DEFAULT_MAX_PAYLOAD_BYTES + 1)
    return [
        a,
        p.boot_banner("x", "y", "0123456789abcdef") + a,
        a + b,
        b"\x00\xa5\xa5" + a,  # a lone sync byte before a frame
        bytes(corrupt) + a,  # bad CRC, then a good frame
        too_long + a,  # impossible length, then a good frame
        b[:-1] + b"",  # incomplete: nothing yet
        b"\xa5\x5a" + a,  # a false sync: the header it forms fails, the frame after it survives
    ]


def _requests() -> list[bytes]:
    def infer(model: str, dtype: int, data: bytes) -> bytes:
        return msg.pack_infer_request(msg.InferRequest(model, dtype, data))

    return [
        p.encode_frame(T.ECHO, 1, b"ping"),
        p.encode_frame(T.INFO, 2, b"\x00"),
        p.encode_frame(0x42, 3),
        p.encode_frame(T.INFER, 4, infer("nosuch", 9, b"\x00")),
        p.encode_frame(T.INFER, 5, infer("sine", 1, b"\x00\x00\x00\x00")),
        p.encode_frame(T.INFER, 6, infer("sine", 9, b"\x00\x00")),
        p.encode_frame(T.INFER, 7, b"\x09sin"),
        p.encode_frame(T.MODEL_INFO, 8, b"\x05"),
        p.encode_frame(T.MEMORY, 9, b"\x01"),
        p.encode_frame(T.RESET, 10, b"\x01"),
        p.encode_frame(T.PROFILE, 11, b"\x01"),
        p.encode_frame(T.MODEL_INFO, 12, b""),
        p.encode_frame(T.ECHO, 13, b"x")[:-1] + b"\x00",
        p.encode_frame(T.FEED, 14, msg.pack_feed(np.zeros((1, 1)))),
        p.encode_frame(T.STREAM_START, 15, msg.pack_stream_start(msg.StreamStart("nosuch", 0, 1, 255, 0.5, 0))),
        p.encode_frame(T.STREAM_START, 16, msg.pack_stream_start(msg.StreamStart("sine", 0, 0, 255, 0.5, 0))),
        p.encode_frame(T.STREAM_STOP, 17),
        # A whole stream: a threshold no score reaches, so the replies do not depend on the weights.
        p.encode_frame(T.STREAM_START, 18, msg.pack_stream_start(msg.StreamStart("sine", 0, 1, 255, 2.0, 0)))
        + p.encode_frame(T.FEED, 19, msg.pack_feed(np.array([[0.0], [1.5]])))
        + p.encode_frame(T.FEED, 20, msg.pack_feed(np.zeros((2, 1)))[:-4])
        + p.encode_frame(T.STREAM_STOP, 21),
        # Garbage whose fake headers carry seq 7 and 2, then request seq 2: the faults are reported on
        # seq 0, so the only reply with seq 2 is the request's own.
        bytes.fromhex("00ffa55a0307ffff414243a55a0102030000deadbe") + p.encode_frame(T.ECHO, 2, b"ok"),
        # A refused STREAM_START leaves no stream: the FEED after it is UNSUPPORTED.
        p.encode_frame(T.STREAM_START, 22, msg.pack_stream_start(msg.StreamStart("sine", 0, 1, 255, 2.0, 0)))
        + p.encode_frame(T.STREAM_START, 23, msg.pack_stream_start(msg.StreamStart("nosuch", 0, 1, 255, 2.0, 0)))
        + p.encode_frame(T.FEED, 24, msg.pack_feed(np.zeros((1, 1)))),
        # A NUL in a string is MALFORMED (C would read "sine\0" as "sine").
        p.encode_frame(T.INFER, 25, b"\x05sine\x00\x09\x00"),
        # What arrives together with a RESET is dropped: the device is rebooting.
        p.encode_frame(T.RESET, 26) + p.encode_frame(T.ECHO, 27, b"lost"),
    ]


def generate(firmware: object) -> str:
    """All vectors as text; ``firmware`` is a ``TwinFirmware`` serving ``sine``."""
    lines = [f"# tinyml-hil wire protocol v{p.PROTOCOL_VERSION} vectors: generated by `python -m hil.vectors`."]
    lines += ["# Format: see hil/vectors.py and docs/protocol.md#vectors.", ""]
    for msg_type, seq, payload in _encodes():
        lines.append(f"encode {msg_type:02x} {seq} {_hex(payload)} {p.encode_frame(msg_type, seq, payload).hex()}")
    for stream in _streams():
        items = p.FrameDecoder().feed(stream)
        lines.append(f"decode {stream.hex()} => {' '.join(item_text(i) for i in items) or '-'}".rstrip())
    for request in _requests():
        lines.append(f"reply {request.hex()} => {' '.join(reply_items(firmware, request))}")
    return "\n".join(lines) + "\n"


def reply_items(firmware: object, request: bytes) -> list[str]:
    """What ``firmware`` answers to the bytes of ``request``, in vector notation."""
    out = []
    for item in p.FrameDecoder().feed(request):
        if isinstance(item, p.Frame):
            reply = firmware.handle(item)  # type: ignore[attr-defined]
        elif isinstance(item, p.FrameFault):
            reply = firmware.handle_fault(item)  # type: ignore[attr-defined]
        else:
            continue
        out += [frame_item(f) for f in p.FrameDecoder().feed(reply) if isinstance(f, p.Frame)]
        if isinstance(item, p.Frame) and item.type == T.RESET:
            break  # a rebooting device drops the rest (docs/protocol.md, RESET)
    return out


if __name__ == "__main__":
    from pathlib import Path

    from hil.models import ModelZoo
    from hil.twin import TwinFirmware

    sys.stdout.write(generate(TwinFirmware(ModelZoo(Path("models")), ["sine"])))
