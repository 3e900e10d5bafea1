"""The native backend: Zephyr's ``native_sim`` executable on this host, its UART on a pty."""

from __future__ import annotations

import re
import select
import subprocess
import time

from hil.backends import Backend, firmware_image, missing_firmware
from hil.backends._process import ChildProcess
from hil.config import HilConfig, Target
from hil.errors import BackendUnavailable, DeviceLost, DeviceTimeout

PTY_LINE = re.compile(rb"connected to pseudotty: (/dev/pts/\d+)")
EXECUTABLE = "zephyr.exe"


class NativeBackend(Backend):
    _sim: ChildProcess | None = None

    @classmethod
    def unavailable_reason(cls, target: Target, config: HilConfig) -> str | None:
        return missing_firmware(target, config, EXECUTABLE)

    def start(self) -> str:
        if reason := self.unavailable_reason(self.target, self.config):
            raise BackendUnavailable(reason)
        # -no-rt: simulated time runs as fast as the host allows; the firmware's tick counts stay exact.
        argv = [str(firmware_image(self.target, self.config, EXECUTABLE)), "-no-rt"]
        self._sim = ChildProcess("native_sim", argv, self.artifacts_dir / "native_sim.log", stdout=subprocess.PIPE)
        return self._pty_path()

    def _pty_path(self) -> str:
        stdout = self._sim.popen.stdout if self._sim and self._sim.popen else None
        deadline = time.monotonic() + self.target.boot_timeout_s
        seen = b""
        while stdout and time.monotonic() < deadline:
            ready, _, _ = select.select([stdout], [], [], max(0.0, deadline - time.monotonic()))
            chunk = stdout.read1(4096) if ready else b""
            if ready and not chunk:
                raise DeviceLost(f"{self.exit_reason() or 'native_sim closed stdout'}; it printed: {seen[-300:]!r}")
            seen += chunk
            if found := PTY_LINE.search(seen):
                return found.group(1).decode()
        self.stop()
        raise DeviceTimeout(f"native_sim printed no pty path within {self.target.boot_timeout_s:g} s: {seen[-300:]!r}")

    def stop(self) -> None:
        if self._sim:
            self._sim.stop()

    def exit_reason(self) -> str | None:
        return self._sim.exit_reason() if self._sim else None

    def facts(self) -> dict[str, str]:
        return {"firmware": str(firmware_image(self.target, self.config, EXECUTABLE))}
