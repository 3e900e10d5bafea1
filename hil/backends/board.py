"""The board backend: a flashed board on the bench, its console on a serial port.

``serial`` may be a device path (prefer /dev/serial/by-id/...) or any pyserial URL, such as
``hwgrep://0483:374B`` to find an ST-LINK by USB ids or ``rfc2217://host:port`` for a remote port.
"""

from __future__ import annotations

from pathlib import Path

from serial.tools import list_ports

from hil.backends import Backend
from hil.config import HilConfig, Target
from hil.errors import BackendUnavailable


def _port_missing(url: str) -> str | None:
    if url.startswith("hwgrep://"):
        pattern = url.removeprefix("hwgrep://")
        if any(True for _ in list_ports.grep(pattern)):
            return None
        return f"no serial port matches {pattern}: connect the board, or set serial for this target in hil.toml"
    if "://" in url or Path(url).exists():
        return None
    return f"serial port {url} does not exist: connect the board, or set serial for this target in hil.toml"


class BoardBackend(Backend):
    @classmethod
    def unavailable_reason(cls, target: Target, config: HilConfig) -> str | None:  # noqa: ARG003 - same for all
        url = target.option("serial")
        if not url:
            return f"target {target.name} has no serial port: set serial in hil.toml"
        return _port_missing(url)

    def start(self) -> str:
        if reason := self.unavailable_reason(self.target, self.config):
            raise BackendUnavailable(reason)
        return self.target.option("serial")

    def stop(self) -> None:
        """The board stays powered; nothing was started."""

    def facts(self) -> dict[str, str]:
        return {"serial": str(self.target.option("serial"))}
