"""The reference backend: runs ``hil.twin`` as a child process and connects to its pty.

The twin's emulated accelerometer is a file in the artifacts folder: :meth:`play_into_sensor`
leaves a recording there and the twin takes it at the next sensor-source ``STREAM_START``
(target option ``accelerometer = false``: a twin without one).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hil.backends import Backend, SensorPlayback
from hil.backends._process import ChildProcess
from hil.config import HilConfig, Target
from hil.errors import BackendUnavailable, ConfigError, DeviceTimeout
from hil.models import ModelZoo
from hil.options import ReferenceOptions
from hil.stimuli import Stimulus
from hil.twin import PTY_LINE_PREFIX


class _TwinPlayback(SensorPlayback):
    def played(self) -> bool:
        return not self.path.exists()  # the twin deletes the file once it has read every sample


class ReferenceBackend(Backend):
    _twin: ChildProcess | None = None

    @classmethod
    def unavailable_reason(cls, target: Target, config: HilConfig) -> str | None:  # noqa: ARG003 - same for all
        try:
            import tflite_micro  # noqa: F401 - only checking that it imports
        except ImportError:
            return "the TFLM Python runtime is missing: pip install --pre tflite-micro"
        if not config.models_dir.is_dir():
            return f"no models directory at {config.models_dir}: set models_dir in hil.toml"
        return None

    def start(self) -> str:
        if reason := self.unavailable_reason(self.target, self.config):
            raise BackendUnavailable(reason)
        argv = [sys.executable, "-m", "hil.twin", "--models", str(self.config.models_dir), "--board", self.target.name]
        argv.append("--exit-on-close")  # the host closing the port (or dying) ends the twin
        if self._has_accelerometer:
            argv += ["--sensor-file", str(self.sensor_file)]
            self.sensor_file.unlink(missing_ok=True)  # a recording left by an earlier run is not this run's
        self.check_target(self.target, self.config)
        argv += [arg for model in self._options.models or () for arg in ("--model", model)]
        # Its own process group: a Ctrl-C meant for the suite does not kill the device under it.
        log = self.artifacts_dir / "twin.log"
        self._twin = ChildProcess(
            "reference twin", argv, log, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, own_group=True
        )
        line = self._first_line(self.target.boot_timeout_s)
        if line.startswith(PTY_LINE_PREFIX):
            return line.removeprefix(PTY_LINE_PREFIX)
        reason = self.exit_reason()
        self.stop()
        raise ConfigError(f"reference twin did not start: {line or reason}")

    @classmethod
    def check_target(cls, target: Target, config: HilConfig) -> None:
        """The models the target serves (option ``models``, default all) exist and their folders check out."""
        models = target.options_as(ReferenceOptions).models
        zoo = ModelZoo(config.models_dir)
        for name in models or ():
            if name not in zoo.names():
                raise ConfigError(f"target {target.name}: models: {zoo.unknown(name)}")
        zoo.check(list(models) if models else None)

    def _first_line(self, timeout_s: float) -> str:
        """The twin's first stdout line, read without blocking past ``timeout_s``."""
        stdout = self._twin.popen.stdout if self._twin and self._twin.popen else None
        if stdout is None:
            return ""
        deadline = time.monotonic() + timeout_s
        line = b""
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                self.stop()
                raise DeviceTimeout(f"reference twin printed no pty path within {timeout_s:g} s")
            chunk = stdout.read1(256)
            if not chunk:
                break
            line += chunk
        return line.decode(errors="replace").strip()

    @property
    def _options(self) -> ReferenceOptions:
        return self.target.options_as(ReferenceOptions)

    @property
    def sensor_file(self) -> Path:
        return self.artifacts_dir / "twin-accelerometer.f32"

    @property
    def _has_accelerometer(self) -> bool:
        """Target option ``accelerometer = false`` plays a device without one."""
        return self._options.accelerometer

    def play_into_sensor(self, stimulus: Stimulus) -> SensorPlayback:
        if not self._has_accelerometer:
            return super().play_into_sensor(stimulus)
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        partial = self.sensor_file.with_suffix(".partial")
        np.asarray(stimulus.samples, dtype="<f4").tofile(partial)
        os.replace(partial, self.sensor_file)  # the twin never sees half a recording
        return _TwinPlayback(self.sensor_file, stimulus)

    def stop(self) -> None:
        if self._twin:
            self._twin.stop()

    @property
    def pid(self) -> int | None:
        return self._twin.popen.pid if self._twin and self._twin.popen else None

    def exit_reason(self) -> str | None:
        return self._twin.exit_reason() if self._twin else None

    def facts(self) -> dict[str, str]:
        from importlib.metadata import version

        return {"runtime": "tflite-micro " + version("tflite-micro"), "python": sys.version.split()[0]}
