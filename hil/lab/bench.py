"""The bench as a whole: which boards serve a target, which are free, and leases on them.

A :class:`Lease` is one run's hold on one board: a local lock (always) and, for a board in a
labgrid place, the place itself. ``hil run`` takes the lease, brings the board up once, and
hands the lease to its Robot and pytest processes in ``$HIL_LAB_LEASE``; they use the board
without locking it again, and only while the lock's holder is the process that gave it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serial.tools import list_ports

from hil.config import HilConfig, Target
from hil.errors import BackendUnavailable, BoardBusy, ConfigError
from hil.lab.flashers import flasher_for
from hil.lab.inventory import LabBoard, board_from_target, load_lab_file
from hil.lab.labgrid_place import LabgridPlace
from hil.lab.state import BoardLock, Holder, Quarantine, wait_until

LEASE_ENV = "HIL_LAB_LEASE"


@dataclass
class Lease:
    """A run's hold on one board; release it on every exit path (it is a context manager)."""

    board: LabBoard
    console_url: str
    lock: BoardLock | None = None
    place: LabgridPlace | None = None
    holder_pid: int = field(default_factory=os.getpid)
    facts: dict[str, str] = field(default_factory=dict)  # what bring-up found, for the results

    @property
    def owned(self) -> bool:
        """True in the process that took the lease; False where it was handed down."""
        return self.holder_pid == os.getpid()

    def release(self) -> None:
        if not self.owned:
            return
        place, self.place = self.place, None
        if place is not None:
            place.release()
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def to_env(self) -> str:
        return json.dumps(
            {"board": self.board.id, "console": self.console_url, "holder_pid": self.holder_pid, "facts": self.facts}
        )


@dataclass(frozen=True, slots=True)
class BoardStatus:
    board: LabBoard
    targets: tuple[str, ...]
    port: str  # "yes", "no", or how it is reached (labgrid, URL)
    tool: str | None  # why the flash tool cannot run, None when it can
    holder: Holder | None
    quarantined: str | None  # since when


class Lab:
    """The boards of the lab file (or the one board a hil.toml target describes)."""

    def __init__(self, config: HilConfig, boards: tuple[LabBoard, ...], source: Path | None) -> None:
        self.config = config
        self.boards = boards
        self.source = source
        self.quarantine = Quarantine(config.lab_state_dir)

    @classmethod
    def load(cls, config: HilConfig, lab_file: Path | None = None) -> Lab:
        path = lab_file or config.lab_file
        boards = load_lab_file(path) if path else ()
        return cls(config, boards, path)

    # --- which boards serve a target ---------------------------------------------------------

    def targets_of(self, board: LabBoard) -> tuple[str, ...]:
        """The ``board:`` targets a board serves: catalog targets for its platform, and its own id."""
        named = [
            t.name
            for t in self.config.targets.values()
            if t.backend == "board" and t.zephyr_board and board.runs_on(t.zephyr_board)
        ]
        if not named:
            named = [f"board:{board.platform.replace('/', '_')}"]
        return (*named, f"board:{board.id}")

    def boards_for(self, target: Target, fixtures: tuple[str, ...] = ()) -> list[LabBoard]:
        name = target.name.removeprefix("board:")
        matches = [b for b in self.boards if b.id == name]
        if not matches:
            platform = target.zephyr_board or name
            matches = [b for b in self.boards if b.runs_on(platform) or b.runs_on(name)]
        if not matches and target.options.as_written().get("serial"):
            matches = [board_from_target(target)]  # a hil.toml board target without a lab file
        if not matches:
            where = f"lab file {self.source}" if self.source else "no lab file (give --lab, [lab] file in hil.toml)"
            known = ", ".join(b.id for b in self.boards) or "none"
            raise ConfigError(f"no board serves {target.name}: {where}; boards: {known}")
        if fixtures:
            fitting = [b for b in matches if set(fixtures) <= set(b.fixtures)]
            if not fitting:
                have = "; ".join(f"{b.id}: {', '.join(b.fixtures) or 'none'}" for b in matches)
                raise ConfigError(f"no board for {target.name} has fixtures {', '.join(fixtures)} ({have})")
            matches = fitting
        return matches

    # --- status -----------------------------------------------------------------------------

    def status(self, board: LabBoard) -> BoardStatus:
        health = self.quarantine.health(board.id)
        missing = flasher_for(board, None, Path(os.devnull)).tool_missing()
        return BoardStatus(
            board,
            self.targets_of(board),
            _port_state(board),
            missing,
            BoardLock(self.config.lab_state_dir, board.id).holder(),
            health.quarantined_since,
        )

    def why_not(self, board: LabBoard, *, ignore_quarantine: bool = False) -> str | None:
        """Why a run cannot take this board now (never "in use": that is waited for)."""
        if not board.connected:
            return f"board {board.id} is marked connected: false in {self.source}"
        if not board.available:
            return f"board {board.id} is marked available: false in {self.source}"
        health = self.quarantine.health(board.id)
        if health.quarantined_since and not ignore_quarantine:
            last = health.last_error.splitlines()[0] if health.last_error else "no error kept"
            return (
                f"board {board.id} is quarantined since {health.quarantined_since} after "
                f"{health.failures_in_a_row} failed runs ({last}): `hil lab release-quarantine {board.id}` "
                "or --ignore-quarantine"
            )
        return None

    # --- leases -----------------------------------------------------------------------------

    def lease(
        self,
        target: Target,
        *,
        fixtures: tuple[str, ...] = (),
        wait_s: float = 0.0,
        ignore_quarantine: bool = False,
        purpose: str = "",
    ) -> Lease:
        """Take a free board for ``target``, waiting up to ``wait_s`` for one; :class:`BoardBusy` if none frees."""
        boards = self.boards_for(target, fixtures)
        reasons = {b.id: self.why_not(b, ignore_quarantine=ignore_quarantine) for b in boards}
        usable = [b for b in boards if reasons[b.id] is None]
        if not usable:
            raise BackendUnavailable("; ".join(r for r in reasons.values() if r))
        deadline = time.monotonic() + wait_s
        while True:
            for board in usable:
                if lease := self._try_lease(board, purpose, max(0.0, deadline - time.monotonic()), len(usable)):
                    return lease
            if not wait_until(deadline):
                break
        held = "; ".join(self._in_use(b) for b in usable)
        waited = f" (waited {wait_s:g} s)" if wait_s else " (--wait to queue for it)"
        raise BoardBusy(f"{held}{waited}")

    def _try_lease(self, board: LabBoard, purpose: str, wait_s: float, pool: int) -> Lease | None:
        lock = BoardLock(self.config.lab_state_dir, board.id)
        if not lock.try_acquire(purpose):
            return None
        if board.place is None:
            return Lease(board, _console(board), lock)
        try:
            # A lone board waits in labgrid's own reservation queue; in a pool each place is only tried.
            place = LabgridPlace(
                board.place,
                board.coordinator or self.config.lab_coordinator or "",
                wait_s=wait_s if pool == 1 else 0.0,
                log_dir=self.config.lab_state_dir / "labgrid",
            )
            place.acquire()
        except BoardBusy:
            lock.release()
            if pool == 1:
                raise
            return None
        except BaseException:
            lock.release()
            raise
        try:
            return Lease(board, place.console_url(), lock, place)
        except BaseException:  # Ctrl-C or an error between acquiring and handing the lease out
            place.release()
            lock.release()
            raise

    def _in_use(self, board: LabBoard) -> str:
        holder = BoardLock(self.config.lab_state_dir, board.id).holder()
        return f"board {board.id} is in use by {holder.describe()}" if holder else f"board {board.id} is in use"

    def handed_down(self, target: Target) -> Lease | None:
        """The lease ``hil run`` gave this process in $HIL_LAB_LEASE, if it is for ``target``."""
        raw = os.environ.get(LEASE_ENV)
        if not raw:
            return None
        try:
            data: dict[str, Any] = json.loads(raw)
            board_id, console, holder_pid = data["board"], data["console"], int(data["holder_pid"])
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"${LEASE_ENV} is damaged ({err}): run through `hil run`, or unset it") from err
        board = next((b for b in self.boards if b.id == board_id), None)
        if board is None:
            try:
                board = next(b for b in self.boards_for(target) if b.id == board_id)
            except (ConfigError, StopIteration):
                return None
        holder = BoardLock(self.config.lab_state_dir, board.id).holder()
        if holder is None or holder.pid != holder_pid:
            raise BoardBusy(f"board {board.id} was handed to this run by pid {holder_pid}, which no longer holds it")
        return Lease(board, console, holder_pid=holder_pid, facts=dict(data.get("facts", {})))


def _console(board: LabBoard) -> str:
    if board.serial:
        return board.serial
    raise ConfigError(f"board {board.id} has no serial console: serial_pty programs are not supported, give serial")


def _port_state(board: LabBoard) -> str:
    if board.place:
        return f"labgrid {board.place}"
    url = board.serial or ""
    if url.startswith("hwgrep://"):
        return "yes" if any(True for _ in list_ports.grep(url.removeprefix("hwgrep://"))) else "no"
    if "://" in url:
        return url.split("://")[0]
    return "yes" if url and Path(url).exists() else "no"
