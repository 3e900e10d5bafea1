"""Vibration features for the motor anomaly detector (numpy only).

A window of 256 accelerometer samples (1 kHz, in g) becomes 32 log band magnitudes. Every size
is fixed and the window table is computed once, so the same steps port to a microcontroller
with CMSIS-DSP (``arm_rfft_fast_f32``) and static buffers:

1. subtract the window's mean (gravity and sensor offset would otherwise leak into the low bands)
2. multiply by a 256-point periodic Hann window, real FFT -> 129 bins of 3.906 Hz
3. magnitude |X_k| / 128 (the window's sum): a sine of amplitude A peaks near A / 2
4. 32 bands of 4 bins each over bins 1..128 (3.9-500 Hz): the mean magnitude of each band
5. natural log of (band + 1e-4)

Computation is float32 throughout.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE_HZ = 1000
WINDOW_SAMPLES = 256
BANDS = 32
BINS_PER_BAND = (WINDOW_SAMPLES // 2) // BANDS
LOG_FLOOR = 1e-4  # ~0.2 mg: below the sensor's noise, keeps log finite


def hann_window() -> np.ndarray:
    n = np.arange(WINDOW_SAMPLES)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / WINDOW_SAMPLES)).astype(np.float32)


WINDOW = hann_window()
WINDOW_GAIN = np.float32(WINDOW.sum())


def features(window_g: np.ndarray) -> np.ndarray:
    """``(..., 256)`` samples in g -> ``(..., 32)`` float32 log band magnitudes."""
    x = window_g.astype(np.float32)
    x = x - x.mean(axis=-1, keepdims=True)
    spectrum = np.fft.rfft(x * WINDOW, axis=-1)
    magnitude = (np.abs(spectrum) / WINDOW_GAIN).astype(np.float32)
    bands = magnitude[..., 1:].reshape(*magnitude.shape[:-1], BANDS, BINS_PER_BAND).mean(axis=-1)
    return np.log(bands + np.float32(LOG_FLOOR)).astype(np.float32)
