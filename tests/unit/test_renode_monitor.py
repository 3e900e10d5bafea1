"""Renode's monitor client without Renode, against a test double of the monitor.

``ScriptedRenodeMonitor`` (defined here, used nowhere else): a real 127.0.0.1 socket in a thread that
speaks Renode 1.14's monitor protocol (telnet negotiation, swallowing the first 9 bytes it receives,
banner, prompts, echoed commands, scripted answers).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from hil.backends import free_tcp_port
from hil.backends import renode as rb
from hil.errors import ConfigError, DeviceLost, DeviceTimeout

RENODE_1_14_NEGOTIATION = bytes([255, 253, 0, 255, 251, 1, 255, 251, 3, 255, 252, 34])
RENODE_1_16_NEGOTIATION = bytes([255, 253, 0, 255, 253, 31, 255, 251, 1, 255, 251, 3, 255, 252, 34])
OUR_1_14_ANSWER = bytes([255, 251, 0, 255, 253, 1, 255, 253, 3])


# --- test double: Renode's monitor on a socket ----------------------------------------------------


class ScriptedRenodeMonitor:
    """Renode's telnet monitor, scripted: answers each known command line, then prompts."""

    def __init__(
        self,
        replies: dict[str, bytes | str] | None = None,
        *,
        negotiation: bytes = RENODE_1_14_NEGOTIATION,
        swallow: int = 9,
        prompt: str = "monitor",
        silent: tuple[str, ...] = (),
        hang_up_on: tuple[str, ...] = (),
        foreign: dict[str, str] | None = None,
        port: int = 0,
    ) -> None:
        self.replies = replies or {}
        self.foreign = foreign or {}  # output of another monitor (Renode's robot server) before the echo
        self.negotiation, self.swallow, self.prompt = negotiation, swallow, prompt
        self.silent, self.hang_up_on = silent, hang_up_on
        self.swallowed = b""
        self.telnet_answers = b""
        self.received: list[str] = []
        self._server = socket.create_server(("127.0.0.1", port))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._server.accept()
        with conn:
            conn.sendall(self.negotiation)
            while len(self.swallowed) < self.swallow:  # SocketServerProvider reads exactly 9 bytes
                self.swallowed += conn.recv(self.swallow - len(self.swallowed))
            conn.sendall(b"\n\rRenode, version 1.14.0.25149 (81da46c1-202308081346)\n\r\n\r" + self._prompt())
            pending = b""
            while chunk := conn.recv(4096):
                pending += chunk
                pending = self._strip_telnet(pending)
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if not self._answer(conn, line.decode()):
                        return

    def _strip_telnet(self, data: bytes) -> bytes:
        out, i = bytearray(), 0
        while i < len(data):
            if data[i] == 255 and i + 2 < len(data):
                self.telnet_answers += data[i : i + 3]
                i += 3
            else:
                out.append(data[i])
                i += 1
        return bytes(out)

    def _prompt(self) -> bytes:
        return f"({self.prompt}) ".encode()

    def _answer(self, conn: socket.socket, line: str) -> bool:
        self.received.append(line)
        conn.sendall(self.foreign.get(line, "").encode())
        conn.sendall(line.encode() + b"\n\r")  # echo, as the shell does
        if line in self.hang_up_on:
            return False
        if line in self.silent:
            return True
        reply = self.replies.get(line, b"")
        reply = reply.encode() if isinstance(reply, str) else reply
        conn.sendall(reply + self._prompt())
        return True

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def monitor_double() -> Iterator[type[ScriptedRenodeMonitor]]:
    made: list[ScriptedRenodeMonitor] = []

    class Tracked(ScriptedRenodeMonitor):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    yield Tracked
    for double in made:
        double.close()


def _client(double: ScriptedRenodeMonitor, timeout_s: float = 5.0) -> rb.MonitorClient:
    return rb.MonitorClient.connect(double.port, timeout_s=timeout_s)


# --- the monitor client ----------------------------------------------------------------------------


def test_monitor_answers_renode_1_14_negotiation_with_exactly_nine_bytes(monitor_double) -> None:
    double = monitor_double({"version": "Renode, version 1.14.0.25149\n\r"})
    with _client(double) as client:
        assert client.execute("version") == "Renode, version 1.14.0.25149"
    assert double.swallowed == OUR_1_14_ANSWER
    assert double.received == ["version"], "the first command must not be eaten by the negotiation"


def test_monitor_ignores_what_another_monitor_printed_before_our_command(monitor_double) -> None:
    # Renode's robot server runs its commands in a monitor of its own, whose output reaches ours too.
    double = monitor_double(
        {"Save @x": ""}, foreign={"Save @x": "0x1CF9BE\n\rBad parameters for command mach\n\rmach\n\r"}
    )
    with _client(double) as client:
        assert client.execute("Save @x") == ""


def test_monitor_banner_holds_the_renode_version(monitor_double) -> None:
    with _client(monitor_double()) as client:
        assert rb.parse_version(client.banner) == (1, 14, 0)
        assert client.prompt == "monitor"


def test_monitor_refuses_options_it_does_not_support_in_newer_negotiation(monitor_double) -> None:
    double = monitor_double({"help": "ok\n\r"}, negotiation=RENODE_1_16_NEGOTIATION, swallow=0)
    with _client(double) as client:
        assert client.execute("help") == "ok"
    assert bytes([255, 252, 31]) in double.telnet_answers  # WONT NAWS
    assert bytes([255, 251, 0]) in double.telnet_answers  # WILL BINARY


def test_execute_returns_the_output_without_echo_or_prompt(monitor_double) -> None:
    double = monitor_double({"sysbus.cpu ExecutedInstructions": "0x1F4\n\r"})
    with _client(double) as client:
        assert client.execute("sysbus.cpu ExecutedInstructions") == "0x1F4"


def test_renode_error_text_raises_with_renodes_words(monitor_double) -> None:
    command = "machine LoadPlatformDescription @x.repl"
    answer = "There was an error executing command 'machine'\n\rCould not find file 'x.repl'\n\r"
    with _client(monitor_double({command: answer})) as client, pytest.raises(ConfigError) as err:
        client.execute(command)
    assert f"refused `{command}`" in str(err.value)
    assert "Could not find file 'x.repl'" in str(err.value)


def test_errors_can_be_read_instead_of_raised(monitor_double) -> None:
    with _client(monitor_double({"sysbus.i2c1": "No such command or device: sysbus.i2c1\n\r"})) as client:
        assert client.execute("sysbus.i2c1", check=False).startswith("No such command or device")


def test_offline_svd_download_failure_is_only_logged(monitor_double, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    answer = "Failed to download https://dl.antmicro.com/x.svd.gz, see log for details.\n\r"
    with _client(monitor_double({"machine LoadPlatformDescription @p.repl": answer})) as client:
        client.execute("machine LoadPlatformDescription @p.repl")
    assert "Failed to download" in caplog.text


def test_command_without_prompt_times_out_naming_the_command(monitor_double) -> None:
    with _client(monitor_double(silent=("currentTime",))) as client:
        started = time.monotonic()
        with pytest.raises(DeviceTimeout, match="`currentTime`"):
            client.execute("currentTime", timeout_s=0.5)
        assert time.monotonic() - started < 3


def test_monitor_hanging_up_is_device_lost(monitor_double) -> None:
    with _client(monitor_double(hang_up_on=("quit",))) as client, pytest.raises(DeviceLost, match="did Renode exit"):
        client.execute("quit")


def test_escapes_and_doubled_iac_are_cleaned_from_output(monitor_double) -> None:
    double = monitor_double({"show": b"\x1b[;031mred\x1b[0m and \xff\xff\n\r"})
    with _client(double) as client:
        assert client.execute("show") == "red and \ufffd"


def test_prompt_of_a_known_machine_ends_output_without_a_newline(monitor_double) -> None:
    double = monitor_double({"sysbus.cpu PC": "0x8000"}, prompt="renode-stm32f4_disco")
    with _client(double) as client:
        client.expect_machine("renode-stm32f4_disco")
        assert client.execute("sysbus.cpu PC") == "0x8000"


def test_connect_retries_until_renode_listens() -> None:
    port = free_tcp_port()
    doubles: list[ScriptedRenodeMonitor] = []
    timer = threading.Timer(0.4, lambda: doubles.append(ScriptedRenodeMonitor(port=port)))
    timer.start()
    try:
        with rb.MonitorClient.connect(port, timeout_s=5) as client:
            assert client.prompt == "monitor"
    finally:
        timer.join()
        for double in doubles:
            double.close()


def test_connect_stops_waiting_when_renode_has_exited() -> None:
    with pytest.raises(DeviceLost, match="exited with code 1 before its monitor opened"):
        rb.MonitorClient.connect(free_tcp_port(), timeout_s=5, exit_reason=lambda: "Renode exited with code 1")


def test_connect_timeout_says_what_to_raise() -> None:
    with pytest.raises(DeviceTimeout, match="boot_timeout_s"):
        rb.MonitorClient.connect(free_tcp_port(), timeout_s=0.3)


def test_multi_line_commands_are_refused(monitor_double) -> None:
    with _client(monitor_double()) as client, pytest.raises(ConfigError, match="one monitor command per line"):
        client.execute('macro reset\n"""')


@pytest.mark.parametrize(("text", "value"), [("0x1F4", 500), ("500", 500), ("0x1F4 (500)", 500)])
def test_numbers_parse_in_every_monitor_number_mode(text: str, value: int) -> None:
    assert rb.parse_number(text) == value


def test_virtual_time_parses_from_current_time() -> None:
    text = "Current virtual time: 01:02:03.000250\nCurrent real time: 00:00:09.1"
    assert rb.parse_virtual_time(text) == pytest.approx(3723.00025)
    with pytest.raises(ConfigError, match="Current virtual time"):
        rb.parse_virtual_time("nonsense")
