"""The link and the twin when the line or the host misbehaves: garbage, huge writes, hosts that go away.

The C core answers the same garbage the same way: the shared vectors (docs/protocol-vectors.txt)
carry a reply vector with fake headers whose seq equals the next request's, checked by
firmware/tests/host (tests/e2e/test_firmware_core.py).
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from hil import protocol as p
from hil.config import load_config
from hil.device import Device
from hil.errors import ConfigError
from hil.twin import PTY_LINE_PREFIX

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sine_twin(tmp_path: Path) -> Iterator[Device]:
    (tmp_path / "hil.toml").write_text(
        f'models_dir = "{ROOT / "models"}"\n[targets.sine_twin]\nbackend = "reference"\nmodels = ["sine"]\n'
    )
    config = load_config(tmp_path / "hil.toml")
    with Device(config.target("sine_twin"), config, tmp_path / "artifacts") as device:
        yield device


def _fake_headers(seq: int) -> bytes:
    """Garbage that looks like the start of frames carrying ``seq``: an impossible length, then a cut-off frame."""
    too_large = p.SYNC + struct.pack("<BBH", p.MsgType.INFER, seq, 0xFFFF)
    truncated = p.SYNC + struct.pack("<BBH", p.MsgType.INFO, seq, 3) + b"\xde\xad\xbe"
    return b"\x00\xff" + too_large + b"ABC" + truncated


def test_garbage_with_the_next_requests_seq_never_answers_that_request(sine_twin: Device) -> None:
    for round_ in range(300):
        next_seq = sine_twin.link._seq % 255 + 1  # what the link numbers its next request
        sine_twin.link.write_raw(_fake_headers(next_seq))
        payload = round_.to_bytes(2, "little")
        assert sine_twin.echo(payload) == payload


def test_64k_of_raw_garbage_neither_deadlocks_nor_breaks_the_next_request(sine_twin: Device) -> None:
    started = time.monotonic()
    sine_twin.link.write_raw(p.SYNC * 32768)  # every sync starts a damaged frame the twin reports
    assert sine_twin.echo(b"after") == b"after"
    assert time.monotonic() - started < 30


def test_a_64k_request_is_refused_before_sending_and_the_link_still_works(sine_twin: Device) -> None:
    with pytest.raises(ConfigError, match="65536 bytes exceeds"):
        sine_twin.echo(bytes(65536))
    assert sine_twin.echo(b"still here") == b"still here"


HOST = """
import serial, subprocess, sys, time
twin = subprocess.Popen([sys.executable, "-m", "hil.twin", "--models", sys.argv[1], "--model", "sine",
                         "--exit-on-close", "--stopped-host-s", "1"], stdout=subprocess.PIPE)
pty = twin.stdout.readline().decode().split()[-1]
port = serial.Serial(pty, timeout=1)
port.write(bytes.fromhex("a55a010100004ed23a98"))  # INFO, seq 1: the host talks to the twin
while bytes.fromhex("a55a81") not in port.read(4096):
    pass
print(twin.pid, flush=True)
if sys.argv[2] == "close":
    port.close()
time.sleep(60)
"""


def _twin_of_a_host(how: str) -> tuple[subprocess.Popen[bytes], int]:
    host = subprocess.Popen([sys.executable, "-c", HOST, str(ROOT / "models"), how], stdout=subprocess.PIPE)
    assert host.stdout is not None
    return host, int(host.stdout.readline())


def _gone_within(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(") ")[1].startswith("Z"):
                    return True  # exited; its parent has not reaped it yet
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", ["killed", "closed", "stopped"])
def test_twin_exits_when_its_host_is_gone(how: str) -> None:
    host, twin_pid = _twin_of_a_host("close" if how == "closed" else "open")
    try:
        if how == "killed":
            host.kill()
        elif how == "stopped":
            host.send_signal(signal.SIGSTOP)
        assert _gone_within(twin_pid, 10), f"the twin (pid {twin_pid}) outlived its host ({how})"
    finally:
        host.send_signal(signal.SIGCONT)
        host.kill()
        host.wait(timeout=10)
        if not _gone_within(twin_pid, 0):
            os.kill(twin_pid, signal.SIGKILL)


def test_twin_without_exit_on_close_serves_a_host_that_reopens_the_port() -> None:
    argv = [sys.executable, "-m", "hil.twin", "--models", str(ROOT / "models"), "--model", "sine"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE) as twin:
        try:
            assert twin.stdout is not None
            pty = twin.stdout.readline().decode().strip().removeprefix(PTY_LINE_PREFIX)
            for _ in range(3):  # a bench board's console is opened by bring-up, Robot and pytest in turn
                with serial.Serial(pty, timeout=2) as port:
                    port.write(p.encode_frame(p.MsgType.ECHO, 1, b"hi"))
                    data = b""
                    while not any(isinstance(i, p.Frame) for i in p.FrameDecoder().feed(data)):
                        chunk = port.read(64)
                        assert chunk, "no reply"
                        data += chunk
            assert twin.poll() is None
        finally:
            twin.kill()
