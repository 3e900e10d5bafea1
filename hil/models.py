"""The model zoo: manifests, golden vectors, evaluation sets, and the steps that produce them.

Everything here runs on the TFLM Python runtime; TensorFlow is needed only by each model's
``train.py``, which ends by calling :func:`finalize_model`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hil import model_files, tflm
from hil.errors import ConfigError
from hil.inputs import suggest
from hil.results import TensorSpec

MANIFEST = model_files.MANIFEST
GOLDEN = "golden.npz"
EVAL = model_files.EVAL


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits a test asserts on one target; ``None`` means unconstrained."""

    latency_us: float | None = None
    arena_bytes: int | None = None
    # regression thresholds against a saved baseline (hil baseline compare); None: the defaults
    latency_regression_pct: float | None = None
    arena_regression_bytes: int | None = None
    score_regression_points: float | None = None


METRICS = {
    "accuracy": "top-1 accuracy of the argmax of the output against integer labels",
    "threshold_accuracy": "accuracy of (first output > decision_threshold) against 0/1 labels",
    "mae": "mean absolute error of the first output against real targets (lower is better)",
}


@dataclass(frozen=True, slots=True)
class Streaming:
    """How a model runs on a stream of sensor samples (see docs/protocol.md, streaming)."""

    sample_rate_hz: float
    channels: tuple[str, ...]
    unit: str
    window: int  # samples per inference
    hop: int  # new samples between inferences
    idle_class: int | None  # class that never raises an event
    threshold: float  # minimum score of the top class for an event
    refractory_samples: int  # no second event this soon after one


@dataclass(frozen=True, slots=True)
class Metric:
    """How a model is scored on its evaluation set, and the floor it must reach."""

    name: str  # see METRICS
    threshold: float  # the floor (or, for "mae", the ceiling) the int8 model must reach
    float_score: float | None = None
    int8_score: float | None = None
    decision_threshold: float | None = None  # "threshold_accuracy": output > this means class 1

    def __post_init__(self) -> None:
        if self.name not in METRICS:
            raise ConfigError(f"unknown metric {self.name!r}: use one of {', '.join(METRICS)}")
        if self.name == "threshold_accuracy" and self.decision_threshold is None:
            raise ConfigError("metric threshold_accuracy needs a decision_threshold")

    @property
    def higher_is_better(self) -> bool:
        return self.name != "mae"

    @property
    def is_classification(self) -> bool:
        return self.name != "mae"

    def passes(self, score: float) -> bool:
        return score >= self.threshold if self.higher_is_better else score <= self.threshold


@dataclass(frozen=True, slots=True)
class ModelManifest:
    name: str
    directory: Path
    description: str
    task: str
    tflite_file: str
    sha256: str
    flash_bytes: int
    input: TensorSpec
    output: TensorSpec
    labels: tuple[str, ...]
    ops: tuple[str, ...]
    arena_bytes: int
    arena_used_bytes: int
    golden_tolerance: int
    metric: Metric
    budgets: dict[str, Budget] = field(default_factory=dict)
    streaming: Streaming | None = None
    golden_file: str = GOLDEN

    @property
    def golden_path(self) -> Path:
        return self.directory / self.golden_file

    @property
    def tflite_path(self) -> Path:
        return self.directory / self.tflite_file

    def budget(self, target: str) -> Budget:
        """Budget for ``target``: its own entry, else its backend's, else ``default``."""
        backend = target.split(":", 1)[0]
        for key in (target, backend, "default"):
            if key in self.budgets:
                return self.budgets[key]
        return Budget()

    @classmethod
    def load(cls, directory: Path) -> ModelManifest:
        """The manifest of a model folder, once every file in it was checked (:mod:`hil.model_files`)."""
        folder = model_files.check_model_folder(directory)
        raw = folder.manifest
        return cls(
            name=raw.name,
            directory=directory,
            description=raw.description,
            task=raw.task,
            tflite_file=raw.tflite,
            sha256=raw.sha256,
            flash_bytes=raw.flash_bytes,
            input=raw.input.spec(),
            output=raw.output.spec(),
            labels=raw.labels,
            ops=raw.ops,
            arena_bytes=raw.arena_bytes,
            arena_used_bytes=raw.arena_used_bytes,
            golden_tolerance=raw.golden.tolerance,
            golden_file=raw.golden.file,
            metric=Metric(**raw.metric.model_dump()),
            budgets={k: Budget(**v.model_dump()) for k, v in raw.budgets.items()},
            streaming=Streaming(**raw.streaming.model_dump()) if raw.streaming else None,
        )


@dataclass(frozen=True, slots=True)
class GoldenVectors:
    inputs: np.ndarray  # (N, *input.shape) in the input dtype
    outputs: np.ndarray  # (N, *output.shape) as TFLM produced them

    def __len__(self) -> int:
        return len(self.inputs)


@dataclass(frozen=True, slots=True)
class EvalSet:
    x: np.ndarray  # (N, *input.shape) real-valued features
    y: np.ndarray  # (N,) labels (int) or targets (float)


class ModelZoo:
    """The models under one directory, each in a folder with a ``manifest.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._checked: dict[str, ModelManifest] = {}  # each folder is checked once, on first use
        if not root.is_dir():
            raise ConfigError(
                f"models directory {root} does not exist: set models_dir in hil.toml or pass --models-dir"
            )

    def names(self) -> list[str]:
        return sorted(p.parent.name for p in self.root.glob(f"*/{MANIFEST}"))

    def manifest(self, name: str) -> ModelManifest:
        """The manifest of model ``name``; its folder is checked (manifest, .tflite, golden, eval) the first time."""
        if name in self._checked:
            return self._checked[name]
        directory = self.root / name
        if not name or "/" in name or name.startswith(".") or not (directory / MANIFEST).is_file():
            raise ConfigError(self.unknown(name))
        self._checked[name] = ModelManifest.load(directory)
        return self._checked[name]

    def unknown(self, name: str) -> str:
        """What to say about a model name that is not in the zoo."""
        known = self.names()
        listed = ", ".join(known) or "none"
        return f"unknown model {name!r}{suggest(name, known)}: known models are {listed} (in {self.root})"

    def check(self, names: list[str] | None = None) -> list[ModelManifest]:
        """Check every model folder (or ``names``) before a device starts: the first problem raises a ConfigError."""
        return [self.manifest(name) for name in (self.names() if names is None else names)]

    def golden(self, name: str) -> GoldenVectors:
        manifest = self.manifest(name)
        arrays = model_files.load_npz(manifest.golden_path, ("inputs", "outputs"))
        return GoldenVectors(arrays["inputs"], arrays["outputs"])

    def eval_set(self, name: str) -> EvalSet:
        manifest = self.manifest(name)
        arrays = model_files.load_npz(manifest.directory / EVAL, ("x", "y"))
        return EvalSet(arrays["x"], arrays["y"])


def predictions(metric: Metric, spec: TensorSpec, outputs: np.ndarray) -> np.ndarray:
    """Predicted class per row of quantized outputs (classification metrics only)."""
    real = spec.dequantize(outputs).reshape(len(outputs), -1)
    if metric.name == "threshold_accuracy":
        return (real[:, 0] > metric.decision_threshold).astype(np.int64)
    return real.argmax(axis=1)


def score(metric: Metric, spec: TensorSpec, outputs: np.ndarray, y: np.ndarray) -> float:
    """Score quantized outputs (one row per sample) against evaluation labels or targets."""
    if metric.is_classification:
        return float(np.mean(predictions(metric, spec, outputs) == y))
    real = spec.dequantize(outputs).reshape(len(y), -1)
    return float(np.mean(np.abs(real[:, 0] - y)))


def confusion_matrix(y: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts[true, predicted]."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (y.astype(np.int64), predicted.astype(np.int64)), 1)
    return counts


def finalize_model(
    directory: Path,
    *,
    description: str,
    task: str,
    golden_inputs: np.ndarray,
    eval_set: EvalSet,
    metric: Metric,
    labels: tuple[str, ...] = (),
    budgets: dict[str, dict[str, float]] | None = None,
    streaming: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> ModelManifest:
    """Measure a freshly converted ``<name>.tflite`` with TFLM; write manifest, golden and eval files.

    ``golden_inputs`` and ``eval_set.x`` are real-valued; ``metric.float_score`` is the float
    model's score on the same evaluation set, for comparison with the int8 score measured here.
    """
    name = directory.name
    model = (directory / f"{name}.tflite").read_bytes()
    arena_bytes = tflm.minimal_arena_bytes(model)
    interp = tflm.interpreter(model, arena_bytes)
    in_spec = tflm.tensor_spec(interp.get_input_details(0))
    out_spec = tflm.tensor_spec(interp.get_output_details(0))
    quantized = np.stack([in_spec.quantize(x) for x in golden_inputs])
    outputs = np.stack([tflm.invoke(interp, x) for x in quantized])
    used = tflm.arena_used_bytes(interp)
    np.savez_compressed(directory / GOLDEN, inputs=quantized, outputs=outputs)
    np.savez_compressed(directory / EVAL, x=eval_set.x.astype(np.float32), y=eval_set.y)
    eval_outputs = np.stack([tflm.invoke(interp, in_spec.quantize(x)) for x in eval_set.x])
    int8_score = score(metric, out_spec, eval_outputs, eval_set.y)
    metric_json = {k: v for k, v in asdict(metric).items() if v is not None}
    metric_json |= {"float_score": round(metric.float_score or 0.0, 6), "int8_score": round(int8_score, 6)}
    manifest = {
        "name": name,
        "description": description,
        "task": task,
        "tflite": f"{name}.tflite",
        "sha256": hashlib.sha256(model).hexdigest(),
        "flash_bytes": len(model),
        "input": _spec_json(in_spec),
        "output": _spec_json(out_spec),
        "labels": list(labels),
        "ops": tflm.op_names(model),
        "arena_bytes": arena_bytes,
        "arena_used_bytes": used,
        "golden": {"file": GOLDEN, "count": len(quantized), "tolerance": 0},
        "metric": metric_json,
        "budgets": budgets or {},
        "training": training or {},
    }
    if streaming:
        manifest["streaming"] = streaming
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return ModelManifest.load(directory)


def _spec_json(spec: TensorSpec) -> dict[str, object]:
    return {"dtype": spec.dtype, "shape": list(spec.shape), "scale": spec.scale, "zero_point": spec.zero_point}


@dataclass(frozen=True, slots=True)
class Verification:
    model: str
    problems: tuple[str, ...]
    int8_score: float
    tflite_max_abs_diff: int | None  # TF Lite interpreter vs TFLM on the golden inputs; None: TF absent

    @property
    def ok(self) -> bool:
        return not self.problems


# Optimized TF Lite kernels and TFLM's reference kernels may round differently by one step.
TFLITE_AGREEMENT_STEPS = 1


def tflite_outputs(model: bytes, inputs: np.ndarray) -> np.ndarray | None:
    """Outputs of the TF Lite interpreter (from TensorFlow), or None if TensorFlow is not installed."""
    try:
        with tflm.captured_stderr():  # absl prints banners to fd 2 before any log level applies
            import tensorflow as tf
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        # Reference kernels: the same arithmetic TFLM uses, so any difference is a real disagreement.
        reference_kernels = tf.lite.experimental.OpResolverType.BUILTIN_REF
        interp = tf.lite.Interpreter(model_content=model, experimental_op_resolver_type=reference_kernels)
    interp.allocate_tensors()
    in_index = interp.get_input_details()[0]["index"]
    out_index = interp.get_output_details()[0]["index"]
    outputs = []
    for x in inputs:
        interp.set_tensor(in_index, x)
        interp.invoke()
        outputs.append(interp.get_tensor(out_index).copy())
    return np.stack(outputs)


def verify_model(zoo: ModelZoo, name: str) -> Verification:
    """Re-check a committed model: file hash, arena, golden outputs bit-exact with TFLM, eval score,
    and agreement of the TF Lite interpreter with TFLM (when TensorFlow is installed)."""
    m = zoo.manifest(name)
    problems: list[str] = []
    model = m.tflite_path.read_bytes()
    if hashlib.sha256(model).hexdigest() != m.sha256:
        problems.append(f"{m.tflite_file} does not match the sha256 in the manifest: retrain or re-finalize")
    interp = tflm.interpreter(model, m.arena_bytes, name)
    golden = zoo.golden(name)
    outputs = np.stack([tflm.invoke(interp, x) for x in golden.inputs])
    mismatches = int(np.sum(np.any((outputs != golden.outputs).reshape(len(golden), -1), axis=1)))
    if mismatches:
        problems.append(f"{mismatches}/{len(golden)} golden vectors differ from TFLM's outputs")
    if (used := tflm.arena_used_bytes(interp)) != m.arena_used_bytes:
        problems.append(f"arena used is {used} bytes, manifest arena_used_bytes says {m.arena_used_bytes}")
    ev = zoo.eval_set(name)
    int8_score = score(m.metric, m.output, np.stack([tflm.invoke(interp, m.input.quantize(x)) for x in ev.x]), ev.y)
    if not m.metric.passes(int8_score):
        problems.append(f"int8 {m.metric.name} {int8_score:.4f} misses the floor {m.metric.threshold}")
    reference = tflite_outputs(model, golden.inputs)
    diff = None
    if reference is not None:
        diff = int(np.abs(reference.astype(np.int64) - golden.outputs.astype(np.int64)).max(initial=0))
        if diff > TFLITE_AGREEMENT_STEPS:
            problems.append(f"TF Lite interpreter and TFLM differ by {diff} output steps on the golden inputs")
    return Verification(name, tuple(problems), int8_score, diff)
