"""The board strategy: off → flashed → booted → ready, once per run.

It flashes (retrying with a power cycle between attempts), waits for the console to come back
(a USB port disappears and returns when the board re-enumerates), reads the boot banner or asks
``INFO``, and refuses a board that does not run the build it was given. Every failure is a
:class:`~hil.errors.BoardError` — the rig failed, not a test — and counts toward the board's
quarantine; a bring-up that works clears the count.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from serial.tools import list_ports

from hil import messages as msg
from hil import protocol as p
from hil.errors import BoardError, DeviceLost, HilError
from hil.lab.bench import Lab, Lease
from hil.lab.commands import run_or_fail
from hil.lab.flashers import Flasher, flash_error, flasher_for
from hil.lab.image import FirmwareImage
from hil.lab.power import PowerDriver, power_for
from hil.link import Link

log = logging.getLogger(__name__)

INFO_RETRY_S = 0.5
PORT_POLL_S = 0.1
SCRIPT_TIMEOUT_S = 120.0
_BANNER_BUILD = re.compile(rf"^{re.escape(p.BOOT_LINE_PREFIX)}.*\bbuild=([0-9a-f]{{16}})\b")


@dataclass(frozen=True, slots=True)
class Identity:
    """What the board says it runs: from INFO when it speaks the protocol, else from its banner."""

    build_id: str | None
    source: str  # "INFO" or "banner"
    firmware_version: str = ""


class BoardStrategy:
    def __init__(self, lab: Lab, lease: Lease, artifacts_dir: Path) -> None:
        self.lab = lab
        self.lease = lease
        self.board = lease.board
        self.artifacts_dir = artifacts_dir
        self.tool_log = artifacts_dir / f"bench-{self.board.id}.log"
        artifacts_dir.mkdir(parents=True, exist_ok=True)
        self.power: PowerDriver | None = power_for(self.board, lease.place, self.tool_log)
        self._link: Link | None = None  # the console, open while bringing the board up

    def bring_up(self, image: FirmwareImage | None, *, force_flash: bool = False) -> dict[str, str]:
        """Make the board run ``image`` (or whatever it runs, if None) and answer; returns facts for the results."""
        try:
            facts = self._bring_up(image, force_flash)
        except BoardError as err:
            health = self.lab.quarantine.record_failure(self.board.id, str(err), self.board.quarantine_after)
            if health.quarantined_since:
                raise BoardError(
                    self.board.id,
                    f"{err} — quarantined after {health.failures_in_a_row} failed runs in a row",
                    runner=err.runner,
                ) from err
            raise
        self.lab.quarantine.record_success(self.board.id)
        self.lease.facts.update(facts)
        return facts

    def _bring_up(self, image: FirmwareImage | None, force_flash: bool) -> dict[str, str]:
        board = self.board
        facts = {
            "board_id": board.id,
            "board_product": board.product,
            "board_serial": self.lease.console_url,
            "board_probe_id": board.probe_id or "",
        }
        if board.pre_script:
            run_or_fail(board.id, "pre_script", (board.pre_script,), SCRIPT_TIMEOUT_S, self.tool_log)
        if image is not None:
            facts |= image.facts()
            if not force_flash and image.build_id and self._runs(image.build_id):
                facts |= {"flash_method": "skipped: the board already runs this build", "flash_s": "0"}
                image = None
        started = time.monotonic()
        self._link = self._open_console(wait_s=0.0)  # before flashing: a reset's banner must not be missed
        try:
            if image is not None:
                flasher = flasher_for(board, image, self.tool_log)
                flash_s = self._flash(flasher, image)
                facts |= {"flash_method": f"{flasher.method}/{board.runner}", "flash_s": f"{flash_s:.2f}"}
                if script := board.post_flash_script:
                    run_or_fail(board.id, "post_flash_script", (script,), SCRIPT_TIMEOUT_S, self.tool_log)
                started = time.monotonic()
            identity = self._identify(image)
        finally:
            if self._link is not None:
                self._link.close()
                self._link = None
        facts |= {"boot_s": f"{time.monotonic() - started:.2f}", "device_build_id": identity.build_id or ""}
        if image is not None and image.build_id and identity.build_id != image.build_id:
            runs = identity.build_id or "unknown"
            raise BoardError(board.id, f"runs build {runs}, flashed {image.build_id}: the image did not take "
                             "(wrong board, write-protected flash, or a stale image)")  # fmt: skip
        return facts

    # --- flashing ---------------------------------------------------------------------------

    def _flash(self, flasher: Flasher, image: FirmwareImage) -> float:
        if missing := flasher.tool_missing():
            raise BoardError(self.board.id, f"cannot flash: {missing}", runner=flasher.method)
        attempts = 1 + self.board.flash_retries
        for attempt in range(1, attempts + 1):
            if self._link is None:
                self._link = self._open_console(wait_s=0.0)  # powered on again: listen before it boots
            result = flasher.flash(image)
            if result.ok:
                return result.duration_s
            log.warning("flashing %s failed (attempt %d of %d): exit %d", self.board.id, attempt, attempts,
                        result.exit_code)  # fmt: skip
            if attempt < attempts and self.power is not None:
                if self._link is not None:
                    self._link.close()  # its port goes away with the power
                    self._link = None
                self.power.cycle()
        raise flash_error(self.board, flasher, result, attempts)

    def _runs(self, build_id: str) -> bool:
        """Whether the board already runs ``build_id`` (a quick INFO; False if it does not answer)."""
        link = self._open_console(wait_s=0.0)
        if link is None:
            return False
        try:
            return self._ask_info(link, INFO_RETRY_S * 4).build_id == build_id
        except HilError:
            return False
        finally:
            link.close()

    # --- console and identity ---------------------------------------------------------------

    def _open_console(self, wait_s: float) -> Link | None:
        """Open the console once its port exists (waiting up to ``wait_s``); None if it never appeared."""
        url = self.lease.console_url
        deadline = time.monotonic() + wait_s
        while True:
            if port_exists(url):
                try:
                    return Link.open(
                        url,
                        name=f"board {self.board.id}",
                        console_log=self.artifacts_dir / f"console-bringup-{self.board.id}.log",
                        exit_reason=lambda: None,
                        baudrate=self.board.baud,
                        dtr_rts=self.board.dtr_rts,
                    )
                except DeviceLost:
                    pass  # the port is there but not ready yet (udev still setting it up)
            if time.monotonic() >= deadline:
                return None
            time.sleep(PORT_POLL_S)

    def _identify(self, image: FirmwareImage | None) -> Identity:
        """Wait for the board to answer INFO or show a banner with its build id, within its boot timeout."""
        timeout_s = self.board.boot_timeout_s
        deadline = time.monotonic() + timeout_s
        tried_reset = image is not None  # flashing reset the board already
        link = self._link
        while time.monotonic() < deadline:
            if link is None:
                link = self._link = self._open_console(wait_s=deadline - time.monotonic())
                if link is None:
                    break
            try:
                return self._ask_info(link, deadline - time.monotonic())
            except DeviceLost:
                link.close()  # the port went away (re-enumeration): wait for it to return
                link = self._link = None
            except HilError:
                if banner := _banner_identity(link):
                    return banner
                if tried_reset or time.monotonic() + 1.0 >= deadline:
                    break
                tried_reset = True
                self._reset_silent_board()
                deadline = time.monotonic() + timeout_s
        if link is not None and (banner := _banner_identity(link)):
            return banner
        tail = " | ".join(list(link.console)[-8:]) if link is not None else ""
        what = "its console never appeared" if link is None else "it neither answered INFO nor printed a boot banner"
        raise BoardError(self.board.id, f"not ready within {timeout_s:g} s: {what} ({self.lease.console_url})",
                         tail=f"console tail: {tail or '(nothing)'}")  # fmt: skip

    def _ask_info(self, link: Link, timeout_s: float) -> Identity:
        deadline = time.monotonic() + max(timeout_s, INFO_RETRY_S)
        while True:
            if banner := _banner_identity(link):
                return banner
            try:
                info = msg.unpack_info(link.request(p.MsgType.INFO, b"", INFO_RETRY_S, reboot_ok=True))
                return Identity(getattr(info, "build_id", None) or None, "INFO", info.firmware_version)
            except DeviceLost:
                raise
            except HilError:
                if time.monotonic() >= deadline:
                    raise

    def _reset_silent_board(self) -> None:
        """A board that does not answer: reset it through the runner, else by power."""
        for method in self.board.reset:
            result = flasher_for(self.board, None, self.tool_log).reset() if method == "runner" else None
            if result is not None and result.ok:
                return
            if method == "power" and self.power is not None:
                self.power.cycle()
                return


def _banner_identity(link: Link) -> Identity | None:
    for line in reversed(link.console):
        if match := _BANNER_BUILD.search(line):
            return Identity(match.group(1), "banner", line)
    return None


def port_exists(url: str) -> bool:
    """Whether a console port is there now (a USB port vanishes while its board re-enumerates)."""
    if url.startswith("hwgrep://"):
        return any(True for _ in list_ports.grep(url.removeprefix("hwgrep://")))
    if "://" in url:
        return True  # network ports: opening tells
    return Path(url).exists()


def wait_for_port(url: str, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for the port to be there; False if it never came."""
    deadline = time.monotonic() + timeout_s
    while not port_exists(url):
        if time.monotonic() >= deadline:
            return False
        time.sleep(PORT_POLL_S)
    return True
