"""Shared fixtures for the harness's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.models import ModelZoo
from hil.twin import TwinFirmware

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def zoo() -> ModelZoo:
    return ModelZoo(ROOT / "models")


@pytest.fixture(scope="session")
def twin_firmware(zoo: ModelZoo) -> TwinFirmware:
    return TwinFirmware(zoo, ["sine"])
