"""The power switch of an emulated board: QEMU's mps2-an385 with its console on a pty and a GDB server on 127.0.0.1.

A lab file's power commands run it (Linux only)::

    python emulated_board.py on --dir DIR [--owner-pid PID]   # power on; returns once QEMU is up
    python emulated_board.py off --dir DIR                    # power off (also cleans up after a crash)
    python emulated_board.py status --dir DIR                 # prints on/off; exit 0 when on, 3 when off
    python emulated_board.py reset --dir DIR                  # QMP system_reset (the reset button)

While the board is on, DIR holds:

- ``console``: a symlink to QEMU's ``/dev/pts/N``. It exists only while the board is on, like a USB by-id path
  that goes away at power-off, and it is replaced atomically.
- ``gdb_port``: the GDB server's TCP port on 127.0.0.1. It is chosen at the first power-on and kept across power
  cycles.
- ``qmp.sock`` (QMP, for reset), ``qemu.pid``, ``supervisor.pid``, ``qemu.log`` (QEMU's output),
  ``supervisor.log``.

A powered-off board has no console and no GDB server. QEMU starts halted (``-S``) with no image, as a blank board
would. It has no ``-kernel``: QEMU copies a ``-kernel`` image back into RAM at every reset (QEMU
hw/core/loader.c ``rom_reset()`` frees the copy only for ROM regions, and ZBT SSRAM1 at 0x0 is RAM), and that would
undo what was flashed. Flash the board through its GDB server instead, for example with
``gdb-multiarch -batch -ex 'target extended-remote 127.0.0.1:PORT' -ex load -ex compare-sections
-ex 'monitor system_reset' -ex detach IMAGE.elf``. The ``monitor`` command reaches QEMU's HMP monitor through the
gdbstub, and ``detach`` starts the halted CPU. QEMU drops UART output while nobody has the pty open (QEMU
chardev/char-pty.c ``char_pty_chr_write()``), so open the console before the reset.

**Limitation: power loss erases the board.** An emulated board has no flash that survives power-off. A reset
(``reset``, ``monitor system_reset``) keeps the flashed image and boots it again, but ``off`` and then ``on`` bring
the board back blank, so flash it again after every power cycle.

**Unlike a real board, a locked-up CPU turns the board off.** QEMU does not model Cortex-M lockup: it aborts with
"qemu: fatal: Lockup: can't escalate 3 to HardFault" (QEMU hw/intc/armv7m_nvic.c), and then the supervisor removes
the console. A blank board locks up as soon as it runs, because it reads SP and PC of 0 from an empty vector table.
So leave a board that failed to flash with gdb's ``disconnect``, which keeps the CPU halted, and not with
``detach``, which starts it.

**No orphans.** ``on`` starts a supervisor in its own session, and the supervisor starts QEMU with a parent-death
signal. The supervisor stops QEMU (terminate, bounded wait, kill) and removes the console when any of these
happens: the owner process exits (``--owner-pid``, by default the process that ran ``on``), ``off`` asks it to,
or QEMU exits by itself. If the supervisor itself is killed, QEMU gets SIGKILL from the kernel.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

QEMU = "qemu-system-arm"
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
QMP_TIMEOUT_S = 5.0
EXIT_OFF = 3  # `status` of a board that is off, as LSB init scripts say "not running"
UNIX_PATH_MAX = 108  # sun_path, including the terminating NUL
PTY_LINE = re.compile(rb"char device redirected to (/dev/pts/\d+)")
PR_SET_PDEATHSIG = 1


class BoardError(Exception):
    """The emulated board could not be switched; the message says why and what to do."""


# --- what is in the board's directory ----------------------------------------------------------------------------


def console_path(board_dir: Path) -> Path:
    return board_dir / "console"


def qmp_socket(board_dir: Path) -> Path:
    return board_dir / "qmp.sock"


def read_gdb_port(board_dir: Path) -> int | None:
    try:
        return int((board_dir / "gdb_port").read_text())
    except FileNotFoundError:
        return None


def qemu_argv(board_dir: Path, gdb_port: int) -> list[str]:
    sock = qmp_socket(board_dir)
    if len(os.fsencode(sock)) >= UNIX_PATH_MAX:
        raise BoardError(f"{sock} is too long for a unix socket ({UNIX_PATH_MAX - 1} bytes at most): use a shorter dir")
    return [
        QEMU,
        "-machine", "mps2-an385",
        "-cpu", "cortex-m3",
        "-nographic",
        "-monitor", "none",
        "-nodefaults",
        "-S",
        "-gdb", f"tcp:127.0.0.1:{gdb_port}",
        "-serial", "pty",
        "-qmp", f"unix:{sock},server=on,wait=off",
    ]  # fmt: skip


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _running_pid(pid_file: Path, *markers: str) -> int | None:
    """The pid in ``pid_file`` if that process still runs with ``markers`` in its command line (not a reused pid)."""
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()  # empty for a zombie
    except (FileNotFoundError, ValueError):
        return None
    return pid if all(os.fsencode(marker) in cmdline for marker in markers) else None


def _supervisor_pid(board_dir: Path) -> int | None:
    return _running_pid(board_dir / "supervisor.pid", "_supervise", str(board_dir))


def _qemu_pid(board_dir: Path) -> int | None:
    return _running_pid(board_dir / "qemu.pid", str(qmp_socket(board_dir)))


def _unplug(board_dir: Path) -> None:
    """Remove what exists only while the board is on; keep gdb_port and the logs."""
    for name in ("console", "qmp.sock", "qemu.pid", "supervisor.pid"):
        (board_dir / name).unlink(missing_ok=True)


def _wait_exit(pid: int, timeout_s: float) -> bool:
    """True once ``pid`` has exited (a zombie counts), whoever its parent is."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([pidfd], [], [], timeout_s)[0])
    finally:
        os.close(pidfd)


# --- QMP ---------------------------------------------------------------------------------------------------------


def qmp_execute(sock_path: Path, command: str, timeout_s: float = QMP_TIMEOUT_S) -> object:
    """Run one QMP command and return its ``return`` value; events that arrive meanwhile are skipped."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(sock_path))
        with sock.makefile("rwb") as stream:
            stream.readline()  # the greeting
            reply: dict[str, object] = {}
            for execute in ("qmp_capabilities", command):
                stream.write(json.dumps({"execute": execute}).encode() + b"\n")
                stream.flush()
                while True:
                    line = stream.readline()
                    if not line:
                        raise BoardError(f"QMP at {sock_path} closed the connection during {execute!r}")
                    reply = json.loads(line)
                    if "event" not in reply:
                        break
                if "error" in reply:
                    raise BoardError(f"QMP {execute!r} failed: {reply['error']}")
            return reply.get("return")


# --- the supervisor: owns QEMU for as long as the board is on -----------------------------------------------------


def _parent_death_signal() -> Callable[[], None]:
    """A preexec_fn asking Linux to SIGKILL the child when the supervisor dies (see hil/backends/_process.py)."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: nothing to load in the child

    def set_pdeathsig() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    return set_pdeathsig


def _log_tail(log: Path, lines: int = 10) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _wait_until_up(board_dir: Path, qemu: subprocess.Popen[bytes], log: Path) -> str:
    """The console pty, once QEMU has printed it and answers QMP (its GDB server is listening by then)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    pty: str | None = None
    while time.monotonic() < deadline:
        if qemu.poll() is not None:
            raise BoardError(f"{QEMU} exited with code {qemu.returncode}: {_log_tail(log)}")
        if pty is None and (found := PTY_LINE.search(log.read_bytes())):
            pty = found[1].decode()
        if pty is not None:
            with contextlib.suppress(OSError, BoardError):
                qmp_execute(qmp_socket(board_dir), "query-status", timeout_s=1.0)
                return pty
        time.sleep(0.05)
    raise BoardError(f"{QEMU} did not come up within {READY_TIMEOUT_S} s: {_log_tail(log)}")


def _stop(qemu: subprocess.Popen[bytes]) -> None:
    if qemu.poll() is None:
        qemu.terminate()
        try:
            qemu.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            qemu.kill()
            qemu.wait(timeout=STOP_TIMEOUT_S)


def _tell_on(message: str) -> None:
    """Answer the waiting `on` command, then let go of its pipe."""
    print(message, flush=True)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), sys.stdout.fileno())


def supervise(board_dir: Path, owner_pid: int, gdb_port: int) -> int:
    (board_dir / "supervisor.pid").write_text(f"{os.getpid()}\n")
    try:
        owner = os.pidfd_open(owner_pid)
    except ProcessLookupError:
        _unplug(board_dir)
        _tell_on(f"owner pid {owner_pid} is not running")
        return 1
    wake_r, wake_w = os.pipe()  # a signal wakes the select() below
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)
    log = board_dir / "qemu.log"
    try:
        argv = qemu_argv(board_dir, gdb_port)
        with (
            log.open("wb") as out,
            subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, preexec_fn=_parent_death_signal()
            ) as qemu,
        ):
            try:
                pty = _wait_until_up(board_dir, qemu, log)
                (board_dir / "qemu.pid").write_text(f"{qemu.pid}\n")
                link = board_dir / ".console.new"
                link.unlink(missing_ok=True)
                link.symlink_to(pty)
                link.replace(console_path(board_dir))
                _tell_on("ready")
                qemu_exited = os.pidfd_open(qemu.pid)
                select.select([owner, qemu_exited, wake_r], [], [])
            finally:
                console_path(board_dir).unlink(missing_ok=True)  # unplugged before the power goes
                _stop(qemu)
    except BoardError as err:
        _tell_on(str(err))
        return 1
    finally:
        _unplug(board_dir)
    return 0


# --- the commands ------------------------------------------------------------------------------------------------


def power_on(board_dir: Path, owner_pid: int) -> str:
    board_dir.mkdir(parents=True, exist_ok=True)
    if _supervisor_pid(board_dir) is not None:
        return f"already on: {describe(board_dir)}"
    _unplug(board_dir)  # left behind by a supervisor that was killed with -9
    gdb_port = read_gdb_port(board_dir) or _free_tcp_port()
    (board_dir / "gdb_port").write_text(f"{gdb_port}\n")
    argv = [sys.executable, str(Path(__file__).resolve()), "_supervise", "--dir", str(board_dir)]
    argv += ["--owner-pid", str(owner_pid), "--gdb-port", str(gdb_port)]
    with (board_dir / "supervisor.log").open("ab") as errors:
        # Not waited for: the supervisor is the powered board and outlives this command, in its own session.
        supervisor = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, start_new_session=True
        )
    assert supervisor.stdout is not None
    with supervisor.stdout:
        ready = select.select([supervisor.stdout], [], [], READY_TIMEOUT_S + 2 * STOP_TIMEOUT_S)[0]
        answer = supervisor.stdout.readline().decode().strip() if ready else ""
    if answer != "ready":
        with contextlib.suppress(ProcessLookupError):
            os.killpg(supervisor.pid, signal.SIGKILL)
        supervisor.wait(timeout=STOP_TIMEOUT_S)
        _unplug(board_dir)
        raise BoardError(f"could not power on {board_dir}: {answer or 'no answer from the supervisor'}")
    return f"on: {describe(board_dir)}"


def power_off(board_dir: Path) -> str:
    supervisor = _supervisor_pid(board_dir)
    if supervisor is not None:
        os.kill(supervisor, signal.SIGTERM)
        if not _wait_exit(supervisor, 2 * STOP_TIMEOUT_S):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(supervisor, signal.SIGKILL)  # QEMU is in its process group
    if (qemu := _qemu_pid(board_dir)) is not None:  # only if the supervisor was gone and QEMU was not
        os.kill(qemu, signal.SIGKILL)
        _wait_exit(qemu, STOP_TIMEOUT_S)
    _unplug(board_dir)
    return "off" if supervisor is not None else "already off"


def describe(board_dir: Path) -> str:
    console = console_path(board_dir)
    pty = os.readlink(console) if console.is_symlink() else None
    return f"console={console} -> {pty} gdb_port={read_gdb_port(board_dir)} qemu_pid={_qemu_pid(board_dir)}"


def is_on(board_dir: Path) -> bool:
    return _supervisor_pid(board_dir) is not None and console_path(board_dir).is_symlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    on = commands.add_parser("on", help="power on: start QEMU halted, blank, console on a pty")
    on.add_argument("--owner-pid", type=int, default=os.getppid(), help="power off when it exits (default: parent)")
    commands.add_parser("off", help="power off: stop QEMU, remove the console")
    commands.add_parser("status", help="print on or off; exit 0 when on, 3 when off")
    commands.add_parser("reset", help="press reset (QMP system_reset): the flashed image boots again")
    supervise_cmd = commands.add_parser("_supervise", help=argparse.SUPPRESS)
    supervise_cmd.add_argument("--owner-pid", type=int, required=True)
    supervise_cmd.add_argument("--gdb-port", type=int, required=True)
    for command in commands.choices.values():
        command.add_argument("--dir", type=Path, required=True, help="the board's directory")
    args = parser.parse_args(argv)
    board_dir: Path = args.dir.resolve()
    try:
        if args.command == "_supervise":
            return supervise(board_dir, args.owner_pid, args.gdb_port)
        if args.command == "on":
            print(power_on(board_dir, args.owner_pid))
        elif args.command == "off":
            print(power_off(board_dir))
        elif args.command == "reset":
            if not is_on(board_dir):
                raise BoardError(f"cannot reset {board_dir}: the board is off")
            qmp_execute(qmp_socket(board_dir), "system_reset")
            print("reset")
        elif is_on(board_dir):
            print(f"on: {describe(board_dir)}")
        else:
            print("off")
            return EXIT_OFF
    except (BoardError, OSError) as err:
        print(f"emulated_board {args.command}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
