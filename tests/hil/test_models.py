"""Every model in the zoo on the device under test: golden vectors, dataset accuracy, budgets.

Parametrized over the zoo, so a new model is tested without new code. A model the device does
not serve (a small board may embed only some) is skipped with the reason.
"""

from __future__ import annotations

import pytest

from hil.config import load_config
from hil.models import ModelZoo
from hil.session import SOURCES, HilSession, Source

ZOO = ModelZoo(load_config().models_dir)
MODELS = ZOO.names()
STREAMING = [
    (model, path.name)
    for model in MODELS
    if ZOO.manifest(model).streaming
    for path in sorted(ZOO.root.glob(f"{model}/stimuli/*.csv"))
    if not path.name.endswith(".expected.csv")
]


@pytest.fixture
def served(hil: HilSession, request: pytest.FixtureRequest) -> str:
    model = request.param
    if model not in hil.device().models:
        pytest.skip(f"{hil.target.name} does not serve {model}")
    return model


@pytest.mark.parametrize("served", MODELS, indirect=True)
def test_outputs_match_golden_vectors(hil: HilSession, served: str) -> None:
    hil.check_golden(served)


@pytest.mark.parametrize("served", MODELS, indirect=True)
def test_dataset_score_meets_floor_or_ceiling(hil: HilSession, served: str) -> None:
    hil.check_evaluation(served)  # an accuracy's floor, an error's ceiling (the manifest's metric)


@pytest.mark.parametrize("served", MODELS, indirect=True)
def test_latency_within_budget(hil: HilSession, served: str) -> None:
    hil.check_latency(served)


@pytest.mark.parametrize("served", MODELS, indirect=True)
def test_arena_within_budget(hil: HilSession, served: str) -> None:
    hil.check_arena(served)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("served", "stimulus"), STREAMING, indirect=["served"])
def test_stimulus_raises_expected_events(hil: HilSession, served: str, stimulus: str, source: Source) -> None:
    """Over the wire on every target; through the accelerometer where it can be fed (else skipped)."""
    hil.check_stream(served, ZOO.root / served / "stimuli" / stimulus, source)
