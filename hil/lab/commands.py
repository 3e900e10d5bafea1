"""Running bench tools (flashers, power switches, scripts): bounded, logged, and never orphaned."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from hil.errors import BoardError

TAIL_LINES = 12


@dataclass(frozen=True, slots=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_code: int  # 124 when it ran out of time, like timeout(1)
    output: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.output.rstrip().splitlines()[-lines:])


def run_command(argv: list[str] | tuple[str, ...], timeout_s: float, log: Path | None = None) -> CommandResult:
    """Run ``argv`` (no shell) in its own process group; kill the whole group if it runs out of time.

    A tool that is not installed gives exit code 127, as a shell would.
    """
    argv = tuple(argv)
    started = time.monotonic()
    if shutil.which(argv[0]) is None:
        return CommandResult(argv, 127, f"{argv[0]}: command not found", 0.0)
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    ) as proc:
        try:
            raw, _ = proc.communicate(timeout=timeout_s)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raw, _ = proc.communicate()
            raw += f"\n[tinyml-hil: stopped after {timeout_s:g} s]\n".encode()
            code = 124
        except BaseException:
            _kill_group(proc)  # Ctrl-C while a flasher runs: the flasher goes too
            raise
    output = raw.decode(errors="replace")
    result = CommandResult(argv, code, output, round(time.monotonic() - started, 3))
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as f:
            f.write(f"$ {' '.join(argv)}\n{output}[exit {code} after {result.duration_s:g} s]\n\n")
    return result


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_or_fail(board: str, what: str, argv: tuple[str, ...], timeout_s: float, log: Path | None) -> CommandResult:
    """Run a bench command; a failure is a :class:`BoardError` carrying its exit code and output tail."""
    result = run_command(argv, timeout_s, log)
    if not result.ok:
        raise BoardError(board, f"{what} failed: `{' '.join(argv)}` exited with {result.exit_code}",
                         runner=argv[0], tail=result.tail())  # fmt: skip
    return result
