"""The Python codec against the shared vectors, plus property-based fuzzing of the decoder."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil import messages as msg
from hil import protocol as p
from hil import vectors
from hil.errors import ProtocolError
from hil.results import DeviceInfo, MemoryReport, ModelInfo, OpProfile, TensorSpec

VECTORS = vectors.parse((Path(__file__).resolve().parents[2] / "docs" / "protocol-vectors.txt").read_text())


def _ids(kind: str) -> list[vectors.Vector]:
    return [v for v in VECTORS if v.kind == kind]


@pytest.mark.parametrize("vector", _ids("encode"))
def test_encode_matches_vector(vector: vectors.Vector) -> None:
    msg_type, seq, payload, frame = vector.fields
    assert p.encode_frame(int(msg_type, 16), int(seq), vectors._unhex(payload)).hex() == frame


@pytest.mark.parametrize("vector", _ids("decode"))
def test_decode_matches_vector(vector: vectors.Vector) -> None:
    items = p.FrameDecoder().feed(bytes.fromhex(vector.fields[0]))
    assert ([vectors.item_text(i) for i in items] or ["-"]) == list(vector.expected)


@pytest.mark.parametrize("vector", _ids("reply"))
def test_twin_reply_matches_vector(vector: vectors.Vector, twin_firmware: object) -> None:
    assert vectors.reply_items(twin_firmware, bytes.fromhex(vector.fields[0])) == list(vector.expected)


def test_vectors_cover_every_kind() -> None:
    assert {v.kind for v in VECTORS} == {"encode", "decode", "reply"}
    assert len(_ids("reply")) >= 10


def test_decoder_abandons_a_partial_frame_after_silence() -> None:
    decoder = p.FrameDecoder()
    good = p.encode_frame(p.MsgType.INFO, 1)
    assert decoder.feed(b"\xa5\x5a" + good) == []  # the false sync swallows the frame as its payload
    assert decoder.partial_frame
    items = decoder.abandon_partial()
    assert isinstance(items[0], p.FrameFault)
    assert p.Frame(p.MsgType.INFO, 1, b"") in items


def test_decoder_reports_oversize_length_and_recovers() -> None:
    decoder = p.FrameDecoder(max_payload_bytes=8)
    items = decoder.feed(p.encode_frame(p.MsgType.ECHO, 4, b"x" * 9) + p.encode_frame(p.MsgType.INFO, 5))
    assert items[0] == p.FrameFault(p.ErrorCode.TOO_LARGE, 4, "length 9 > max 8")
    assert items[-1] == p.Frame(p.MsgType.INFO, 5, b"")


frames = st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=64))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_decoder_never_raises_on_garbage(garbage: bytes) -> None:
    decoder = p.FrameDecoder()
    decoder.feed(garbage)
    decoder.abandon_partial()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64).filter(lambda b: b"\xa5" not in b), frames, st.integers(1, 17))
def test_frame_after_text_survives_any_split(text: bytes, frame: tuple[int, int, bytes], chunk: int) -> None:
    msg_type, seq, payload = frame
    stream = text + p.encode_frame(msg_type, seq, payload)
    decoder = p.FrameDecoder()
    items = [item for i in range(0, len(stream), chunk) for item in decoder.feed(stream[i : i + chunk])]
    assert items[-1] == p.Frame(msg_type, seq, payload)
    assert b"".join(i.data for i in items if isinstance(i, p.Text)) == text


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), frames)
def test_good_frame_after_garbage_is_found_once_the_line_goes_quiet(garbage: bytes, frame: tuple) -> None:
    msg_type, seq, payload = frame
    decoder = p.FrameDecoder()
    items = decoder.feed(garbage + p.encode_frame(msg_type, seq, payload))
    while decoder.partial_frame:
        items += decoder.abandon_partial()
    assert p.Frame(msg_type, seq, payload) in items


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_payload_decoders_raise_only_malformed(payload: bytes) -> None:
    for unpack in (msg.unpack_info, msg.unpack_model_info, msg.unpack_infer_reply, msg.unpack_memory,
                   msg.unpack_profile, msg.unpack_error, msg.unpack_infer_request,
                   msg.unpack_model_info_request):  # fmt: skip
        with contextlib.suppress(p.MalformedPayload):
            unpack(payload)


def test_payloads_round_trip() -> None:
    spec = TensorSpec("int8", (1, 128, 3), 0.5, -3)
    info = DeviceInfo(2, 4096, 64_000_000, 2, "1.2.3", "nrf52840dk/nrf52840", "tflm", "0123456789abcdef")
    model = ModelInfo("gesture", 20000, 15000, spec, TensorSpec("int8", (1, 4), 1 / 256, -128), "ab" * 32)
    assert msg.unpack_info(msg.pack_info(info)) == info
    assert msg.unpack_model_info(msg.pack_model_info(model)) == model
    assert msg.unpack_memory(msg.pack_memory(MemoryReport(4096, 1000, None, None))) == MemoryReport(
        4096, 1000, None, None
    )
    ops = [OpProfile("CONV_2D", 1234), OpProfile("SOFTMAX", 5)]
    assert msg.unpack_profile(msg.pack_profile(ops)) == ops


def test_short_payload_names_the_missing_bytes() -> None:
    with pytest.raises(p.MalformedPayload, match="needed"):
        msg.unpack_memory(b"\x00" * 15)


def test_error_reply_truncates_long_messages_on_a_character_boundary() -> None:
    payload = msg.pack_error(msg.ErrorReply(1, "é" * 200))
    assert msg.unpack_error(payload).message == "é" * 127


def test_info_and_model_info_end_with_build_id_and_sha256() -> None:
    info = DeviceInfo(2, 4096, 0, 1, "1", "b", "r", "0123456789abcdef")
    assert msg.pack_info(info).endswith(b"\x100123456789abcdef")
    model = ModelInfo("m", 16, 8, TensorSpec("int8", (1,)), TensorSpec("int8", (1,)), "0f" * 32)
    assert msg.pack_model_info(model).endswith(b"\x40" + b"0f" * 32)


@pytest.mark.parametrize("build_id", ["0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", ""])
def test_info_with_a_build_id_that_is_not_16_lowercase_hex_digits_is_malformed(build_id: str) -> None:
    payload = msg.pack_info(DeviceInfo(2, 4096, 0, 0, "1", "b", "r", build_id))
    with pytest.raises(p.MalformedPayload, match="build id"):
        msg.unpack_info(payload)


def test_model_info_with_a_short_sha256_is_malformed() -> None:
    payload = msg.pack_model_info(ModelInfo("m", 16, 8, TensorSpec("int8", (1,)), TensorSpec("int8", (1,)), "0f"))
    with pytest.raises(p.MalformedPayload, match="m sha256"):
        msg.unpack_model_info(payload)


def test_boot_banner_names_the_build_id() -> None:
    banner = p.boot_banner("0.1.0", "mps2/an385", "0123456789abcdef")
    assert banner == b"HIL BOOT fw=0.1.0 proto=2 board=mps2/an385 build=0123456789abcdef\r\nHIL READY\r\n"


def _fake_image(*build_ids: bytes) -> bytes:
    """An image-like blob: code bytes around each marker, and a marker-like string that is not one."""
    parts = [b"\x7fELF\x01\x01\x01" + bytes(range(256)), b"HIL_BUILD_ID=0123456789abcdefX\x00"]
    for build_id in build_ids:
        parts += [p.BUILD_ID_MARKER + build_id + b"\x00", b"\x00\xff" * 40]
    return b"".join(parts)


def test_find_build_id_reads_the_marker_of_an_image() -> None:
    assert p.find_build_id(_fake_image(b"00ff00ff12345678")) == "00ff00ff12345678"


def test_find_build_id_accepts_the_same_id_twice() -> None:
    assert p.find_build_id(_fake_image(b"00ff00ff12345678", b"00ff00ff12345678")) == "00ff00ff12345678"


@pytest.mark.parametrize(
    "near_miss", [b"00FF00FF12345678", b"00ff00ff1234567", b"00ff00ff123456789", b"00ff00ff1234567g"]
)
def test_find_build_id_ignores_a_marker_without_16_lowercase_hex_digits_and_a_nul(near_miss: bytes) -> None:
    assert p.find_build_id(_fake_image(near_miss)) is None


def test_find_build_id_refuses_an_image_with_two_different_ids() -> None:
    with pytest.raises(ProtocolError, match="00ff00ff12345678, 1111222233334444"):
        p.find_build_id(_fake_image(b"1111222233334444", b"00ff00ff12345678"))
