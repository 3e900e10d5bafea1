"""The files of one model folder, read and checked before any device starts.

``manifest.json`` against its schema (:class:`ManifestFile`), the ``.tflite`` itself (a flatbuffer
with TFLite's identifier; its input and output tensors, quantization and operators must be what
the manifest says), and the golden and evaluation ``.npz`` files (arrays, shapes and types that fit
the model). Every error names the file, and the field or array, and says what to do; file names in
a manifest cannot leave the model's folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from numpy.lib import format as npy_format
from pydantic import Field, ValidationError, model_validator

from hil.errors import ConfigError
from hil.inputs import InputError, Problem, json_line_of, model_keys, problems_from
from hil.options import Strict, Text
from hil.results import TFLITE_TYPES, TensorSpec

MetricName = Literal["accuracy", "threshold_accuracy", "mae"]
DType = Literal[tuple(TFLITE_TYPES.values())]  # type: ignore[valid-type]  # the dtypes the protocol carries
Count = Annotated[int, Field(ge=1)]
SCALE_RELATIVE_TOLERANCE = 1e-6


class TensorFile(Strict):
    dtype: DType
    shape: Annotated[tuple[Count, ...], Field(min_length=1)]
    scale: Annotated[float, Field(ge=0)] = 0.0
    zero_point: int = 0

    def spec(self) -> TensorSpec:
        return TensorSpec(self.dtype, tuple(self.shape), self.scale, self.zero_point)


class GoldenFile(Strict):
    file: Text = "golden.npz"
    count: Count
    tolerance: Annotated[int, Field(ge=0)] = 0


class MetricFile(Strict):
    name: MetricName
    threshold: float
    float_score: float | None = None
    int8_score: float | None = None
    decision_threshold: float | None = None

    @model_validator(mode="after")
    def _needs_decision_threshold(self) -> MetricFile:
        if self.name == "threshold_accuracy" and self.decision_threshold is None:
            raise ValueError("metric threshold_accuracy needs a decision_threshold")
        return self


class BudgetFile(Strict):
    latency_us: Annotated[float, Field(gt=0)] | None = None
    arena_bytes: Count | None = None
    # how much worse than a saved baseline is a regression (hil baseline compare; docs/reports.md)
    latency_regression_pct: Annotated[float, Field(ge=0)] | None = None
    arena_regression_bytes: Count | None = None
    score_regression_points: Annotated[float, Field(ge=0)] | None = None


class StreamingFile(Strict):
    sample_rate_hz: Annotated[float, Field(gt=0)]
    channels: Annotated[tuple[Text, ...], Field(min_length=1)]
    unit: Text
    window: Count
    hop: Count
    idle_class: Annotated[int, Field(ge=0)] | None = None
    threshold: Annotated[float, Field(ge=0, le=1)]
    refractory_samples: Annotated[int, Field(ge=0)]


class ManifestFile(Strict):
    """``manifest.json`` as ``hil.models.finalize_model`` writes it."""

    name: Text
    description: str = ""
    task: Text
    tflite: Text
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    flash_bytes: Count
    input: TensorFile
    output: TensorFile
    labels: tuple[str, ...] = ()
    ops: tuple[Text, ...]
    arena_bytes: Count
    arena_used_bytes: Annotated[int, Field(ge=0)]
    golden: GoldenFile
    metric: MetricFile
    budgets: dict[Text, BudgetFile] = Field(default_factory=dict)
    streaming: StreamingFile | None = None
    training: dict[str, Any] = Field(default_factory=dict)


def _tuples(value: Any) -> Any:
    """JSON has lists where the schema has tuples."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: v if k == "training" else _tuples(v) for k, v in value.items()}
    return value


def read_manifest(path: Path) -> ManifestFile:
    """``path`` checked against :class:`ManifestFile`; an :class:`InputError` names file, line and field."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read model manifest {path}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte offset {err.start}): save it as UTF-8") from err
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}:{err.lineno}: not valid JSON: {err.msg} (column {err.colno})") from err
    except ValueError as err:  # NaN, Infinity: Python's json reads them, JSON has no such numbers
        constant = re.search(r"[:\[,]\s*(-?NaN|-?Infinity)\b", text)
        line = f":{text.count(chr(10), 0, constant.start()) + 1}" if constant else ""
        raise ConfigError(f"{path}{line}: not valid JSON: {err}") from err
    if not isinstance(raw, dict):
        raise InputError([Problem(path, 1, (), "a manifest is a JSON object of fields (name, tflite, input, ...)")])
    try:
        return ManifestFile.model_validate(_tuples(raw))
    except ValidationError as err:
        raise InputError(
            problems_from(
                err,
                path,
                line_of=lambda loc: json_line_of(text, loc),
                candidates=lambda loc: model_keys(ManifestFile, loc),
            )
        ) from err


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows: write a finite number")


def inside(directory: Path, name: str, manifest: Path, field: str) -> Path:
    """``directory/name``, refused if it leaves ``directory`` (``../``, an absolute path, a symlink out)."""
    folder = directory.resolve()
    path = (folder / name).resolve()
    if not path.is_relative_to(folder) or path == folder:
        raise ConfigError(
            f"{manifest}: {field}: {name!r} is outside the model folder {folder}: name a file in that folder"
        )
    return path


# --- the .tflite --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TfliteFacts:
    """What a ``.tflite`` says about itself: first input and output tensors and the operators it uses."""

    input: TensorSpec
    output: TensorSpec
    ops: tuple[str, ...]


def read_tflite(path: Path, data: bytes) -> TfliteFacts:
    """Parse ``data`` (the bytes of ``path``) as a TFLite flatbuffer; a :class:`ConfigError` if it is not one."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ConfigError(
            f"{path}: not a TFLite model (no TFL3 identifier at byte 4): the file is corrupt or truncated"
        )
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    try:
        return _facts(schema, data)
    except struct.error as err:
        raise ConfigError(
            f"{path}: corrupt or truncated TFLite model (an offset points past its {len(data)} bytes): re-export it"
        ) from err
    except (IndexError, ValueError, TypeError, AttributeError, KeyError) as err:
        # flatbuffers reads offsets from the file as they are: a corrupt one fails in any of these ways
        raise ConfigError(f"{path}: corrupt TFLite model ({err or type(err).__name__}): re-export it") from err


def _facts(schema: Any, data: bytes) -> TfliteFacts:
    model = schema.Model.GetRootAs(data, 0)
    if not 1 <= model.SubgraphsLength() <= len(data) or model.OperatorCodesLength() > len(data):
        raise ValueError("no subgraph")
    graph = model.Subgraphs(0)
    if graph.InputsLength() < 1 or graph.OutputsLength() < 1 or graph.OperatorsLength() > len(data):
        raise ValueError("the first subgraph has no input or output tensor")
    types = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

    def spec(index: int) -> TensorSpec:
        tensor = graph.Tensors(index)
        q = tensor.Quantization()
        scales = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else []
        zeros = q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength() else []
        shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        dtype = types[tensor.Type()]
        return TensorSpec(dtype, shape, float(scales[0]) if len(scales) else 0.0, int(zeros[0]) if len(zeros) else 0)

    ops: list[str] = []
    for i in range(graph.OperatorsLength()):
        code = model.OperatorCodes(graph.Operators(i).OpcodeIndex())
        name = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        if name not in ops:
            ops.append(name)
    return TfliteFacts(spec(graph.Inputs(0)), spec(graph.Outputs(0)), tuple(ops))


def tensor_mismatch(manifest: TensorSpec, actual: TensorSpec) -> str | None:
    """How the manifest's tensor differs from the model's, or None."""
    if manifest.dtype != actual.dtype or manifest.shape != actual.shape:
        return f"{manifest.describe()} but the model's is {actual.describe()}"
    if manifest.zero_point != actual.zero_point or not math.isclose(
        manifest.scale, actual.scale, rel_tol=SCALE_RELATIVE_TOLERANCE
    ):
        return (
            f"quantization scale {manifest.scale:g}, zero point {manifest.zero_point} but the model's is "
            f"scale {actual.scale:g}, zero point {actual.zero_point}"
        )
    return None


def check_against_tflite(manifest: ManifestFile, path: Path, tflite: Path) -> None:
    """The manifest's hash, size, tensors and operators are those of ``tflite``, else a ConfigError naming both."""
    try:
        data = tflite.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: tflite: cannot read {tflite}: {err.strerror or err}") from err
    facts = read_tflite(tflite, data)
    redo = f"re-run the model's train.py (hil.models.finalize_model) to rewrite {path.name}"
    text = path.read_text(encoding="utf-8")

    def wrong(field: str, problem: str) -> ConfigError:
        line = json_line_of(text, (field,))
        return ConfigError(f"{path}{f':{line}' if line else ''}: {field}: {problem}: {redo}")

    for field, spec, actual in (("input", manifest.input, facts.input), ("output", manifest.output, facts.output)):
        if problem := tensor_mismatch(spec.spec(), actual):
            raise wrong(field, f"the manifest says {problem} ({tflite.name})")
    if set(manifest.ops) != set(facts.ops):
        raise wrong("ops", f"{list(manifest.ops)} but {tflite.name} uses {list(facts.ops)}")
    if len(data) != manifest.flash_bytes:
        raise wrong("flash_bytes", f"{manifest.flash_bytes} but {tflite.name} has {len(data)} bytes")
    if (digest := hashlib.sha256(data).hexdigest()) != manifest.sha256:
        raise wrong("sha256", f"{tflite.name} hashes to {digest[:12]}…, not {manifest.sha256[:12]}…")


# --- .npz files ----------------------------------------------------------------------------------

_NPY_HEADER = re.compile(r"^[\w.]+\.npy$")
_HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of each array in an ``.npz``, read from the array headers only."""
    found: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not _NPY_HEADER.match(member):
                    continue
                with archive.open(member) as f:
                    version = npy_format.read_magic(f)
                    if version not in _HEADER_READERS:
                        raise ValueError(f"{member}: .npy format {version} is not supported")
                    shape, _fortran, dtype = _HEADER_READERS[version](f)
                found[member.removesuffix(".npy")] = (tuple(shape), dtype)
    except FileNotFoundError as err:
        raise ConfigError(f"{path} is missing: re-run the model's train.py to write it") from err
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, KeyError) as err:
        raise ConfigError(
            f"{path}: not a readable .npz ({err}): the file is corrupt; re-run the model's train.py"
        ) from err
    return found


def load_npz(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``names`` of an ``.npz`` (no pickles); a ConfigError names the file and the array."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [n for n in names if n not in data.files]
            if missing:
                raise ConfigError(f"{path}: no array {missing[0]!r} (it has {', '.join(data.files) or 'none'})")
            return {name: data[name] for name in names}
    except FileNotFoundError as err:
        raise ConfigError(f"{path} is missing: re-run the model's train.py to write it") from err
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, KeyError, zipfile.LargeZipFile) as err:
        raise ConfigError(
            f"{path}: not a readable .npz ({err}): the file is corrupt; re-run the model's train.py"
        ) from err


def _check(path: Path, array: str, got: tuple[tuple[int, ...], np.dtype], shape: tuple[int, ...], dtype: str | None,
           what: str) -> None:  # fmt: skip
    """``array`` of ``path`` has ``shape`` (-1: any length) and ``dtype``, or a ConfigError naming the array."""
    actual, actual_dtype = got
    if len(actual) != len(shape) or any(w not in (-1, a) for a, w in zip(actual, shape, strict=False)):
        wanted = "(" + ", ".join("N" if w == -1 else str(w) for w in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ConfigError(f"{path}: {array}: shape {actual} does not fit {what}: expected {wanted}")
    if dtype is not None and actual_dtype != np.dtype(dtype):
        raise ConfigError(f"{path}: {array}: {actual_dtype} values, but {what} is {dtype}")


def check_golden(path: Path, manifest: ManifestFile) -> None:
    """Golden inputs and outputs: ``golden.count`` of them, each the shape and type of the model's tensors."""
    arrays = load_npz(path, ("inputs", "outputs"))
    count = manifest.golden.count
    for name, tensor in (("inputs", manifest.input), ("outputs", manifest.output)):
        array = arrays[name]
        what = f"{manifest.golden.count} of the model's {name[:-1]} {tensor.spec().describe()}"
        _check(path, name, (array.shape, array.dtype), (count, *tensor.shape), tensor.dtype, what)


def check_eval(path: Path, manifest: ManifestFile) -> None:
    """The evaluation set: ``x`` rows of the input's size, as many ``y`` labels or targets."""
    headers = npz_headers(path)
    for name in ("x", "y"):
        if name not in headers:
            raise ConfigError(f"{path}: no array {name!r} (it has {', '.join(headers) or 'none'})")
    x_shape, x_dtype = headers["x"]
    size = math.prod(manifest.input.shape)
    if len(x_shape) < 2 or x_shape[0] < 1 or math.prod(x_shape[1:]) != size:
        what = f"rows of the input's {size} value(s) ({manifest.input.spec().describe()})"
        raise ConfigError(f"{path}: x: shape {x_shape} does not fit {what}")
    if x_dtype.kind != "f":
        raise ConfigError(f"{path}: x: {x_dtype} values, but the evaluation set holds real values (float)")
    _check(path, "y", headers["y"], (x_shape[0],), None, f"one label or target per row of x ({x_shape[0]})")


MANIFEST = "manifest.json"
EVAL = "eval.npz"


@dataclass(frozen=True, slots=True)
class ModelFolder:
    """A model folder whose files were all checked: where each one is."""

    manifest: ManifestFile
    manifest_path: Path
    tflite: Path
    golden: Path
    eval: Path


def check_model_folder(directory: Path) -> ModelFolder:
    """Check every file of a model folder against the manifest and the ``.tflite``; the first problem raises."""
    path = directory / MANIFEST
    manifest = read_manifest(path)
    if manifest.name != directory.name:
        line = json_line_of(path.read_text(), ("name",))
        message = f"{manifest.name!r}, but the folder is {directory.name!r}: they must agree"
        raise InputError([Problem(path, line, ("name",), message)])
    tflite = inside(directory, manifest.tflite, path, "tflite")
    check_against_tflite(manifest, path, tflite)
    golden = inside(directory, manifest.golden.file, path, "golden.file")
    check_golden(golden, manifest)
    check_eval(directory / EVAL, manifest)
    return ModelFolder(manifest, path, tflite, golden, directory / EVAL)
