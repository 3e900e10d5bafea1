"""A labgrid place for real: coordinator, exporter and ser2net on loopback, the reference twin behind the pty.

Everything here is labgrid's own processes and tools; nothing is faked. The power switch is labgrid's
``simplerest`` network power model served by the bench's relay, whose on/off commands append to a file.
"""

from __future__ import annotations

import importlib.util
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import serial
from labgrid_bench import LabgridBench, skip_unless_bench_available

from hil import messages as msg
from hil import protocol as p
from hil.backends._process import ChildProcess
from hil.errors import BackendUnavailable, BoardBusy, BoardError
from hil.lab.labgrid_place import LabgridPlace, labgrid_unavailable_reason
from hil.link import Link
from hil.twin import PTY_LINE_PREFIX

PLACE = "hil-twin"
NO_POWER_PLACE = "hil-twin-console-only"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def twin_pty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The reference twin serving ``sine`` on a pty: the board behind the exported serial port."""
    skip_unless_bench_available()
    argv = [sys.executable, "-m", "hil.twin", "--models", str(ROOT / "models"), "--model", "sine"]
    log = tmp_path_factory.mktemp("twin") / "twin.log"
    twin = ChildProcess("reference twin", argv, log, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        stdout = twin.popen.stdout if twin.popen else None
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], 60)
        line = stdout.readline().decode().strip() if ready else ""
        if not line.startswith(PTY_LINE_PREFIX):
            pytest.fail(f"the twin printed {line!r}, not its pty ({twin.exit_reason()}); see {log}")
        yield line.removeprefix(PTY_LINE_PREFIX)
    finally:
        twin.stop()


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, twin_pty: str) -> Iterator[LabgridBench]:
    workdir = tmp_path_factory.mktemp("labgrid")
    record = workdir / "power-events.txt"
    switch = [sys.executable, "-c", f"import sys; open({str(record)!r}, 'a').write(sys.argv[1] + '\\n')"]
    with LabgridBench(
        workdir, place=PLACE, console=twin_pty, power_on=[*switch, "on"], power_off=[*switch, "off"]
    ) as b:
        b.add_place(NO_POWER_PLACE, f"hil-bench/{PLACE}/NetworkSerialPort")
        yield b


def place_as(
    user: str, bench: LabgridBench, tmp_path: Path, *, place: str = PLACE, wait_s: float = 0.0
) -> LabgridPlace:
    """A place object for ``user``: labgrid's identity ($LG_USERNAME) is taken when the object is made."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LG_USERNAME", user)
        return LabgridPlace(place, bench.coordinator, wait_s=wait_s, log_dir=tmp_path)


def reservations(bench: LabgridBench) -> str:
    return bench.client(["reservations"], check=True).stdout


def test_acquired_place_console_answers_the_protocol_handshake(bench: LabgridBench, tmp_path: Path) -> None:
    with place_as("alice", bench, tmp_path) as place:
        url = place.console_url()
        assert url.startswith("rfc2217://127.0.0.1:")
        assert url.endswith("?ign_set_control")
        # pyserial's rfc2217 handler refuses write_timeout ("currently not supported"): none is given here.
        port = serial.serial_for_url(url, baudrate=115200, timeout=p.STALE_FRAME_S)
        link = Link(port, name=PLACE, console_log=tmp_path / "console.log")
        try:
            info = msg.unpack_info(link.request(p.MsgType.INFO, timeout_s=10))
        finally:
            link.close()
    assert info.firmware_version.startswith("twin-")
    assert info.model_count == 1


def test_second_user_cannot_acquire_a_held_place_and_is_told_who_holds_it(bench: LabgridBench, tmp_path: Path) -> None:
    with place_as("alice", bench, tmp_path):
        refused = bench.client(["-p", PLACE, "acquire"], user="bob")
        assert refused.returncode != 0
        assert "already acquired" in refused.stderr
        started = time.monotonic()
        with pytest.raises(BoardBusy, match=r"held by [^ ]+/alice \(waited 1 s\)"):
            place_as("bob", bench, tmp_path, wait_s=1).acquire()
        assert time.monotonic() - started >= 1
        assert "/bob" not in reservations(bench)  # bob's reservation was cancelled when he gave up


def test_release_hands_the_place_to_the_next_user_in_the_queue(bench: LabgridBench, tmp_path: Path) -> None:
    alice = place_as("alice", bench, tmp_path)
    alice.acquire()
    releaser = threading.Timer(1.0, alice.release)
    releaser.start()
    try:
        # bob gets it only if alice released the place and cancelled her reservation (else it stays hers for 60 s)
        with place_as("bob", bench, tmp_path, wait_s=20) as bob:
            assert bob.holder() == bob.identity
    finally:
        releaser.join()
    alice.release()  # idempotent: nothing left to release
    assert "acquired: None" in bench.client(["-p", PLACE, "show"], check=True).stdout
    assert "Reservation" not in reservations(bench)


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from hil.lab.labgrid_place import LabgridPlace, labgrid_unavailable_reason

    with LabgridPlace(sys.argv[1], sys.argv[2], log_dir=Path(sys.argv[3])) as place:
        print("ACQUIRED", place.console_url(), flush=True)
        time.sleep(120)
    """
)


def test_ctrl_c_releases_the_place(bench: LabgridBench, tmp_path: Path) -> None:
    # Its own process group, signalled as a whole like a terminal's Ctrl-C: labgrid-client children run in their
    # own sessions, so the release is not cut short.
    argv = [sys.executable, "-c", CHILD, PLACE, bench.coordinator, str(tmp_path)]
    env = bench.client_env("carol")
    with subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, start_new_session=True, text=True) as child:
        try:
            assert child.stdout is not None
            ready, _, _ = select.select([child.stdout], [], [], 30)
            line = child.stdout.readline() if ready else ""
            assert line.startswith("ACQUIRED rfc2217://"), f"the child printed {line!r}; see {tmp_path}"
            assert bench.client(["-p", PLACE, "show"], check=True).stdout.count("/carol") == 1
            os.killpg(child.pid, signal.SIGINT)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode != 0  # KeyboardInterrupt, after the release
    assert "acquired: None" in bench.client(["-p", PLACE, "show"], check=True).stdout
    assert "Reservation" not in reservations(bench)


def test_power_switches_the_place_power_resource(bench: LabgridBench, tmp_path: Path) -> None:
    record = bench.workdir / "power-events.txt"
    record.unlink(missing_ok=True)
    with place_as("alice", bench, tmp_path) as place:
        place.power("cycle")
    assert record.read_text().split() == ["off", "on"]


def test_power_without_a_power_resource_is_a_board_error(bench: LabgridBench, tmp_path: Path) -> None:
    with (
        place_as("alice", bench, tmp_path, place=NO_POWER_PLACE) as place,
        pytest.raises(BoardError, match="has no power resource"),
    ):
        place.power("cycle")


def test_unknown_place_is_a_board_error_that_says_how_to_create_it(bench: LabgridBench, tmp_path: Path) -> None:
    with pytest.raises(BoardError, match=r"has no place hil-tw: create it with `labgrid-client -p hil-tw create`"):
        place_as("alice", bench, tmp_path, place="hil-tw").acquire()  # a substring of a real place


def test_unreachable_coordinator_is_a_board_error_that_names_it(tmp_path: Path) -> None:
    if reason := labgrid_unavailable_reason():
        pytest.skip(reason)
    with pytest.raises(BoardError, match=r"labgrid coordinator 127.0.0.1:1 is unreachable"):
        LabgridPlace(PLACE, "127.0.0.1:1", log_dir=tmp_path).acquire()  # nothing listens on port 1


def test_without_labgrid_a_place_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> ModuleType | None:
        return None if name == "labgrid" else real_find_spec(name, package)  # type: ignore[return-value]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(BackendUnavailable, match=r"pip install 'tinyml-hil\[lab\]'"):
        LabgridPlace(PLACE, "127.0.0.1:20408")


def _lab_with_place(bench: LabgridBench, tmp_path: Path) -> Path:
    lab = tmp_path / "lab.yaml"
    lab.write_text(
        f"- id: lg-twin\n  platform: twin\n  product: reference twin in a labgrid place\n  runner: command\n"
        f"  flash_command: 'true {{bin}}'\n  place: {PLACE}\n  coordinator: {bench.coordinator}\n"
        f"  boot_timeout_s: 10\n"
    )
    return lab


def _hil_run_argv(lab: Path, out: Path) -> list[str]:
    suite = ROOT / "tests" / "hil" / "test_sine.py"
    return [sys.executable, "-m", "hil.cli", "--lab", str(lab), "run", "--target", "board:lg-twin",
            "--suite", "pytest", "--pytest-suites", str(suite), "--out", str(out)]  # fmt: skip


def test_hil_run_runs_a_suite_through_an_acquired_place(bench: LabgridBench, tmp_path: Path) -> None:
    env = bench.client_env("dave") | {"HIL_LAB_STATE": str(tmp_path / "state")}
    argv = _hil_run_argv(_lab_with_place(bench, tmp_path), tmp_path / "out")
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "passed" in done.stdout
    assert "acquired: None" in bench.client(["-p", PLACE, "show"], check=True).stdout  # released after the run


def test_ctrl_c_on_hil_run_releases_the_place(bench: LabgridBench, tmp_path: Path) -> None:
    env = bench.client_env("erin") | {"HIL_LAB_STATE": str(tmp_path / "state"), "HIL_LAB_WAIT": "0"}
    argv = _hil_run_argv(_lab_with_place(bench, tmp_path), tmp_path / "out")
    with subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True) as run:
        try:
            deadline = time.monotonic() + 60
            while "/erin" not in bench.client(["-p", PLACE, "show"], check=True).stdout:
                assert run.poll() is None, "hil run ended before it acquired the place"
                assert time.monotonic() < deadline, "hil run did not acquire the place within 60 s"
                time.sleep(0.2)
            os.killpg(run.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
            out, _ = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 130, out[-2000:]
    assert "Traceback" not in out
    assert "acquired: None" in bench.client(["-p", PLACE, "show"], check=True).stdout
    assert "Reservation" not in reservations(bench)
