"""The QEMU backend: Zephyr firmware in qemu-system-arm, instruction-counted with ``-icount``.

The console UART is a TCP server on 127.0.0.1 that waits for its client before the guest
starts. We wait until QEMU listens (read from /proc/net/tcp, so the wait does not use up the
one connection) and hand the port to the link, whose connection starts the guest: no boot
line is lost.

``-icount shift=N,align=off,sleep=on``: guest time advances 2**N ns per executed instruction,
so inference ticks are deterministic instruction counts, while an idle guest (waiting for the
host's next byte) sees real time pass, as a board would. With ``sleep=off`` idle time would
jump ahead to the next timer at once and the protocol's 100 ms stale-frame rule would fire
between the bytes of one request. The default shift 3 (8 ns, 125 MIPS) is the power of two
nearest the 100 MIPS the models' emulator latency budgets assume (``hil.training.EMULATOR_IPS``,
also Renode's default); set ``icount_shift`` on the target for another rate.

The protocol port: the image's own choice. Built with ``firmware/qemu.conf`` (the catalog's
``qemu:mps2_an385``), the firmware speaks over Arm semihosting (``CONFIG_HIL_PORT_SEMIHOST``) and
QEMU joins semihosting to that TCP server (``-semihosting-config chardev=``), the UART only
printing Zephyr's boot banner to ``qemu-uart.log``. QEMU 7.2's CMSDK UART takes one received byte
per turn of its main loop, 50-75 us of host time each, so a 1,960-byte keyword-spotting request
spent ~100 ms on the wire; its semihosting console takes a whole socket read (docs/firmware.md).
We tell the two apart by the image's symbols: Zephyr makes every enabled Kconfig option an
absolute symbol of the image (``misc/generated/configs.c``).

``nodelay=on`` on the console chardev: without it QEMU's socket leaves small writes to Nagle's
algorithm and every request waits ~40 ms for the delayed ACK of the reply before it (setting
TCP_NODELAY on our side alone does not help; QEMU's ``chardev/char-socket.c`` sets it on its
own socket only when asked).

Emulated cost: with ``-icount``, guest time advances exactly ``2**shift`` ns per instruction while
the guest runs, so an inference's ticks on the device clock (SysTick, counting virtual time) give
its instructions: ``ticks * 1e9 / clock_hz / 2**shift``. That is the inference itself, the span
the firmware times, without the UART handling around the request that Renode's count includes.
"""

from __future__ import annotations

import mmap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hil import tools
from hil.backends import Backend, EmulatorCost, firmware_image, free_tcp_port, missing_firmware
from hil.backends._process import ChildProcess
from hil.config import HilConfig, Target
from hil.errors import BackendUnavailable, DeviceLost, DeviceTimeout
from hil.options import QemuOptions
from hil.phases import COST, SPAWN
from hil.results import InferenceResult

T = TypeVar("T")

LISTEN_POLL_S = 0.02
SEMIHOSTING_PORT_SYMBOL = b"\0CONFIG_HIL_PORT_SEMIHOST\0"  # in the image's string table when the option is on
PROC_NET_TCP = Path("/proc/net/tcp")
TCP_LISTEN = "0A"


def uses_semihosting(image: Path) -> bool:
    """Whether firmware ``image`` (an ELF) speaks the protocol over Arm semihosting."""
    with image.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(SEMIHOSTING_PORT_SYMBOL) >= 0


def console_args(port: int, semihosting: bool, uart_log: Path) -> list[str]:
    """QEMU's options for the protocol port: a TCP server on 127.0.0.1:``port`` that waits for its client."""
    server = "server=on,wait=on,nodelay=on"
    if not semihosting:
        return ["-serial", f"tcp:127.0.0.1:{port},{server}"]
    return [
        "-serial", f"file:{uart_log}",
        "-chardev", f"socket,id=hil,host=127.0.0.1,port={port},{server}",
        "-semihosting-config", "enable=on,target=native,chardev=hil",
    ]  # fmt: skip


def _listening(port: int, proc_net_tcp: Path = PROC_NET_TCP) -> bool | None:
    """Whether something listens on 127.0.0.1:``port``; None if this OS has no /proc/net/tcp."""
    try:
        lines = proc_net_tcp.read_text().splitlines()[1:]
    except OSError:
        return None
    wanted = f"0100007F:{port:04X}"
    return any(f[1] == wanted and f[3] == TCP_LISTEN for f in (line.split() for line in lines) if len(f) > 3)


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
        with self.phases.span(SPAWN):
            return self._start()

    def _start(self) -> str:
        if reason := self.unavailable_reason(self.target, self.config):
            raise BackendUnavailable(reason)
        self._port = free_tcp_port()
        options = self.target.options_as(QemuOptions)
        image = firmware_image(self.target, self.config)
        argv = [
            str(tools.find_on_path("qemu-system-arm")),
            "-machine", options.machine,
            "-cpu", options.cpu,
            "-nographic", "-monitor", "none", "-nodefaults",
            *console_args(self._port, uses_semihosting(image), self.artifacts_dir / "qemu-uart.log"),
            "-icount", f"shift={options.icount_shift},align=off,sleep=on",
            "-rtc", "clock=vm",
            "-kernel", str(image),
        ]  # fmt: skip
        self._qemu = ChildProcess("qemu-system-arm", argv, self.artifacts_dir / "qemu.log", watchdog=True)
        deadline = time.monotonic() + self.target.boot_timeout_s
        while time.monotonic() < deadline:
            if reason := self.exit_reason():
                raise DeviceLost(f"{reason} before its console opened; see {self.artifacts_dir / 'qemu.log'}")
            listening = _listening(self._port)
            if listening is None:
                time.sleep(0.5)  # no /proc: give QEMU a moment; the link retries its connect
                return f"socket://127.0.0.1:{self._port}"
            if listening:
                return f"socket://127.0.0.1:{self._port}"
            time.sleep(LISTEN_POLL_S)
        self.stop()
        raise DeviceTimeout(f"QEMU console on port {self._port} did not open within {self.target.boot_timeout_s:g} s")

    def stop(self) -> None:
        if self._qemu:
            self._qemu.stop()

    def cost_of(self, action: Callable[[], T]) -> tuple[T, EmulatorCost | None]:
        """Run ``action``; for an inference, its instructions from its ticks (see the module docstring)."""
        started = time.monotonic()
        result = action()
        ended = time.monotonic()
        if not isinstance(result, InferenceResult) or not result.clock_hz:
            return result, None
        virtual_s = result.ticks / result.clock_hz
        shift = self.target.options_as(QemuOptions).icount_shift
        cost = EmulatorCost(round(virtual_s * 1e9 / 2**shift), virtual_s, ended - started)
        self.phases.add(COST, started, ended, instructions=cost.instructions, virtual_s=round(virtual_s, 6))
        return result, cost

    def exit_reason(self) -> str | None:
        return self._qemu.exit_reason() if self._qemu else None

    def facts(self) -> dict[str, str]:
        qemu = tools.simple("qemu-system-arm")
        image = firmware_image(self.target, self.config)
        port = "semihosting" if image.is_file() and uses_semihosting(image) else "UART"
        return {"qemu": qemu.version or "unknown", "firmware": str(image), "protocol port": port}
