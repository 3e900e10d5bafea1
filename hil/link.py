"""The host side of the wire protocol over one pyserial port: requests, replies, console lines."""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import serial

from hil import messages as msg
from hil import protocol as p
from hil.errors import ConfigError, DeviceError, DeviceLost, DeviceTimeout, ProtocolError

try:
    from termios import error as _termios_error

    # pyserial lets termios.error (not an OSError) escape when a pty's other end has gone.
    PORT_ERRORS: tuple[type[Exception], ...] = (serial.SerialException, OSError, _termios_error)
except ImportError:  # not POSIX
    PORT_ERRORS = (serial.SerialException, OSError)

CONSOLE_TAIL_LINES = 200
WRITE_CHUNK_BYTES = 1024  # well under a pty's buffer, so each write completes while we read between them
# A TCP socket's send buffer takes any frame whole: one write, so no stall of this host can fall between
# two parts of a request, where the device's stale-frame rule (on the device's clock, which in Renode runs
# with real time while the guest waits) would give the request up.
SOCKET_WRITE_CHUNK_BYTES = 64 * 1024
DEFAULT_BAUD = 115200
WRITE_TIMEOUT_S = 5.0
# A partial frame from the device is given up (its bytes rescanned as text) after this much silence on
# the host's clock. The device's own rule (protocol.STALE_FRAME_S) runs on the device's clock; wall time
# on a loaded CI host can stall an emulator mid-frame for longer than that (seen: a Renode reply split
# after its first 4 bytes for over 100 ms lost its sync and left its request waiting out 60 s).
HOST_STALE_FRAME_S = 2.0


class Link:
    """Sends requests and waits for their replies; keeps everything else the device prints.

    Bytes outside frames become console lines (kept in memory and in ``console_log``).
    A boot banner seen while waiting for a reply means the device rebooted: the request fails
    with :class:`DeviceLost` at once rather than running out its timeout.
    """

    def __init__(
        self,
        port: serial.SerialBase,
        *,
        name: str,
        console_log: Path | None = None,
        exit_reason: Callable[[], str | None] = lambda: None,
        write_chunk_bytes: int = WRITE_CHUNK_BYTES,
    ) -> None:
        self._port = port
        self.write_chunk_bytes = write_chunk_bytes
        self._name = name
        self._exit_reason = exit_reason
        self._decoder = p.FrameDecoder()
        self._partial_line = bytearray()
        self._last_rx = time.monotonic()
        self._seq = 0
        self._log = logging.getLogger(f"hil.link({name})")
        self._console_file = console_log.open("a", encoding="utf-8") if console_log else None
        self.console_log = console_log
        self.console: deque[str] = deque(maxlen=CONSOLE_TAIL_LINES)
        self.lines_seen = 0  # console lines ever received; line i stays in ``console`` while recent
        self._boots = 0
        self.unsolicited: deque[p.Frame] = deque(maxlen=1000)
        self.max_payload_bytes = p.DEFAULT_MAX_PAYLOAD_BYTES  # the device's, once its INFO said so
        self._backlog: list[p.Item] = []  # decoded but not yet handed to a caller

    @classmethod
    def open(
        cls,
        url: str,
        *,
        name: str,
        console_log: Path | None,
        exit_reason: Callable[[], str | None],
        baudrate: int = DEFAULT_BAUD,
        dtr_rts: bool = True,
    ) -> Link:
        """Open ``url`` (a path or any pyserial URL).

        ``dtr_rts=False`` opens a serial port with DTR and RTS low, for boards whose adapter resets
        the MCU when they are raised.
        """
        try:
            # pyserial's rfc2217 (labgrid's ser2net consoles) refuses a write timeout: writes there have none.
            write_timeout = None if url.startswith("rfc2217://") else WRITE_TIMEOUT_S
            port = serial.serial_for_url(
                url, baudrate=baudrate, timeout=p.STALE_FRAME_S, write_timeout=write_timeout, do_not_open=True
            )
            if not dtr_rts:
                port.dtr = False  # applied by open() instead of the default raised lines
                port.rts = False
            port.open()
        except (serial.SerialException, OSError, ValueError, NotImplementedError) as err:
            raise DeviceLost(f"cannot open {name} console {url}: {err}") from err
        chunk = SOCKET_WRITE_CHUNK_BYTES if url.startswith("socket://") else WRITE_CHUNK_BYTES
        return cls(port, name=name, console_log=console_log, exit_reason=exit_reason, write_chunk_bytes=chunk)

    def close(self) -> None:
        try:
            self._port.close()
        except PORT_ERRORS as err:  # the other end may already be gone
            self._log.debug("closing %s: %s", self._name, err)
        if self._console_file:
            self._console_file.close()
            self._console_file = None

    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1  # 1..255; 0 marks unsolicited frames
        return self._seq

    def write_raw(self, data: bytes) -> None:
        """Write ``data`` in chunks, reading whatever the device sends between them.

        A device answering garbage blocks once its output is full; if we only wrote, both sides
        would wait for each other. What is read meanwhile is kept for the next request or ``expect``.
        """
        try:
            for start in range(0, len(data), self.write_chunk_bytes):
                self._port.write(data[start : start + self.write_chunk_bytes])
                self._port.flush()
                self._drain()
        except serial.SerialTimeoutException as err:
            raise DeviceTimeout(f"{self._name} did not accept {len(data)} bytes within {WRITE_TIMEOUT_S} s") from err
        except PORT_ERRORS as err:
            raise DeviceLost(self._lost(f"writing to the console failed: {err}")) from err

    def _drain(self) -> None:
        waiting = self._port.in_waiting
        if waiting:
            data = self._port.read(waiting)
            self._last_rx = time.monotonic()
            self._backlog.extend(self._decoded(data))

    def request(
        self, msg_type: p.MsgType, payload: bytes = b"", timeout_s: float = 10.0, *, reboot_ok: bool = False
    ) -> bytes:
        """Send one request and return the payload of its reply.

        A reboot seen meanwhile fails the request unless ``reboot_ok`` (handshake, RESET). Frames
        that arrive with the reply (events after it) are kept for ``events()``.
        """
        if len(payload) > self.max_payload_bytes:
            raise ConfigError(
                f"{msg_type.name} payload of {len(payload)} bytes exceeds {self._name}'s maximum of "
                f"{self.max_payload_bytes} bytes: nothing was sent; split the data"
            )
        seq = self._next_seq()
        what = f"{msg_type.name} (seq {seq})"
        boots_before = self._boots
        self.write_raw(p.encode_frame(msg_type, seq, payload))
        deadline = time.monotonic() + timeout_s
        while True:
            items = self._receive(deadline, what, timeout_s)
            for index, item in enumerate(items):
                if isinstance(item, p.Frame) and item.seq == seq:
                    self._backlog.extend(items[index + 1 :])
                    return self._reply_payload(item, msg_type, what)
                self._keep(item)
            if self._boots != boots_before and not reboot_ok:
                raise DeviceLost(self._lost(f"the device rebooted while {what} was pending"))

    def _keep(self, item: p.Item) -> None:
        """File an item that answers no pending request: events for ``events()``, the rest in the log."""
        if isinstance(item, p.Frame) and item.seq == p.UNSOLICITED_SEQ and item.type == p.MsgType.ERROR:
            self._log.warning("device reports a damaged frame: %s", _error_text(item.payload))
        elif isinstance(item, p.Frame):
            self.unsolicited.append(item)
        elif isinstance(item, p.FrameFault):
            self._log.warning("corrupted frame from device: %s (seq %d)", item.detail, item.seq)

    def _reply_payload(self, frame: p.Frame, msg_type: p.MsgType, what: str) -> bytes:
        if frame.type == p.MsgType.ERROR:
            try:
                err = msg.unpack_error(frame.payload)
            except ProtocolError as bad:
                raise ProtocolError(f"unreadable ERROR reply to {what}: {bad}") from bad
            raise DeviceError(err.code, p.error_name(err.code), err.message, what)
        if frame.type != msg_type | p.REPLY_FLAG:
            raise ProtocolError(f"reply to {what} has type {p.type_name(frame.type)}, expected {msg_type.name}_REPLY")
        return frame.payload

    def expect_line(self, pattern: str, timeout_s: float, since: int | None = None) -> re.Match[str]:
        """Wait for a console line matching ``pattern``, looking at lines numbered ``since`` onwards.

        ``since`` defaults to the oldest line still kept, so a line that already arrived counts.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        next_line = self.lines_seen - len(self.console) if since is None else since
        while True:
            oldest_kept = self.lines_seen - len(self.console)
            for line in list(self.console)[max(0, next_line - oldest_kept) :]:
                if match := regex.search(line):
                    return match
            next_line = self.lines_seen
            for item in self._receive(deadline, f"console line matching {pattern!r}", timeout_s):
                self._keep(item)

    def poll(self) -> None:
        """Read whatever is waiting without blocking long (keeps console and events current)."""
        for item in self._receive(time.monotonic() + p.STALE_FRAME_S, "nothing", p.STALE_FRAME_S, quiet=True):
            self._keep(item)

    def _receive(self, deadline: float, what: str, timeout_s: float, quiet: bool = False) -> list[p.Item]:
        if self._backlog:  # read earlier (while writing, or behind a reply): hand it out first
            items, self._backlog = self._backlog, []
            return items
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if quiet:
                return []
            raise DeviceTimeout(self._timed_out(what, timeout_s))
        try:
            timeout = min(remaining, p.STALE_FRAME_S)
            if self._port.timeout != timeout:  # setting it renegotiates an rfc2217 port: only when it changes
                self._port.timeout = timeout
            data = self._port.read(max(1, self._port.in_waiting))
        except PORT_ERRORS as err:
            raise DeviceLost(self._lost(f"the console closed while waiting for {what}: {err}")) from err
        if data:
            self._last_rx = time.monotonic()
            return self._decoded(data)
        if reason := self._exit_reason():
            raise DeviceLost(self._lost(f"{reason} while waiting for {what}"))
        stale = time.monotonic() - self._last_rx > HOST_STALE_FRAME_S
        return self._texts_kept(self._decoder.abandon_partial() if stale else [])

    def _decoded(self, data: bytes) -> list[p.Item]:
        return self._texts_kept(self._decoder.feed(data))

    def _texts_kept(self, items: list[p.Item]) -> list[p.Item]:
        """Console text goes to the console (and its log) as it is decoded; frames go on to the caller."""
        for item in items:
            if isinstance(item, p.Text):
                self._add_text(item.data)
        return items

    def _add_text(self, data: bytes) -> None:
        self._partial_line += data
        *lines, rest = self._partial_line.split(b"\n")
        self._partial_line = bytearray(rest)
        for raw in lines:
            line = raw.decode(errors="replace").rstrip("\r")
            self.console.append(line)
            self.lines_seen += 1
            if line.startswith(p.BOOT_LINE_PREFIX):
                self._boots += 1
            if self._console_file:
                self._console_file.write(f"{time.strftime('%H:%M:%S')} {line}\n")
                self._console_file.flush()

    def _tail(self, n: int = 8) -> str:
        lines = list(self.console)[-n:]
        where = f"; full log: {self.console_log}" if self.console_log else ""
        return ("last console lines: " + " | ".join(lines) if lines else "the console printed nothing") + where

    def _timed_out(self, what: str, timeout_s: float) -> str:
        return f"{self._name}: no {what} within {timeout_s:g} s; {self._tail()}"

    def _lost(self, what: str) -> str:
        reason = self._exit_reason()
        for _ in range(10):  # a killed process may take a moment to be reaped
            if reason:
                break
            time.sleep(0.05)
            reason = self._exit_reason()
        prefix = f"{reason}: " if reason and reason not in what else ""
        return f"{self._name}: {prefix}{what}; {self._tail()}"


def _error_text(payload: bytes) -> str:
    try:
        err = msg.unpack_error(payload)
    except ProtocolError as bad:
        return f"unreadable ERROR report ({bad})"
    return f"{p.error_name(err.code)}: {err.message}"
