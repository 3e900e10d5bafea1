"""The host link against a scripted serial port (a test double, never used outside unit tests)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import deque

import pytest
import serial

from hil import messages as msg
from hil import protocol as p
from hil.errors import DeviceError, DeviceLost, DeviceTimeout
from hil.link import WRITE_CHUNK_BYTES, Link


class ScriptedPort:
    """Stands in for a pyserial port: each write may trigger scripted device output."""

    def __init__(self, respond: object = None) -> None:
        self.timeout: float | None = 0.01
        self.written = bytearray()
        self.incoming: deque[bytes] = deque()
        self.respond = respond
        self.closed = False

    @property
    def in_waiting(self) -> int:
        return len(self.incoming[0]) if self.incoming else 0

    def read(self, n: int) -> bytes:  # noqa: ARG002 - pyserial signature
        return self.incoming.popleft() if self.incoming else b""

    def write(self, data: bytes) -> int:
        self.written += data
        if self.respond:
            frame = p.FrameDecoder().feed(bytes(data))[0]
            self.incoming.extend(self.respond(frame))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_request_returns_reply_payload_and_keeps_console_text() -> None:
    port = ScriptedPort(lambda f: [b"log line\r\n", p.encode_frame(f.type | p.REPLY_FLAG, f.seq, b"ok")])
    link = Link(port, name="dut")
    assert link.request(p.MsgType.ECHO, b"ok", timeout_s=1) == b"ok"
    assert list(link.console) == ["log line"]


def test_error_reply_raises_device_error_with_code() -> None:
    error = msg.pack_error(msg.ErrorReply(p.ErrorCode.UNKNOWN_MODEL, "unknown model 'x'"))
    link = Link(ScriptedPort(lambda f: [p.encode_frame(p.MsgType.ERROR, f.seq, error)]), name="dut")
    with pytest.raises(DeviceError, match="UNKNOWN_MODEL: unknown model 'x'") as info:
        link.request(p.MsgType.INFER, b"", timeout_s=1)
    assert info.value.code == p.ErrorCode.UNKNOWN_MODEL


def test_timeout_reports_console_tail() -> None:
    link = Link(ScriptedPort(lambda _: [b"assert failed at foo.c:12\n"]), name="dut")
    with pytest.raises(DeviceTimeout, match=r"no INFO \(seq 1\) within 0.2 s; last console lines: assert failed"):
        link.request(p.MsgType.INFO, timeout_s=0.2)


def test_reboot_while_waiting_fails_at_once() -> None:
    link = Link(ScriptedPort(lambda _: [p.boot_banner("1.0", "b", "0123456789abcdef")]), name="dut")
    with pytest.raises(DeviceLost, match="rebooted while INFER"):
        link.request(p.MsgType.INFER, b"", timeout_s=30)


def test_process_exit_is_reported_instead_of_timeout() -> None:
    link = Link(ScriptedPort(), name="dut", exit_reason=lambda: "twin exited with code 3")
    with pytest.raises(DeviceLost, match="twin exited with code 3"):
        link.request(p.MsgType.INFO, timeout_s=30)


def test_replies_with_other_seq_are_kept_as_unsolicited() -> None:
    def respond(f: p.Frame) -> list[bytes]:
        return [p.encode_frame(0xC0, 0, b"event"), p.encode_frame(f.type | p.REPLY_FLAG, f.seq, b"")]

    link = Link(ScriptedPort(respond), name="dut")
    link.request(p.MsgType.INFO, timeout_s=1)
    assert [f.payload for f in link.unsolicited] == [b"event"]


def test_reply_of_wrong_type_is_a_protocol_error() -> None:
    link = Link(ScriptedPort(lambda f: [p.encode_frame(p.MsgType.INFO | p.REPLY_FLAG, f.seq, b"")]), name="dut")
    with pytest.raises(p.ProtocolError, match="expected ECHO_REPLY"):
        link.request(p.MsgType.ECHO, b"", timeout_s=1)


def test_expect_line_finds_a_line_that_already_arrived() -> None:
    port = ScriptedPort()
    link = Link(port, name="dut")
    port.incoming.append(b"HIL READY\r\n")
    link.poll()
    assert link.expect_line("READY", timeout_s=0.1).group(0) == "READY"


def test_events_that_arrive_with_the_reply_are_kept_for_events() -> None:
    event = msg.pack_event(msg.Event(64, "gesture", 2, 0.9, 123))

    def reply_then_event(frame: p.Frame) -> list[bytes]:
        reply = p.encode_frame(frame.type | p.REPLY_FLAG, frame.seq, b"")
        return [reply + p.encode_frame(p.MsgType.EVENT, p.UNSOLICITED_SEQ, event)]  # one read holds both

    link = Link(ScriptedPort(reply_then_event), name="dut")
    link.request(p.MsgType.STREAM_STOP, timeout_s=1)
    link.poll()
    assert [f.type for f in link.unsolicited] == [p.MsgType.EVENT]


def test_fault_report_on_seq_0_is_never_taken_for_the_reply() -> None:
    report = msg.pack_error(msg.ErrorReply(p.ErrorCode.BAD_CRC, "CRC-32 mismatch (damaged frame's seq 1)"))

    def report_then_reply(frame: p.Frame) -> list[bytes]:
        return [p.encode_frame(p.MsgType.ERROR, 0, report), p.encode_frame(frame.type | p.REPLY_FLAG, frame.seq, b"ok")]

    link = Link(ScriptedPort(report_then_reply), name="dut")
    assert link.request(p.MsgType.ECHO, b"ok", timeout_s=1) == b"ok"


def test_oversize_request_is_refused_before_anything_is_sent() -> None:
    from hil.errors import ConfigError

    port = ScriptedPort()
    link = Link(port, name="dut")
    with pytest.raises(ConfigError, match="ECHO payload of 65536 bytes exceeds dut's maximum of 4096 bytes"):
        link.request(p.MsgType.ECHO, bytes(65536), timeout_s=1)
    assert port.written == b""


def test_reply_stalled_mid_frame_on_the_host_clock_still_arrives() -> None:
    """A real pty; the device side sends a reply's first 4 bytes, stalls 0.4 s (an emulator descheduled
    on a loaded host), then the rest: the host must not give the frame up and wait out its timeout."""
    controller, device_fd = os.openpty()
    port = serial.Serial(os.ttyname(device_fd), timeout=p.STALE_FRAME_S)
    link = Link(port, name="dut")

    def answer() -> None:
        request = p.FrameDecoder().feed(os.read(controller, 256))[0]
        reply = p.encode_frame(request.type | p.REPLY_FLAG, request.seq, b"pong")
        os.write(controller, reply[:4])
        time.sleep(0.4)
        os.write(controller, reply[4:])

    device = threading.Thread(target=answer)
    device.start()
    try:
        assert link.request(p.MsgType.ECHO, b"pong", timeout_s=5) == b"pong"
    finally:
        device.join()
        port.close()
        os.close(controller)
        os.close(device_fd)


def test_a_socket_console_gets_each_request_in_one_write_a_pty_in_chunks() -> None:
    """A TCP console (Renode, QEMU) takes a whole frame in one write, so no host stall can split a request;
    a pty gets chunks with reads between them (its buffer is small and the device may be writing too)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        link = Link.open(f"socket://127.0.0.1:{port}", name="dut", console_log=None, exit_reason=lambda: None)
        peer, _ = server.accept()
        try:
            assert link.write_chunk_bytes >= p.FRAME_OVERHEAD_BYTES + p.DEFAULT_MAX_PAYLOAD_BYTES
        finally:
            link.close()
            peer.close()
    finally:
        server.close()
    controller, device_fd = os.openpty()
    try:
        link = Link.open(os.ttyname(device_fd), name="dut", console_log=None, exit_reason=lambda: None)
        assert link.write_chunk_bytes == WRITE_CHUNK_BYTES
        link.close()
    finally:
        os.close(controller)
        os.close(device_fd)


def test_writes_follow_the_link_s_chunk_size() -> None:
    port = ScriptedPort()
    sizes: list[int] = []
    port.write = lambda data: sizes.append(len(data)) or len(data)  # type: ignore[method-assign]
    Link(port, name="dut", write_chunk_bytes=1024).write_raw(bytes(3000))
    assert sizes == [1024, 1024, 952]
    sizes.clear()
    Link(port, name="dut", write_chunk_bytes=64 * 1024).write_raw(bytes(3000))
    assert sizes == [3000]
