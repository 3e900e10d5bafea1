"""Replay the gesture stimuli through the documented streaming windowing with the TFLM runtime.

    python models/gesture/check_stream.py              # events vs expected for every stimulus
    python models/gesture/check_stream.py --write      # regenerate the stimulus CSVs first

Implements docs/protocol.md "Streaming" step by step as a device would (ring of the last W
samples, an inference every hop samples, float32 quantization with round-half-away-from-zero,
top class with lowest index on ties, threshold, idle class, refractory period), so the manifest's
streaming parameters can be tuned here and the firmware and twin can be checked against it.
Exits non-zero unless every expected gesture is detected exactly once, with the right label,
between its start and ``LATE_S`` after its end, and nothing else is detected.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hil import tflm
from hil.models import ModelManifest

HERE = Path(__file__).resolve().parent
STIMULI = HERE / "stimuli"
LATE_S = 2.6  # a window must have seen the whole motion: up to one window length after it ends


@dataclass(frozen=True, slots=True)
class Event:
    sample: int  # samples since the stream started, at the end of the window
    label: int
    score: float


def read_stimulus(path: Path) -> np.ndarray:
    """The samples of a stimulus CSV, (n, channels) float32, in file order."""
    with path.open(newline="") as file:
        rows = list(csv.reader(file))
    return np.array([[float(v) for v in row[1:]] for row in rows[1:]], dtype=np.float32)


def read_expected(path: Path) -> list[tuple[str, float, float]]:
    with path.open(newline="") as file:
        return [(row["label"], float(row["start_s"]), float(row["end_s"])) for row in csv.DictReader(file)]


def quantize_f32(window: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """``clamp(roundf(v / scale) + zero_point)`` in float32, as the firmware computes it in C."""
    v = window.astype(np.float32) / np.float32(scale)
    rounded = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))  # half away from zero, like roundf
    return np.clip(rounded + np.float32(zero_point), -128, 127).astype(np.int8)


def stream_events(samples: np.ndarray, manifest: ModelManifest) -> list[Event]:
    """Events the documented windowing raises on ``samples`` (n, channels), fed one at a time."""
    s = manifest.streaming
    assert s is not None, f"{manifest.name} has no streaming section"
    interp = tflm.interpreter(manifest.tflite_path.read_bytes(), manifest.arena_bytes)
    in_spec, out_spec = manifest.input, manifest.output
    threshold = np.float32(s.threshold)  # sent as f32 in STREAM_START
    out_scale, out_zero = np.float32(out_spec.scale), out_spec.zero_point
    ring = np.zeros((s.window, len(s.channels)), dtype=np.float32)
    events: list[Event] = []
    last_event: int | None = None
    for n, sample in enumerate(samples, start=1):
        ring[(n - 1) % s.window] = sample
        if n < s.window or (n - s.window) % s.hop:
            continue
        oldest = n % s.window
        window = np.concatenate([ring[oldest:], ring[:oldest]])
        q = quantize_f32(window, in_spec.scale, in_spec.zero_point).reshape(in_spec.shape)
        out = tflm.invoke(interp, q).reshape(-1)
        label = int(np.argmax(out))  # first maximum: the lowest index wins ties
        score = float(np.float32(int(out[label]) - out_zero) * out_scale)
        idle = s.idle_class is not None and label == s.idle_class
        if idle or np.float32(score) < threshold:
            continue
        if last_event is not None and n - last_event < s.refractory_samples:
            continue
        events.append(Event(n, label, score))
        last_event = n
    return events


def compare(
    events: list[Event], expected: list[tuple[str, float, float]], labels: tuple[str, ...], rate_hz: float
) -> list[str]:
    """Problems: expected gestures missed, detected twice or mislabelled, and unexpected events."""
    problems = []
    unmatched = list(events)
    for label, start, end in expected:
        hits = [e for e in unmatched if start <= e.sample / rate_hz <= end + LATE_S]
        right = [e for e in hits if labels[e.label] == label]
        if len(right) != 1:
            problems.append(f"{label} at {start:.2f}-{end:.2f} s detected {len(right)} times")
        for e in right:
            unmatched.remove(e)
    problems += [f"unexpected {labels[e.label]} at {e.sample / rate_hz:.2f} s (score {e.score:.3f})" for e in unmatched]
    return problems


def _manifest() -> ModelManifest:
    return ModelManifest.load(HERE)


def _write_stimuli() -> None:
    spec = importlib.util.spec_from_file_location("gesture_data", HERE / "data.py")
    assert spec is not None
    assert spec.loader is not None
    data = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = data  # dataclasses look their module up while it executes
    spec.loader.exec_module(data)
    for path in data.write_stimuli(STIMULI):
        print(f"wrote {path.relative_to(HERE.parent.parent)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate the stimulus CSVs from data.py first")
    args = parser.parse_args()
    if args.write:
        _write_stimuli()
    manifest = _manifest()
    s = manifest.streaming
    assert s is not None
    print(f"window {s.window}, hop {s.hop}, threshold {s.threshold}, refractory {s.refractory_samples} samples")
    failed = False
    for path in sorted(STIMULI.glob("*.expected.csv")):
        name = path.name.removesuffix(".expected.csv")
        expected = read_expected(path)
        events = stream_events(read_stimulus(STIMULI / f"{name}.csv"), manifest)
        print(f"\n{name}: expected {', '.join(f'{lb} {a:.2f}-{b:.2f} s' for lb, a, b in expected) or 'no events'}")
        for e in events:
            print(
                f"  event sample {e.sample:5d}  t {e.sample / s.sample_rate_hz:6.2f} s  "
                f"{manifest.labels[e.label]:<7} score {e.score:.3f}"
            )
        problems = compare(events, expected, manifest.labels, s.sample_rate_hz)
        print("  OK" if not problems else "\n".join(f"  FAIL {p}" for p in problems))
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
