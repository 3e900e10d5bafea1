"""Simulated 3-axis accelerometer recordings of hand gestures (numpy only, seeded, deterministic).

A *scene* is a timeline of the device's pose (position in metres, orientation as a rotation
matrix, device frame to world frame) on a 500 Hz grid, built from segments: held in the hand,
lying on a table, drawing a gesture, picking up, putting down, slow repositioning. Rendering a
scene differentiates the position twice, adds gravity, rotates into the device frame, adds hand
tremor, then models the sensor: a 20 ms low-pass, sample-time jitter, per-axis bias and scale
error, white noise, 1/512 g quantization and a +-4 g range. World frame: x right, y forward (away
from the user), z up. Device frame at rest, face up: reads (0, 0, +1) g. See README.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LABELS = ("idle", "wing", "ring", "slope", "pickup")
RATE_HZ = 50.0
WINDOW = 128
CHANNELS = ("accel_x", "accel_y", "accel_z")
FINE_HZ = 500.0
G = 9.80665
LSB_G = 1.0 / 512.0
RANGE_G = 4.0

TRAIN_SEED = 101
EVAL_SEED = 202
GOLDEN_SEED = 303
EVAL_PER_CLASS = 100
GOLDEN_COUNT = 32

# The stroke shapes in the drawing plane (x right, z up), unit size, as the user sees them.
WING = np.array([[-0.5, 0.5], [-0.25, -0.5], [0.0, 0.25], [0.25, -0.5], [0.5, 0.5]])
SLOPE = np.array([[0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])


def _rot(axis: int, angle: np.ndarray | float) -> np.ndarray:
    """Rotation matrices about one world axis, stacked over ``angle``'s shape."""
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    out = np.zeros((*a.shape, 3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out[..., axis, axis] = 1.0
    out[..., i, i] = c
    out[..., j, j] = c
    out[..., i, j] = -s
    out[..., j, i] = s
    return out


def _min_jerk(s: np.ndarray) -> np.ndarray:
    """Smooth 0 -> 1 with zero velocity and acceleration at both ends: how hands move point to point."""
    s = np.clip(s, 0.0, 1.0)
    return s**3 * (10.0 - 15.0 * s + 6.0 * s * s)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _hand_orientation(rng: np.random.Generator, spread_deg: float = 30.0) -> np.ndarray:
    """How a user holds the device to draw: face up, top pointing forward, give or take ``spread_deg``."""
    yaw, pitch, roll = np.radians(rng.uniform(-spread_deg, spread_deg, size=3))
    return _rot(2, yaw) @ _rot(0, pitch) @ _rot(1, roll * 1.2)


def _table_orientation(rng: np.random.Generator) -> np.ndarray:
    """Flat on a table (a case or uneven surface tilts it a few degrees), any heading."""
    tilt_x, tilt_y = np.radians(rng.normal(0.0, 2.5, size=2))
    return _rot(2, rng.uniform(-np.pi, np.pi)) @ _rot(0, tilt_x) @ _rot(1, tilt_y)


@dataclass
class Scene:
    """A device pose timeline on the fine grid; segments append to it and keep it continuous."""

    rng: np.random.Generator
    rotation: np.ndarray  # current orientation, device -> world
    in_hand: bool
    pos: list[np.ndarray] = field(default_factory=list)
    rot: list[np.ndarray] = field(default_factory=list)
    hand: list[np.ndarray] = field(default_factory=list)
    bumps: list[tuple[float, float, float]] = field(default_factory=list)  # (time s, amplitude g, freq Hz)
    position: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @property
    def duration_s(self) -> float:
        return sum(len(p) for p in self.pos) / FINE_HZ

    def _append(self, pos: np.ndarray, rot: np.ndarray, hand: np.ndarray) -> None:
        self.pos.append(pos)
        self.rot.append(rot)
        self.hand.append(hand)
        self.position = pos[-1].copy()
        self.rotation = rot[-1].copy()

    def _steps(self, seconds: float) -> int:
        return max(1, round(seconds * FINE_HZ))

    def rest(self, seconds: float) -> None:
        """Held still in the hand or lying on the table (tremor and drift are added when rendering)."""
        n = self._steps(seconds)
        self._append(np.tile(self.position, (n, 1)), np.tile(self.rotation, (n, 1, 1)), np.full(n, float(self.in_hand)))

    def reposition(self, seconds: float, target: np.ndarray) -> tuple[float, float]:
        """Turn the device in the hand to ``target`` orientation and shift it a little (not a gesture)."""
        n = self._steps(seconds)
        s = _min_jerk(np.arange(1, n + 1) / n)
        axis, angle = _axis_angle(target @ self.rotation.T)
        rot = _axis_rotation(axis, angle * s) @ self.rotation
        shift = self.rng.normal(0.0, 0.05, size=3)
        begin = self.duration_s
        self._append(self.position + s[:, None] * shift, rot, np.ones(n))
        return begin, self.duration_s

    def draw(self, label: str) -> tuple[float, float]:
        """Draw a wing (W), ring (O, clockwise from the top) or slope (down-left diagonal, then right).

        The tip follows the shape in a vertical plane in front of the user; the device pivots
        about the wrist (``pivot`` m behind the tip), so its orientation follows the tip.
        Returns the (start, end) time of the motion in seconds.
        """
        rng = self.rng
        size = rng.uniform(0.15, 0.35)
        aspect = rng.uniform(0.75, 1.3)
        if label == "ring":
            duration = rng.uniform(1.0, 1.8)
            n = self._steps(duration)
            u = _warp(rng, np.arange(1, n + 1) / n)
            sweep = 2 * np.pi + np.radians(rng.uniform(-20.0, 35.0))
            start = np.pi / 2 + np.radians(rng.uniform(-30.0, 30.0))
            theta = start - sweep * u
            plane = 0.5 * np.stack([np.cos(theta) - np.cos(start), np.sin(theta) - np.sin(start)], axis=1)
        else:
            shape = WING if label == "wing" else SLOPE
            duration = rng.uniform(1.2, 2.0) if label == "wing" else rng.uniform(0.8, 1.5)
            corners = shape + rng.normal(0.0, 0.06, size=shape.shape)
            plane = _strokes(rng, corners, self._steps(duration)) - corners[0]
        n = len(plane)
        plane = plane * size * np.array([aspect, 1.0 / aspect])
        tip = np.stack([plane[:, 0], np.zeros(n), plane[:, 1]], axis=1)
        pivot = rng.uniform(0.25, 0.5)
        yaw = -np.arctan2(tip[:, 0], pivot)
        pitch = np.arctan2(tip[:, 2], pivot)
        begin = self.duration_s
        self._append(self.position + tip, _rot(2, yaw) @ _rot(0, pitch) @ self.rotation, np.ones(n))
        return begin, self.duration_s

    def pickup(self, seconds: float) -> tuple[float, float]:
        """Lift the device off the table and tilt its screen towards the user."""
        assert not self.in_hand
        rng = self.rng
        n = self._steps(seconds)
        t = np.arange(1, n + 1) / n
        lift = _min_jerk(t)
        turn = _min_jerk(np.clip((t - rng.uniform(0.0, 0.2)) / rng.uniform(0.6, 0.8), 0.0, 1.0))
        move = np.array([rng.normal(0.0, 0.04), -rng.uniform(0.0, 0.2), rng.uniform(0.15, 0.35)])
        tilt, roll, yaw = np.radians([rng.uniform(20.0, 70.0), rng.normal(0.0, 10.0), rng.normal(0.0, 12.0)])
        rot = _rot(2, yaw * turn) @ _rot(0, tilt * turn) @ _rot(1, roll * turn) @ self.rotation
        begin = self.duration_s
        self._append(self.position + lift[:, None] * move, rot, np.clip(t * 4.0, 0.0, 1.0))
        self.in_hand = True
        return begin, self.duration_s

    def put_down(self, seconds: float) -> tuple[float, float]:
        """Lower the device onto the table and let go; it lands with a small knock."""
        assert self.in_hand
        rng = self.rng
        n = self._steps(seconds)
        t = np.arange(1, n + 1) / n
        target = _table_orientation(rng)
        axis, angle = _axis_angle(target @ self.rotation.T)
        rot = _axis_rotation(axis, angle * _min_jerk(np.clip(t / 0.85, 0.0, 1.0))) @ self.rotation
        move = np.array([rng.normal(0.0, 0.04), rng.uniform(0.0, 0.2), -rng.uniform(0.1, 0.35)])
        begin = self.duration_s
        self._append(self.position + _min_jerk(t)[:, None] * move, rot, np.clip((1.0 - t) * 4.0, 0.0, 1.0))
        self.bumps.append((self.duration_s, rng.uniform(0.05, 0.4), rng.uniform(15.0, 40.0)))
        self.in_hand = False
        return begin, self.duration_s

    def render(self, start_s: float, count: int, sensor: Sensor) -> np.ndarray:
        """``count`` accelerometer samples (count, 3) in g at RATE_HZ from ``start_s``."""
        rng = self.rng
        pos, rot = np.concatenate(self.pos), np.concatenate(self.rot)
        hand = _moving_average(np.concatenate(self.hand)[:, None], 50)[:, 0]
        n = len(pos)
        t = np.arange(n) / FINE_HZ
        accel = np.gradient(np.gradient(pos, axis=0), axis=0) * FINE_HZ**2 / G
        # Slow wander of the hand: a few degrees about random axes, only while held.
        wander = _smooth_noise(rng, n, 0.4, 3) * np.radians(rng.uniform(0.5, 3.0)) * hand[:, None]
        rot = rot @ _rot(0, wander[:, 0]) @ _rot(1, wander[:, 1]) @ _rot(2, wander[:, 2])
        force = accel + np.array([0.0, 0.0, 1.0])
        device = np.einsum("nji,nj->ni", rot, force)
        # Physiological tremor, 6-12 Hz, only in the hand.
        tremor = _smooth_noise(rng, n, rng.uniform(6.0, 12.0), 3, band=True) * rng.uniform(0.003, 0.025)
        device += tremor * hand[:, None]
        for when, amplitude, freq in self.bumps:
            dt = np.clip(t - when, 0.0, None)
            ring = amplitude * np.exp(-dt * 40.0) * np.sin(2 * np.pi * freq * dt) * (t >= when)
            device += ring[:, None] * rng.normal(0.0, [0.3, 0.3, 1.0])
        # The sensor's digital low-pass filter (ODR 50 Hz): a 20 ms moving average.
        device = _moving_average(device, 10)
        times = start_s + np.arange(count) / RATE_HZ + rng.normal(0.0, sensor.jitter_s, size=count)
        times = np.clip(times, 0.0, t[-1])
        sampled = np.stack([np.interp(times, t, device[:, k]) for k in range(3)], axis=1)
        return sensor.measure(rng, sampled)


@dataclass(frozen=True)
class Sensor:
    """One accelerometer part: its errors are fixed per device, its noise per sample."""

    bias_g: np.ndarray
    gain: np.ndarray
    noise_g: float
    jitter_s: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> Sensor:
        return cls(
            bias_g=rng.normal(0.0, 0.03, size=3),
            gain=1.0 + rng.normal(0.0, 0.02, size=3),
            noise_g=rng.uniform(0.003, 0.02),
            jitter_s=rng.uniform(0.0, 0.002),
        )

    def measure(self, rng: np.random.Generator, true_g: np.ndarray) -> np.ndarray:
        reading = true_g * self.gain + self.bias_g + rng.normal(0.0, self.noise_g, size=true_g.shape)
        return np.clip(np.round(reading / LSB_G) * LSB_G, -RANGE_G, RANGE_G).astype(np.float32)


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of each column, the ends padded with the edge values (not zeros)."""
    padded = np.pad(x, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
    cumulative = np.cumsum(np.pad(padded, ((1, 0), (0, 0))), axis=0)
    return (cumulative[width:] - cumulative[:-width]) / width


def _axis_angle(r: np.ndarray) -> tuple[np.ndarray, float]:
    angle = float(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)))
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    norm = np.linalg.norm(axis)
    if norm < 1e-9:  # no turn, or exactly half a turn (practically never): any axis will do
        return np.array([0.0, 0.0, 1.0]), angle
    return axis / norm, angle


def _axis_rotation(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rodrigues' formula for one axis and many angles."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    a = np.asarray(angles)[:, None, None]
    return np.eye(3) + np.sin(a) * k + (1.0 - np.cos(a)) * (k @ k)


def _warp(rng: np.random.Generator, u: np.ndarray) -> np.ndarray:
    """A user's uneven speed along a stroke: a smooth monotone remapping of progress 0..1."""
    a = rng.uniform(-0.25, 0.25)
    return _min_jerk(u + a * np.sin(2 * np.pi * u) / (2 * np.pi))


def _strokes(rng: np.random.Generator, corners: np.ndarray, n: int) -> np.ndarray:
    """Points along straight strokes between corners, each stroke a min-jerk move, with short stops."""
    lengths = np.linalg.norm(np.diff(corners, axis=0), axis=1)
    # Longer strokes take longer, but less than proportionally; each stroke's share varies.
    shares = np.sqrt(lengths) * rng.uniform(0.8, 1.25, size=len(lengths))
    pauses = rng.uniform(0.0, 0.04, size=len(lengths) - 1)
    weights = np.concatenate([shares / shares.sum() * (1.0 - pauses.sum()), pauses])
    counts = np.maximum(1, np.round(weights * n).astype(int))
    points = []
    for k in range(len(lengths)):
        s = _warp(rng, np.arange(1, counts[k] + 1) / counts[k])
        points.append(corners[k] + s[:, None] * (corners[k + 1] - corners[k]))
        if k < len(pauses):
            points.append(np.tile(corners[k + 1], (counts[len(lengths) + k], 1)))
    return np.concatenate(points)


def _smooth_noise(rng: np.random.Generator, n: int, freq_hz: float, dims: int, *, band: bool = False) -> np.ndarray:
    """Unit-RMS random signal (n, dims) with energy below ``freq_hz`` (or around it if ``band``)."""
    spectrum = np.fft.rfft(rng.normal(size=(n, dims)), axis=0)
    f = np.fft.rfftfreq(n, 1.0 / FINE_HZ)
    shape = np.exp(-0.5 * ((f - freq_hz) / (0.25 * freq_hz)) ** 2) if band else 1.0 / (1.0 + (f / freq_hz) ** 4)
    signal = np.fft.irfft(spectrum * shape[:, None], n=n, axis=0)
    return signal / (signal.std(axis=0, keepdims=True) + 1e-12)


def _scene_for(rng: np.random.Generator, label: str) -> tuple[Scene, float]:
    """A scene with one example of ``label`` and the time its 128-sample window starts."""
    window_s = WINDOW / RATE_HZ
    if label in ("wing", "ring", "slope"):
        scene = Scene(rng, _hand_orientation(rng), in_hand=True)
        scene.rest(rng.uniform(0.3, 1.0))
        begin, end = scene.draw(label)
        scene.rest(window_s + 0.5)
    elif label == "pickup":
        scene = Scene(rng, _table_orientation(rng), in_hand=False)
        scene.rest(rng.uniform(0.3, 1.0))
        begin, end = scene.pickup(rng.uniform(0.5, 1.0))
        scene.rest(window_s + 0.5)
    else:
        return _idle_scene(rng, window_s)
    # The whole motion inside the window, anywhere it fits.
    slack = window_s - (end - begin)
    start = begin - rng.uniform(0.06, max(0.07, slack - 0.06))
    return scene, max(0.0, start)


def _idle_scene(rng: np.random.Generator, window_s: float) -> tuple[Scene, float]:
    """No complete gesture: at rest in any orientation, held with tremor, turned in the hand, put
    down, or the first or last part of a gesture at the edge of the window (a stream sees those too)."""
    kind = rng.choice(["table", "any", "hand", "turn", "put_down", "partial"], p=[0.1, 0.08, 0.12, 0.2, 0.16, 0.34])
    if kind == "partial":
        return _partial_scene(rng, window_s)
    if kind == "table":
        scene = Scene(rng, _table_orientation(rng), in_hand=False)
    elif kind == "any":
        scene = Scene(rng, _random_rotation(rng), in_hand=bool(rng.random() < 0.5))
    else:
        scene = Scene(rng, _hand_orientation(rng, 45.0) if rng.random() < 0.7 else _random_rotation(rng), True)
    scene.rest(window_s + 0.5)
    if kind == "turn":
        begin, end = scene.reposition(rng.uniform(0.6, 2.5), _hand_orientation(rng, 50.0))
    elif kind == "put_down":
        begin, end = scene.put_down(rng.uniform(0.6, 1.3))
    else:
        begin = end = window_s + 0.5
    scene.rest(window_s + 0.5)
    # The motion anywhere in the window, also only partly inside it, as a stream sees it.
    return scene, float(rng.uniform(begin - window_s + 0.2, end - 0.2))


def _partial_scene(rng: np.random.Generator, window_s: float) -> tuple[Scene, float]:
    """A gesture or pickup of which at most 75 % is inside the window: not yet (or no longer) recognisable."""
    label = str(rng.choice(["wing", "ring", "slope", "pickup"]))
    if label == "pickup":
        scene = Scene(rng, _table_orientation(rng), in_hand=False)
        scene.rest(window_s + 0.5)
        begin, end = scene.pickup(rng.uniform(0.5, 1.0))
    else:
        scene = Scene(rng, _hand_orientation(rng), in_hand=True)
        scene.rest(window_s + 0.5)
        begin, end = scene.draw(label)
    scene.rest(window_s + 0.5)
    inside = rng.uniform(0.0, 0.75) * (end - begin)
    if rng.random() < 0.5:  # the motion is just starting at the end of the window
        return scene, begin + inside - window_s
    return scene, end - inside  # the motion is just ending at the start of the window


def windows(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """One (128, 3) window in g for each label index in ``labels``: shape (N, 1, 128, 3), float32."""
    out = np.empty((len(labels), 1, WINDOW, 3), dtype=np.float32)
    for i, label in enumerate(labels):
        scene, start = _scene_for(rng, LABELS[int(label)])
        out[i, 0] = scene.render(start, WINDOW, Sensor.random(rng))
    return out


def training_set(count_per_class: int, seed: int = TRAIN_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Balanced, shuffled windows and labels for training."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(len(LABELS)), count_per_class))
    return windows(rng, y), y


def eval_set() -> tuple[np.ndarray, np.ndarray]:
    """The committed evaluation set: EVAL_PER_CLASS windows per class, fixed seed."""
    rng = np.random.default_rng(EVAL_SEED)
    y = np.repeat(np.arange(len(LABELS)), EVAL_PER_CLASS)
    return windows(rng, y), y


def golden_inputs() -> np.ndarray:
    """GOLDEN_COUNT windows covering every class, fixed seed."""
    rng = np.random.default_rng(GOLDEN_SEED)
    return windows(rng, np.arange(GOLDEN_COUNT) % len(LABELS))


@dataclass(frozen=True)
class Stimulus:
    """A continuous recording and the gestures performed in it."""

    samples_g: np.ndarray  # (n, 3) float32
    events: list[tuple[str, float, float]]  # (label, start s, end s) of each motion


def _stimulus(seed: int, script: Callable[[Scene], list[tuple[str, float, float]]]) -> Stimulus:
    rng = np.random.default_rng(seed)
    scene = Scene(rng, _hand_orientation(rng, 15.0), in_hand=True)
    events = script(scene)
    count = int(np.floor(scene.duration_s * RATE_HZ)) - 1
    return Stimulus(scene.render(0.0, count, Sensor.random(rng)), events)


def sequence_stimulus(seed: int = 404) -> Stimulus:
    """~35 s: rest, wing, rest, ring, rest, slope, rest and put down, pickup, rest."""

    def script(scene: Scene) -> list[tuple[str, float, float]]:
        rng = scene.rng
        events = []
        scene.rest(4.0)
        for label in ("wing", "ring", "slope"):
            begin, end = scene.draw(label)
            events.append((label, begin, end))
            scene.rest(1.5)
            scene.reposition(1.5, _hand_orientation(rng, 15.0))
            scene.rest(2.5)
        scene.put_down(1.0)
        scene.rest(3.5)
        begin, end = scene.pickup(0.8)
        events.append(("pickup", begin, end))
        scene.rest(4.0)
        return events

    return _stimulus(seed, script)


def idle_only_stimulus(seed: int = 505) -> Stimulus:
    """~15 s without gestures: held, slowly turned, put down, lying on the table."""

    def script(scene: Scene) -> list[tuple[str, float, float]]:
        rng = scene.rng
        scene.rest(4.0)
        scene.reposition(2.0, _hand_orientation(rng, 40.0))
        scene.rest(3.0)
        scene.put_down(1.1)
        scene.rest(5.0)
        return []

    return _stimulus(seed, script)


STIMULI: dict[str, Callable[[], Stimulus]] = {"sequence": sequence_stimulus, "idle_only": idle_only_stimulus}


def write_stimuli(directory: Path) -> list[Path]:
    """Write each stimulus as ``<name>.csv`` (t_s and the three axes in g) and ``<name>.expected.csv``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in STIMULI.items():
        stimulus = make()
        t = np.arange(len(stimulus.samples_g)) / RATE_HZ
        lines = ["t_s,accel_x_g,accel_y_g,accel_z_g"]
        lines += [f"{ti:.2f},{x:.6f},{y:.6f},{z:.6f}" for ti, (x, y, z) in zip(t, stimulus.samples_g, strict=True)]
        (directory / f"{name}.csv").write_text("\n".join(lines) + "\n")
        expected = ["label,start_s,end_s"] + [f"{label},{a:.2f},{b:.2f}" for label, a, b in stimulus.events]
        (directory / f"{name}.expected.csv").write_text("\n".join(expected) + "\n")
        written += [directory / f"{name}.csv", directory / f"{name}.expected.csv"]
    return written
