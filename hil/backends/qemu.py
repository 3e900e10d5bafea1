"""The QEMU backend: Zephyr firmware in qemu-system-arm, deterministic with ``-icount``.

The console UART is a TCP server on 127.0.0.1 that waits for us before the guest starts,
so no boot line is lost.
"""

from __future__ import annotations

import time

import serial

from hil import tools
from hil.backends import Backend, firmware_image, free_tcp_port, missing_firmware
from hil.backends._process import ChildProcess
from hil.config import HilConfig, Target
from hil.errors import BackendUnavailable, DeviceLost, DeviceTimeout

CONNECT_RETRY_S = 0.05


class QemuBackend(Backend):
    _qemu: ChildProcess | None = None
    _port: int = 0

    @classmethod
    def unavailable_reason(cls, target: Target, config: HilConfig) -> str | None:
        qemu = tools.simple("qemu-system-arm")
        if not qemu.usable:
            return qemu.why_not()
        return missing_firmware(target, config)

    def start(self) -> str:
        if reason := self.unavailable_reason(self.target, self.config):
            raise BackendUnavailable(reason)
        self._port = free_tcp_port()
        argv = [
            str(tools.find_on_path("qemu-system-arm")),
            "-machine", self.target.option("machine"),
            "-cpu", self.target.option("cpu", "cortex-m3"),
            "-nographic", "-monitor", "none", "-nodefaults",
            "-serial", f"tcp:127.0.0.1:{self._port},server=on,wait=on",
            # Instruction counting makes guest time a function of executed instructions only.
            "-icount", f"shift={self.target.option('icount_shift', 6)},align=off,sleep=off",
            "-rtc", "clock=vm",
            "-kernel", str(firmware_image(self.target, self.config)),
        ]  # fmt: skip
        self._qemu = ChildProcess("qemu-system-arm", argv, self.artifacts_dir / "qemu.log")
        url = f"socket://127.0.0.1:{self._port}"
        deadline = time.monotonic() + self.target.boot_timeout_s
        while time.monotonic() < deadline:
            if reason := self.exit_reason():
                raise DeviceLost(f"{reason} before its console opened; see {self.artifacts_dir / 'qemu.log'}")
            try:
                serial.serial_for_url(url, timeout=0).close()  # probe only; QEMU accepts the real client next
                return url
            except serial.SerialException:
                time.sleep(CONNECT_RETRY_S)
        self.stop()
        raise DeviceTimeout(f"QEMU console on port {self._port} did not open within {self.target.boot_timeout_s:g} s")

    def stop(self) -> None:
        if self._qemu:
            self._qemu.stop()

    def exit_reason(self) -> str | None:
        return self._qemu.exit_reason() if self._qemu else None

    def facts(self) -> dict[str, str]:
        qemu = tools.simple("qemu-system-arm")
        return {"qemu": qemu.version or "unknown", "firmware": str(firmware_image(self.target, self.config))}
