"""The model zoo: manifests, golden vectors, evaluation sets, and the steps that produce them.

Everything here runs on the TFLM Python runtime; TensorFlow is needed only by each model's
``train.py``, which ends by calling :func:`finalize_model`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hil import tflm
from hil.errors import ConfigError
from hil.results import TensorSpec

MANIFEST = "manifest.json"
GOLDEN = "golden.npz"
EVAL = "eval.npz"


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits a test asserts on one target; ``None`` means unconstrained."""

    latency_us: float | None = None
    arena_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Metric:
    """How a model is scored on its evaluation set, and the floor it must reach."""

    name: str  # "accuracy" (higher is better) or "mae" (lower is better)
    threshold: float
    float_score: float | None = None
    int8_score: float | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.name == "accuracy"

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
        path = directory / MANIFEST
        try:
            raw = json.loads(path.read_text())
            return cls(
                name=raw["name"],
                directory=directory,
                description=raw.get("description", ""),
                task=raw["task"],
                tflite_file=raw["tflite"],
                sha256=raw["sha256"],
                flash_bytes=raw["flash_bytes"],
                input=TensorSpec(**{**raw["input"], "shape": tuple(raw["input"]["shape"])}),
                output=TensorSpec(**{**raw["output"], "shape": tuple(raw["output"]["shape"])}),
                labels=tuple(raw.get("labels", ())),
                ops=tuple(raw["ops"]),
                arena_bytes=raw["arena_bytes"],
                arena_used_bytes=raw["arena_used_bytes"],
                golden_tolerance=raw["golden"]["tolerance"],
                metric=Metric(**raw["metric"]),
                budgets={k: Budget(**v) for k, v in raw.get("budgets", {}).items()},
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"bad model manifest {path}: {err!r}") from err


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
        if not root.is_dir():
            raise ConfigError(f"models directory {root} does not exist: pass --models or set models_dir in hil.toml")

    def names(self) -> list[str]:
        return sorted(p.parent.name for p in self.root.glob(f"*/{MANIFEST}"))

    def manifest(self, name: str) -> ModelManifest:
        directory = self.root / name
        if not (directory / MANIFEST).is_file():
            raise ConfigError(f"unknown model {name!r}: known models are {', '.join(self.names()) or 'none'}")
        return ModelManifest.load(directory)

    def golden(self, name: str) -> GoldenVectors:
        with np.load(self.root / name / GOLDEN) as data:
            return GoldenVectors(data["inputs"], data["outputs"])

    def eval_set(self, name: str) -> EvalSet:
        with np.load(self.root / name / EVAL) as data:
            return EvalSet(data["x"], data["y"])


def score(metric_name: str, spec: TensorSpec, outputs: np.ndarray, y: np.ndarray) -> float:
    """Score device or runtime outputs (quantized, one per row) against eval targets."""
    real = spec.dequantize(outputs).reshape(len(y), -1)
    if metric_name == "accuracy":
        return float(np.mean(real.argmax(axis=1) == y))
    if metric_name == "mae":
        return float(np.mean(np.abs(real[:, 0] - y)))
    raise ConfigError(f"unknown metric {metric_name!r}: use accuracy or mae")


def finalize_model(
    directory: Path,
    *,
    description: str,
    task: str,
    golden_inputs: np.ndarray,
    eval_set: EvalSet,
    metric_name: str,
    threshold: float,
    float_score: float,
    labels: tuple[str, ...] = (),
    budgets: dict[str, dict[str, float]] | None = None,
    training: dict[str, object] | None = None,
) -> ModelManifest:
    """Measure a freshly converted ``<name>.tflite`` with TFLM and write manifest, golden and eval files."""
    name = directory.name
    model = (directory / f"{name}.tflite").read_bytes()
    arena_bytes = tflm.minimal_arena_bytes(model)
    interp = tflm.interpreter(model, arena_bytes)
    in_spec = tflm.tensor_spec(interp.get_input_details(0))
    out_spec = tflm.tensor_spec(interp.get_output_details(0))
    quantized = np.stack([in_spec.quantize(x) for x in golden_inputs])
    outputs = np.stack([tflm.invoke(interp, x) for x in quantized])
    used = tflm.arena_used_bytes(interp)
    np.savez(directory / GOLDEN, inputs=quantized, outputs=outputs)
    np.savez(directory / EVAL, x=eval_set.x, y=eval_set.y)
    eval_outputs = np.stack([tflm.invoke(interp, in_spec.quantize(x)) for x in eval_set.x])
    int8_score = score(metric_name, out_spec, eval_outputs, eval_set.y)
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
        "metric": {
            "name": metric_name,
            "threshold": threshold,
            "float_score": round(float_score, 6),
            "int8_score": round(int8_score, 6),
        },
        "budgets": budgets or {},
        "training": training or {},
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return ModelManifest.load(directory)


def _spec_json(spec: TensorSpec) -> dict[str, object]:
    return {"dtype": spec.dtype, "shape": list(spec.shape), "scale": spec.scale, "zero_point": spec.zero_point}


@dataclass(frozen=True, slots=True)
class Verification:
    model: str
    problems: tuple[str, ...]
    int8_score: float

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_model(zoo: ModelZoo, name: str) -> Verification:
    """Re-check a committed model with TFLM: file hash, arena, golden outputs bit-exact, eval score."""
    m = zoo.manifest(name)
    problems: list[str] = []
    model = m.tflite_path.read_bytes()
    if hashlib.sha256(model).hexdigest() != m.sha256:
        problems.append(f"{m.tflite_file} does not match the sha256 in the manifest: retrain or re-finalize")
    interp = tflm.interpreter(model, m.arena_bytes)
    golden = zoo.golden(name)
    outputs = np.stack([tflm.invoke(interp, x) for x in golden.inputs])
    mismatches = int(np.sum(np.any((outputs != golden.outputs).reshape(len(golden), -1), axis=1)))
    if mismatches:
        problems.append(f"{mismatches}/{len(golden)} golden vectors differ from TFLM's outputs")
    if (used := tflm.arena_used_bytes(interp)) != m.arena_used_bytes:
        problems.append(f"arena use is {used} bytes, manifest says {m.arena_used_bytes}")
    ev = zoo.eval_set(name)
    int8_score = score(
        m.metric.name, m.output, np.stack([tflm.invoke(interp, m.input.quantize(x)) for x in ev.x]), ev.y
    )
    if not m.metric.passes(int8_score):
        problems.append(f"int8 {m.metric.name} {int8_score:.4f} misses the floor {m.metric.threshold}")
    return Verification(name, tuple(problems), int8_score)
