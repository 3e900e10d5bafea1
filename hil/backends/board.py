"""The board backend: a board on the bench, found, locked, flashed and brought up by ``hil.lab``.

``hil run`` takes the board once for the whole run (:meth:`BoardBackend.hold_for_run`) and hands
it to its Robot and pytest processes; ``robot`` or ``pytest`` run directly take it themselves
(waiting ``$HIL_LAB_WAIT`` seconds for a busy one) and bring it up without flashing unless the
target names a ``firmware``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hil.backends import BOARD_ERROR_ENV, Backend, BenchRequest
from hil.config import HilConfig, Target
from hil.errors import BoardError, ConfigError, DeviceLost, HilError
from hil.lab.bench import LEASE_ENV, Lab, Lease
from hil.lab.image import FirmwareImage, load_image
from hil.lab.strategy import BoardStrategy, wait_for_port
from hil.options import BoardOptions


class BoardBackend(Backend):
    _lease: Lease | None = None

    @classmethod
    def unavailable_reason(cls, target: Target, config: HilConfig) -> str | None:
        try:
            lab = Lab.load(config)
            if lab.handed_down(target):
                return None
            boards = lab.boards_for(target)
        except HilError as err:
            return str(err)
        reasons = [lab.why_not(board) for board in boards]
        if all(reasons):
            return "; ".join(r for r in reasons if r)
        ports = {board.id: lab.status(board).port for board in boards}
        if all(state == "no" for state in ports.values()):
            names = ", ".join(f"{b.id} ({b.serial})" for b in boards)
            return f"no console port of {names} exists: connect the board, or fix serial in the lab file"
        return None

    @classmethod
    @contextmanager
    def hold_for_run(cls, target: Target, config: HilConfig, request: BenchRequest) -> Iterator[dict[str, str]]:
        lab = Lab.load(config)
        purpose = f"hil run {target.name}"
        with lab.lease(
            target,
            fixtures=request.fixtures,
            wait_s=request.wait_s,
            ignore_quarantine=request.ignore_quarantine,
            purpose=purpose,
        ) as lease:
            image = _image(target, config, request.firmware, request.artifacts_dir)
            BoardStrategy(lab, lease, request.artifacts_dir).bring_up(image, force_flash=request.force_flash)
            yield {LEASE_ENV: lease.to_env()}

    def start(self) -> str:
        if message := os.environ.get(BOARD_ERROR_ENV):
            raise BoardError(self.target.name, message)
        lab = Lab.load(self.config)
        lease = lab.handed_down(self.target)
        if lease is None:
            wait_s = _wait_s()
            lease = lab.lease(self.target, wait_s=wait_s, purpose=f"{self.target.name} (pid {os.getpid()})")
            try:
                image = _image(self.target, self.config, None, self.artifacts_dir)
                BoardStrategy(lab, lease, self.artifacts_dir).bring_up(image)
            except BaseException:
                lease.release()
                raise
        self._lease = lease
        if not wait_for_port(lease.console_url, lease.board.boot_timeout_s):
            raise DeviceLost(
                f"board {lease.board.id}: console {lease.console_url} did not come back within "
                f"{lease.board.boot_timeout_s:g} s (unplugged, or still re-enumerating?)"
            )
        return lease.console_url

    def stop(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()

    def serial_options(self) -> dict[str, Any]:
        board = self._lease.board if self._lease else None
        return {"baudrate": board.baud, "dtr_rts": board.dtr_rts} if board else {}

    def facts(self) -> dict[str, str]:
        if self._lease is None:
            return {}
        return {"serial": self._lease.console_url, "board_id": self._lease.board.id, **self._lease.facts}


def _wait_s() -> float:
    raw = os.environ.get("HIL_LAB_WAIT", "0")
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ConfigError(f"$HIL_LAB_WAIT must be seconds, got {raw!r}") from None


def _image(target: Target, config: HilConfig, given: Path | None, work_dir: Path) -> FirmwareImage | None:
    """The image a run asks for: ``--firmware``, else the target's ``firmware`` option, else none."""
    if given is None and (option := target.options_as(BoardOptions).firmware):
        given = config.root / option
    return load_image(given, work_dir / "images") if given else None
