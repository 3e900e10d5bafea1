"""Recordings played into a Renode target's emulated accelerometer, in virtual time.

File-fed models (ADXL345, LSM9DS1) hand out one queued sample per sample read, whatever the
virtual time: the firmware reads at the model's rate on its own timer. RESD-fed models (LSM6DSO)
follow virtual time from the moment they are fed. Either way the recording has played once the
virtual time of all of it (plus a margin and one hop) has passed since it was queued; the
playback then runs the emulation through exactly that much virtual time at once
(:meth:`VirtualTimePlayback.run_to_end`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from hil import resd
from hil.backends import SensorPlayback
from hil.backends.renode.monitor import MONITOR_COMMAND_TIMEOUT_S, EmulatorCounters
from hil.backends.renode.script import accelerometer, options
from hil.config import Target
from hil.errors import SensorUnavailable
from hil.stimuli import Stimulus

# The last window's inference and its event frame must fit in this much virtual time after the
# recording's last sample (gesture on a 64 MHz M4: ~10 ms).
PLAYBACK_TAIL_S = 0.5
PLAYBACK_RATE_MARGIN = 1.05


class Emulation(Protocol):
    """What a playback needs of the backend (``RenodeBackend``)."""

    def counters(self) -> EmulatorCounters: ...

    def execute(self, command: str, timeout_s: float = MONITOR_COMMAND_TIMEOUT_S) -> str: ...

    def fast_forward(self) -> AbstractContextManager[None]: ...

    def paused(self) -> AbstractContextManager[None]: ...


def queue_recording(emulation: Emulation, target: Target, artifacts_dir: Path, stimulus: Stimulus) -> SensorPlayback:
    """Write the recording in the sensor model's format next to the artifacts and queue it in the sensor."""
    sensor = accelerometer(target)
    if sensor is None:
        raise SensorUnavailable(
            f"target {target.name} has no emulated accelerometer: "
            + str(
                options(target).sensor_unavailable
                or "set accelerometer (e.g. sysbus.i2c1.adxl345) in hil.toml, with the firmware built for a "
                "sensor at that address"
            )
        )
    stem = f"stimulus-{stimulus.path.stem}-{sensor.name}"
    now_s = emulation.counters().virtual_time_s
    if sensor.model.feed == "resd":
        path = resd.stimulus_to_resd(stimulus, artifacts_dir / f"{stem}.resd")
        emulation.execute(resd.resd_feed_command(sensor.path, path, sample_offset_ns=-round(now_s * resd.NS_PER_S)))
    else:
        path = resd.write_feed_file(stimulus, artifacts_dir / f"{stem}.data", sensor.model.key)
        emulation.execute(resd.feed_file_command(sensor.path, path, sensor.model.key))
    return VirtualTimePlayback(path, stimulus, emulation, now_s)


class VirtualTimePlayback(SensorPlayback):
    def __init__(self, path: Path, stimulus: Stimulus, emulation: Emulation, fed_at_s: float) -> None:
        super().__init__(path, stimulus)
        self._backend = emulation
        # Timer ticks round the firmware's sample period up (20 ms is 656 ticks of 32768 Hz on nRF):
        # allow a few percent more than the recording.
        self._until_s = (
            fed_at_s + stimulus.duration_s * PLAYBACK_RATE_MARGIN + 1 / stimulus.sample_rate_hz + PLAYBACK_TAIL_S
        )

    def played(self) -> bool:
        return self._backend.counters().virtual_time_s >= self._until_s

    def run_to_end(self, timeout_s: float) -> bool:
        """Run exactly the virtual time left of the recording, as fast as the host allows, then go on.

        ``emulation RunFor`` runs a paused emulation for that long and pauses it again
        (``Emulation.RunFor``, ``MasterTimeSource.RunFor``): the firmware samples the same samples
        at the same virtual times as in real time, with no overshoot of virtual time to poll for.
        """
        backend = self._backend
        with backend.paused():
            left_s = self._until_s - backend.counters().virtual_time_s
            if left_s > 0:
                with backend.fast_forward():
                    backend.execute(f'emulation RunFor "{left_s:.6f}"', timeout_s)
        return True
