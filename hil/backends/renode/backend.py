"""The Renode backend: Zephyr firmware in the Renode emulator, one Renode process per device.

``start()`` finds Renode (``$RENODE``, ``PATH``, or an install made by ``renode-run``; its version
comes from the monitor's banner, not from a separate ``renode --version``), runs it headless with
its monitor on a 127.0.0.1 port, writes a ``.resc`` script for the target into the artifacts folder
and ``include``\\ s it through the monitor, starts the emulation, and hands back
``socket://127.0.0.1:<port>``: the console UART bridged to a server socket terminal. Restarting
the device means a new Renode process; stopping asks the monitor to ``quit`` and then ends
Renode's whole process group. Renode cannot outlive the harness: it runs as a
:class:`~hil.backends._process.ChildProcess` with its own group, a parent-death signal and a
watchdog (the group holds ``mono`` when ``renode`` is a launcher script).

Measurements come from the monitor: :meth:`RenodeBackend.counters` reads the CPU's executed
instructions and the virtual time, :meth:`RenodeBackend.cost_of` measures one action (e.g. an
inference) with them. :meth:`RenodeBackend.save_snapshot` saves the emulation (``Save``);
:meth:`RenodeBackend.play_into_sensor` feeds a stimulus recording to the emulated sensor.

Command-line options were read in Renode 1.14.0's renode-infrastructure ``src/UI/Options.cs`` and
``CommandLineInterface.cs``; terminals in ``Backends/Terminals/ServerSocketTerminal.cs``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

from hil import resd
from hil.backends import Backend, EmulatorCost, SensorPlayback, firmware_image, free_tcp_port, missing_firmware
from hil.backends._process import ChildProcess
from hil.backends.renode.install import RENODE_MIN_VERSION, RenodeInstallation, find_renode, parse_version, with_version
from hil.backends.renode.monitor import (
    MONITOR_COMMAND_TIMEOUT_S,
    EmulatorCounters,
    MonitorClient,
    counters_python,
    parse_counters,
    parse_number,
    parse_quantum,
    parse_virtual_time,
)
from hil.backends.renode.playback import queue_recording
from hil.backends.renode.script import accelerometer, build_script, options
from hil.config import HilConfig, Target, truthy
from hil.errors import BackendUnavailable, ConfigError, HilError
from hil.phases import COST, COUNTERS, FIND, FIRMWARE, MODEL, PLATFORM, RUN, SCRIPT, SPAWN
from hil.stimuli import Stimulus

log = logging.getLogger(__name__)
T = TypeVar("T")

MONITOR_SCRIPT_TIMEOUT_S = 120.0  # platform loading; repls that ApplySVD from the net may wait on it
SNAPSHOT_TIMEOUT_S = 120.0
QUIT_TIMEOUT_S = 10.0
KILL_TIMEOUT_S = 5.0


def _distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        if (port := free_tcp_port()) not in ports:
            ports.append(port)
    return ports


class RenodeBackend(Backend):
    """One Renode process per device; see the module docstring for the sequence."""

    _renode: ChildProcess | None = None
    _monitor: MonitorClient | None = None
    _install: RenodeInstallation | None = None
    _transcript: IO[str] | None = None
    _script_path: Path | None = None
    _monitor_port: int = 0
    _console_port: int = 0
    _robot_port: int = 0
    _quantum: str = ""  # the time source as the script left it (emulation GetTimeSourceInfo)
    _python_counters: bool = True

    @classmethod
    def unavailable_reason(cls, target: Target, config: HilConfig) -> str | None:
        return cls._reason(target, config, find_renode())

    @staticmethod
    def _reason(target: Target, config: HilConfig, install: RenodeInstallation) -> str | None:
        if not install.usable:
            return install.why_not()
        if reason := missing_firmware(target, config):
            return reason
        try:
            accelerometer(target)
        except ConfigError as err:
            return str(err)
        return None

    # life cycle ------------------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.artifacts_dir / "renode.log"

    @property
    def robot_server_url(self) -> str | None:
        """Renode's Robot Framework remote server (``Library  Remote  <url>``), if started."""
        return f"http://127.0.0.1:{self._robot_port}/" if self._robot_port else None

    def _wants_robot_server(self) -> bool:
        return options(self.target).robot_server or truthy(os.environ.get("HIL_RENODE_ROBOT", ""))

    def start(self) -> str:
        with self.phases.span(FIND):
            install = find_renode(ask_version=False)  # the version comes with the monitor's banner
        if reason := self._reason(self.target, self.config, install):
            raise BackendUnavailable(reason)
        assert install.path is not None
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self._monitor_port, self._console_port, robot_port = _distinct_ports(3)
        argv = [str(install.path), "--disable-xwt", "--plain", "--port", str(self._monitor_port)]
        if fixed := options(self.target).robot_server_port:
            robot_port = fixed
        if fixed or self._wants_robot_server():
            self._robot_port = robot_port
            argv += ["--robot-server-port", str(robot_port)]
        with self.log_path.open("a") as banner:
            banner.write(f"\n--- tinyml-hil: {' '.join(argv)}\n")
        # Renode deletes every <temp dir>/renode-* folder not named after a running Renode's pid when it
        # starts and stops (TemporaryFilesManager.Cleanup): a private temp dir keeps it away from others' files.
        private_tmp = self.artifacts_dir / "renode-tmp"
        private_tmp.mkdir(exist_ok=True)
        env = os.environ | {"TMPDIR": str(private_tmp)}
        spawned = time.monotonic()
        self._renode = ChildProcess(
            "Renode", argv, self.log_path, watchdog=True, stop_timeout_s=KILL_TIMEOUT_S,
            stdin=subprocess.DEVNULL, cwd=self.artifacts_dir, env=env,
        )  # fmt: skip
        try:
            self._transcript = (self.artifacts_dir / "renode-monitor.log").open("a", encoding="utf-8")
            self._monitor = MonitorClient.connect(
                self._monitor_port,
                timeout_s=self.target.boot_timeout_s,
                name=f"Renode ({self.target.name})",
                exit_reason=self.exit_reason,
                transcript=self._transcript,
                phases=self.phases,
            )
            self.phases.add(SPAWN, spawned, time.monotonic())
            version = parse_version(self._monitor.banner)
            install = with_version(install, ".".join(map(str, version)) if version else None, "Renode's monitor")
            if install.problem:
                raise BackendUnavailable(install.why_not())
            self._install = install
            script = build_script(
                self.target,
                self.config,
                firmware=firmware_image(self.target, self.config),
                console_port=self._console_port,
                renode_version=install.version_tuple or RENODE_MIN_VERSION,
            )
            self._script_path = self.artifacts_dir / f"renode-{self.target.board_id}.resc"
            self._script_path.write_text(script.text)
            self._monitor.expect_machine(script.machine)
            self._run_script(script.commands)
            self._quantum = self.execute("emulation GetTimeSourceInfo")
            with self.phases.span(RUN):
                self.execute("start")
        except BaseException:
            self.stop()
            raise
        return f"socket://127.0.0.1:{self._console_port}"

    def _run_script(self, commands: tuple[str, ...]) -> None:
        """The script's commands (what ``include`` of the whole ``.resc`` would do), in steps timed as
        their phases: the platform, our C# model and the firmware one by one, each run of the other
        commands at once from a small file of its own (one monitor round trip each)."""
        steps: list[tuple[str, list[str]]] = []
        for command in commands:
            phase = _phase_of(command)
            if steps and phase == SCRIPT and steps[-1][0] == SCRIPT:
                steps[-1][1].append(command)
            else:
                steps.append((phase, [command]))
        for number, (phase, lines) in enumerate(steps):
            command = lines[0]
            if len(lines) > 1 or "\n" in command:
                path = self.artifacts_dir / f"renode-{self.target.board_id}-{number}.resc"
                path.write_text("\n".join(lines) + "\n")
                command = f"include {resd.monitor_path(path)}"
            with self.phases.span(phase):
                self.execute(command, MONITOR_SCRIPT_TIMEOUT_S)

    def stop(self) -> None:
        monitor, self._monitor = self._monitor, None
        renode, self._renode = self._renode, None
        if monitor is not None:
            monitor.send_quit()
        if renode is not None:
            if monitor is not None and renode.wait(QUIT_TIMEOUT_S) is None:
                log.warning("Renode did not quit within %g s: terminating it", QUIT_TIMEOUT_S)
            renode.stop()
        if monitor is not None:
            monitor.close()
        transcript, self._transcript = self._transcript, None
        if transcript is not None:
            transcript.close()
        self._robot_port = 0

    def exit_reason(self) -> str | None:
        return self._renode.exit_reason() if self._renode else None

    def facts(self) -> dict[str, str]:
        install = self._install or find_renode()
        facts = {
            "renode": install.version or "not found",
            "renode_path": str(install.path or ""),
            "renode_found_by": install.found_by,
            "platform": options(self.target).platform,
            "firmware": str(firmware_image(self.target, self.config)),
            "renode_log": str(self.log_path),
        }
        if self._script_path:
            facts["renode_script"] = str(self._script_path)
        if self.robot_server_url:
            facts["renode_robot_server"] = self.robot_server_url
            facts["renode_machine"] = self.target.board_id  # the name build_script gives the machine
        return facts

    # the monitor ------------------------------------------------------------------------------------

    @property
    def monitor(self) -> MonitorClient:
        if self._monitor is None:
            raise HilError(f"{self.target.name}: Renode is not running: open the device first")
        return self._monitor

    def execute(self, command: str, timeout_s: float = MONITOR_COMMAND_TIMEOUT_S) -> str:
        """Run a monitor command; a refusal names the command, Renode's answer and the log to read."""
        try:
            return self.monitor.execute(command, timeout_s)
        except HilError as err:
            reason = self.exit_reason()
            where = f"; Renode's log: {self.log_path}" + (f"; script: {self._script_path}" if self._script_path else "")
            raise type(err)(f"{err}{f' ({reason})' if reason else ''}{where}") from err

    def counters(self) -> EmulatorCounters:
        """Executed instructions of the target's CPU (option ``cpu``, default sysbus.cpu) and virtual time.

        Both are read at the same instant with one monitor round trip (a line of the monitor's
        Python); a Renode whose monitor has no Python is asked twice.
        """
        cpu = options(self.target).cpu
        with self.phases.span(COUNTERS):
            if self._python_counters:
                try:
                    return parse_counters(self.execute(counters_python(cpu)))
                except ConfigError:
                    self._python_counters = False
            instructions = parse_number(self.execute(f"{cpu} ExecutedInstructions"))
            return EmulatorCounters(instructions, parse_virtual_time(self.execute("currentTime")))

    def cost_of(self, action: Callable[[], T]) -> tuple[T, EmulatorCost]:
        """Run ``action`` (e.g. one ``device.infer``) and return its result with what it cost in Renode."""
        before = self.counters()
        started = time.monotonic()
        result = action()
        ended = time.monotonic()
        after = self.counters()
        cost = EmulatorCost(
            after.instructions - before.instructions, after.virtual_time_s - before.virtual_time_s, ended - started
        )
        self.phases.add(COST, started, ended, instructions=cost.instructions, virtual_s=round(cost.virtual_time_s, 6))
        return result, cost

    @contextlib.contextmanager
    def fast_forward(self) -> Iterator[None]:
        """Let virtual time run as fast as the host allows for the block, idle periods included.

        Renode's advance-immediately (``TimeSourceBase.AdvanceImmediately`` in renode-infrastructure
        ``src/Emulator/Main/Time``): the time source stops sleeping to keep virtual time behind real
        time. Instructions and their virtual time are the same; only the wait for real time goes.
        Use it only while the host sends nothing: the firmware's 100 ms stale-frame rule
        (docs/protocol.md) counts in virtual time, which must keep pace with real time while the
        bytes of a request arrive.
        """
        fast = [
            "emulation SetGlobalAdvanceImmediately true",
            f'emulation SetGlobalQuantum "{options(self.target).fast_forward_quantum_s:.6f}"',
        ]
        normal = [
            f'emulation SetGlobalQuantum "{parse_quantum(self._quantum)}"',
            "emulation SetGlobalAdvanceImmediately false",
        ]
        for command in fast:
            self.execute(command)
        try:
            yield
        except BaseException:
            with contextlib.suppress(HilError):  # Renode may be gone: keep the error that says why
                for command in normal:
                    self.execute(command)
            raise
        for command in normal:
            self.execute(command)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Pause the emulation for the block (e.g. to read state consistently), then resume it."""
        self.execute("pause")
        try:
            yield
        finally:
            self.execute("start")

    def machine_reset(self) -> Callable[[], object] | None:
        """``machine Reset`` (the script's reset macro points the core at the vector table); target option
        ``reset_between_tests = false`` keeps the machine running from test to test."""
        if not options(self.target).reset_between_tests:
            return None
        return lambda: self.execute("machine Reset")

    def save_snapshot(self, path: Path) -> Path:
        """Save the whole emulation (Renode's ``Save``) to ``path``; load it with ``Load @path`` in Renode.

        The console's socket terminal is not part of a snapshot (Renode marks it transient).
        """
        path = path.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.execute(f"Save {resd.monitor_path(path)}", SNAPSHOT_TIMEOUT_S)
        return path

    def play_into_sensor(self, stimulus: Stimulus) -> SensorPlayback:
        """Queue a stimulus recording in the target's emulated accelerometer (sensor source 1 streams);
        see :mod:`hil.backends.renode.playback`."""
        return queue_recording(self, self.target, self.artifacts_dir, stimulus)


def _phase_of(command: str) -> str:
    command = command.split("\n", 1)[0]  # a macro's definition runs nothing yet
    if "LoadPlatformDescription " in command:
        return PLATFORM
    if command.startswith("include ") and command.endswith(".cs"):
        return MODEL  # Renode compiles our C# model (a peripheral, the console bridge)
    if "LoadELF" in command:
        return FIRMWARE
    return SCRIPT
