"""Where the wall time of a run goes: named spans, one JSON line each, in ``phases.jsonl``.

Every device appends to ``<artifacts>/phases.jsonl``: the backend's start-up steps (finding the
emulator, starting it, loading the platform and firmware), boot and handshake, each request,
machine resets, sensor playback, monitor round trips. A span records the process, its phase
name, its start and end on the system's monotonic clock (comparable across the processes of one
run) and a few details. ``benchmarks/bench_emulators.py`` turns the spans of a run into the
table of phases; nothing else reads them.

Spans nest (a reset holds a monitor command and a handshake); readers attribute each span to
its nearest enclosing phase of :data:`ABSORBING` (or to its own phase) so that the rows of the
table add up to the time the spans cover.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

PHASES_FILE = "phases.jsonl"

# Phase names (the rows of the benchmark's table are made from these).
FIND = "emulator.find"  # looking for the emulator and asking its version
SPAWN = "emulator.spawn"  # process start until its monitor (or console) answers
SCRIPT = "emulator.script"  # platform, peripheral models, sensors, console bridge
PLATFORM = "emulator.platform"  # the platform description (.repl)
MODEL = "emulator.model"  # compiling our own peripheral model (C#)
FIRMWARE = "emulator.firmware"  # loading the firmware image
RUN = "emulator.run"  # starting the emulation
STOP = "emulator.stop"
OPEN = "device.open"
BOOT = "device.boot"  # from start (or reset) until the firmware answers
HANDSHAKE = "device.handshake"  # INFO and MODEL_INFO once it answers
RESET = "device.reset"  # a machine reset between tests, until the device answers again
REQUEST = "request"  # "request.INFER", "request.INFO", ...
MONITOR = "monitor"  # one emulator monitor round trip
COST = "cost"  # an action measured in emulated instructions (holds the request)
COUNTERS = "cost.counters"  # reading the emulated instruction counter and virtual time
SENSOR = "sensor"  # queueing a recording in the emulated sensor and waiting until it has played
# Phases whose nested spans count as their own time in the table.
ABSORBING = (FIND, SPAWN, SCRIPT, PLATFORM, MODEL, FIRMWARE, RUN, STOP, BOOT, HANDSHAKE, RESET, COUNTERS, SENSOR)


class PhaseLog:
    """Appends spans to one ``phases.jsonl``; a log without a path records nothing."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: IO[str] | None = None

    @contextlib.contextmanager
    def span(self, phase: str, **detail: Any) -> Iterator[dict[str, Any]]:
        """Record the block as ``phase``; details added to the yielded dict are recorded too."""
        started = time.monotonic()
        try:
            yield detail
        finally:
            self.add(phase, started, time.monotonic(), **detail)

    def add(self, phase: str, started: float, ended: float, **detail: Any) -> None:
        """Record a span measured elsewhere (``time.monotonic()`` values)."""
        if self.path is None:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8", buffering=1)  # a line at a time: readers see whole ones
        record = {"pid": os.getpid(), "phase": phase, "t0": round(started, 6), "t1": round(ended, 6), **detail}
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()
