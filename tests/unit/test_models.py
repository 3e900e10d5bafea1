"""The model zoo on the TFLM runtime: manifests, budgets, verification."""

from __future__ import annotations

import numpy as np
import pytest

from hil import tflm
from hil.errors import ConfigError
from hil.models import ModelZoo, verify_model


def test_every_model_verifies_with_tflm(zoo: ModelZoo) -> None:
    for name in zoo.names():
        result = verify_model(zoo, name)
        assert result.ok, result.problems


def test_unknown_model_lists_known_models(zoo: ModelZoo) -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'nope': known models are .*sine"):
        zoo.manifest("nope")


def test_budget_falls_back_from_target_to_backend_to_default(zoo: ModelZoo) -> None:
    sine = zoo.manifest("sine")
    assert sine.budget("reference").latency_us == sine.budgets["reference"].latency_us
    assert sine.budget("renode:nrf52840dk") == sine.budgets["default"]


def test_manifest_ops_match_the_tflite_file(zoo: ModelZoo) -> None:
    for name in zoo.names():
        m = zoo.manifest(name)
        assert list(m.ops) == tflm.op_names(m.tflite_path.read_bytes())


def test_minimal_arena_is_the_smallest_that_allocates(zoo: ModelZoo) -> None:
    sine = zoo.manifest("sine")
    model = sine.tflite_path.read_bytes()
    assert tflm.minimal_arena_bytes(model) == sine.arena_bytes
    tflm.interpreter(model, sine.arena_bytes)


def test_quantize_saturates_and_rounds(zoo: ModelZoo) -> None:
    spec = zoo.manifest("sine").input
    q = spec.quantize(np.array([[-1e9]]))
    assert q.dtype == np.int8
    assert q.item() == -128
