"""The sine model on the device under test; runs unchanged on every target (--hil-target)."""

from __future__ import annotations

import numpy as np
import pytest

from hil import messages as msg
from hil import protocol as p
from hil.device import Device
from hil.errors import ConfigError, DeviceError
from hil.session import HilSession


def test_device_serves_sine(dut: Device) -> None:
    assert "sine" in dut.models


def test_inference_matches_golden_vectors(hil: HilSession) -> None:
    hil.check_golden("sine")


def test_error_on_eval_set_stays_under_ceiling(hil: HilSession) -> None:
    hil.check_evaluation("sine")  # mae: an error with a ceiling


def test_sine_of_half_pi_is_one(dut: Device) -> None:
    result = dut.infer_values("sine", [np.pi / 2])
    assert dut.dequantize(result).item() == pytest.approx(1.0, abs=0.1)


def test_quantized_input_gives_the_same_answer(dut: Device) -> None:
    x = dut.quantize("sine", [np.pi / 2])
    assert x.dtype == np.int8
    assert dut.infer("sine", x).output.tolist() == dut.infer_values("sine", [np.pi / 2]).output.tolist()


def test_latency_within_budget(hil: HilSession) -> None:
    hil.check_latency("sine")


def test_arena_within_budget(hil: HilSession) -> None:
    hil.check_arena("sine")


def test_wrong_dtype_is_refused_by_host(dut: Device) -> None:
    with pytest.raises(ConfigError, match="wrong input dtype for sine"):
        dut.infer("sine", np.zeros((1, 1), dtype=np.float32))


def test_wrong_size_is_refused_by_device(dut: Device) -> None:
    request = msg.pack_infer_request(msg.InferRequest("sine", 9, b"\x01\x02"))
    with pytest.raises(DeviceError, match="BAD_SIZE") as info:
        dut.link.request(p.MsgType.INFER, request)
    assert info.value.code == p.ErrorCode.BAD_SIZE


def test_unknown_model_is_refused_by_device(dut: Device) -> None:
    request = msg.pack_infer_request(msg.InferRequest("no_such_model", 9, b"\x01"))
    with pytest.raises(DeviceError, match="unknown model 'no_such_model'"):
        dut.link.request(p.MsgType.INFER, request)


def test_device_resynchronises_after_garbage(dut: Device, hil: HilSession) -> None:
    dut.link.write_raw(bytes.fromhex("00ffa55a0307ffff414243a55a01020300deadbe"))
    hil.check_golden("sine")


def test_echo_round_trips_a_full_payload(dut: Device) -> None:
    data = bytes(range(256)) * (dut.info.max_payload_bytes // 256)
    assert dut.echo(data) == data


def test_streaming_raises_one_event_at_the_sine_peak(dut: Device) -> None:
    x = np.linspace(0.0, 2 * np.pi, 400, dtype=np.float32)
    dut.start_stream("sine", hop=1, threshold=0.9, refractory_samples=400)
    events = dut.feed(x.reshape(-1, 1))
    totals = dut.stop_stream()
    assert (totals.samples, totals.inferences, totals.events) == (400, 400, 1)
    (event,) = events
    assert abs(x[event.sample - 1] - np.pi / 2) < 0.5  # the first window whose output reaches 0.9
    assert event.score >= 0.9


def test_feed_without_stream_is_refused_by_device(dut: Device) -> None:
    with pytest.raises(DeviceError, match="UNSUPPORTED"):
        dut.link.request(p.MsgType.FEED, msg.pack_feed(np.zeros((1, 1))))
