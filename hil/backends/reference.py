"""The reference backend: runs ``hil.twin`` as a child process and connects to its pty."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time

from hil.backends import Backend
from hil.config import HilConfig, Target
from hil.errors import BackendUnavailable, ConfigError, DeviceTimeout
from hil.twin import PTY_LINE_PREFIX

STOP_TIMEOUT_S = 5.0


class ReferenceBackend(Backend):
    _proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def unavailable_reason(cls, target: Target, config: HilConfig) -> str | None:
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
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        with (self.artifacts_dir / "twin-stderr.log").open("ab") as stderr:
            self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr)
        line = self._first_line(self.target.boot_timeout_s)
        if line.startswith(PTY_LINE_PREFIX):
            return line.removeprefix(PTY_LINE_PREFIX)
        self.stop()
        raise ConfigError(f"reference twin did not start: {line or self.exit_reason()}")

    def _first_line(self, timeout_s: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        line = b""
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([self._proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                self.stop()
                raise DeviceTimeout(f"reference twin printed no pty path within {timeout_s} s")
            chunk = self._proc.stdout.read1(256)
            if not chunk:
                break
            line += chunk
        return line.decode(errors="replace").strip()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with proc:  # closes the pipe and reaps the child
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=STOP_TIMEOUT_S)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def exit_reason(self) -> str | None:
        if self._proc is None or (code := self._proc.poll()) is None:
            return None
        if code < 0:
            return f"reference twin (pid {self._proc.pid}) was killed by {signal.Signals(-code).name}"
        return f"reference twin (pid {self._proc.pid}) exited with code {code}"

    def facts(self) -> dict[str, str]:
        from importlib.metadata import version

        return {"runtime": "tflite-micro " + version("tflite-micro"), "python": sys.version.split()[0]}
