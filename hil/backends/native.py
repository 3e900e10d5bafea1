"""The native backend: Zephyr's ``native_sim`` executable on this host, its UART on a pty.

The firmware's protocol UART is native_sim's first UART on a pseudo-terminal of its own
(``CONFIG_NATIVE_UART_0_ON_OWN_PTY``); at start the simulator prints
``uart connected to pseudotty: /dev/pts/N`` on stdout. Its stdout and stderr (printk, TFLM's
MicroPrintf) go to ``native_sim.log`` in the artifacts, where we also read the pty path, so
nothing can fill an unread pipe and stall the simulator.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from hil.backends import Backend, firmware_image, missing_firmware
from hil.backends._process import ChildProcess
from hil.config import HilConfig, Target
from hil.errors import BackendUnavailable, DeviceLost, DeviceTimeout
from hil.phases import SPAWN

PTY_LINE = re.compile(rb"connected to pseudotty: (/dev/pts/\d+)")
EXECUTABLE = "zephyr.exe"
LOG_NAME = "native_sim.log"
POLL_S = 0.02


class NativeBackend(Backend):
    _sim: ChildProcess | None = None

    @classmethod
    def unavailable_reason(cls, target: Target, config: HilConfig) -> str | None:
        return missing_firmware(target, config, EXECUTABLE)

    @property
    def log_path(self) -> Path:
        return self.artifacts_dir / LOG_NAME

    def start(self) -> str:
        if reason := self.unavailable_reason(self.target, self.config):
            raise BackendUnavailable(reason)
        log = self.log_path
        log.parent.mkdir(parents=True, exist_ok=True)
        offset = log.stat().st_size if log.exists() else 0
        # -rt: simulated time follows the host clock, so the protocol's 100 ms stale-frame rule
        # means 100 ms of real silence (with -no-rt idle time would race ahead). The firmware
        # times inferences on the host's monotonic clock either way.
        argv = [str(firmware_image(self.target, self.config, EXECUTABLE)), "-rt"]
        with self.phases.span(SPAWN):
            self._sim = ChildProcess("native_sim", argv, log, watchdog=True)
            return self._pty_path(log, offset)

    def _pty_path(self, log: Path, offset: int) -> str:
        deadline = time.monotonic() + self.target.boot_timeout_s
        seen = b""
        while time.monotonic() < deadline:
            with log.open("rb") as f:
                f.seek(offset)
                seen = f.read()
            if found := PTY_LINE.search(seen):
                return found.group(1).decode()
            if reason := self.exit_reason():
                raise DeviceLost(f"{reason} before it opened its UART; it printed: {seen[-300:]!r}; see {log}")
            time.sleep(POLL_S)
        self.stop()
        raise DeviceTimeout(
            f"native_sim printed no pty path within {self.target.boot_timeout_s:g} s: {seen[-300:]!r}; see {log}"
        )

    def stop(self) -> None:
        if self._sim:
            self._sim.stop()

    def exit_reason(self) -> str | None:
        return self._sim.exit_reason() if self._sim else None

    def facts(self) -> dict[str, str]:
        return {"firmware": str(firmware_image(self.target, self.config, EXECUTABLE))}
