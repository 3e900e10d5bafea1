"""A labgrid bench on loopback for tests: labgrid-coordinator, one labgrid-exporter, places on it.

``LabgridBench`` starts the coordinator on 127.0.0.1 (port chosen by the OS, read from its "listening on" line),
writes an exporter YAML that exports a pty as a ``RawSerialPort`` under ``group`` (and, when given power commands,
a ``NetworkPowerPort`` of labgrid's ``simplerest`` model served by a small relay on 127.0.0.1 that runs them),
starts the exporter, waits until the coordinator lists its resources, and creates the place with
``labgrid-client create`` and ``add-match``. Leaving the ``with`` block stops the exporter, then the coordinator
(terminate → bounded wait → kill), and the relay.

Facts it relies on, checked against labgrid 26.0.1: the exporter refuses serial ports outside /dev/
(``SerialPortExport._start`` asserts it), a pty such as /dev/pts/3 is fine; ser2net starts when the place is
acquired, on a free port, listening on all interfaces (``accepter: telnet(rfc2217,mode=server),tcp,PORT``);
the exporter reads its YAML once and exits when the coordinator goes away, so it is supervised and never outlives
the coordinator; the coordinator writes places.yaml and resources.yaml in its working directory.

The pytest fixture skips with the reason when labgrid (``pip install 'tinyml-hil[lab]'``) or ser2net
(``make system-deps``) is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import pytest

from hil.backends._process import ChildProcess
from hil.lab.labgrid_place import labgrid_unavailable_reason

START_TIMEOUT_S = 30.0
CLIENT_TIMEOUT_S = 30.0
EXPORTER_NAME = "hil-bench"
_DROPPED_ENV = ("LG_ENV", "LG_PLACE", "PLACE", "LG_TOKEN", "LG_STATE", "STATE", "LG_INITIAL_STATE", "LG_COORDINATOR")


def bench_unavailable_reason() -> str | None:
    """Why a loopback labgrid bench cannot run here, or None."""
    if reason := labgrid_unavailable_reason():
        return reason
    # The exporter looks for ser2net on PATH, then at /usr/sbin/ser2net (exporter.py SerialPortExport).
    if shutil.which("ser2net") is None and not Path("/usr/sbin/ser2net").exists():
        return "ser2net is not installed: make system-deps (Debian package ser2net)"
    return None


def skip_unless_bench_available() -> None:
    if reason := bench_unavailable_reason():
        pytest.skip(reason)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


class _Relay(ThreadingHTTPServer):
    """A network power switch as labgrid's ``simplerest`` model talks to it, running a command per state change.

    ``GET /relay/0/1`` switches on, ``GET /relay/0/0`` off (simplerest ``power_set``), ``GET /relay/0`` answers
    ``1`` or ``0`` (``power_get``).
    """

    def __init__(self, power_on: Sequence[str], power_off: Sequence[str], log: Path) -> None:
        super().__init__(("127.0.0.1", 0), _RelayHandler)
        self.commands = {True: list(power_on), False: list(power_off)}
        self.state = False
        self.log = log

    def switch(self, on: bool) -> None:
        with self.log.open("ab") as out:
            subprocess.run(self.commands[on], stdout=out, stderr=out, timeout=CLIENT_TIMEOUT_S, check=True)
        self.state = on


class _RelayHandler(BaseHTTPRequestHandler):
    server: _Relay

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "relay" and parts[2] in ("0", "1"):
            try:
                self.server.switch(parts[2] == "1")
            except (subprocess.SubprocessError, OSError) as err:
                self._answer(500, f"power command failed: {err}")
                return
            self._answer(200, parts[2])
        elif len(parts) == 2 and parts[0] == "relay":
            self._answer(200, "1" if self.server.state else "0")
        else:
            self._answer(404, "unknown path")

    def _answer(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        with self.server.log.open("a") as out:
            out.write(format % args + "\n")


class LabgridBench:
    """labgrid-coordinator and labgrid-exporter on 127.0.0.1, exporting ``console`` (a pty) as place ``place``.

    ``power_on``/``power_off`` (argv lists, no shell) add a power resource to the place.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        place: str,
        console: str,
        group: str | None = None,
        power_on: Sequence[str] | None = None,
        power_off: Sequence[str] | None = None,
    ) -> None:
        if not console.startswith("/dev/"):
            raise ValueError(f"labgrid's exporter only exports serial ports under /dev/, not {console}")
        if (power_on is None) != (power_off is None):
            raise ValueError("give both power_on and power_off, or neither")
        self.workdir = workdir
        self.place = place
        self.console = console
        self.group = group or place
        self.power_commands = (list(power_on), list(power_off)) if power_on and power_off else None
        self.coordinator = ""
        self._coordinator: ChildProcess | None = None
        self._exporter: ChildProcess | None = None
        self._relay: _Relay | None = None
        self._relay_thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> LabgridBench:
        skip_unless_bench_available()
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._start_coordinator()
        power_url = self._start_relay() if self.power_commands else None
        self._write_exporter_yaml(power_url)
        self._start_exporter()
        self.add_place(self.place, f"{EXPORTER_NAME}/{self.group}/*")

    def stop(self) -> None:
        """Exporter first (it would exit anyway once the coordinator goes), then coordinator, then the relay."""
        for child in (self._exporter, self._coordinator):
            if child:
                pgid = child.popen.pid if child.popen else None
                child.stop()
                if pgid is not None:
                    _kill_group(pgid)  # ser2net children of an exporter that ended with a place still acquired
        self._exporter = self._coordinator = None
        if self._relay:
            self._relay.shutdown()
            self._relay.server_close()
            self._relay = None
        if self._relay_thread:
            self._relay_thread.join(timeout=5)
            self._relay_thread = None

    def _start_coordinator(self) -> None:
        argv = [sys.executable, "-u", "-m", "labgrid.remote.coordinator", "-l", "127.0.0.1:0"]
        log = self.workdir / "coordinator.log"
        self._coordinator = ChildProcess(
            "labgrid-coordinator",
            argv,
            log,  # stdout too: it prints every request, and a pipe nobody reads would stall it
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,  # it keeps places.yaml and resources.yaml in its working directory
            start_new_session=True,
        )
        line = self._wait_for_line(self._coordinator, log, "listening on ")
        self.coordinator = line.removeprefix("listening on ").strip()
        host, _, port = self.coordinator.rpartition(":")
        if host != "127.0.0.1" or not port.isdigit():
            raise RuntimeError(f"labgrid-coordinator listens on {self.coordinator!r}, expected 127.0.0.1:PORT")

    def _start_relay(self) -> str:
        assert self.power_commands
        self._relay = _Relay(*self.power_commands, self.workdir / "power.log")
        self._relay_thread = threading.Thread(target=self._relay.serve_forever, name="labgrid-bench-relay", daemon=True)
        self._relay_thread.start()
        return f"http://127.0.0.1:{self._relay.server_address[1]}/relay/{{index}}/{{value}}"

    def _write_exporter_yaml(self, power_url: str | None) -> None:
        lines = [
            f"{self.group}:",
            "  RawSerialPort:",
            f"    port: {self.console}",
            "    speed: 115200",
        ]
        if power_url:
            lines += ["  NetworkPowerPort:", "    model: simplerest", f"    host: '{power_url}'", "    index: 0"]
        self.exporter_yaml.write_text("\n".join(lines) + "\n")

    @property
    def exporter_yaml(self) -> Path:
        return self.workdir / "exporter.yaml"

    def _start_exporter(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "labgrid.remote.exporter",
            "-c",
            self.coordinator,
            "-n",
            EXPORTER_NAME,
            "--hostname",
            "127.0.0.1",  # what clients are told to connect to; ser2net itself listens on every interface
            str(self.exporter_yaml),
        ]
        self._exporter = ChildProcess(
            "labgrid-exporter",
            argv,
            self.workdir / "exporter.log",
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            start_new_session=True,
        )
        wanted = f"{EXPORTER_NAME}/{self.group}/NetworkSerialPort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while wanted not in self.client(["resources"]).stdout:
            if reason := self.exit_reason():
                raise RuntimeError(f"{reason}; see {self.workdir / 'exporter.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the coordinator lists no {wanted} after {START_TIMEOUT_S:g} s")
            time.sleep(0.3)

    def _wait_for_line(self, child: ChildProcess, log: Path, prefix: str) -> str:
        """The first line of ``log`` that starts with ``prefix``, waiting for it while ``child`` runs."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line
            if reason := child.exit_reason():
                raise RuntimeError(f"{child.what} did not start: {reason}; see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.what} printed no {prefix!r} line within {START_TIMEOUT_S:g} s; see {log}")
            time.sleep(0.1)

    def exit_reason(self) -> str | None:
        """Why a bench server ended (the exporter exits when the coordinator goes away), or None."""
        for child in (self._coordinator, self._exporter):
            if child and (reason := child.exit_reason()):
                return reason
        return None

    # --- clients ----------------------------------------------------------------------------

    def client_env(self, user: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        if user:
            env["LG_USERNAME"] = user
        return env

    def client(
        self, args: list[str], *, user: str | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """One ``labgrid-client -x COORDINATOR ARGS`` as ``user`` (LG_USERNAME)."""
        return subprocess.run(
            [sys.executable, "-m", "labgrid.remote.client", "-x", self.coordinator, *args],
            env=self.client_env(user),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT_S,
            check=check,
        )

    def add_place(self, name: str, *patterns: str) -> None:
        """Create a place matching ``patterns`` (EXPORTER/GROUP/CLASS[/NAME], ``*`` allowed)."""
        self.client(["-p", name, "create"], check=True)
        for pattern in patterns:
            self.client(["-p", name, "add-match", pattern], check=True)

    @property
    def power_log(self) -> Path:
        return self.workdir / "power.log"
