"""Target catalog and user configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.config import load_config
from hil.errors import ConfigError

ARCHITECTURE_TARGETS = {
    "reference",
    "renode:nrf52840dk",
    "renode:arduino_nano_33_ble",
    "renode:stm32f4_disco",
    "renode:nucleo_f411re",
    "qemu:mps2_an385",
    "native_sim",
    "board:nucleo_f411re",
    "board:nrf52840dk",
}


def test_builtin_catalog_lists_every_architecture_target(tmp_path: Path) -> None:
    assert set(load_config(root=tmp_path).targets) >= ARCHITECTURE_TARGETS


def test_user_config_adds_a_target_without_code(tmp_path: Path) -> None:
    (tmp_path / "hil.toml").write_text(
        'models_dir = "zoo"\n[targets."renode:mine"]\nbackend = "renode"\nplatform = "my.repl"\ntimeout_s = 5\n'
    )
    config = load_config(root=tmp_path)
    target = config.target("renode:mine")
    assert (target.backend, target.option("platform"), target.timeout_s) == ("renode", "my.repl", 5.0)
    assert config.models_dir == tmp_path / "zoo"


def test_unknown_target_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown target 'nope': known targets are reference"):
        load_config(root=tmp_path).target("nope")


def test_unknown_backend_is_rejected_with_choices(tmp_path: Path) -> None:
    (tmp_path / "hil.toml").write_text('[targets.x]\nbackend = "jtag"\n')
    with pytest.raises(ConfigError, match="unknown backend 'jtag'"):
        load_config(root=tmp_path)


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "hil.toml").write_text("[targets\n")
    with pytest.raises(ConfigError, match=r"hil\.toml"):
        load_config(root=tmp_path)
