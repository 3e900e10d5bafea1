"""The reference backend: runs ``hil.twin`` as a child process and connects to its pty."""

from __future__ import annotations

import select
import subprocess
import sys
import time

from hil.backends import Backend
from hil.backends._process import ChildProcess
from hil.config import HilConfig, Target
from hil.errors import BackendUnavailable, ConfigError, DeviceTimeout
from hil.twin import PTY_LINE_PREFIX


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
        argv += [arg for model in self.target.option("models", []) for arg in ("--model", model)]
        self._twin = ChildProcess("reference twin", argv, self.artifacts_dir / "twin.log", stdout=subprocess.PIPE)
        line = self._first_line(self.target.boot_timeout_s)
        if line.startswith(PTY_LINE_PREFIX):
            return line.removeprefix(PTY_LINE_PREFIX)
        reason = self.exit_reason()
        self.stop()
        raise ConfigError(f"reference twin did not start: {line or reason}")

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
