"""A child process owned by a backend: started once, stopped with terminate → wait → kill."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

STOP_TIMEOUT_S = 5.0


class ChildProcess:
    def __init__(self, what: str, argv: list[str], log: Path, **popen: object) -> None:
        self.what = what
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                argv, stdout=popen.pop("stdout", out), stderr=out, **popen
            )

    @property
    def popen(self) -> subprocess.Popen[bytes] | None:
        return self._proc

    def exit_reason(self) -> str | None:
        if self._proc is None or (code := self._proc.poll()) is None:
            return None
        if code < 0:
            return f"{self.what} (pid {self._proc.pid}) was killed by {signal.Signals(-code).name}"
        return f"{self.what} (pid {self._proc.pid}) exited with code {code}"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        end_process(proc)


def end_process(proc: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Terminate, wait, then kill; close its pipes and reap it."""
    with proc:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout_s)
