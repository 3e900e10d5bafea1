"""The Renode backend end to end without Renode: start, stop, counters, snapshots, sensors, resets.

``FAKE_RENODE_SOURCE`` (a test double, defined here): a small executable named ``renode`` that speaks
the monitor protocol as a process (``--version``, ``--port``, ``include`` of our script, a console
socket terminal, ``quit``), so ``RenodeBackend.start/stop`` run end to end.
"""

from __future__ import annotations

import socket
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hil import resd
from hil.backends import free_tcp_port
from hil.backends import renode as rb
from hil.backends.renode import backend as renode_backend
from hil.config import HilConfig, load_config
from hil.errors import BackendUnavailable, ConfigError, DeviceLost, SensorUnavailable
from hil.stimuli import load_stimulus

OUR_1_14_ANSWER = bytes([255, 251, 0, 255, 253, 1, 255, 253, 3])


def _user_config(tmp_path: Path, table: str) -> HilConfig:
    (tmp_path / "hil.toml").write_text(textwrap.dedent(table))
    return load_config(tmp_path / "hil.toml")


def _live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (read from /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _wait_gone(pgid: int, timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (alive := _live_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


# --- the backend against a fake Renode process ------------------------------------------------------------------

FAKE_RENODE_SOURCE = r"""
import os, signal, socket, subprocess, sys, threading

def record(line):
    with open(os.environ["FAKE_RENODE_RECORD"], "a") as f:
        f.write(line + "\n")

args = sys.argv[1:]
if "--version" in args:
    print("Renode, version 1.14.0.25149 (81da46c1-202308081346)")
    sys.exit(0)
record("argv " + " ".join(args))
record("tmpdir " + os.environ.get("TMPDIR", ""))
if os.environ.get("FAKE_RENODE_EXIT"):
    sys.exit(int(os.environ["FAKE_RENODE_EXIT"]))
if os.environ.get("FAKE_RENODE_STUBBORN"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    record("grandchild %d" % subprocess.Popen(["sleep", "300"]).pid)

def listen(port):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    return server

def console(server, keep):
    conn, _ = server.accept()
    keep.append(conn)
    conn.sendall(b"HIL BOOT fw=fake proto=2 board=fake build=0123456789abcdef\r\nHIL READY\r\n")

monitor = listen(int(args[args.index("--port") + 1]))
print("Monitor available in telnet mode", flush=True)
conn, _ = monitor.accept()
conn.sendall(bytes([255, 253, 0, 255, 251, 1, 255, 251, 3, 255, 252, 34]))
answer = b""
while len(answer) < 9:
    answer += conn.recv(9 - len(answer))
record("negotiation " + answer.hex())
prompt, keep, instructions, virtual_us = "monitor", [], 1000, 0

def send(text):
    conn.sendall(text.replace("\n", "\n\r").encode())

send("\nRenode, version 1.14.0.25149 (81da46c1-202308081346)\n\n(monitor) ")
SCRIPT = ("using ", "$bin", "mach create", "machine LoadPlatformDescription", "logLevel", "connector Connect",
          "sysbus LoadELF", "emulation ", "runMacro", "sysbus.")

def script_line(command):
    global prompt
    if "@/nonexistent" in command:
        return "There was an error executing command 'machine'\nCould not find file '/nonexistent/x.repl'"
    if command.startswith("mach create"):
        prompt = command.split('"')[1]
    if command.startswith(("emulation CreateServerSocketTerminal", "emulation CreateHilSocketTerminal")):
        keep.append(listen(int(command.split()[2])))  # listening before `start`, as in Renode
        threading.Thread(target=console, args=(keep[-1], keep), daemon=True).start()
    return ""

pending = b""
while True:
    data = conn.recv(4096)
    if not data:
        break
    pending += data
    while b"\n" in pending:
        raw, pending = pending.split(b"\n", 1)
        line = raw.decode()
        record("cmd " + line)
        out = ""
        if line.startswith("include @") and not line.endswith(".cs"):
            for command in open(line[9:].replace("\\ ", " ")).read().splitlines():
                if out := script_line(command):
                    break
        elif line.startswith("include @"):
            pass  # Renode compiles the C# model
        elif line.endswith(" ExecutedInstructions"):
            instructions += 12345
            out = "0x%X" % instructions
        elif line == "currentTime":
            virtual_us += 2500
            out = "Current virtual time: 00:00:%02d.%06d\nCurrent real time: 00:00:01.0" % divmod(virtual_us, 10**6)
        elif line.startswith('python "') and "ExecutedInstructions" in line:
            if os.environ.get("FAKE_RENODE_NO_PYTHON"):
                out = "No such command or device: python"
            else:
                instructions += 12345
                virtual_us += 2500
                out = "%d 00:00:%02d.%06d" % ((instructions,) + divmod(virtual_us, 10**6))
        elif line == "emulation GetTimeSourceInfo":
            out = "Elapsed Virtual Time: 00:00:00.000000\nAdvance immediately: False\nQuantum: 00:00:00.000100"
        elif line.startswith("emulation RunFor "):
            virtual_us += round(float(line.split('"')[1]) * 10**6)
        elif line.startswith("Save @"):
            with open(line[6:].replace("\\ ", " "), "w") as f:
                f.write("snapshot")
        elif line == "quit":
            if os.environ.get("FAKE_RENODE_STUBBORN"):
                continue
            send("quit\nRenode is quitting\n")
            sys.exit(0)
        elif line.startswith(SCRIPT):
            out = script_line(line)
        elif line not in ("start", "pause", "machine Reset") and " Feed" not in line:
            out = "No such command or device: " + line.split()[0]
        send(line + "\n" + (out + "\n" if out else "") + "(%s) " % prompt)
"""


@pytest.fixture
def fake_renode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$RENODE points at the fake; returns the file where it records argv, negotiation and commands."""
    exe = tmp_path / "fake-renode" / "renode"
    exe.parent.mkdir()
    exe.write_text(f"#!{sys.executable}\n{FAKE_RENODE_SOURCE}")
    exe.chmod(0o755)
    record = tmp_path / "fake-renode" / "record.txt"
    monkeypatch.setenv("RENODE", str(exe))
    monkeypatch.setenv("FAKE_RENODE_RECORD", str(record))
    monkeypatch.delenv("HIL_RENODE_ROBOT", raising=False)
    return record


def _backend(tmp_path: Path, platform: str = "platforms/cpus/nrf52840.repl", extra: str = "") -> rb.RenodeBackend:
    (tmp_path / "fw").mkdir(exist_ok=True)
    (tmp_path / "fw/zephyr.elf").write_bytes(b"\x7fELF")
    config = _user_config(
        tmp_path,
        f"""
        [targets."renode:fake"]
        backend = "renode"
        platform = "{platform}"
        console = "sysbus.uart0"
        firmware = "fw/zephyr.elf"
        boot_timeout_s = 20
        {extra}
        """,
    )
    return rb.RenodeBackend(config.target("renode:fake"), config, tmp_path / "artifacts dir")


def _recorded(record: Path) -> list[str]:
    return record.read_text().splitlines() if record.exists() else []


def test_backend_starts_renode_headless_and_bridges_the_console(tmp_path: Path, fake_renode: Path) -> None:
    backend = _backend(tmp_path)
    try:
        url = backend.start()
        assert url.startswith("socket://127.0.0.1:")
        # A raw socket: pyserial's socket:// open() drains bytes that already arrived.
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5) as console:
            assert (
                console.makefile("rb").readline() == b"HIL BOOT fw=fake proto=2 board=fake build=0123456789abcdef\r\n"
            )
        facts = backend.facts()
    finally:
        backend.stop()
    recorded = _recorded(fake_renode)
    argv = recorded[0].split()
    assert argv[1:4] == ["--disable-xwt", "--plain", "--port"]
    assert "--console" not in argv  # --console would put the monitor on stdin instead of the port
    # Renode deletes <temp dir>/renode-* folders of other processes: it gets a temp dir of its own.
    assert recorded[1] == f"tmpdir {backend.artifacts_dir / 'renode-tmp'}"
    assert recorded[2] == "negotiation " + OUR_1_14_ANSWER.hex()
    script = backend.artifacts_dir / "renode-renode-fake.resc"
    # The script's commands in steps: the platform and the firmware alone (each timed as its phase), the
    # rest in runs from files of their own; then the time source, then start.
    end = recorded.index("cmd emulation GetTimeSourceInfo")
    assert recorded[end + 1] == "cmd start"
    sent = []
    for line in recorded[3:end]:
        step = line.removeprefix("cmd ")
        if step.startswith("include @") and "renode-renode-fake-" in step:
            sent += Path(step.removeprefix("include @").replace("\\ ", " ")).read_text().splitlines()
        else:
            sent.append(step)
    assert sent == [line for line in script.read_text().splitlines() if line and not line.startswith(":")]
    assert "cmd machine LoadPlatformDescription @platforms/cpus/nrf52840.repl" in recorded[3:end]
    assert "cmd sysbus LoadELF $bin" in recorded[3:end]
    assert len(recorded[3:end]) <= 6  # monitor round trips for the whole script
    assert recorded[-1] == "cmd quit"
    assert "connector Connect sysbus.uart0 hil_console" in script.read_text()
    assert facts["renode"] == "1.14.0"
    assert facts["renode_found_by"] == "$RENODE"
    assert facts["renode_script"] == str(script)
    assert "Monitor available in telnet mode" in (backend.artifacts_dir / "renode.log").read_text()
    assert "[sent] start" in (backend.artifacts_dir / "renode-monitor.log").read_text()
    assert backend.exit_reason() is None  # stopped and forgotten
    backend.stop()  # twice is fine


@pytest.mark.usefixtures("fake_renode")
def test_backend_measures_instructions_and_virtual_time(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    try:
        backend.start()
        assert backend.counters() == rb.EmulatorCounters(1000 + 12345, 0.0025)
        result, cost = backend.cost_of(lambda: "inferred")
    finally:
        backend.stop()
    assert result == "inferred"
    assert (cost.instructions, cost.virtual_time_s) == (12345, pytest.approx(0.0025))
    assert cost.as_dict()["instructions"] == 12345


@pytest.mark.parametrize("python", [True, False], ids=["monitor-python", "two-commands"])
def test_counters_take_one_round_trip_where_the_monitor_has_python(
    tmp_path: Path, fake_renode: Path, monkeypatch: pytest.MonkeyPatch, python: bool
) -> None:
    if not python:
        monkeypatch.setenv("FAKE_RENODE_NO_PYTHON", "1")
    backend = _backend(tmp_path)
    try:
        backend.start()
        first, second = backend.counters(), backend.counters()
    finally:
        backend.stop()
    assert (second.instructions - first.instructions, second.virtual_time_s - first.virtual_time_s) == (
        12345,
        pytest.approx(0.0025),
    )
    commands = [line[4:] for line in _recorded(fake_renode) if line.startswith("cmd ")]
    reads = commands[commands.index("start") + 1 : commands.index("quit")]
    if python:
        assert reads == [rb.counters_python("sysbus.cpu")] * 2
    else:  # asked once, then the two plain commands
        assert reads == [rb.counters_python("sysbus.cpu"), *["sysbus.cpu ExecutedInstructions", "currentTime"] * 2]


def test_monitor_numbers_parse() -> None:
    assert rb.parse_counters("1911720 00:00:00.235300\n") == rb.EmulatorCounters(1911720, pytest.approx(0.2353))
    assert rb.monitor.parse_quantum("State: Idle\nQuantum: 00:00:00.000100\n") == "0.000100"
    assert rb.monitor.parse_quantum("no quantum here") == "0.000100"
    with pytest.raises(ConfigError, match=r"expected `<instructions> <HH:MM:SS\.ffffff>`"):
        rb.parse_counters("Traceback: name 'x' is not defined")


def test_backend_saves_snapshots(tmp_path: Path, fake_renode: Path) -> None:
    backend = _backend(tmp_path)
    try:
        backend.start()
        saved = backend.save_snapshot(tmp_path / "snap shots" / "failed.save")
    finally:
        backend.stop()
    assert saved.read_text() == "snapshot"
    assert f"cmd Save {resd.monitor_path(saved)}" in _recorded(fake_renode)


def _read_feed_file(path: Path) -> str:
    return path.read_text()


def _read_resd_samples(path: Path) -> list[list[int]]:
    (block,) = resd.read_resd(path)
    return block.samples.tolist()


@pytest.mark.parametrize(
    ("sensor", "read", "fed_content", "command"),
    [
        # a samples file, one sample per register read, in the ADXL345's 4 mg/LSB
        ("adxl345", _read_feed_file, "0 0 1024\n512 0 1024\n", "FeedSample {path}"),
        # RESD in µg, shifted so its first sample is the fake's current virtual time (2.5 ms)
        (
            "lsm6dso",
            _read_resd_samples,
            [[0, 0, 1_000_000], [500_000, 0, 1_000_000]],
            "FeedAccelerationSamplesFromRESD {path} 0 0 -2500000",
        ),
    ],
)
def test_backend_plays_a_stimulus_into_the_accelerometer(
    tmp_path: Path,
    fake_renode: Path,
    sensor: str,
    read: Callable[[Path], object],
    fed_content: object,
    command: str,
) -> None:
    stimulus = tmp_path / "wave.csv"
    stimulus.write_text("t_s,accel_x_g,accel_y_g,accel_z_g\n0,0,0,1\n0.02,0.5,0,1\n")
    backend = _backend(tmp_path, extra=f'accelerometer = "sysbus.i2c1.{sensor}"')
    try:
        backend.start()
        playback = backend.play_into_sensor(load_stimulus(stimulus))
        played = playback.played()  # the fake's virtual time stands still
    finally:
        backend.stop()
    assert read(playback.path) == fed_content
    assert f"cmd sysbus.i2c1.{sensor} " + command.format(path=resd.monitor_path(playback.path)) in _recorded(
        fake_renode
    )
    assert not played


def test_recording_runs_to_its_end_at_once_in_virtual_time(tmp_path: Path, fake_renode: Path) -> None:
    stimulus = tmp_path / "wave.csv"
    stimulus.write_text("t_s,accel_x_g,accel_y_g,accel_z_g\n0,0,0,1\n0.02,0.5,0,1\n")
    backend = _backend(tmp_path, extra='accelerometer = "sysbus.i2c1.adxl345"')
    try:
        backend.start()
        playback = backend.play_into_sensor(load_stimulus(stimulus))  # fed at 2.5 ms of virtual time
        assert playback.run_to_end(timeout_s=10)
        assert playback.played()
    finally:
        backend.stop()
    commands = [line[4:] for line in _recorded(fake_renode) if line.startswith("cmd ")]
    first = commands.index("pause")
    run_for = commands[first + 4]
    assert commands[first : first + 8] == [
        "pause",  # RunFor runs a paused emulation
        rb.counters_python("sysbus.cpu"),  # 5 ms: what is left of the recording is counted from here
        "emulation SetGlobalAdvanceImmediately true",
        'emulation SetGlobalQuantum "0.010000"',  # target option fast_forward_quantum_s
        run_for,
        'emulation SetGlobalQuantum "0.000100"',  # back to what the script left
        "emulation SetGlobalAdvanceImmediately false",
        "start",
    ]
    recording = load_stimulus(stimulus)
    until_s = 0.0025 + recording.duration_s * 1.05 + 1 / recording.sample_rate_hz + 0.5
    assert run_for == f'emulation RunFor "{until_s - 0.005:.6f}"'


def test_backend_without_an_accelerometer_cannot_play_into_one(tmp_path: Path, fake_renode: Path) -> None:
    del fake_renode
    stimulus = tmp_path / "still.csv"
    stimulus.write_text("t_s,accel_x_g,accel_y_g,accel_z_g\n0,0,0,1\n0.02,0,0,1\n")
    for folder in ("plain", "said"):
        (tmp_path / folder).mkdir()
    plain = _backend(tmp_path / "plain")
    said_why = _backend(tmp_path / "said", extra='sensor_unavailable = "the bench has no breakout"')
    for backend, reason in ((plain, "set accelerometer"), (said_why, "the bench has no breakout")):
        try:
            backend.start()
            with pytest.raises(SensorUnavailable, match=f"no emulated accelerometer: {reason}"):
                backend.play_into_sensor(load_stimulus(stimulus))
        finally:
            backend.stop()


def test_script_error_fails_start_with_renodes_words_and_the_log(tmp_path: Path, fake_renode: Path) -> None:
    backend = _backend(tmp_path, platform="/nonexistent/x.repl")
    with pytest.raises(ConfigError) as err:
        backend.start()
    message = str(err.value)
    assert "Could not find file '/nonexistent/x.repl'" in message
    assert str(backend.artifacts_dir / "renode.log") in message
    assert _recorded(fake_renode)[-1] == "cmd quit", "a failed start must stop Renode"


@pytest.mark.usefixtures("fake_renode")
def test_renode_exiting_at_start_reports_its_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_RENODE_EXIT", "3")
    with pytest.raises(DeviceLost, match=r"Renode \(pid \d+\) exited with code 3 before its monitor opened"):
        _backend(tmp_path).start()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process groups from /proc (Linux)")
def test_stop_kills_a_renode_that_ignores_quit_and_sigterm(
    tmp_path: Path, fake_renode: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_RENODE_STUBBORN", "1")
    monkeypatch.setattr(renode_backend, "QUIT_TIMEOUT_S", 0.5)
    monkeypatch.setattr(renode_backend, "KILL_TIMEOUT_S", 0.5)
    backend = _backend(tmp_path)
    backend.start()
    assert backend._renode is not None
    pgid = backend._renode.pgid
    backend.stop()
    grandchild = int(next(line for line in _recorded(fake_renode) if line.startswith("grandchild")).split()[1])
    assert _wait_gone(pgid, 5) == []
    assert grandchild not in _live_members(pgid), "mono-like children of the launcher must die too"


def test_robot_server_is_started_on_request(tmp_path: Path, fake_renode: Path) -> None:
    backend = _backend(tmp_path, extra="robot_server = true")
    try:
        backend.start()
        url = backend.robot_server_url
        facts = backend.facts()
    finally:
        backend.stop()
    argv = _recorded(fake_renode)[0].split()
    port = argv[argv.index("--robot-server-port") + 1]
    assert url == f"http://127.0.0.1:{port}/"
    assert facts["renode_robot_server"] == url


def test_robot_server_port_can_be_fixed(tmp_path: Path, fake_renode: Path) -> None:
    port = free_tcp_port()
    backend = _backend(tmp_path, extra=f"robot_server_port = {port}")
    try:
        backend.start()
        assert backend.robot_server_url == f"http://127.0.0.1:{port}/"
    finally:
        backend.stop()
    assert f"--robot-server-port {port}" in _recorded(fake_renode)[0]


@pytest.mark.usefixtures("fake_renode")
def test_unavailable_reasons_name_what_is_missing(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    assert rb.RenodeBackend.unavailable_reason(backend.target, backend.config) is None
    (tmp_path / "fw/zephyr.elf").unlink()
    reason = rb.RenodeBackend.unavailable_reason(backend.target, backend.config)
    assert reason is not None
    assert "firmware for renode:fake not built" in reason


def test_start_without_renode_is_backend_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENODE", str(tmp_path / "nope"))
    with pytest.raises(BackendUnavailable, match="renode not found"):
        _backend(tmp_path).start()


def test_machine_reset_between_tests_is_renodes_machine_reset(tmp_path: Path, fake_renode: Path) -> None:
    backend = _backend(tmp_path)
    try:
        backend.start()
        reset = backend.machine_reset()
        assert reset is not None
        reset()
    finally:
        backend.stop()
    assert "cmd machine Reset" in _recorded(fake_renode)


def test_machine_reset_between_tests_can_be_turned_off(tmp_path: Path) -> None:
    assert _backend(tmp_path, extra="reset_between_tests = false").machine_reset() is None
