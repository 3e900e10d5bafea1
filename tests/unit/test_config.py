"""Target catalog and user configuration."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from hil.backends import Backend, backend_class
from hil.backends.renode import SENSOR_MODELS
from hil.config import load_config
from hil.errors import ConfigError
from hil.lab import inventory
from hil.options import (
    BACKENDS,
    BoardOptions,
    FirmwareOptions,
    QemuOptions,
    ReferenceOptions,
    RenodeOptions,
    ResetMethod,
    Runner,
    SensorModelName,
)

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
        'models_dir = "zoo"\n[targets."renode:mine"]\nbackend = "renode"\nplatform = "my.repl"\n'
        'console = "sysbus.uart0"\ntimeout_s = 5\n'
    )
    config = load_config(root=tmp_path)
    target = config.target("renode:mine")
    assert (target.backend, target.options_as(RenodeOptions).platform, target.timeout_s) == ("renode", "my.repl", 5.0)
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


def test_misspelt_key_names_file_line_and_the_key_it_should_be(tmp_path: Path) -> None:
    (tmp_path / "hil.toml").write_text(
        '[targets."qemu:mine"]\nbackend = "qemu"\nmachine = "mps2-an385"\ntimout_s = 5\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(root=tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'hil.toml'}:4: targets.\"qemu:mine\".timout_s: unknown key 'timout_s' (did you mean timeout_s?)"
    )


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("targets = 5\n", 1, "targets: expected a table, got 5"),
        ("models_dir = 5\n", 1, "models_dir: expected a string, got 5"),
        ('[targets.reference]\nbackend = "reference"\ntimeout_s = "20"\n', 3, 'expected a number, got "20"'),
        ("[targets.reference]\nbackend = 'reference'\ntimeout_s = nan\n", 3, "expected a finite number"),
        ("[targets.reference]\nbackend = 'reference'\nboot_timeout_s = inf\n", 3, "got inf"),
        ("[targets.reference]\nbackend = 'reference'\ntimeout_s = true\n", 3, "expected a number, got true"),
        ("[targets.reference]\nbackend = 'reference'\ntimeout_s = -1\n", 3, "must be > 0, got -1"),
        ('[targets.reference]\nbackend = "reference"\nmodels = "sine"\n', 3, 'models: expected a list, got "sine"'),
        ('default_target = "renode:nrf52840"\n', 1, "did you mean renode:nrf52840dk?"),
        ('[targets.x]\nbackend = "renod"\n', 2, "unknown backend 'renod' (did you mean renode?)"),
    ],
)
def test_bad_config_is_refused_with_line_and_key(tmp_path: Path, text: str, line: int, problem: str) -> None:
    (tmp_path / "hil.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(root=tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'hil.toml'}:{line}: ")
    assert problem in message
    assert "\n" not in message


def test_every_problem_of_a_file_is_reported_in_line_order(tmp_path: Path) -> None:
    (tmp_path / "hil.toml").write_text('modelsdir = "m"\n[targets.reference]\nbackend = "reference"\ntimeout_s = "1"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(root=tmp_path)
    lines = str(caught.value).splitlines()
    assert [line.split(": ", 1)[0].rsplit(":", 1)[1] for line in lines] == ["1", "4"]


def test_config_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "hil.toml").write_bytes(b'models_dir = "m"\nbuild_dir = "\xff"\n')
    with pytest.raises(ConfigError, match=r"hil\.toml:2: not UTF-8 text"):
        load_config(root=tmp_path)


def test_config_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    (tmp_path / "hil.toml").write_bytes('\ufeffmodels_dir = "zoo"\n'.encode())
    assert load_config(root=tmp_path).models_dir == tmp_path / "zoo"


def test_each_backend_gets_its_typed_options(tmp_path: Path) -> None:
    (tmp_path / "hil.toml").write_text(
        '[targets."qemu:mine"]\nbackend = "qemu"\nmachine = "mps2-an385"\nicount_shift = 4\n'
        '[targets."reference:few"]\nbackend = "reference"\nmodels = ["sine"]\naccelerometer = false\n'
    )
    config = load_config(root=tmp_path)
    qemu = config.target("qemu:mine").options_as(QemuOptions)
    assert (qemu.machine, qemu.cpu, qemu.icount_shift) == ("mps2-an385", "cortex-m3", 4)
    twin = config.target("reference:few").options_as(ReferenceOptions)
    assert (twin.models, twin.accelerometer) == (("sine",), False)
    with pytest.raises(ConfigError, match="reference:few is a reference target: it has no QemuOptions"):
        config.target("reference:few").options_as(QemuOptions)


def test_one_table_names_every_backend_and_its_driver() -> None:
    assert set(BACKENDS) == {"reference", "renode", "qemu", "native", "board"}
    for name in BACKENDS:
        assert issubclass(backend_class(name), Backend)
    with pytest.raises(ConfigError, match="unknown backend 'qemo' \\(did you mean qemu\\?\\)"):
        backend_class("qemo")


def test_board_options_follow_the_lab_files_keys_and_choices() -> None:
    keys = set(BoardOptions.model_fields) - set(FirmwareOptions.model_fields)
    assert keys == (set(inventory.TWISTER_KEYS) | set(inventory.OUR_KEYS)) - {"id", "platform", "boot_timeout_s"}
    assert get_args(Runner) == inventory.RUNNERS
    assert get_args(ResetMethod) == inventory.RESET_METHODS


def test_renode_sensor_models_are_the_ones_options_accept() -> None:
    assert set(get_args(SensorModelName)) == set(SENSOR_MODELS)
