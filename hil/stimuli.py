"""Sensor stimulus recordings (CSV with timestamps and units) and the events they should cause.

A stimulus is ``<name>.csv`` with a header ``t_s,<channel>_<unit>,...`` (e.g.
``t_s,accel_x_g,accel_y_g,accel_z_g``), one row per sample. The gestures performed in it are
listed in ``<name>.expected.csv`` with header ``label,start_s,end_s``. The same file is fed to
the reference twin and boards over the protocol and to Renode's emulated sensors.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hil.errors import CheckFailed, ConfigError

RATE_JITTER = 0.05  # sample intervals may vary this much around the median


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
    expected: tuple[ExpectedEvent, ...]

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


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with path.open(newline="") as f:
            rows = [row for row in csv.reader(f) if row and not row[0].startswith("#")]
    except OSError as err:
        raise ConfigError(f"cannot read stimulus {path}: {err}") from err
    if not rows:
        raise ConfigError(f"stimulus {path} is empty")
    return rows[0], rows[1:]


def load_stimulus(path: Path) -> Stimulus:
    header, rows = _rows(path)
    if header[0] != "t_s" or len(header) < 2:
        raise ConfigError(f"{path}: header must be t_s,<channel>_<unit>,...; got {','.join(header)}")
    units = {column.rsplit("_", 1)[-1] for column in header[1:]}
    if len(units) != 1 or any("_" not in column for column in header[1:]):
        raise ConfigError(f"{path}: every channel column needs the same unit suffix (e.g. accel_x_g); got {header[1:]}")
    try:
        table = np.array([[float(v) for v in row] for row in rows], dtype=np.float64)
    except ValueError as err:
        raise ConfigError(f"{path}: non-numeric value: {err}") from err
    if table.ndim != 2 or table.shape[1] != len(header) or len(table) < 2:
        raise ConfigError(f"{path}: needs at least 2 rows of {len(header)} values")
    steps = np.diff(table[:, 0])
    if np.any(steps <= 0) or np.any(np.abs(steps - np.median(steps)) > RATE_JITTER * np.median(steps)):
        raise ConfigError(f"{path}: timestamps must increase at a steady rate (±{RATE_JITTER:.0%})")
    expected_path = path.with_suffix(".expected.csv")
    return Stimulus(
        path=path,
        times_s=table[:, 0],
        samples=table[:, 1:].astype(np.float32),
        channels=tuple(column.rsplit("_", 1)[0] for column in header[1:]),
        unit=units.pop(),
        expected=load_expected(expected_path) if expected_path.exists() else (),
    )


def load_expected(path: Path) -> tuple[ExpectedEvent, ...]:
    header, rows = _rows(path)
    if header != ["label", "start_s", "end_s"]:
        raise ConfigError(f"{path}: header must be label,start_s,end_s")
    try:
        return tuple(ExpectedEvent(row[0], float(row[1]), float(row[2])) for row in rows)
    except (ValueError, IndexError) as err:
        raise ConfigError(f"{path}: bad row: {err}") from err


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
        }


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
