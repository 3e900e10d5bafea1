"""Finding the Zephyr tree without ``$ZEPHYR_BASE``, and checking Zephyr's Python requirements.

Every tree here is a fake one in tmp_path: a Zephyr tree is a folder with ``VERSION`` and
``cmake/``, a west workspace a folder with ``.west/config``.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from pathlib import Path

import pytest

from hil import tools
from hil.build import extra_conf_files, find_workspace, west_argv
from hil.config import load_config
from hil.errors import ConfigError


def fake_zephyr(path: Path) -> Path:
    (path / "cmake").mkdir(parents=True)
    (path / "VERSION").write_text("VERSION_MAJOR = 3\nVERSION_MINOR = 7\nPATCHLEVEL = 1\n")
    return path


def fake_workspace(top: Path, west_config: str = "[manifest]\npath = app\nfile = west.yml\n") -> Path:
    (top / ".west").mkdir(parents=True)
    (top / ".west" / "config").write_text(west_config)
    (top / "app").mkdir()
    return top


def test_the_zephyr_tree_is_found_from_a_folder_inside_the_workspace(tmp_path: Path) -> None:
    top = fake_workspace(tmp_path / "ws", "[manifest]\npath = app\n\n[zephyr]\nbase = zephyr\n")
    fake_zephyr(top / "zephyr")
    found = tools.find_zephyr_base(None, [top / "app" / "firmware"], environ={})
    assert (found.path, found.from_west) == (top / "zephyr", True)
    assert str(top) in found.source


def test_the_zephyr_base_of_west_config_is_relative_to_the_workspace_top(tmp_path: Path) -> None:
    top = fake_workspace(tmp_path / "ws", "[zephyr]\nbase = deps/zephyr\n")
    fake_zephyr(top / "deps" / "zephyr")
    assert tools.find_zephyr_base(None, [top / "app"], environ={}).path == top / "deps" / "zephyr"


def test_a_west_config_without_a_zephyr_section_means_the_zephyr_folder(tmp_path: Path) -> None:
    top = fake_workspace(tmp_path / "ws")
    fake_zephyr(top / "zephyr")
    assert tools.find_zephyr_base(None, [top / "app"], environ={}).path == top / "zephyr"


def test_hil_toml_zephyr_base_wins_over_the_environment_and_the_workspace(tmp_path: Path) -> None:
    top = fake_workspace(tmp_path / "ws")
    fake_zephyr(top / "zephyr")
    configured = fake_zephyr(tmp_path / "configured")
    env = {"ZEPHYR_BASE": str(fake_zephyr(tmp_path / "from-env"))}
    found = tools.find_zephyr_base(configured, [top / "app"], environ=env)
    assert (found.path, found.from_west) == (configured, False)
    assert tools.find_zephyr_base(None, [top / "app"], environ=env).path == tmp_path / "from-env"


def test_a_zephyr_base_that_is_no_zephyr_tree_is_reported_not_passed_over(tmp_path: Path) -> None:
    top = fake_workspace(tmp_path / "ws")
    fake_zephyr(top / "zephyr")
    found = tools.find_zephyr_base(tmp_path / "nothing", [top / "app"], environ={})
    assert found.path is None
    assert "zephyr_base in hil.toml" in found.source
    assert "not a Zephyr tree" in found.source


def test_a_workspace_whose_zephyr_is_not_fetched_says_to_run_west_update(tmp_path: Path) -> None:
    top = fake_workspace(tmp_path / "ws")
    found = tools.find_zephyr_base(None, [top / "app"], environ={})
    assert found.path is None
    assert "west update" in found.source


def test_without_a_workspace_the_search_says_where_it_looked(tmp_path: Path) -> None:
    found = tools.find_zephyr_base(None, [tmp_path / "lonely"], environ={})
    assert found.path is None
    assert str(tmp_path / "lonely") in found.source


def test_the_shells_name_of_a_linked_folder_is_searched_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout linked into a workspace (ws/app -> elsewhere) is in the workspace as the shell names it."""
    top = fake_workspace(tmp_path / "ws")
    fake_zephyr(top / "zephyr")
    (top / "app").rmdir()
    checkout = tmp_path / "elsewhere" / "checkout"
    checkout.mkdir(parents=True)
    (top / "app").symlink_to(checkout)
    monkeypatch.chdir(top / "app")
    starts = tools.search_starts(tmp_path / "config-folder", {"PWD": str(top / "app")})
    assert starts == (tmp_path / "config-folder", top / "app", checkout.resolve())
    assert tools.find_zephyr_base(None, starts, environ={}).path == top / "zephyr"


def test_hil_build_and_doctor_find_the_workspace_around_hil_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = fake_workspace(tmp_path / "ws")
    fake_zephyr(top / "zephyr")
    (top / "app" / "hil.toml").write_text('build_dir = "build"\n')
    monkeypatch.delenv("ZEPHYR_BASE", raising=False)
    monkeypatch.delenv("HIL_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    config = load_config(top / "app" / "hil.toml")
    found = find_workspace(config)
    assert (found.path, found.from_west) == (top / "zephyr", True)


def test_an_unreadable_west_config_names_the_file(tmp_path: Path) -> None:
    top = fake_workspace(tmp_path / "ws", "this is not [an ini file\n")
    with pytest.raises(ConfigError, match=r"\.west/config: not a west configuration file"):
        tools.find_zephyr_base(None, [top], environ={})


def requirements(tmp_path: Path, text: str) -> Path:
    base = fake_zephyr(tmp_path / "zephyr")
    (base / "scripts").mkdir()
    (base / "scripts" / "requirements-base.txt").write_text(text)
    return base


def test_requirements_all_installed_are_ok(tmp_path: Path) -> None:
    base = requirements(tmp_path, "# comment\n\npytest>=1.0\nnumpy  # inline comment\n")
    found = tools.python_requirements(base)
    assert found.ok
    assert found.checked == ("pytest>=1.0", "numpy")


def test_missing_and_too_old_requirements_are_named_with_the_pip_command(tmp_path: Path) -> None:
    base = requirements(tmp_path, "surely-not-installed-hil-pkg>=1\npytest>=999\nnumpy\n")
    found = tools.python_requirements(base)
    assert found.missing == ("surely-not-installed-hil-pkg>=1", "pytest>=999")
    assert found.problems[0] == "surely-not-installed-hil-pkg not installed"
    assert found.problems[1].startswith("pytest ")
    assert found.problems[1].endswith(">=999 needed")
    assert shlex.split(found.pip_command()) == [
        sys.executable, "-m", "pip", "install", "surely-not-installed-hil-pkg>=1", "pytest>=999"
    ]  # fmt: skip


def test_requirements_for_another_platform_are_not_checked(tmp_path: Path) -> None:
    base = requirements(tmp_path, 'windows-curses; sys_platform == "win32"\n')
    found = tools.python_requirements(base)
    assert (found.ok, found.checked) == (True, ())


def test_included_requirement_files_are_followed(tmp_path: Path) -> None:
    base = requirements(tmp_path, "-r requirements-more.txt\n")
    (base / "scripts" / "requirements-more.txt").write_text("surely-not-installed-hil-pkg\n")
    assert tools.python_requirements(base).missing == ("surely-not-installed-hil-pkg",)


def test_a_zephyr_tree_without_requirements_is_an_error_naming_the_file(tmp_path: Path) -> None:
    base = fake_zephyr(tmp_path / "zephyr")
    with pytest.raises(ConfigError, match=r"scripts/requirements-base\.txt is missing"):
        tools.python_requirements(base)


def test_a_tool_older_than_zephyr_needs_is_unusable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cmake = tmp_path / "cmake"
    cmake.write_text("#!/bin/sh\necho 'cmake version 3.16.3'\n")
    cmake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    tool = tools.simple("cmake")
    assert not tool.usable
    assert "3.16.3 is older than the 3.20.5 Zephyr needs" in tool.why_not()


def test_a_target_s_kconfig_fragments_reach_west_as_extra_conf_file(tmp_path: Path) -> None:
    config = dataclasses.replace(load_config(root=tmp_path), firmware_dir=Path(__file__).parents[2] / "firmware")
    renode = config.target("renode:stm32f4_disco")
    fragments = extra_conf_files(config, renode)
    assert fragments == (config.firmware_dir / "renode.conf",)  # the catalog's renode targets drop the MPU
    assert "CONFIG_ARM_MPU=n" in fragments[0].read_text().splitlines()
    argv = west_argv(Path("west"), "stm32f4_disco", tmp_path / "b", config.firmware_dir, False, fragments)
    assert argv[-2:] == ["--", f"-DEXTRA_CONF_FILE={fragments[0]}"]
    # a target without fragments still says so, so a build folder that had some loses them
    native = config.target("native_sim")
    assert extra_conf_files(config, native) == ()
    assert west_argv(Path("west"), "native_sim", tmp_path / "b", config.firmware_dir, False)[-1] == "-DEXTRA_CONF_FILE="


def test_a_missing_kconfig_fragment_is_named(tmp_path: Path) -> None:
    (tmp_path / "hil.toml").write_text(
        '[targets."renode:mine"]\nbackend = "renode"\nplatform = "p.repl"\nconsole = "sysbus.uart0"\n'
        'zephyr_board = "nrf52840dk/nrf52840"\nfirmware_conf = ["nope.conf"]\n'
    )
    config = load_config(root=tmp_path)
    with pytest.raises(ConfigError, match=r"renode:mine: firmware_conf names .*nope.conf, which does not exist"):
        extra_conf_files(config, config.target("renode:mine"))
