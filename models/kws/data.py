"""Keyword-spotting clips synthesized offline with espeak-ng, mixed with generated noise (seeded).

Every spoken word comes from the ``espeak-ng`` speech synthesizer (Debian package ``espeak-ng``),
with a random accent, voice variant, pitch, speed and intonation. The clip pipeline:

1. synthesize the word (22.05 kHz, int16), resample to 16 kHz (FFT resampling), trim silence
2. optionally vary the tempo by +-8 % (resampling) and add room reverb (decaying noise impulse)
3. place it at a random offset in a 1 s clip, at a random level
4. add noise at an SNR of 0-30 dB (a fifth cleaner, 30-45 dB): white, pink, brown, mains hum,
   fan (tones on low-passed noise) or babble (other synthesized words, quieter)
5. microphone: DC offset, clipping at full scale, int16 quantization

``silence`` clips are noise only, from near digital silence to loud. Training and evaluation use
disjoint voice variants, so the eval score is for speakers the model has not heard.
Importing this module needs only numpy; synthesizing raises a clear error without espeak-ng.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import numpy as np

HERE = Path(__file__).resolve().parent

LABELS = ("silence", "unknown", "yes", "no")
SYNTH_RATE_HZ = 22050
TRAIN_SEED = 11
EVAL_SEED = 22
GOLDEN_SEED = 33
EVAL_PER_CLASS = 30
GOLDEN_COUNT = 24

ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
TRAIN_VARIANTS = (
    "m1", "m2", "m4", "m5", "m6", "m8", "f1", "f3", "f5", "klatt", "klatt2", "klatt3", "klatt5",
    "Alex", "Andy", "Annie", "adam", "aunty", "belinda", "benjamin", "david", "edward",
    "iven", "john", "linda", "max", "norbert", "paul", "quincy", "rob", "shelby", "travis", "zac",
)  # fmt: skip
EVAL_VARIANTS = ("m3", "m7", "f2", "f4", "klatt4", "grandpa", "steph", "victor")
KEYWORDS = ("yes", "no")
# Other words, some chosen to sound close to the keywords.
UNKNOWN_WORDS = (
    "yet", "yell", "yesterday", "guess", "less", "now", "nose", "note", "snow", "go", "low", "bed",
    "left", "right", "up", "down", "on", "off", "stop", "one", "two", "three", "four", "five", "six",
    "seven", "eight", "nine", "zero", "cat", "dog", "house", "tree", "bird", "happy", "wow", "learn",
    "follow", "forward", "visual", "sheila", "marvin",
)  # fmt: skip
PUNCTUATION = ("", ".", "!", "?", ",")


def _frontend() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kws_frontend", HERE / "frontend.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


frontend = _frontend()
RATE_HZ: int = frontend.SAMPLE_RATE_HZ
CLIP: int = frontend.CLIP_SAMPLES


class EspeakMissing(RuntimeError):
    """The speech synthesizer this data set is made with is not installed."""


def require_espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise EspeakMissing(
            "espeak-ng is not installed: the keyword-spotting clips are synthesized with it "
            "(Debian/Ubuntu: apt-get install espeak-ng)"
        )
    return path


@functools.lru_cache(maxsize=4096)
def synthesize(text: str, voice: str, pitch: int, speed_wpm: int) -> np.ndarray:
    """espeak-ng's rendering of ``text`` at 16 kHz, float32 in [-1, 1], silence trimmed."""
    command = [require_espeak(), "-v", voice, "-p", str(pitch), "-s", str(speed_wpm), "-a", "100", "--stdout", text]
    wav = subprocess.run(command, capture_output=True, check=True, timeout=30).stdout
    # A RIFF header of 44 bytes, then mono int16 at 22.05 kHz (the header's sizes are unset on a pipe).
    pcm = np.frombuffer(wav[44 : 44 + (len(wav) - 44) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    return _trim(_resample(pcm, SYNTH_RATE_HZ, RATE_HZ))


def _resample(x: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
    """Band-limited resampling by zero-padded FFT (the padding keeps the ends from wrapping round)."""
    pad = 256
    padded = np.concatenate([np.zeros(pad, np.float32), x, np.zeros(pad, np.float32)])
    n_out = round(len(padded) * rate_out / rate_in)
    spectrum = np.fft.rfft(padded)
    keep = min(len(spectrum), n_out // 2 + 1)
    out = np.fft.irfft(spectrum[:keep], n=n_out) * (n_out / len(padded))
    cut = round(pad * rate_out / rate_in)
    return out[cut : n_out - cut].astype(np.float32)


def _trim(x: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    loud = np.flatnonzero(np.abs(x) > threshold)
    if len(loud) == 0:
        return x[:0]
    return x[max(0, loud[0] - 160) : loud[-1] + 160]


def _spoken(rng: np.random.Generator, word: str, variants: tuple[str, ...]) -> np.ndarray:
    voice = f"{rng.choice(ACCENTS)}+{rng.choice(variants)}"
    text = word + str(rng.choice(PUNCTUATION))
    return synthesize(text, voice, int(rng.integers(15, 86)), int(rng.integers(110, 221)))


def _shaped_noise(rng: np.random.Generator, n: int, slope: float) -> np.ndarray:
    """Unit-RMS noise with power falling as 1/f**slope (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.normal(size=n))
    f = np.maximum(np.fft.rfftfreq(n, 1.0 / RATE_HZ), 20.0)
    noise = np.fft.irfft(spectrum / f ** (slope / 2), n=n)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def noise(rng: np.random.Generator, variants: tuple[str, ...]) -> np.ndarray:
    """One second of unit-RMS background noise of a random kind."""
    kind = rng.choice(["white", "pink", "brown", "hum", "fan", "babble"])
    t = np.arange(CLIP) / RATE_HZ
    if kind in ("white", "pink", "brown"):
        out = _shaped_noise(rng, CLIP, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind])
    elif kind == "hum":
        mains = rng.choice([50.0, 60.0])
        out = sum(
            rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 6.3)) for k in range(1, 8)
        )
        out = out + 0.1 * _shaped_noise(rng, CLIP, 1.0)
    elif kind == "fan":
        blade = rng.uniform(80.0, 400.0)
        tones = sum(rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * blade * k * t + rng.uniform(0, 6.3)) for k in (1, 2, 3))
        out = 0.5 * tones + _shaped_noise(rng, CLIP, 1.5)
    else:  # several people talking further away
        out = np.zeros(CLIP)
        for _ in range(int(rng.integers(3, 7))):
            word = _spoken(rng, str(rng.choice(UNKNOWN_WORDS)), variants)[:CLIP]
            start = int(rng.integers(-len(word) // 2, CLIP - len(word) // 2))
            lo, hi = max(0, start), min(CLIP, start + len(word))
            out[lo:hi] += word[lo - start : hi - start] * rng.uniform(0.3, 1.0)
        out = out + 0.05 * _shaped_noise(rng, CLIP, 1.0)
    out = np.asarray(out, dtype=np.float64)
    return (out / (np.sqrt(np.mean(out**2)) + 1e-12)).astype(np.float32)


def _reverb(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """A small room: exponentially decaying noise as the impulse response (RT60 0.1-0.5 s)."""
    rt60 = rng.uniform(0.1, 0.5)
    n = int(rt60 * RATE_HZ)
    response = rng.normal(size=n) * np.exp(-6.9 * np.arange(n) / n)
    response[0] = 1.0 / rng.uniform(0.05, 0.3)  # the direct sound dominates
    wet = np.convolve(x, response)[: len(x) + n // 4]
    return (wet / np.max(np.abs(wet)) * np.max(np.abs(x))).astype(np.float32)


def clip(rng: np.random.Generator, label: str, variants: tuple[str, ...]) -> np.ndarray:
    """One second of 16 kHz audio (float32, int16-quantized) for ``label``."""
    background = noise(rng, variants)
    if label == "silence":
        level_db = rng.uniform(-75.0, -20.0)
        audio = background * 10 ** (level_db / 20)
    else:
        word = KEYWORDS[LABELS.index(label) - 2] if label in KEYWORDS else str(rng.choice(UNKNOWN_WORDS))
        speech = _spoken(rng, word, variants)
        if rng.random() < 0.5:  # tempo, by resampling
            speech = _resample(speech, RATE_HZ * rng.uniform(0.92, 1.08), RATE_HZ)
        if rng.random() < 0.3:
            speech = _reverb(rng, speech)
        speech = speech[:CLIP]
        placed = np.zeros(CLIP, np.float32)
        start = int(rng.integers(0, CLIP - len(speech) + 1))
        placed[start : start + len(speech)] = speech
        active_rms = np.sqrt(np.mean(speech**2)) + 1e-12
        level_db = rng.uniform(-35.0, -8.0)  # speech RMS re full scale
        placed *= 10 ** (level_db / 20) / active_rms
        snr_db = rng.uniform(30.0, 45.0) if rng.random() < 0.2 else rng.uniform(0.0, 30.0)
        audio = placed + background * 10 ** ((level_db - snr_db) / 20)
    audio = audio + rng.normal(0.0, 0.002)  # the ADC's DC offset
    return (np.round(np.clip(audio, -1.0, 32767 / 32768) * 32768) / 32768).astype(np.float32)


CHUNK = 64  # clips per independently seeded chunk: the result does not depend on the thread count


def _features_chunk(seed: np.random.SeedSequence, labels: np.ndarray, variants: tuple[str, ...]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([frontend.features(clip(rng, LABELS[int(label)], variants)) for label in labels])


def features(seed: int, labels: np.ndarray, variants: tuple[str, ...]) -> np.ndarray:
    """(N, 1, 49, 40, 1) float32 log-mel features, one clip per label index, deterministic in ``seed``."""
    chunks = [labels[i : i + CHUNK] for i in range(0, len(labels), CHUNK)]
    seeds = np.random.SeedSequence(seed).spawn(len(chunks))
    # Threads overlap the espeak-ng processes and numpy's FFTs; each chunk has its own generator.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        parts = list(pool.map(_features_chunk, seeds, chunks, [variants] * len(chunks)))
    return np.concatenate(parts)[:, None, :, :, None].astype(np.float32)


def training_set(count_per_class: int, seed: int = TRAIN_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Balanced, shuffled features and labels from the training voices."""
    y = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(LABELS)), count_per_class))
    return features(seed, y, TRAIN_VARIANTS), y


def eval_set() -> tuple[np.ndarray, np.ndarray]:
    """The committed evaluation set: EVAL_PER_CLASS clips per class from the held-out voices."""
    y = np.repeat(np.arange(len(LABELS)), EVAL_PER_CLASS)
    return features(EVAL_SEED, y, EVAL_VARIANTS), y


def golden_inputs() -> np.ndarray:
    """GOLDEN_COUNT feature maps covering every class, from the held-out voices."""
    return features(GOLDEN_SEED, np.arange(GOLDEN_COUNT) % len(LABELS), EVAL_VARIANTS)
