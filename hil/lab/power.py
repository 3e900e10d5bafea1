"""Power drivers: a board's own on/off/cycle commands (uhubctl, a relay script, a PDU's CLI) or
its labgrid place's power resource. Both implement the same three verbs, as labgrid's
``PowerProtocol`` does."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path

from hil.errors import BoardError
from hil.lab.commands import run_or_fail
from hil.lab.inventory import LabBoard
from hil.lab.labgrid_place import LabgridPlace

POWER_TIMEOUT_S = 60.0


class PowerDriver(ABC):
    @abstractmethod
    def on(self) -> None: ...

    @abstractmethod
    def off(self) -> None: ...

    @abstractmethod
    def cycle(self) -> None: ...


class CommandPower(PowerDriver):
    """The lab entry's ``power_on``/``power_off``/``power_cycle`` commands (argv, no shell)."""

    def __init__(self, board: LabBoard, log: Path) -> None:
        self.board = board
        self.log = log

    def _run(self, what: str, argv: tuple[str, ...]) -> None:
        if not argv:
            raise BoardError(self.board.id, f"no {what} command: set {what} in the lab file")
        run_or_fail(self.board.id, what.replace("_", " "), argv, POWER_TIMEOUT_S, self.log)

    def on(self) -> None:
        self._run("power_on", self.board.power_on)

    def off(self) -> None:
        self._run("power_off", self.board.power_off)

    def cycle(self) -> None:
        if self.board.power_cycle:
            self._run("power_cycle", self.board.power_cycle)
            return
        self.off()
        time.sleep(self.board.power_off_s)  # let the supply drain, as a person unplugging would
        self.on()


class PlacePower(PowerDriver):
    """Power through the labgrid place's power resource, on the exporter's host."""

    def __init__(self, place: LabgridPlace) -> None:
        self.place = place

    def on(self) -> None:
        self.place.power("on")

    def off(self) -> None:
        self.place.power("off")

    def cycle(self) -> None:
        self.place.power("cycle")


def power_for(board: LabBoard, place: LabgridPlace | None, log: Path) -> PowerDriver | None:
    """The board's power driver: its own commands first, else its labgrid place; None without either."""
    if board.power_on or board.power_cycle:
        return CommandPower(board, log)
    if place is not None:
        return PlacePower(place)
    return None
