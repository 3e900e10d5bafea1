"""Renode's monitor over its telnet port: one command at a time, its output up to the next prompt.

Renode facts used here were read in Renode 1.14.0's sources: the monitor's telnet handshake in
renode-infrastructure ``src/Emulator/Main/Utilities/SocketServerProvider.cs``; prompts and error
texts in ``ShellProvider.cs``, ``Monitor.cs``, ``MonitorCommands.cs`` and AntShell's
``CommandInteraction.cs``. Also here: reading the numbers the monitor prints (executed
instructions, virtual time).
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from hil.errors import ConfigError, DeviceLost, DeviceTimeout
from hil.phases import MONITOR, PhaseLog

log = logging.getLogger(__name__)

MONITOR_COMMAND_TIMEOUT_S = 30.0
CONNECT_RETRY_S = 0.1

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
OPT_BINARY, OPT_ECHO, OPT_SGA = 0, 1, 3
_WE_WILL = {OPT_BINARY}  # options we agree to do when asked (DO x -> WILL x)
_THEY_MAY = {OPT_BINARY, OPT_ECHO, OPT_SGA}  # options we let the server do (WILL x -> DO x)
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_78]")
_PROMPT = re.compile(r"\(([\w.:-]{1,80})\) $")
# Monitor.cs, MonitorCommands.cs, IncludeFileCommand.cs, MachCommand.cs (WriteError texts of Renode 1.14).
_ERROR_STARTS = (
    "There was an error executing command",
    "No such command or device",
    "Could not tokenize here",
    "Bad parameters for command",
    "Could not find file",
    "No such file",
    "Errors during compilation or loading",
    "Invalid platform type",
    "No machine selected",
    "Select active machine",
    "Wrong machine number",
    "Could not find emulation element",
    "Peripheral not found",
)
# Offline, repls whose init runs `ApplySVD @https://...` print this and carry on (the SVD only names registers):
# logged at info level, not raised.
_WARNING_STARTS = ("Failed to download",)


def _telnet_reply(command: int, option: int) -> bytes:
    """Our answer to one negotiation: accept what we support, refuse the rest, ignore refusals."""
    if command == DO:
        return bytes([IAC, WILL if option in _WE_WILL else WONT, option])
    if command == WILL:
        return bytes([IAC, DO if option in _THEY_MAY else DONT, option])
    return b""  # DONT / WONT need no answer for options we never enabled


class MonitorClient:
    """Renode's monitor over its telnet port: one command at a time, its output up to the next prompt.

    Renode 1.14 sends four negotiations on connect (DO BINARY, WILL ECHO, WILL SUPPRESS-GO-AHEAD,
    WONT LINEMODE), then reads and discards exactly 9 bytes before it listens to commands: bytes sent
    before our 9 answer bytes would be lost. Later versions also send DO NAWS and parse answers. We
    answer every negotiation as it arrives and send nothing else until the first prompt.
    """

    def __init__(
        self, sock: socket.socket, *, name: str, transcript: IO[str] | None = None, phases: PhaseLog | None = None
    ) -> None:
        self._sock = sock
        self._phases = phases or PhaseLog(None)
        self._name = name
        self._raw = bytearray()  # received, not yet through the telnet filter
        self._text = bytearray()  # telnet-filtered bytes of the current exchange
        self._transcript = transcript
        self._replied: set[tuple[int, int]] = set()
        self._prompts = {"monitor"}
        self.banner = ""
        self.prompt = ""

    def expect_machine(self, name: str) -> None:
        """The monitor prompts ``(<machine>) `` once a machine of that name is created and selected."""
        self._prompts.add(name)

    @classmethod
    def connect(
        cls,
        port: int,
        *,
        timeout_s: float,
        name: str = "Renode",
        host: str = "127.0.0.1",
        exit_reason: Callable[[], str | None] = lambda: None,
        transcript: IO[str] | None = None,
        phases: PhaseLog | None = None,
    ) -> MonitorClient:
        """Connect (retrying while Renode starts up) and read up to the first prompt."""
        deadline = time.monotonic() + timeout_s
        while True:
            if reason := exit_reason():
                raise DeviceLost(f"{reason} before its monitor opened on port {port}")
            try:
                sock = socket.create_connection((host, port), timeout=min(1.0, timeout_s))
                break
            except OSError as err:
                if time.monotonic() >= deadline:
                    raise DeviceTimeout(
                        f"{name} monitor on {host}:{port} did not accept a connection within {timeout_s:g} s ({err}); "
                        "Renode may be slow to start here: raise boot_timeout_s of the target"
                    ) from err
                time.sleep(CONNECT_RETRY_S)
        client = cls(sock, name=name, transcript=transcript, phases=phases)
        try:
            client.banner = client._read_until_prompt(max(0.1, deadline - time.monotonic()), "the first prompt")
        except BaseException:
            client.close()
            raise
        return client

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
        if self._transcript:
            self._transcript.flush()

    def __enter__(self) -> MonitorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # telnet ------------------------------------------------------------------------------------

    def _filter_telnet(self) -> None:
        """Move bytes from ``_raw`` to ``_text``, answering negotiations; keep a partial sequence."""
        raw, i = self._raw, 0
        while i < len(raw):
            byte = raw[i]
            if byte != IAC:
                self._text.append(byte)
                i += 1
                continue
            if i + 1 >= len(raw):
                break
            command = raw[i + 1]
            if command == IAC:
                self._text.append(IAC)
                i += 2
            elif command in (DO, DONT, WILL, WONT):
                if i + 2 >= len(raw):
                    break
                option = raw[i + 2]
                if (command, option) not in self._replied:
                    self._replied.add((command, option))
                    if reply := _telnet_reply(command, option):
                        self._sock.sendall(reply)
                i += 3
            elif command == SB:
                end = raw.find(bytes([IAC, SE]), i + 2)
                if end < 0:
                    break
                i = end + 2
            else:
                i += 2  # NOP, GA and friends
        del raw[:i]

    # reading -------------------------------------------------------------------------------------

    def _clean(self) -> str:
        text = _ANSI.sub(b"", bytes(self._text)).decode("utf-8", errors="replace")
        return "".join(ch for ch in text if ch in "\n\t" or ch >= " ")

    def _prompt_at_end(self, text: str) -> re.Match[str] | None:
        """The prompt ending ``text``: ``(monitor) `` or ``(<machine>) ``, on its own line or a known name."""
        found = _PROMPT.search(text)
        if found and (found.start() == 0 or text[found.start() - 1] == "\n" or found[1] in self._prompts):
            return found
        return None

    def _read_until_prompt(self, timeout_s: float, waiting_for: str) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            text = self._clean()
            if found := self._prompt_at_end(text):
                self.prompt = found[1]
                self._text.clear()
                if self._transcript:
                    self._transcript.write(text)
                return text[: found.start()]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = text[-400:].strip() or "nothing"
                raise DeviceTimeout(
                    f"{self._name} monitor gave no prompt within {timeout_s:g} s while waiting for {waiting_for}; "
                    f"it printed: {tail}"
                )
            self._sock.settimeout(min(remaining, 0.5))
            try:
                chunk = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError as err:
                raise DeviceLost(
                    f"{self._name} monitor connection failed while waiting for {waiting_for}: {err}"
                ) from err
            if not chunk:
                raise DeviceLost(
                    f"{self._name} closed its monitor connection while we waited for {waiting_for} (did Renode exit?)"
                )
            self._raw += chunk
            self._filter_telnet()

    # commands -------------------------------------------------------------------------------------

    def execute(self, command: str, timeout_s: float = MONITOR_COMMAND_TIMEOUT_S, *, check: bool = True) -> str:
        """Run one monitor command; return its output. With ``check``, Renode's error texts raise ConfigError."""
        if "\n" in command or "\r" in command:
            raise ConfigError(f"one monitor command per line: {command!r}; put multi-line commands in a script")
        with self._phases.span(MONITOR, command=command.split(" ", 1)[0]):
            self._send(command)
            output = self._read_until_prompt(timeout_s, f"`{command}`")
        lines = output.split("\n")
        # The monitor echoes what we type. Before the echo may come what another monitor printed
        # meanwhile (Renode's robot server runs keywords in its own monitor): not ours to judge.
        echo = next((i for i, line in enumerate(lines) if line.strip() == command.strip()), -1)
        if echo > 0:
            log.debug("%s: before `%s` the monitor printed: %s", self._name, command, "\n".join(lines[:echo]))
        lines = lines[echo + 1 :]
        body = "\n".join(line.rstrip() for line in lines).strip("\n")
        problems = [line.strip() for line in lines if line.strip().startswith(_ERROR_STARTS)]
        for line in lines:
            if line.strip().startswith(_WARNING_STARTS):
                log.info("%s: %s (while running `%s`)", self._name, line.strip(), command)
        if check and problems:
            raise ConfigError(f"{self._name} refused `{command}`: {body}")
        return body

    def send_quit(self) -> None:
        """Ask Renode to exit; it closes the connection instead of prompting again."""
        with contextlib.suppress(OSError):
            self._send("quit")

    def _send(self, command: str) -> None:
        if self._transcript:
            self._transcript.write(f"[sent] {command}\n")
        try:
            self._sock.sendall(command.encode() + b"\n")  # one Enter: the shell treats \r and \n alike
        except OSError as err:
            raise DeviceLost(f"{self._name} monitor connection failed while sending `{command}`: {err}") from err


@dataclass(frozen=True, slots=True)
class EmulatorCounters:
    """The CPU's executed instructions and the emulation's virtual time at one moment."""

    instructions: int
    virtual_time_s: float


def parse_number(text: str) -> int:
    """A monitor number in any of its modes: ``0x1A2B``, ``6699`` or ``0x1A2B (6699)``."""
    found = re.search(r"-?(?:0x[0-9A-Fa-f]+|\d+)", text)
    if not found:
        raise ConfigError(f"expected a number from the Renode monitor, got {text.strip()!r}")
    return int(found[0], 0)


def parse_virtual_time(text: str) -> float:
    """Seconds from ``currentTime`` output: ``Current virtual time: 00:00:01.234567``."""
    found = re.search(r"virtual time:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", text, re.IGNORECASE)
    if not found:
        raise ConfigError(f"expected `Current virtual time: HH:MM:SS.ffffff` from Renode, got {text.strip()!r}")
    return int(found[1]) * 3600 + int(found[2]) * 60 + float(found[3])


def counters_python(cpu: str) -> str:
    """One monitor line that prints ``<executed instructions> <virtual time>`` of ``cpu``'s machine.

    The monitor's Python (IronPython: ``self`` is the monitor) reads both at the same instant;
    ``Machine[path]`` finds the CPU, ``LocalTimeSource.ElapsedVirtualTime`` is what ``currentTime``
    prints for a one-machine emulation.
    """
    code = (
        f"m = self.Machine; c = m['{cpu}']; "
        "print('%d %s' % (c.ExecutedInstructions, m.LocalTimeSource.ElapsedVirtualTime))"
    )
    return f'python "{code}"'


def parse_counters(text: str) -> EmulatorCounters:
    """What :func:`counters_python` printed: ``1911720 00:00:00.235300``."""
    found = re.search(r"^(\d+) (\d+:\d+:\d+(?:\.\d+)?)\s*$", text.strip(), re.MULTILINE)
    if not found:
        raise ConfigError(
            f"expected `<instructions> <HH:MM:SS.ffffff>` from the monitor's Python, got {text.strip()!r}"
        )
    return EmulatorCounters(int(found[1]), parse_virtual_time(f"virtual time: {found[2]}"))


def parse_quantum(time_source_info: str, default: str = "0.000100") -> str:
    """The quantum from ``emulation GetTimeSourceInfo`` (``Quantum: 00:00:00.000100``) as monitor input."""
    found = re.search(r"Quantum:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", time_source_info)
    if not found:
        return default
    return f"{int(found[1]) * 3600 + int(found[2]) * 60 + float(found[3]):.6f}"
