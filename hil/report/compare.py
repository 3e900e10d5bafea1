"""Target against target (emulator against board): output agreement, accuracy, events, latency, calibration.

Side A is the one calibrated (an emulator, say) and side B the reference for time (a board). Where A
counts emulated instructions and B measures cycles, the calibration factor is B's cycles per A's
instruction; otherwise B's cycles per A's cycle. Factors are saved per target A in a calibration
file; a later run on A predicts B's latency from it (:func:`predictions`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from hil.errors import ConfigError
from hil.report.runs import ModelView, Run, model_views

CALIBRATION_SCHEMA = "tinyml-hil.calibration/1"
CALIBRATION_ENV = "HIL_CALIBRATION"
SCORE_POINTS_FLAGGED = 0.5  # accuracy points between targets worth a finding
FACTOR_SPREAD_FLAGGED = 0.25  # a model's factor this far from the overall one: a timing-model gap


@dataclass(frozen=True, slots=True)
class ModelComparison:
    model: str
    bit_exact: bool | None  # None: the runs do not say
    agreement: str
    max_abs_diff: int | None
    metric: str | None
    score_a: float | None
    score_b: float | None
    events: str  # per stimulus: matched counts and mean delay delta
    event_delay_delta_s: float | None
    latency_a_us: float | None
    latency_b_us: float | None
    factor: float | None  # B cycles per A instruction (or per A cycle): see Comparison.basis
    findings: tuple[str, ...]

    @property
    def score_delta_points(self) -> float | None:
        if self.score_a is None or self.score_b is None:
            return None
        return (self.score_b - self.score_a) * 100

    @property
    def latency_ratio(self) -> float | None:
        if not self.latency_a_us or self.latency_b_us is None:
            return None
        return self.latency_b_us / self.latency_a_us


@dataclass(frozen=True, slots=True)
class Comparison:
    target_a: str
    target_b: str
    run_a: str
    run_b: str
    basis: str  # "instructions" (A counts emulated instructions) or "cycles"
    clock_hz_b: int | None
    overall_factor: float | None
    models: tuple[ModelComparison, ...]
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]

    @property
    def mismatched(self) -> bool:
        return any(m.findings for m in self.models)


def _cycles(view: ModelView, clock_hz: int | None) -> float | None:
    if view.latency is None or not clock_hz:
        return None
    return view.latency.median_us * clock_hz / 1e6


def _agreement(a: ModelView, b: ModelView) -> tuple[bool | None, int | None, str]:
    ga, gb = a.golden or {}, b.golden or {}
    if "outputs" in ga and "outputs" in gb:
        oa, ob = np.array(ga["outputs"], dtype=np.int64), np.array(gb["outputs"], dtype=np.int64)
        if oa.shape != ob.shape:
            return False, None, f"different golden runs ({oa.shape[0]} vs {ob.shape[0]} vectors)"
        diff = np.abs(oa - ob).reshape(len(oa), -1).max(axis=1) if oa.size else np.zeros(0, dtype=np.int64)
        worst = int(diff.max(initial=0))
        if worst == 0:
            return True, 0, f"bit-exact on {len(oa)} golden vectors"
        return False, worst, f"{int((diff > 0).sum())}/{len(oa)} vectors differ, max abs diff {worst} steps"
    if ga and gb:
        exact = all(g.get("mismatched") == 0 and g.get("max_abs_diff") == 0 for g in (ga, gb))
        if exact:
            return True, 0, "bit-exact (both match golden.npz exactly)"
        return None, None, f"vs golden.npz: A max diff {ga.get('max_abs_diff')}, B max diff {gb.get('max_abs_diff')}"
    return None, None, "no golden vectors run on both sides"


def _events(a: ModelView, b: ModelView) -> tuple[str, float | None, bool]:
    """Per stimulus and source: matched events on each side and the mean delay delta (B - A)."""
    runs_b = {(e.stimulus, e.source): e for e in b.events}
    parts, deltas, agree = [], [], True
    for ea in a.events:
        eb = runs_b.get((ea.stimulus, ea.source))
        if eb is None:
            continue
        ma, mb = ea.record.get("matched", 0), eb.record.get("matched", 0)
        agree &= (
            ea.ok == eb.ok and ma == mb and len(ea.record.get("unexpected", [])) == len(eb.record.get("unexpected", []))
        )
        text = (
            f"{ea.stimulus} ({ea.source}): {ma}/{ea.record.get('expected', 0)} vs {mb}/{eb.record.get('expected', 0)}"
        )
        if ea.mean_delay_s is not None and eb.mean_delay_s is not None:
            deltas.append(eb.mean_delay_s - ea.mean_delay_s)
            text += f", delay {deltas[-1] * 1000:+.0f} ms"
        if text not in parts:
            parts.append(text)
    return "; ".join(parts), (float(np.mean(deltas)) if deltas else None), agree


def _findings(
    a: ModelView, b: ModelView, bit_exact: bool | None, score_delta: float | None, events_agree: bool
) -> list[str]:
    found = []
    if a.sha256 and b.sha256 and a.sha256 != b.sha256:
        found.append("the targets serve different .tflite files (sha256 differs): not the same model")
    if bit_exact is False:
        found.append("outputs differ on the golden vectors: a kernel difference (e.g. CMSIS-NN vs reference) "
                     "or a firmware bug; compare each side with golden.npz")  # fmt: skip
    if score_delta is not None and abs(score_delta) > SCORE_POINTS_FLAGGED:
        why = "outputs agree, so the evaluation inputs differed" if bit_exact else "follows from the output difference"
        found.append(f"score differs by {score_delta:+.2f} points ({why})")
    if not events_agree:
        why = ("outputs agree, so likely an emulator-model gap: sensor sampling, timer or UART timing"
               if bit_exact else "likely a firmware bug or the output difference above")  # fmt: skip
        found.append(f"streaming events differ ({why})")
    return found


def compare_targets(run_a: Run, target_a: str, run_b: Run, target_b: str) -> Comparison:
    """Model by model, what ``target_a`` in ``run_a`` and ``target_b`` in ``run_b`` measured."""
    for run, target in ((run_a, target_a), (run_b, target_b)):
        if target not in run.targets:
            raise ConfigError(f"{run.path}: no results for target {target!r} (it has {', '.join(run.targets)})")
    views_a = {v.model: v for v in model_views(run_a) if v.target == target_a}
    views_b = {v.model: v for v in model_views(run_b) if v.target == target_b}
    clock_a, clock_b = run_a.device(target_a).get("clock_hz"), run_b.device(target_b).get("clock_hz")
    common = sorted(set(views_a) & set(views_b))
    counts_instructions = any((views_a[m].emulated_cost or {}).get("instructions_median") for m in common)
    basis = "instructions" if counts_instructions else "cycles"
    models, units_a, cycles_b = [], 0.0, 0.0
    for name in common:
        a, b = views_a[name], views_b[name]
        bit_exact, worst, agreement = _agreement(a, b)
        events, delay_delta, events_agree = _events(a, b)
        score_a = a.evaluation.get("score") if a.evaluation else None
        score_b = b.evaluation.get("score") if b.evaluation else None
        delta = (score_b - score_a) * 100 if score_a is not None and score_b is not None else None
        unit_a = (a.emulated_cost or {}).get("instructions_median") if basis == "instructions" else _cycles(a, clock_a)
        cyc_b = _cycles(b, clock_b)
        factor = cyc_b / unit_a if unit_a and cyc_b is not None else None
        if factor is not None:
            units_a, cycles_b = units_a + unit_a, cycles_b + (cyc_b or 0.0)
        models.append(
            ModelComparison(
                name, bit_exact, agreement, worst, (a.evaluation or b.evaluation or {}).get("metric"), score_a,
                score_b, events, delay_delta, a.latency.median_us if a.latency else None,
                b.latency.median_us if b.latency else None, factor,
                tuple(_findings(a, b, bit_exact, delta, events_agree)),
            )
        )  # fmt: skip
    overall = cycles_b / units_a if units_a else None
    models = [_spread(m, overall) for m in models]
    return Comparison(
        target_a, target_b, run_a.run_id, run_b.run_id, basis, int(clock_b) if clock_b else None, overall,
        tuple(models), tuple(sorted(set(views_a) - set(views_b))), tuple(sorted(set(views_b) - set(views_a))),
    )  # fmt: skip


def _spread(model: ModelComparison, overall: float | None) -> ModelComparison:
    """Flag a model whose factor strays from the overall one: the emulator times it differently."""
    if model.factor is None or not overall or abs(model.factor / overall - 1) <= FACTOR_SPREAD_FLAGGED:
        return model
    finding = (f"calibration factor {model.factor:.3g} is {model.factor / overall:.2f}x the overall {overall:.3g}: "
               "a timing-model gap (memory wait states, caches, or kernels timed differently)")  # fmt: skip
    return ModelComparison(**{**asdict(model), "findings": (*model.findings, finding)})


def comparisons_within(run: Run) -> list[Comparison]:
    """A run over several targets: its first target against each of the others."""
    first, *others = run.targets
    return [compare_targets(run, first, run, other) for other in others] if others else []


# --- the calibration file ----------------------------------------------------------------------------


def default_calibration_path(root: Path) -> Path:
    """``$HIL_CALIBRATION``, else ``.hil/calibration.json`` in the project."""
    return Path(os.environ.get(CALIBRATION_ENV) or root / ".hil" / "calibration.json")


def read_calibration(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not a calibration file ({err}): delete it or run `hil compare` again") from err
    if not isinstance(data, dict) or data.get("schema") != CALIBRATION_SCHEMA:
        raise ConfigError(f"{path}: not a calibration file (schema is not {CALIBRATION_SCHEMA})")
    return dict(data.get("targets") or {})


def save_calibration(path: Path, comparison: Comparison) -> bool:
    """Keep the factors of ``comparison`` for its target A (replacing older ones); False when there are none."""
    if comparison.overall_factor is None or not comparison.clock_hz_b:
        return False
    targets = read_calibration(path)
    targets[comparison.target_a] = {
        "against": comparison.target_b,
        "basis": comparison.basis,
        "overall": comparison.overall_factor,
        "models": {m.model: m.factor for m in comparison.models if m.factor is not None},
        "clock_hz": comparison.clock_hz_b,
        "runs": [comparison.run_a, comparison.run_b],
        "saved": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"schema": CALIBRATION_SCHEMA, "targets": targets}, indent=2) + "\n")
    partial.replace(path)
    return True


@dataclass(frozen=True, slots=True)
class Prediction:
    target: str
    model: str
    own_us: float
    predicted_us: float
    against: str
    factor: float
    basis: str


def predictions(views: Iterable[ModelView], run: Run, calibration: dict[str, Any]) -> list[Prediction]:
    """Latency on the calibrated reference (a board) predicted for each model of a run on a calibrated target."""
    found = []
    for view in views:
        entry = calibration.get(view.target)
        if not entry or view.latency is None:
            continue
        factor = float((entry.get("models") or {}).get(view.model) or entry["overall"])
        if entry.get("basis") == "instructions":
            units = (view.emulated_cost or {}).get("instructions_median")
        else:
            units = _cycles(view, run.device(view.target).get("clock_hz"))
        if not units:
            continue
        predicted = units * factor / float(entry["clock_hz"]) * 1e6
        found.append(
            Prediction(view.target, view.model, view.latency.median_us, predicted, str(entry["against"]), factor,
                       str(entry.get("basis", "cycles")))
        )  # fmt: skip
    return found
