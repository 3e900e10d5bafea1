"""A labgrid place held for one run: reserved, acquired, its console found, its power switched, released.

Why ``labgrid-client`` in a child process and not labgrid's Python client API (checked against labgrid 26.0.1):

* labgrid documents place scheduling as ``labgrid-client`` commands: ``reserve --shell``, ``wait``,
  ``-p +TOKEN acquire``, ``release``, ``cancel-reservation`` (doc/usage.rst "Place Scheduling", man
  labgrid-client(1)). That is the interface bench users and CI scripts already use, so it is the one
  labgrid keeps stable.
* The Python side of it, ``labgrid.remote.client.ClientSession``, is the CLI's own implementation: its
  ``acquire``/``release`` read an ``argparse.Namespace`` (``args.allow_unmatched``, ``args.kick``), report by
  printing, and run on an asyncio loop stashed in a context variable; the documented in-process route,
  ``RemotePlace``, goes through ``RemotePlaceManager``, a process-wide singleton that takes its coordinator
  from $LG_COORDINATOR and expects the place acquired beforehand. Our rules forbid module-level state, and
  the coordinator is a parameter here.
* A child process can be bounded: every call has a timeout and a coordinator that stops answering costs one
  killed ``labgrid-client``, never a harness stuck inside a gRPC call. Each child runs in its own session, so
  the terminal's Ctrl-C reaches only us; our release then runs in a fresh child that the second half of the
  same keystroke cannot interrupt.
* It costs about 0.5 s per command (measured): a run makes five or six.

The client is run as ``python -m labgrid.remote.client`` with our own interpreter, so it is the labgrid this
environment installed, whatever is on PATH. $LG_ENV, $LG_PLACE, $LG_TOKEN and $LG_STATE are dropped from its
environment (a user's environment config would make ``-p`` look the place up in it); $LG_USERNAME,
$LG_HOSTNAME and $LG_PROXY are kept: they are who holds a place, as labgrid sees it.

Facts this module relies on (labgrid 26.0.1 source): the coordinator allocates a reservation whose filter is
``name=PLACE`` (every place carries its name as a tag, ``coordinator.py`` ``schedule_reservations``); a waiting
or allocated reservation expires 60 s after its last poll, which ``labgrid-client wait`` does every second
(``common.py`` ``Reservation.refresh``, ``client.py`` ``_wait_reservation``); an acquired place holds its
reservation until released; releasing keeps the reservation allocated to us, so it must be cancelled too; the
exporter starts ser2net for a serial port only when the place is acquired, on a new port each time, listening
on all interfaces (``exporter.py`` ``SerialPortExport._start``), so the console is read after acquiring.
"""

from __future__ import annotations

import getpass
import importlib.metadata
import importlib.util
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from hil.errors import BackendUnavailable, BoardBusy, BoardError, ConfigError

INSTALL_HINT = "pip install 'tinyml-hil[lab]'"
MIN_LABGRID_MAJOR = 26  # the gRPC coordinator; 23.x and older speak crossbar/WAMP
CLIENT_TIMEOUT_S = 30.0  # one labgrid-client command (start-up is about 0.5 s)
POWER_TIMEOUT_S = 60.0  # a power cycle waits 2 s between off and on (NetworkPowerDriver.delay)
CONSOLE_READY_S = 10.0  # the exporter reports ser2net's port just after the acquire
ACTIONS = ("on", "off", "cycle")
# The resources `labgrid-client power` can drive (client.py ClientSession.power).
POWER_RESOURCES = frozenset(
    {
        "NetworkPowerPort",
        "NetworkUSBPowerPort",
        "NetworkSiSPMPowerPort",
        "PDUDaemonPort",
        "TasmotaPowerPort",
        "NetworkYKUSHPowerPort",
        "NetworkSysfsGPIO",
    }
)
_DROPPED_ENV = ("LG_ENV", "LG_PLACE", "PLACE", "LG_TOKEN", "LG_STATE", "STATE", "LG_INITIAL_STATE")
_TAIL_LINES = 6


def labgrid_unavailable_reason() -> str | None:
    """Why labgrid cannot be used here (not installed, too old), or None; labgrid itself is not imported."""
    if importlib.util.find_spec("labgrid") is None:
        return f"labgrid is not installed: {INSTALL_HINT}"
    try:
        version = importlib.metadata.version("labgrid")
    except importlib.metadata.PackageNotFoundError:
        return f"labgrid is importable but not installed as a package: {INSTALL_HINT}"
    major = version.split(".", 1)[0]
    if not major.isdigit() or int(major) < MIN_LABGRID_MAJOR:
        return f"labgrid {version} is too old (its coordinator must be {MIN_LABGRID_MAJOR} or newer): {INSTALL_HINT}"
    return None


class LabgridPlace:
    """A labgrid place held for one run: reserved, acquired, released on every exit path.

    ``with LabgridPlace("nrf52840dk-1", "bench:20408", wait_s=600) as place:`` reserves the place (waiting in
    labgrid's queue up to ``wait_s``), acquires it with the reservation's token, and releases it and cancels the
    reservation when the block ends, by an exception or Ctrl-C too. :meth:`console_url` is the place's
    exported console as a pyserial URL; :meth:`power` switches its power resource.
    """

    def __init__(self, place: str, coordinator: str, *, wait_s: float = 0.0, log_dir: Path | None = None) -> None:
        if not place or "/" in place or place.startswith("+"):
            raise ConfigError(
                f"labgrid place {place!r} is not a place name: give the name `labgrid-client places` lists"
            )
        if not coordinator:
            raise ConfigError(
                f"no labgrid coordinator for place {place}: set coordinator in the lab file, [lab] coordinator "
                "in hil.toml, or $LG_COORDINATOR (HOST:PORT)"
            )
        if wait_s < 0:
            raise ConfigError(f"wait for labgrid place {place} must be 0 or more seconds, not {wait_s:g}")
        if reason := labgrid_unavailable_reason():
            raise BackendUnavailable(f"board place {place} needs labgrid: {reason}")
        self.place = place
        self.coordinator = coordinator
        self.wait_s = float(wait_s)
        self.log_path = log_dir / f"labgrid-{place}.log" if log_dir else None
        # Taken once: the place is held by whoever $LG_USERNAME/$LG_HOSTNAME named when this object was made.
        self._child_env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        self._child_env["PYTHONUNBUFFERED"] = "1"  # `wait` reports each poll as it happens
        # Who labgrid says we are: client.py ClientSession.gethostname()/getuser().
        user = self._child_env.get("LG_USERNAME") or getpass.getuser()
        self.identity = f"{self._child_env.get('LG_HOSTNAME') or socket.gethostname()}/{user}"
        self._token: str | None = None
        self._acquired = False
        self._acquire_sent = False  # an acquire cut short may still have reached the coordinator
        self._resource_cache: list[tuple[str, str, dict[str, Any]]] | None = None
        self._log = logging.getLogger(f"{__name__}({place})")

    def __repr__(self) -> str:
        state = "acquired" if self._acquired else "reserved" if self._token else "idle"
        return f"LabgridPlace({self.place!r}, {self.coordinator!r}, {state})"

    # --- life cycle -------------------------------------------------------------------------

    def acquire(self) -> None:
        """Reserve the place (waiting up to ``wait_s``), then acquire it with the reservation's token.

        Raises :class:`BoardBusy` naming the holder if the place is still taken when the wait ends, and
        :class:`BoardError` if the coordinator, the place or its resources are not there.
        """
        if self._acquired:
            return
        started = time.monotonic()
        try:
            if self.wait_s > 0:
                self._place_details()  # an unknown place fails now, not after a wait that could never end
            self._reserve_and_wait(started + self.wait_s)
            self._acquire_sent = True
            self._client(["-p", f"+{self._token}", "acquire"], what="acquire the place")
            self._acquired = True
        except BaseException:
            self._release_quietly()  # the reservation, and the place if the acquire got through before Ctrl-C
            raise
        self._log.info("acquired %s as %s in %.1f s", self.place, self.identity, time.monotonic() - started)

    def release(self) -> None:
        """Release the place and cancel the reservation; does nothing when neither is held."""
        token, self._token = self._token, None
        acquired, self._acquired = self._acquired, False
        acquire_sent, self._acquire_sent = self._acquire_sent, False
        self._resource_cache = None
        if token is None and not acquired:
            return
        problems: list[str] = []
        # The reservation goes first. Cancelled after the release, it would still mark the place as reserved during
        # the coordinator's scheduling pass, and the next run in the queue would get the place only at the next
        # periodic pass, up to 15 s later (coordinator.py schedule_reservations, Coordinator.poll).
        if token is not None:
            result = self._client(["cancel-reservation", token], check=False)
            if result.returncode != 0 and "does not exist" not in result.stderr:
                problems.append(f"cancelling reservation {token} failed: {_tail(result)}")
        # An acquire cut short by Ctrl-C may have gone through: then the place is ours although not marked so.
        if acquired or (acquire_sent and self.holder() == self.identity):
            result = self._client(["-p", self.place, "release"], check=False)
            if result.returncode != 0 and self.holder() == self.identity:
                problems.append(f"release failed: {_tail(result)}")
        if problems:
            raise BoardError(
                self.place,
                "; ".join(problems) + f"; release it by hand: labgrid-client -x {self.coordinator} -p {self.place} "
                "release",
                runner="labgrid",
            )
        self._log.info("released %s", self.place)

    def __enter__(self) -> LabgridPlace:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.release()
        else:
            self._release_quietly()  # never hide why the run ended behind a failed release

    def _release_quietly(self) -> None:
        try:
            self.release()
        except BoardError as err:
            self._log.error("%s", err)

    # --- what the run uses ------------------------------------------------------------------

    def console_url(self) -> str:
        """The place's exported serial console as a pyserial URL, e.g. ``rfc2217://bench:40123?ign_set_control``.

        ``ign_set_control``: ser2net on a pty never answers RFC 2217 SET_CONTROL, and pyserial would wait for it.
        """
        self._require_acquired("console_url")
        deadline = time.monotonic() + CONSOLE_READY_S
        while True:
            ports = {name: args for cls, name, args in self._resources() if cls == "NetworkSerialPort"}
            if not ports:
                raise BoardError(
                    self.place, "the place has no serial port: match the exporter's console into it", runner="labgrid"
                )
            name, args = _pick_console(self.place, ports)
            if args.get("port"):
                break
            if time.monotonic() > deadline:
                raise BoardError(
                    self.place,
                    f"the exporter published no port for console {name} within {CONSOLE_READY_S:g} s: is ser2net "
                    "installed on the exporter host, and the serial device present?",
                    runner="labgrid",
                )
            time.sleep(0.2)
        host = str(args["host"])
        host = f"[{host}]" if ":" in host else host
        if args.get("protocol", "rfc2217") == "raw":
            return f"socket://{host}:{args['port']}"
        return f"rfc2217://{host}:{args['port']}?ign_set_control"

    def power(self, action: str) -> None:
        """Switch the place's power resource: ``on``, ``off`` or ``cycle`` (off, 2 s, on), through labgrid's driver."""
        if action not in ACTIONS:
            raise ConfigError(f"power action {action!r} is not one of {', '.join(ACTIONS)}")
        self._require_acquired(f"power {action}")
        classes = {cls for cls, _, _ in self._resources()}
        if not classes & POWER_RESOURCES:
            raise BoardError(
                self.place,
                f"the place has no power resource (it has {', '.join(sorted(classes)) or 'none'}): export one "
                f"({', '.join(sorted(POWER_RESOURCES))}) and add it to the place, or give power commands in the lab "
                "file",
                runner="labgrid",
            )
        self._client(["-p", self.place, "power", action], what=f"power {action}", timeout_s=POWER_TIMEOUT_S)

    def holder(self) -> str | None:
        """Who holds the place now, as labgrid names them (``host/user``), or None when it is free."""
        match = re.search(r"^  acquired: (.+)$", self._place_details(), re.MULTILINE)
        value = match.group(1).strip() if match else "None"
        return None if value == "None" else value

    # --- labgrid-client ---------------------------------------------------------------------

    def _argv(self, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "labgrid.remote.client", "-x", self.coordinator, *args]

    def _env(self) -> dict[str, str]:
        return dict(self._child_env)

    def _client(
        self, args: list[str], *, what: str = "", timeout_s: float = CLIENT_TIMEOUT_S, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run one labgrid-client command in its own session; kill it if it outlives ``timeout_s``."""
        argv = self._argv(args)
        started = time.monotonic()
        with subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self._env(),
            start_new_session=True,
        ) as proc:
            try:
                out, err = proc.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _end_group(proc)
                self._record(args, "", f"[no answer within {timeout_s:g} s]", None, time.monotonic() - started)
                raise BoardError(
                    self.place,
                    f"labgrid-client {_command(args)} got no answer from coordinator {self.coordinator} within "
                    f"{timeout_s:g} s: check that labgrid-coordinator runs there and the exporter is connected",
                    runner="labgrid",
                ) from None
            except BaseException:
                _end_group(proc)
                raise
        result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
        self._record(args, out, err, proc.returncode, time.monotonic() - started)
        if result.returncode != 0 and "Could not connect to coordinator" in err:
            raise BoardError(
                self.place,
                f"labgrid coordinator {self.coordinator} is unreachable ({_tail(result)}): start labgrid-coordinator "
                "there, or fix coordinator in the lab file or $LG_COORDINATOR",
                runner="labgrid",
            )
        if check and result.returncode != 0:
            raise BoardError(self.place, f"could not {what or _command(args)}: {_tail(result)}", runner="labgrid")
        return result

    def _record(self, args: list[str], out: str, err: str, code: int | None, duration_s: float) -> None:
        self._log.debug("labgrid-client %s -> %s in %.2f s", " ".join(args), code, duration_s)
        if self.log_path is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(
                f"{time.strftime('%Y-%m-%d %H:%M:%S')} $ labgrid-client -x {self.coordinator} {' '.join(args)}\n"
                f"{out}{err}[exit {code} after {duration_s:.2f} s]\n\n"
            )

    def _place_details(self) -> str:
        """``labgrid-client -p PLACE show``, checked to be this very place (``-p`` also matches substrings)."""
        result = self._client(["-p", self.place, "show"], check=False)
        if result.returncode != 0 or not result.stdout.startswith(f"Place '{self.place}':"):
            if re.search(r"matches (nothing|multiple)", result.stderr) or result.returncode == 0:
                raise BoardError(
                    self.place,
                    f"coordinator {self.coordinator} has no place {self.place}: create it with `labgrid-client -p "
                    f"{self.place} create` and `add-match EXPORTER/GROUP/*`",
                    runner="labgrid",
                )
            raise BoardError(self.place, f"cannot read the place: {_tail(result)}", runner="labgrid")
        return result.stdout

    def _reserve_and_wait(self, deadline: float) -> None:
        """Reserve the place by name; if another run has it, follow ``labgrid-client wait`` until ``deadline``.

        ``reserve`` answers with the reservation's state right after the coordinator scheduled it, so a free
        place costs one command. ``wait`` polls every second, printing the state each time, which also keeps the
        reservation from expiring (client.py ``_wait_reservation``, common.py ``Reservation.refresh``).
        """
        result = self._client(["reserve", f"name={self.place}"], what="reserve the place")
        token = re.search(r"^Reservation '(\S+)':$", result.stdout, re.MULTILINE)
        state = re.search(r"^  state: (\w+)$", result.stdout, re.MULTILINE)
        if not token or not state:
            raise BoardError(self.place, f"unreadable labgrid-client reserve output: {_tail(result)}", runner="labgrid")
        self._token = token.group(1)
        if state.group(1) == "waiting" and time.monotonic() < deadline:
            final = self._follow_wait(self._token, deadline)
        else:
            final = state.group(1)
        if final == "waiting":
            raise BoardBusy(self._busy_message())
        if final != "allocated":
            raise BoardError(
                self.place, f"reservation {self._token} ended {final} before the place was free", runner="labgrid"
            )

    def _follow_wait(self, token: str, deadline: float) -> str:
        """The reservation's last state that ``labgrid-client wait TOKEN`` printed by ``deadline`` (or its exit)."""
        args = ["wait", token]
        started = time.monotonic()
        output = b""
        with subprocess.Popen(
            self._argv(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env(),
            start_new_session=True,
        ) as proc:
            assert proc.stdout is not None
            timed_out = False
            try:
                while True:
                    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
                    if not ready:
                        timed_out = True
                        break
                    chunk = proc.stdout.read1(4096)
                    output += chunk
                    if not chunk:
                        break  # the client ended: the reservation left ``waiting``
            finally:
                _end_group(proc)
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        self._record(args, output.decode(errors="replace"), err, proc.returncode, time.monotonic() - started)
        states = re.findall(rb"^state: (\w+)$", output, re.MULTILINE)
        if not states and timed_out:
            return "waiting"  # the wait ran out before the client printed its first state (a short --wait)
        if not states:
            lines = [line for line in err.splitlines() if line.strip()] or ["it printed nothing"]
            raise BoardError(self.place, f"labgrid-client wait {token} failed: {lines[-1]}", runner="labgrid")
        return states[-1].decode()

    def _busy_message(self) -> str:
        details = self._place_details()
        waited = f"waited {self.wait_s:g} s" if self.wait_s else "--wait SECONDS queues for it"
        holder = re.search(r"^  acquired: (.+)$", details, re.MULTILINE)
        if holder and holder.group(1) != "None":
            who = holder.group(1)
            return (
                f"labgrid place {self.place} is held by {who} ({waited}): try again later, or ask {who} to release it"
            )
        reservation = re.search(r"^  reservation: (\S+)$", details, re.MULTILINE)
        owner = self._reservation_owner(reservation.group(1)) if reservation else None
        return f"labgrid place {self.place} is reserved by {owner or 'another run'} ({waited})"

    def _reservation_owner(self, token: str) -> str | None:
        listing = self._client(["reservations"], check=False).stdout
        block = re.search(rf"^Reservation '{re.escape(token)}':\n  owner: (\S+)$", listing, re.MULTILINE)
        return block.group(1) if block else None

    def _resources(self) -> list[tuple[str, str, dict[str, Any]]]:
        """The acquired place's resources from ``labgrid-client env``: (class, name, arguments).

        Kept until the release once every serial port has its ser2net port: they stay put while we hold the place.
        """
        if self._resource_cache is not None:
            return self._resource_cache
        import yaml  # a labgrid dependency, present whenever labgrid is

        result = self._client(["-p", self.place, "env"], what="read the place's resources")
        try:
            config = yaml.safe_load(result.stdout)
            entries = config["targets"][self.place]["resources"]
        except (yaml.YAMLError, KeyError, TypeError) as err:
            raise BoardError(self.place, f"unreadable labgrid-client env output ({err})", runner="labgrid") from err
        resources = []
        for entry in entries:
            for cls, args in entry.items():
                args = dict(args or {})
                resources.append((cls, str(args.get("name", cls)), args))
        if all(args.get("port") for cls, _, args in resources if cls == "NetworkSerialPort"):
            self._resource_cache = resources
        return resources

    def _require_acquired(self, what: str) -> None:
        if not self._acquired:
            raise ConfigError(
                f"labgrid place {self.place} is not acquired, {what} cannot be used: call acquire() first"
            )


def _pick_console(place: str, ports: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    if len(ports) == 1:
        return next(iter(ports.items()))
    if "console" in ports:
        return "console", ports["console"]
    raise BoardError(
        place,
        f"the place has serial ports {', '.join(sorted(ports))}: name the console one `console` "
        f"(labgrid-client -p {place} add-named-match EXPORTER/GROUP/NetworkSerialPort console)",
        runner="labgrid",
    )


def _command(args: list[str]) -> str:
    """The labgrid-client command in ``args`` (after ``-p PLACE``)."""
    return args[2] if args[:1] == ["-p"] and len(args) > 2 else args[0]


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stderr or result.stdout or "").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-_TAIL_LINES:]) or f"exit code {result.returncode}"


def _end_group(proc: subprocess.Popen[Any]) -> None:
    """terminate → bounded wait → kill, for the child's whole process group (it runs in its own session)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=3.0)
            return
        except subprocess.TimeoutExpired:
            continue
