"""The Device contract over a real pty to the reference twin: failures and recovery."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hil import messages as msg
from hil.backends import Backend
from hil.config import HilConfig, Target, load_config
from hil.errors import ConfigError, DeviceError, DeviceLost, DeviceTimeout, SensorUnavailable
from hil.session import HilSession
from hil.stimuli import load_stimulus

ZERO = np.zeros((1, 1), dtype=np.int8)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[HilSession]:
    s = HilSession("pytest", "reference", None, tmp_path)
    yield s
    s.close()


def test_killed_twin_fails_fast_with_how_it_ended(session: HilSession) -> None:
    device = session.device()
    os.kill(device.backend.pid, signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(DeviceLost, match="killed by SIGKILL"):
        device.infer("sine", ZERO)
    assert time.monotonic() - started < 2


def test_hung_twin_times_out_and_is_restarted_for_the_next_test(session: HilSession) -> None:
    device = session.device()
    pid = device.backend.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(DeviceTimeout, match=r"no INFER \(seq \d+\) within 0.3 s"):
            device.infer("sine", ZERO, timeout_s=0.3)
        assert device.lost_reason()
    finally:
        os.kill(pid, signal.SIGCONT)
    restarted = session.device()
    assert restarted.backend.pid != pid
    assert restarted.infer("sine", ZERO).output.shape == (1, 1)


def test_reset_reboots_and_answers_again(session: HilSession) -> None:
    device = session.device()
    boots = sum(line.startswith("HIL BOOT") for line in device.console_tail(100))
    device.reset()
    assert sum(line.startswith("HIL BOOT") for line in device.console_tail(100)) == boots + 1
    assert device.lost_reason() is None


def test_unknown_model_names_what_the_device_serves(session: HilSession) -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'nope': reference serves .*sine"):
        session.device().model("nope")


GESTURE_STIMULI = Path(__file__).parents[2] / "models" / "gesture" / "stimuli"


def test_twin_accelerometer_raises_the_same_events_as_fed_samples(session: HilSession) -> None:
    stimulus = GESTURE_STIMULI / "sequence.csv"
    _, fed = session.stream_stimulus("gesture", stimulus, "protocol")
    _, sensed = session.stream_stimulus("gesture", stimulus, "sensor")
    assert len(fed) == 4
    assert sensed == fed  # same samples, same windowing: same sample numbers, classes and scores
    assert not (session.artifacts_dir / "twin-accelerometer.f32").exists()  # the twin took the recording


def test_twin_refuses_feed_during_a_sensor_stream_and_sensor_streams_of_non_streaming_models(
    session: HilSession,
) -> None:
    device = session.device()
    device.start_stream("gesture", hop=16, threshold=0.95, source=msg.SOURCE_SENSOR)
    with pytest.raises(DeviceError, match="FEED needs source 0"):
        device.feed(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(DeviceError, match="sine has no sensor stream in its manifest"):
        device.start_stream("sine", hop=1, threshold=0.5, source=msg.SOURCE_SENSOR)


def test_sensor_stream_where_no_sensor_can_be_fed_is_unavailable(tmp_path: Path) -> None:
    class BoardDouble(Backend):  # test double: a backend with none of the optional abilities
        @classmethod
        def unavailable_reason(cls, target: Target, config: HilConfig) -> str | None:  # noqa: ARG003
            return None

        def start(self) -> str:
            return "loop://"

        def stop(self) -> None:
            pass

    config = load_config(None)
    backend = BoardDouble(config.target("board:nrf52840dk"), config, tmp_path)
    with pytest.raises(SensorUnavailable, match=r"board:nrf52840dk has no emulated sensor .*\(board backend\)"):
        backend.play_into_sensor(load_stimulus(GESTURE_STIMULI / "idle_only.csv"))
    assert backend.cost_of(lambda: 42) == (42, None)
    assert backend.save_snapshot(tmp_path / "x.save") is None


def test_failed_test_snapshots_the_machine_where_the_backend_can(
    session: HilSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = session.device()
    assert session.snapshot_after_failure("suite.Sine Fails") is None  # the twin cannot snapshot

    def save_snapshot(path: Path) -> Path:  # test double for an emulator's Save
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("machine state")
        return path

    monkeypatch.setattr(device.backend, "save_snapshot", save_snapshot)
    session.recorder.start_test("suite", "Sine Fails")
    saved = session.snapshot_after_failure("suite.Sine Fails: with/odd chars")
    session.recorder.end_test("FAIL", "broken")
    assert saved == session.artifacts_dir / "snapshots" / "suite.Sine_Fails_with_odd_chars.save"
    assert saved.read_text() == "machine state"
    records = session.recorder.path.read_text()
    assert str(saved) in records
