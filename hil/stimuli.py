"""Sensor stimulus recordings (CSV with timestamps and units) and the events they should cause.

A stimulus is ``<name>.csv`` with a header ``t_s,<channel>_<unit>,...`` (e.g.
``t_s,accel_x_g,accel_y_g,accel_z_g``), one row per sample. The gestures performed in it are
listed in ``<name>.expected.csv`` with header ``label,start_s,end_s`` (only the header: no events;
a missing file is an error when events are checked, unless ``expect_none`` says none are
expected). The same file is fed to the reference twin and boards over the protocol and to
Renode's emulated sensors. Files are UTF-8 (a BOM is fine); every error names the file and line.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hil.errors import CheckFailed, ConfigError

RATE_JITTER = 0.05  # sample intervals may vary this much around the median
EXPECTED_SUFFIX = ".expected.csv"


@dataclass(frozen=True, slots=True)
class ExpectedEvent:
    label: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class Stimulus:
    path: Path
    times_s: np.ndarray  # (N,)
    samples: np.ndarray  # (N, channels), float32, physical units
    channels: tuple[str, ...]
    unit: str
    expected: tuple[ExpectedEvent, ...] | None  # None: no .expected.csv (see expected_events)

    @property
    def sample_rate_hz(self) -> float:
        return float(1.0 / np.median(np.diff(self.times_s)))

    @property
    def duration_s(self) -> float:
        return float(self.times_s[-1] - self.times_s[0]) if len(self.times_s) > 1 else 0.0

    def time_of(self, sample: int) -> float:
        """Seconds from the first sample to the ``sample``-th (1-based, as events count them).

        A sensor keeps sampling after the recording ends: later samples follow at the sample rate.
        """
        last = len(self.times_s)
        if 1 <= sample <= last:
            return float(self.times_s[sample - 1] - self.times_s[0])
        return self.duration_s + (sample - last) / self.sample_rate_hz


def _rows(path: Path) -> tuple[tuple[int, list[str]], list[tuple[int, list[str]]]]:
    """The header and data rows of a CSV, each with its line number; UTF-8 with or without a BOM."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read stimulus {path}: {err.strerror or err}") from err
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x}): save it as UTF-8") from err
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            cells = [cell.strip() for cell in row]
            if any(cells) and not cells[0].startswith("#"):
                rows.append((reader.line_num, cells))
    except csv.Error as err:
        raise ConfigError(f"{path}:{reader.line_num}: not valid CSV: {err}") from err
    if not rows:
        raise ConfigError(f"{path}: empty: expected a header line and rows of values")
    return rows[0], rows[1:]


def _number(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{path}:{line}: {column}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{path}:{line}: {column}: {text} is not a finite number: record a real value")
    return value


def load_stimulus(path: Path) -> Stimulus:
    """A recording; its ``.expected.csv`` if there is one (``expected`` None if not). Errors name file and line."""
    (header_line, header), rows = _rows(path)
    where = f"{path}:{header_line}"
    if header[0] != "t_s" or len(header) < 2:
        raise ConfigError(
            f"{where}: header must be t_s,<channel>_<unit>,... (e.g. t_s,accel_x_g); got {','.join(header)}"
        )
    units = {column.rsplit("_", 1)[-1] for column in header[1:]}
    if len(units) != 1 or any("_" not in column or not column.rsplit("_", 1)[0] for column in header[1:]):
        raise ConfigError(
            f"{where}: every channel column needs the same unit suffix (e.g. accel_x_g); got {','.join(header[1:])}"
        )
    table = []
    for line, row in rows:
        if len(row) != len(header):
            raise ConfigError(f"{path}:{line}: {len(row)} values, expected {len(header)} ({','.join(header)})")
        table.append([_number(path, line, column, text) for column, text in zip(header, row, strict=True)])
    if len(table) < 2:
        raise ConfigError(f"{path}: needs at least 2 rows of {len(header)} values, has {len(table)}")
    values = np.array(table, dtype=np.float64)
    steps = np.diff(values[:, 0])
    median = float(np.median(steps))
    bad = np.flatnonzero((steps <= 0) | (np.abs(steps - median) > RATE_JITTER * median))
    if median <= 0 or len(bad):
        i = int(bad[0]) if len(bad) else 0
        line = rows[i + 1][0]
        rule = (
            "must increase"
            if steps[i] <= 0
            else f"must increase at a steady rate (step {median:g} s ±{RATE_JITTER:.0%})"
        )
        raise ConfigError(f"{path}:{line}: t_s {values[i + 1, 0]:g} after {values[i, 0]:g}: timestamps {rule}")
    expected_path = expected_file(path)
    return Stimulus(
        path=path,
        times_s=values[:, 0],
        samples=values[:, 1:].astype(np.float32),
        channels=tuple(column.rsplit("_", 1)[0] for column in header[1:]),
        unit=units.pop(),
        expected=load_expected(expected_path) if expected_path.exists() else None,
    )


def expected_file(stimulus: Path) -> Path:
    """``<name>.expected.csv`` next to ``<name>.csv``."""
    return stimulus.with_suffix(EXPECTED_SUFFIX)


def expected_events(stimulus: Stimulus, expect_none: bool = False) -> tuple[ExpectedEvent, ...]:
    """The events ``stimulus`` should raise: its ``.expected.csv``, or none when ``expect_none`` says so.

    A missing file is not taken to mean "no events": that must be said, by an expected file with
    only its header, or ``expect_none``.
    """
    if expect_none:
        if stimulus.expected:
            raise ConfigError(
                f"expect_none, but {expected_file(stimulus.path)} lists {len(stimulus.expected)} event(s): "
                "drop one or the other"
            )
        return ()
    if stimulus.expected is None:
        raise ConfigError(
            f"{stimulus.path} has no {expected_file(stimulus.path).name}: write the events it should raise there "
            "(header label,start_s,end_s; only the header if none), or pass expect_none=True"
        )
    return stimulus.expected


def load_expected(path: Path) -> tuple[ExpectedEvent, ...]:
    (header_line, header), rows = _rows(path)
    if header != ["label", "start_s", "end_s"]:
        raise ConfigError(f"{path}:{header_line}: header must be label,start_s,end_s; got {','.join(header)}")
    events = []
    for line, row in rows:
        if len(row) != 3 or not row[0]:
            raise ConfigError(
                f"{path}:{line}: expected label,start_s,end_s (a label and two times); got {','.join(row)}"
            )
        start, end = (_number(path, line, column, text) for column, text in zip(header[1:], row[1:], strict=True))
        if end < start:
            raise ConfigError(f"{path}:{line}: end_s {end:g} is before start_s {start:g}")
        events.append(ExpectedEvent(row[0], start, end))
    return tuple(events)


@dataclass(frozen=True, slots=True)
class DetectedEvent:
    label: str
    time_s: float
    sample: int
    score: float


@dataclass(frozen=True, slots=True)
class EventMatch:
    matched: tuple[tuple[ExpectedEvent, DetectedEvent], ...]
    missed: tuple[ExpectedEvent, ...]
    unexpected: tuple[DetectedEvent, ...]
    latency_s: float  # allowed delay after an expected event's end

    @property
    def ok(self) -> bool:
        return not self.missed and not self.unexpected

    def as_dict(self) -> dict[str, object]:
        return {
            "expected": len(self.matched) + len(self.missed),
            "matched": len(self.matched),
            "missed": [f"{e.label}@{e.start_s:g}-{e.end_s:g}s" for e in self.missed],
            "unexpected": [f"{d.label}@{d.time_s:.2f}s" for d in self.unexpected],
            "delays_s": [round(d.time_s - e.end_s, 3) for e, d in self.matched],
            # the timeline the report draws: every expected window and every detection
            "windows": [{"label": e.label, "start_s": e.start_s, "end_s": e.end_s} for e in self.expected],
            "detected": [{"label": d.label, "time_s": round(d.time_s, 3)} for d in self.detected],
        }

    @property
    def expected(self) -> tuple[ExpectedEvent, ...]:
        return tuple(sorted([e for e, _ in self.matched] + list(self.missed), key=lambda e: e.start_s))

    @property
    def detected(self) -> tuple[DetectedEvent, ...]:
        return tuple(sorted([d for _, d in self.matched] + list(self.unexpected), key=lambda d: d.time_s))


def match_events(detected: list[DetectedEvent], expected: tuple[ExpectedEvent, ...], latency_s: float) -> EventMatch:
    """Pair each expected event with the first detection of its label in [start, end + latency]."""
    free = list(detected)
    matched, missed = [], []
    for want in expected:
        hit = next(
            (d for d in free if d.label == want.label and want.start_s <= d.time_s <= want.end_s + latency_s), None
        )
        if hit is None:
            missed.append(want)
        else:
            free.remove(hit)
            matched.append((want, hit))
    return EventMatch(tuple(matched), tuple(missed), tuple(free), latency_s)


def check_events(model: str, match: EventMatch) -> None:
    if match.ok:
        return
    parts = []
    if match.missed:
        parts.append("missed " + ", ".join(f"{e.label} at {e.start_s:g}-{e.end_s:g} s" for e in match.missed))
    if match.unexpected:
        parts.append("unexpected " + ", ".join(f"{d.label} at {d.time_s:.2f} s" for d in match.unexpected))
    raise CheckFailed(f"{model}: {'; '.join(parts)} (events may come up to {match.latency_s:.2f} s after a gesture)")
