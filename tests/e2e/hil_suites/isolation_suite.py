"""Per-test isolation on an emulated target: what one test leaves behind, the next never sees.

The first test dirties everything a test can dirty: a stream left running with samples in its
window, half a frame on the line, and a recording queued in the emulated accelerometer that was
never streamed. The second test proves it starts from a freshly reset device: the device booted
again, no stream runs, a new stream's window starts empty, and the accelerometer plays only what
this test queues (an idle recording raises no gesture; the leftover gesture recording would).

Not collected by the project's own test run: ``tests/e2e/test_renode.py`` runs it with
``pytest tests/e2e/hil_suites/isolation_suite.py --hil-target renode:…``. Targets whose backend
cannot reset the machine between tests (boards, the twin) skip it with the reason.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from hil import messages as msg
from hil import protocol as p
from hil.backends import Backend
from hil.device import Device
from hil.errors import DeviceError, SensorUnavailable
from hil.session import HilSession
from hil.stimuli import load_stimulus

BOOTS_KEY = pytest.StashKey[int]()


@pytest.fixture
def resettable(dut: Device) -> Device:
    """The device, on a backend that can reset the machine between tests (whether the target does it or not)."""
    if type(dut.backend).machine_reset is Backend.machine_reset:
        pytest.skip(f"{dut.target.name}: its backend cannot reset the machine between tests")
    return dut


def _boots(dut: Device) -> int:
    return sum(1 for line in dut.link.console if line.startswith(p.BOOT_LINE_PREFIX))


def test_a_test_leaves_the_device_dirty(resettable: Device, hil: HilSession, request: pytest.FixtureRequest) -> None:
    dut = resettable
    dut.start_stream("sine", hop=1, threshold=2.0)  # an output never reaches 2.0: no events, a full window
    dut.feed(np.linspace(0.0, 1.0, 8, dtype=np.float32).reshape(-1, 1))
    with contextlib.suppress(SensorUnavailable):  # a target without an emulated accelerometer: the rest counts
        dut.play_into_sensor(load_stimulus(hil.zoo.root / "gesture" / "stimuli" / "sequence.csv"))
    dut.link.write_raw(p.SYNC + bytes([p.MsgType.ECHO, 7, 64, 0]) + b"half")  # 4 of 64 payload bytes
    request.config.stash[BOOTS_KEY] = _boots(dut)


def test_the_next_test_starts_from_a_freshly_reset_device(
    resettable: Device, hil: HilSession, request: pytest.FixtureRequest
) -> None:
    dut = resettable
    boots_before = request.config.stash.get(BOOTS_KEY, None)
    if boots_before is None:
        pytest.skip("needs the file's first test (the one that leaves the device dirty) to run before it")
    assert _boots(dut) > boots_before, "the device did not boot again between the tests"
    with pytest.raises(DeviceError, match="UNSUPPORTED"):  # FEED outside a stream: the old stream is gone
        dut.link.request(p.MsgType.FEED, msg.pack_feed(np.zeros((1, 1))))
    assert dut.echo(b"whole") == b"whole"  # the half frame went with the reset
    dut.start_stream("sine", hop=1, threshold=2.0)
    dut.feed(np.zeros((3, 1), dtype=np.float32))
    totals = dut.stop_stream()
    assert (totals.samples, totals.inferences) == (3, 3), "the new stream saw samples of the old one"
    with contextlib.suppress(SensorUnavailable):
        hil.check_stream("gesture", hil.zoo.root / "gesture" / "stimuli" / "idle_only.csv", "sensor")
