"""Simulated vibration of a motor, healthy and faulty, seen by an accelerometer (numpy only, seeded).

One *machine* is a motor at one operating point: rotation frequency 20-40 Hz (1200-2400 rpm)
with a slow speed wobble, 1x/2x/3x harmonics whose strengths are tied to one baseline
(residual imbalance and misalignment), a line-frequency component at twice the mains
frequency, load variation (+-30 % on all amplitudes), pink structural noise and a structural
resonance (200-420 Hz) that impacts ring. The accelerometer adds gravity (1 g on its axis),
white noise, 1/256 g quantization and a +-8 g range, sampled at 1 kHz.

Faults (evaluation only; the autoencoder trains on healthy machines):

* imbalance: the 1x amplitude times 3-6
* bearing: an outer-race defect, impacts at 3.0-3.6x the rotation frequency (1 % timing
  jitter) each ringing the resonance for a few milliseconds
* looseness: harmonics up to 10x and half-harmonics, with asymmetric clipping of the waveform
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

HERE = Path(__file__).resolve().parent

LABELS = ("normal", "anomaly")
FAULTS = ("imbalance", "bearing", "looseness")
LSB_G = 1.0 / 256.0
RANGE_G = 8.0

TRAIN_SEED = 7
CALIBRATION_SEED = 8
EVAL_SEED = 9
GOLDEN_SEED = 10
STIMULUS_SEED = 12
EVAL_NORMAL = 600
EVAL_PER_FAULT = 200
GOLDEN_COUNT = 32


def _frontend() -> ModuleType:
    spec = importlib.util.spec_from_file_location("anomaly_frontend", HERE / "frontend.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


frontend = _frontend()
RATE_HZ: int = frontend.SAMPLE_RATE_HZ
WINDOW: int = frontend.WINDOW_SAMPLES


@dataclass(frozen=True)
class Machine:
    rotation_hz: float
    wobble: float  # relative speed variation
    baseline_g: float  # 1x amplitude of a healthy machine
    harmonics: tuple[float, float]  # 2x and 3x relative to 1x
    line_hz: float  # twice the mains frequency
    line_g: float
    noise_g: float  # structural noise RMS
    resonance_hz: float
    sensor_noise_g: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> Machine:
        return cls(
            rotation_hz=rng.uniform(24.0, 30.0),
            wobble=rng.uniform(0.0, 0.01),
            baseline_g=rng.uniform(0.04, 0.1),
            harmonics=(rng.uniform(0.25, 0.45), rng.uniform(0.05, 0.12)),
            line_hz=2.0 * rng.choice([50.0, 60.0]),
            line_g=rng.uniform(0.0, 0.03),
            noise_g=rng.uniform(0.005, 0.02),
            resonance_hz=rng.uniform(200.0, 420.0),
            sensor_noise_g=rng.uniform(0.002, 0.01),
        )


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.normal(size=n))
    f = np.maximum(np.fft.rfftfreq(n, 1.0 / RATE_HZ), 5.0)
    x = np.fft.irfft(spectrum / np.sqrt(f), n=n)
    return x / (x.std() + 1e-12)


def _severity(rng: np.random.Generator, low: float, high: float, severity: float | None) -> float:
    """A fault's strength in [low, high]: random, or fixed by ``severity`` in 0..1 (the draw is made
    either way, so fixing it leaves every other random choice unchanged)."""
    u = rng.uniform()
    return low + (high - low) * (u if severity is None else severity)


def vibration(
    rng: np.random.Generator, machine: Machine, fault: str | None, samples: int, severity: float | None = None
) -> np.ndarray:
    """``samples`` accelerometer readings in g at RATE_HZ (float32), gravity included.

    ``severity`` (0..1) fixes how strong an imbalance or bearing fault is; by default it is random.
    """
    m = machine
    t = np.arange(samples) / RATE_HZ
    speed = m.rotation_hz * (1.0 + m.wobble * np.sin(2 * np.pi * rng.uniform(0.2, 2.0) * t + rng.uniform(0, 6.3)))
    phase = 2 * np.pi * np.cumsum(speed) / RATE_HZ + rng.uniform(0, 6.3)
    load = rng.uniform(0.7, 1.3)
    amplitudes = {1.0: m.baseline_g, 2.0: m.baseline_g * m.harmonics[0], 3.0: m.baseline_g * m.harmonics[1]}
    if fault == "imbalance":
        amplitudes[1.0] *= _severity(rng, 4.0, 8.0, severity)
    elif fault == "looseness":
        for k in range(2, 11):
            amplitudes[float(k)] = m.baseline_g * rng.uniform(0.4, 0.8) / k**0.3
        for k in (0.5, 1.5, 2.5, 3.5):
            amplitudes[k] = m.baseline_g * rng.uniform(0.25, 0.5)
    x = sum(a * load * np.sin(k * phase + rng.uniform(0, 6.3)) for k, a in amplitudes.items())
    x = np.asarray(x) + m.line_g * np.sin(2 * np.pi * m.line_hz * t + rng.uniform(0, 6.3))
    if fault == "looseness":  # the loose part hits a stop on one side
        limit = np.percentile(x, rng.uniform(75.0, 90.0))
        x = np.minimum(x, limit)
    if fault == "bearing":
        x = x + _bearing_impacts(rng, m, speed, samples, severity)
    x = x + m.noise_g * _pink(rng, samples)
    reading = 1.0 + x + rng.normal(0.0, m.sensor_noise_g, size=samples)
    return np.clip(np.round(reading / LSB_G) * LSB_G, -RANGE_G, RANGE_G).astype(np.float32)


def _bearing_impacts(
    rng: np.random.Generator, m: Machine, speed: np.ndarray, samples: int, severity: float | None
) -> np.ndarray:
    """Outer-race defect: an impulse each time a rolling element passes it, ringing the structure."""
    order = rng.uniform(3.0, 3.6)  # defect frequency / rotation frequency, from the bearing geometry
    amplitude = _severity(rng, 0.1, 0.5, severity)
    decay_s = rng.uniform(0.002, 0.006)
    ring_t = np.arange(int(decay_s * 6 * RATE_HZ) + 1) / RATE_HZ
    ring = np.exp(-ring_t / decay_s) * np.sin(2 * np.pi * m.resonance_hz * ring_t)
    impulses = np.zeros(samples + len(ring))
    time_s = rng.uniform(0.0, 1.0 / (order * m.rotation_hz))
    while time_s < samples / RATE_HZ:
        index = int(time_s * RATE_HZ)
        # Sub-sample timing matters at these frequencies: split the impulse between neighbours.
        frac = time_s * RATE_HZ - index
        strength = amplitude * rng.uniform(0.6, 1.0)
        impulses[index] += strength * (1.0 - frac)
        impulses[index + 1] += strength * frac
        period = 1.0 / (order * speed[min(index, samples - 1)])
        time_s += period * (1.0 + rng.normal(0.0, 0.01))
    return np.convolve(impulses, ring)[:samples]


def windows(rng: np.random.Generator, faults: list[str | None]) -> np.ndarray:
    """One 256-sample window per entry (a fresh machine each), (N, 256) float32 in g."""
    return np.stack([vibration(rng, Machine.random(rng), fault, WINDOW) for fault in faults])


def feature_windows(rng: np.random.Generator, faults: list[str | None]) -> np.ndarray:
    """Model inputs: (N, 1, 32) float32 log band magnitudes."""
    return frontend.features(windows(rng, faults))[:, None, :]


def training_set(count: int, seed: int = TRAIN_SEED) -> np.ndarray:
    """Healthy machines only: (count, 1, 32)."""
    return feature_windows(np.random.default_rng(seed), [None] * count)


def calibration_set(count: int) -> np.ndarray:
    """Held-out healthy machines for the decision threshold: (count, 1, 32)."""
    return feature_windows(np.random.default_rng(CALIBRATION_SEED), [None] * count)


def eval_set() -> tuple[np.ndarray, np.ndarray]:
    """The committed evaluation set: healthy windows (y = 0), then each fault (y = 1)."""
    faults: list[str | None] = [None] * EVAL_NORMAL
    for fault in FAULTS:
        faults += [fault] * EVAL_PER_FAULT
    x = feature_windows(np.random.default_rng(EVAL_SEED), faults)
    return x, np.array([0 if f is None else 1 for f in faults], dtype=np.int64)


def golden_inputs() -> np.ndarray:
    """GOLDEN_COUNT windows: healthy and each fault in turn."""
    kinds: list[str | None] = [None, *FAULTS]
    return feature_windows(np.random.default_rng(GOLDEN_SEED), [kinds[i % 4] for i in range(GOLDEN_COUNT)])


STIMULI: dict[str, str | None] = {"normal": None, "imbalance": "imbalance", "bearing": "bearing"}
STIMULUS_SECONDS = 2.0
# Developed faults, so every window of a faulty recording should be flagged: imbalance 8x (the top
# of its range: milder imbalance hides in the healthy spread), bearing impacts 0.3 g (mid-range).
STIMULUS_SEVERITY = {"imbalance": 1.0, "bearing": 0.5}


def write_stimuli(directory: Path) -> list[Path]:
    """``<name>.csv`` with header ``t_s,accel_g``: 2 s at 1 kHz of one machine, healthy or with a developed fault."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(STIMULUS_SEED)
    machine = Machine.random(rng)  # one machine, so the recordings differ only by the fault
    written = []
    for name, fault in STIMULI.items():
        severity = STIMULUS_SEVERITY.get(fault) if fault else None
        x = vibration(rng, machine, fault, int(STIMULUS_SECONDS * RATE_HZ), severity)
        lines = ["t_s,accel_g"] + [f"{i / RATE_HZ:.3f},{v:.6f}" for i, v in enumerate(x)]
        path = directory / f"{name}.csv"
        path.write_text("\n".join(lines) + "\n")
        written.append(path)
    return written
