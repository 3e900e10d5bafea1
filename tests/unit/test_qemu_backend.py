"""The QEMU backend without QEMU: what it counts per inference, and how it starts QEMU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hil.backends.qemu import QemuBackend
from hil.config import load_config
from hil.results import InferenceResult

ROOT = Path(__file__).resolve().parents[2]


def _backend(tmp_path: Path) -> QemuBackend:
    config = load_config(root=ROOT)
    return QemuBackend(config.target("qemu:mps2_an385"), config, tmp_path)


def test_an_inference_costs_its_ticks_in_instructions(tmp_path: Path) -> None:
    # mps2/an385: SysTick at 25 MHz (40 ns a tick); -icount shift=3: 8 ns an instruction.
    result = InferenceResult("sine", np.zeros((1, 1), dtype=np.int8), 1234, 25_000_000, 512, b"")
    same, cost = _backend(tmp_path).cost_of(lambda: result)
    assert same is result
    assert cost is not None
    assert cost.instructions == 1234 * 5
    assert cost.virtual_time_s == pytest.approx(1234 / 25e6)
    assert cost.host_time_s >= 0


def test_what_is_not_an_inference_has_no_cost(tmp_path: Path) -> None:
    assert _backend(tmp_path).cost_of(lambda: "memory report") == ("memory report", None)
