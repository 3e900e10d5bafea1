"""Log-mel feature front-end for keyword spotting (numpy only).

One second of 16 kHz audio becomes 49 frames x 40 log-mel energies. Every size is fixed and
every table (window, filterbank) is computed once, so the same steps port to a microcontroller
with CMSIS-DSP (``arm_rfft_fast_f32``) and static buffers:

1. frame: 480 samples (30 ms) every 320 samples (20 ms); 1 + (16000 - 480) // 320 = 49 frames
2. multiply by a 480-point periodic Hann window, zero-pad to 512, real FFT -> 257 bins
3. power spectrum |X|^2
4. 40 triangular mel filters (HTK mel scale) between 20 Hz and 7600 Hz, unit peak
5. natural log of (energy + 1e-6)

Audio is float in [-1, 1] (int16 / 32768). Computation is float32 throughout.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE_HZ = 16000
CLIP_SAMPLES = 16000
FRAME_SAMPLES = 480
HOP_SAMPLES = 320
FFT_SIZE = 512
MEL_BINS = 40
FRAMES = 1 + (CLIP_SAMPLES - FRAME_SAMPLES) // HOP_SAMPLES
LOW_HZ = 20.0
HIGH_HZ = 7600.0
LOG_FLOOR = 1e-6  # keeps log finite in digital silence; ~ -14 in the log domain


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def hann_window() -> np.ndarray:
    """Periodic Hann window of FRAME_SAMPLES points (float32)."""
    n = np.arange(FRAME_SAMPLES)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / FRAME_SAMPLES)).astype(np.float32)


def mel_filterbank() -> np.ndarray:
    """(MEL_BINS, FFT_SIZE // 2 + 1) float32 triangular filters, each peaking at 1."""
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(np.array(LOW_HZ)), _hz_to_mel(np.array(HIGH_HZ)), MEL_BINS + 2))
    bin_hz = np.arange(FFT_SIZE // 2 + 1) * SAMPLE_RATE_HZ / FFT_SIZE
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bin_hz - lower) / (centre - lower)
    falling = (upper - bin_hz) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None).astype(np.float32)


WINDOW = hann_window()
FILTERBANK = mel_filterbank()


def log_mel_frame(frame: np.ndarray) -> np.ndarray:
    """One frame of FRAME_SAMPLES samples -> MEL_BINS log-mel energies (float32)."""
    spectrum = np.fft.rfft(frame.astype(np.float32) * WINDOW, n=FFT_SIZE)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    return np.log(FILTERBANK @ power + np.float32(LOG_FLOOR)).astype(np.float32)


def features(audio: np.ndarray) -> np.ndarray:
    """A clip of CLIP_SAMPLES samples -> (FRAMES, MEL_BINS) float32 log-mel features."""
    if audio.shape != (CLIP_SAMPLES,):
        raise ValueError(f"expected {CLIP_SAMPLES} samples, got shape {audio.shape}")
    starts = np.arange(FRAMES) * HOP_SAMPLES
    frames = np.stack([audio[s : s + FRAME_SAMPLES] for s in starts]).astype(np.float32)
    spectrum = np.fft.rfft(frames * WINDOW, n=FFT_SIZE, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    return np.log(power @ FILTERBANK.T + np.float32(LOG_FLOOR)).astype(np.float32)
