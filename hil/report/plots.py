"""The report's plots: matplotlib (Agg, no pyplot state) rendered to PNG ``data:`` URIs for a self-contained page."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 80
PASS_COLOUR = "#2e7d32"
FAIL_COLOUR = "#c62828"
BUDGET_COLOUR = "#c62828"
LINE_COLOURS = ("#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#558b2f")


def _data_uri(figure: Figure) -> str:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def latency_histogram(
    samples_us: Sequence[float],
    median_us: float,
    p95_us: float,
    budget_us: float | None,
    clock_hz: int | None,
    time_label: str,
    title: str,
) -> str:
    """Histogram of every inference's latency in µs (and device cycles on a second axis), with p50/p95/budget."""
    figure = Figure(figsize=(6.4, 3.0))
    axes = figure.add_subplot()
    values = np.asarray(samples_us, dtype=np.float64)
    high = max(float(np.percentile(values, 99)) if values.size else p95_us, p95_us) * 1.15
    shown = values[values <= high]
    axes.hist(shown, bins=min(40, max(5, shown.size // 4)), color="#90caf9", edgecolor="#1565c0")
    axes.axvline(median_us, color="#1565c0", linestyle="-", label=f"p50 {median_us:.1f} µs")
    axes.axvline(p95_us, color="#ef6c00", linestyle="--", label=f"p95 {p95_us:.1f} µs")
    if budget_us is not None:
        if budget_us <= high * 3:
            axes.axvline(budget_us, color=BUDGET_COLOUR, linestyle=":", linewidth=2, label=f"budget {budget_us:g} µs")
        else:
            axes.plot([], [], " ", label=f"budget {budget_us:g} µs (off scale)")
    outliers = int(values.size - shown.size)
    axes.set_xlabel(f"µs of {time_label}" + (f" ({outliers} slower inferences off the axis)" if outliers else ""))
    axes.set_ylabel("inferences")
    axes.set_title(title, fontsize=10)
    if clock_hz:
        per_us = clock_hz / 1e6
        cycles = axes.secondary_xaxis("top", functions=(lambda us: us * per_us, lambda c: c / per_us))
        cycles.set_xlabel(f"device clock cycles ({clock_hz / 1e6:g} MHz)", fontsize=8)
    axes.legend(fontsize=8)
    return _data_uri(figure)


def confusion_matrix(labels: Sequence[str], counts: Sequence[Sequence[int]], title: str) -> str:
    """Counts of true (rows) against predicted (columns) classes, each cell written in."""
    matrix = np.asarray(counts, dtype=np.int64)
    size = max(2.6, 0.7 * len(matrix) + 1.4)
    figure = Figure(figsize=(size + 0.6, size))
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues")
    names = list(labels) or [str(i) for i in range(len(matrix))]
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), count in np.ndenumerate(matrix):
        colour = "white" if count > threshold else "black"
        axes.text(col, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    axes.set_title(title, fontsize=10)
    return _data_uri(figure)


@dataclass(frozen=True, slots=True)
class MemoryBar:
    """One bar: what is used, what is reserved (size) and what the budget allows, in bytes."""

    name: str
    used_bytes: int
    size_bytes: int | None = None
    budget_bytes: int | None = None


def memory_bars(bars: Sequence[MemoryBar], title: str) -> str:
    """Horizontal bars of bytes used, the reserved size behind them, and a budget mark."""
    figure = Figure(figsize=(6.4, 0.55 * len(bars) + 1.2))
    axes = figure.add_subplot()
    rows = range(len(bars))
    sizes = [b.size_bytes or 0 for b in bars]
    axes.barh(rows, sizes, color="#e0e0e0", edgecolor="#9e9e9e", label="reserved (size)")
    colours = [FAIL_COLOUR if b.budget_bytes is not None and b.used_bytes > b.budget_bytes else "#42a5f5" for b in bars]
    axes.barh(rows, [b.used_bytes for b in bars], height=0.5, color=colours, label="used")
    marked = False
    for row, bar in zip(rows, bars, strict=True):
        if bar.budget_bytes is not None:
            axes.plot([bar.budget_bytes] * 2, [row - 0.4, row + 0.4], color=BUDGET_COLOUR, linewidth=2,
                      label=None if marked else "budget")  # fmt: skip
            marked = True
        axes.text(bar.used_bytes, row, f" {bar.used_bytes:,} B", va="center", fontsize=8)
    axes.set_yticks(list(rows), [b.name for b in bars], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("bytes")
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=7, loc="lower right")
    return _data_uri(figure)


@dataclass(frozen=True, slots=True)
class Window:
    label: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class Detection:
    label: str
    time_s: float
    matched: bool


def event_timeline(
    times_s: np.ndarray | None,
    samples: np.ndarray | None,
    channels: Sequence[str],
    unit: str,
    windows: Sequence[Window],
    detected: Sequence[Detection],
    title: str,
) -> str:
    """The stimulus signal with the expected windows shaded and each detection marked (green: in its window)."""
    figure = Figure(figsize=(9.0, 3.0))
    axes = figure.add_subplot()
    if times_s is not None and samples is not None:
        for i, channel in enumerate(channels):
            axes.plot(times_s, samples[:, i], linewidth=0.8, color=LINE_COLOURS[i % len(LINE_COLOURS)], label=channel)
        axes.set_ylabel(unit)
    else:
        axes.text(0.5, 0.5, "stimulus file not found: events only", transform=axes.transAxes, ha="center")
    for window in windows:
        axes.axvspan(window.start_s, window.end_s, color="#a5d6a7", alpha=0.4)
        axes.text(window.start_s, 1.02, f"expected {window.label}", transform=axes.get_xaxis_transform(), fontsize=7)
    for event in detected:
        colour = PASS_COLOUR if event.matched else FAIL_COLOUR
        axes.axvline(event.time_s, color=colour, linewidth=1.5, linestyle="--")
        axes.text(event.time_s, 0.02, f" {event.label}", transform=axes.get_xaxis_transform(), color=colour,
                  fontsize=7, rotation=90, va="bottom")  # fmt: skip
    axes.set_xlabel("stimulus time (s); shaded: expected windows, dashed: detected (red: unexpected)")
    axes.set_title(title, fontsize=10, pad=14)
    if channels and times_s is not None:
        axes.legend(fontsize=7, loc="upper right")
    return _data_uri(figure)


def history(series: dict[str, list[tuple[str, float]]], metric: str, unit: str) -> str:
    """One line per target x model across saved baselines (x: the baselines in the order they were saved)."""
    figure = Figure(figsize=(7.0, 3.0))
    axes = figure.add_subplot()
    ticks: list[str] = []
    for points in series.values():
        for tick, _ in points:
            if tick not in ticks:
                ticks.append(tick)
    position = {tick: i for i, tick in enumerate(ticks)}
    for i, (name, points) in enumerate(sorted(series.items())):
        xs = [position[tick] for tick, _ in points]
        axes.plot(xs, [v for _, v in points], marker="o", color=LINE_COLOURS[i % len(LINE_COLOURS)], label=name)
    values = [v for points in series.values() for _, v in points]
    if values and min(values) > 0 and max(values) / min(values) > 20:
        axes.set_yscale("log")  # models of very different sizes on one plot: each line stays readable
    axes.set_xticks(range(len(ticks)), ticks, rotation=30, ha="right", fontsize=7)
    axes.set_ylabel(unit)
    axes.set_title(f"{metric} across saved baselines", fontsize=10)
    axes.legend(fontsize=7)
    return _data_uri(figure)
