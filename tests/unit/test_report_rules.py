"""hil.report: baselines' gating rules, target comparison and calibration, on metrics written by hand.

The end-to-end tests (tests/e2e/test_report.py) use real twin runs; these cover what the twin
cannot produce: emulated instruction counts, firmware rebuilds, outputs that differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from minimal_metrics import minimal_metrics

from hil.errors import ConfigError
from hil.models import ModelZoo
from hil.report import baseline, compare
from hil.report.html import render
from hil.report.runs import Run, model_views


def _metrics(
    target: str,
    *,
    build_id: str = "b1",
    sha: str = "s1",
    instructions: float | None = None,
    latency_us: float = 100.0,
    clock_hz: int = 64_000_000,
    outputs: list[list[int]] | None = None,
    score: float = 0.95,
    complete: bool = True,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "inferences": 3,
        "latency_us": {"count": 3, "median": latency_us, "p95": latency_us, "max": latency_us},
        "latencies_us": [latency_us] * 3,
        "arena_used_bytes": 1000,
        "golden": {"vectors": 2, "mismatched": 0, "max_abs_diff": 0, "tolerance": 0,
                   "outputs": outputs or [[1, 2], [3, 4]]},
        "evaluation": {"metric": "accuracy", "score": score, "floor": 0.9, "samples": 100},
    }  # fmt: skip
    if instructions is not None:
        record["emulated_cost"] = {"count": 3, "instructions_median": instructions, "virtual_us_median": 1.0}
    device = {"clock_hz": clock_hz, "build_id": build_id, "models": {"m": {"sha256": sha}}}
    return minimal_metrics(target, {"m": record}, device, complete=complete)


def _run(tmp_path: Path, name: str, metrics: dict[str, Any]) -> Run:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return Run(folder, metrics)


def _verdict(tmp_path: Path, old: dict[str, Any], new: dict[str, Any], **limits: float) -> baseline.Verdict:
    db = tmp_path / "b.sqlite"
    baseline.save(db, _run(tmp_path, "old", old), "base", tmp_path)
    return baseline.compare(db, _run(tmp_path, "new", new), "base", baseline.Thresholds(**limits), given=limits)


def _instructions(verdict: baseline.Verdict) -> baseline.Delta:
    return next(d for d in verdict.deltas if d.metric == "instructions")


def test_emulated_instructions_gate_exactly_while_firmware_and_model_are_unchanged(tmp_path: Path) -> None:
    verdict = _verdict(tmp_path, _metrics("renode:x", instructions=50_000), _metrics("renode:x", instructions=50_001))
    assert _instructions(verdict).verdict == "REGRESSION"
    assert _instructions(verdict).limit.startswith("exact")
    assert verdict.exit_code == 1


def test_emulated_instructions_gate_on_a_threshold_after_a_rebuild(tmp_path: Path) -> None:
    new = _metrics("renode:x", build_id="b2", instructions=50_300)  # +0.6 %: inside the default 1 %
    verdict = _verdict(tmp_path, _metrics("renode:x", instructions=50_000), new)
    assert _instructions(verdict).verdict == "ok"
    assert "firmware build b1 -> b2" in _instructions(verdict).note
    assert verdict.exit_code == 0


def test_accuracy_drop_beyond_the_points_threshold_is_a_regression(tmp_path: Path) -> None:
    verdict = _verdict(tmp_path, _metrics("t", score=0.95), _metrics("t", score=0.94), score_points=0.5)
    assert next(d for d in verdict.deltas if d.metric == "accuracy").verdict == "REGRESSION"


def test_a_model_missing_from_the_run_is_missing_data_not_a_pass(tmp_path: Path) -> None:
    new = _metrics("t")
    new["tests"][0]["models"] = {"other": new["tests"][0]["models"]["m"]}
    verdict = _verdict(tmp_path, _metrics("t"), new)
    assert any("t m latency_p50_us: in baseline" in line for line in verdict.missing)
    assert verdict.exit_code == 2


def test_an_incomplete_run_is_neither_saved_nor_gated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="incomplete run"):
        baseline.save(tmp_path / "b.sqlite", _run(tmp_path, "r", _metrics("t", complete=False)), None, tmp_path)


def test_manifest_budget_thresholds_apply_unless_given_on_the_command_line(tmp_path: Path) -> None:
    zoo = ModelZoo(Path(__file__).resolve().parents[2] / "models")
    manifest = json.loads((zoo.root / "sine" / "manifest.json").read_text())
    manifest["budgets"]["reference"]["latency_regression_pct"] = 30.0
    models = tmp_path / "models"
    (models / "sine").mkdir(parents=True)
    for item in (zoo.root / "sine").iterdir():
        if item.is_file():
            (models / "sine" / item.name).write_bytes(item.read_bytes())
    (models / "sine" / "manifest.json").write_text(json.dumps(manifest))
    limits = baseline.Thresholds().for_model(ModelZoo(models), "sine", "reference", given=set())
    assert limits.latency_pct == 30.0
    given = baseline.Thresholds(latency_pct=5.0).for_model(ModelZoo(models), "sine", "reference", {"latency_pct"})
    assert given.latency_pct == 5.0


def test_calibration_is_board_cycles_per_emulated_instruction_and_predicts_later_runs(tmp_path: Path) -> None:
    emulator = _run(tmp_path, "emu", _metrics("renode:x", instructions=40_000, latency_us=500.0))
    board = _run(tmp_path, "board", _metrics("board:x", latency_us=1000.0, clock_hz=64_000_000))
    result = compare.compare_targets(emulator, "renode:x", board, "board:x")
    assert result.basis == "instructions"
    assert result.overall_factor == pytest.approx(64_000 / 40_000)  # 1000 µs at 64 MHz = 64,000 cycles
    assert result.models[0].latency_ratio == pytest.approx(2.0)
    assert result.models[0].bit_exact is True
    path = tmp_path / "calibration.json"
    assert compare.save_calibration(path, result)
    later = _run(tmp_path, "later", _metrics("renode:x", instructions=80_000, latency_us=900.0))
    (prediction,) = compare.predictions(model_views(later), later, compare.read_calibration(path))
    assert prediction.predicted_us == pytest.approx(2000.0)  # twice the instructions: twice the board time
    assert prediction.against == "board:x"


def test_outputs_that_differ_are_flagged_with_their_largest_difference(tmp_path: Path) -> None:
    a = _run(tmp_path, "a", _metrics("a"))
    b = _run(tmp_path, "b", _metrics("b", outputs=[[1, 2], [3, 7]], score=0.90))
    (model,) = compare.compare_targets(a, "a", b, "b").models
    assert model.bit_exact is False
    assert model.max_abs_diff == 3
    assert "1/2 vectors differ" in model.agreement
    assert any("kernel difference" in f for f in model.findings)
    assert any("score differs by -5.00 points" in f for f in model.findings)


def test_report_of_an_incomplete_run_says_so_in_its_banner(tmp_path: Path) -> None:
    page = render([_run(tmp_path, "r", _metrics("t", complete=False))])
    assert "INCOMPLETE RUN" in page
    assert page.count("data:image/png;base64,") >= 2  # latency histogram and memory bars
