"""Evaluation sets scored on a seeded subset (target option eval_samples, $HIL_EVAL_SAMPLES): the same
samples every run, and every result, record and message says it was a subset."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from hil import checks
from hil.config import load_config
from hil.errors import CheckFailed, ConfigError
from hil.metrics import MetricsRecorder
from hil.models import Metric, ModelZoo
from hil.report.summary import _evaluation
from hil.session import EVAL_SAMPLES_ENV, HilSession

ROOT = Path(__file__).resolve().parents[2]


class RecordingDevice:
    """Answers every inference with zeros of the model's output shape and keeps the inputs it got."""

    def __init__(self, zoo: ModelZoo, model: str) -> None:
        self.inputs: list[np.ndarray] = []
        self._shape = zoo.manifest(model).output.shape
        self._dtype = zoo.manifest(model).output.numpy_dtype

    def infer_values(self, model: str, values: np.ndarray) -> SimpleNamespace:
        del model
        self.inputs.append(np.asarray(values))
        return SimpleNamespace(output=np.zeros(self._shape, dtype=self._dtype))


def test_a_subset_is_the_same_sorted_samples_every_time() -> None:
    first = checks.eval_subset(1200, 100)
    assert first is not None
    assert len(first) == len(set(first.tolist())) == 100
    assert list(first) == sorted(first)
    assert np.array_equal(first, checks.eval_subset(1200, 100))


@pytest.mark.parametrize("samples", [None, 200, 500])
def test_no_subset_when_none_is_asked_or_it_would_hold_the_whole_set(samples: int | None) -> None:
    assert checks.eval_subset(200, samples) is None


def test_evaluate_scores_the_chosen_samples_and_says_it_was_a_subset(zoo: ModelZoo) -> None:
    device = RecordingDevice(zoo, "anomaly")
    result = checks.evaluate(device, zoo, "anomaly", samples=50)  # type: ignore[arg-type]
    chosen = checks.eval_subset(len(zoo.eval_set("anomaly").y), 50)
    assert chosen is not None
    assert np.array_equal(np.stack(device.inputs), zoo.eval_set("anomaly").x[chosen])
    assert (result.samples, result.set_samples) == (50, 1200)
    assert result.scope == "a seeded subset (50 of the 1200 samples) of the evaluation set"


def test_evaluate_without_a_subset_scores_every_sample(zoo: ModelZoo) -> None:
    device = RecordingDevice(zoo, "sine")
    result = checks.evaluate(device, zoo, "sine")  # type: ignore[arg-type]
    assert (len(device.inputs), result.samples, result.set_samples) == (200, 200, None)
    assert result.scope == "the 200 samples of the evaluation set"


def test_a_failed_subset_score_names_the_subset() -> None:
    result = checks.EvaluationResult("kws", Metric("accuracy", threshold=0.85), 0.5, 60, set_samples=120)
    with pytest.raises(CheckFailed, match=r"seeded subset \(60 of the 120 samples\)"):
        checks.check_evaluation(result)


def test_the_metrics_record_the_subset_and_its_seed(tmp_path: Path) -> None:
    recorder = MetricsRecorder(tmp_path, "pytest", "reference")
    recorder.start_test("suite", "evaluation")
    recorder.evaluation(checks.EvaluationResult("sine", Metric("mae", threshold=0.1), 0.02, 50, set_samples=200))
    recorder.end_test("PASS")
    (record,) = [json.loads(line) for line in (tmp_path / "metrics" / "pytest.jsonl").read_text().splitlines()]
    evaluation = record["models"]["sine"]["evaluation"]
    assert (evaluation["samples"], evaluation["set_samples"], evaluation["subset_seed"]) == (50, 200, 13)


def test_environment_overrides_the_target_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "hil.toml"
    target = '[targets.small]\nbackend = "reference"\neval_samples = 40\n'
    config.write_text(f'models_dir = "{ROOT / "models"}"\n{target}', encoding="utf-8")
    monkeypatch.delenv(EVAL_SAMPLES_ENV, raising=False)
    session = HilSession("pytest", "small", config, tmp_path / "out")
    assert session.eval_samples == 40
    monkeypatch.setenv(EVAL_SAMPLES_ENV, "25")
    assert session.eval_samples == 25
    monkeypatch.setenv(EVAL_SAMPLES_ENV, "many")
    with pytest.raises(ConfigError, match="HIL_EVAL_SAMPLES='many'"):
        _ = session.eval_samples
    assert load_config(config).target("small").options.eval_samples == 40


def test_the_end_of_run_summary_names_a_subset() -> None:
    subset = {"evaluation": {"metric": "accuracy", "score": 0.99, "floor": 0.95, "samples": 100, "set_samples": 500}}
    whole = {"evaluation": {"metric": "accuracy", "score": 0.99, "floor": 0.95, "samples": 500}}
    assert _evaluation([subset], {})[0] == "accuracy 100/500"
    assert _evaluation([whole], {})[0] == "accuracy"


class ScoredDevice(RecordingDevice):
    """Answers anomaly's inputs with the output that marks the first ``wrong`` samples as misjudged."""

    def __init__(self, zoo: ModelZoo, model: str, wrong: set[int]) -> None:
        super().__init__(zoo, model)
        self._ev = zoo.eval_set(model)
        self._index = {np.asarray(x, dtype=np.float64).tobytes(): i for i, x in enumerate(self._ev.x)}
        self._wrong = wrong
        self._spec = zoo.manifest(model).output

    def infer_values(self, model: str, values: np.ndarray) -> SimpleNamespace:
        del model
        self.inputs.append(np.asarray(values))
        index = self._index[np.asarray(values, dtype=np.float64).tobytes()]
        anomalous = bool(self._ev.y[index]) != (index in self._wrong)
        return SimpleNamespace(output=self._spec.quantize(np.full(self._spec.shape, 1.0 if anomalous else 0.0)))


def test_a_subset_that_misses_its_floor_is_rescored_on_the_whole_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zoo: ModelZoo
) -> None:
    chosen = checks.eval_subset(1200, 50)
    assert chosen is not None
    device = ScoredDevice(zoo, "anomaly", wrong=set(chosen[:10].tolist()))  # 10 of the subset's 50 wrong
    monkeypatch.setenv(EVAL_SAMPLES_ENV, "50")
    session = HilSession("pytest", "reference", None, tmp_path)
    monkeypatch.setattr(session, "device", lambda: device)
    result = session.evaluate("anomaly")
    assert (result.samples, result.set_samples) == (1200, None)  # the whole set decided
    assert result.ok  # 10 wrong of 1200
    assert len(device.inputs) == 50 + 1200
