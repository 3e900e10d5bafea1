"""The Renode backend: Zephyr firmware in the Renode emulator.

This release finds Renode and checks its version; running suites in Renode is not
implemented yet, so an installed Renode still reports the target unavailable, saying so.
"""

from __future__ import annotations

from hil import tools
from hil.backends import Backend, missing_firmware
from hil.config import HilConfig, Target
from hil.errors import BackendUnavailable


class RenodeBackend(Backend):
    @classmethod
    def unavailable_reason(cls, target: Target, config: HilConfig) -> str | None:
        renode = tools.renode()
        if not renode.usable:
            return renode.why_not()
        if reason := missing_firmware(target, config):
            return reason
        return "the Renode backend cannot start machines yet (Renode and firmware were found)"

    def start(self) -> str:
        raise BackendUnavailable(self.unavailable_reason(self.target, self.config) or "Renode backend unavailable")

    def stop(self) -> None:
        """Nothing was started."""

    def facts(self) -> dict[str, str]:
        renode = tools.renode()
        return {"renode": renode.version or "not found"}
