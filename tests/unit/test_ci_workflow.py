"""The example CI workflow (docs/ci/renode-github-actions.yml) agrees with the project.

GitHub Actions cannot run here, so this checks what can be checked offline: every ``hil``
command in it parses with our CLI, the firmware lands where the Renode target looks for it,
the board is the target's board, and the checkout path is the one west.yml declares.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from hil.backends import firmware_image
from hil.backends.renode import RENODE_MIN_VERSION, parse_version
from hil.cli import build_parser
from hil.config import load_config
from hil.options import FirmwareOptions

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "docs" / "ci" / "renode-github-actions.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def _shell(workflow: dict[str, Any], text: str) -> str:
    """``text`` with the workflow's env and bash's ``${VAR/:/-}`` expanded as the runner would."""
    env = {k: str(v) for k, v in workflow["env"].items()}
    text = re.sub(r"\$\{(\w+)/:/-\}", lambda m: env[m[1]].replace(":", "-", 1), text)
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m[1], m[0]), text)


def test_every_hil_command_parses(workflow: dict[str, Any]) -> None:
    commands = [
        _shell(workflow, line.strip())
        for step in _steps(workflow)
        for line in step.get("run", "").splitlines()
        if re.search(r"(^|\s|/)hil\s", line)
    ]
    assert len(commands) >= 4  # doctor, targets, run, report
    for command in commands:
        argv = shlex.split(command.removesuffix("|| true"))
        build_parser().parse_args(argv[1:])  # SystemExit (a failed test) on an unknown option


def test_firmware_is_built_where_the_target_looks_and_for_its_board(workflow: dict[str, Any]) -> None:
    config = load_config(root=ROOT)
    target = config.target(workflow["env"]["TARGET"])
    assert workflow["env"]["ZEPHYR_BOARD"] == target.zephyr_board
    build = next(_shell(workflow, s["run"]) for s in _steps(workflow) if "west build" in s.get("run", ""))
    elf = re.search(r"ls -l \"?([^\"\s]+)", build)[1]
    fragments = ";".join(target.options_as(FirmwareOptions).firmware_conf)  # what hil build would add
    assert f"-DEXTRA_CONF_FILE={fragments}" in build
    checkout = next(s["with"]["path"] for s in _steps(workflow) if s.get("uses", "").startswith("actions/checkout"))
    assert Path(elf) == Path(checkout) / firmware_image(target, config).relative_to(ROOT)


def test_checkout_path_is_west_yml_self_path(workflow: dict[str, Any]) -> None:
    west = yaml.safe_load((ROOT / "west.yml").read_text())
    checkout = next(s["with"]["path"] for s in _steps(workflow) if s.get("uses", "").startswith("actions/checkout"))
    assert checkout == west["manifest"]["self"]["path"]


def test_renode_is_handed_to_the_backend_through_the_environment(workflow: dict[str, Any]) -> None:
    install = next(s["run"] for s in _steps(workflow) if "renode" in s.get("name", "").lower())
    assert 'echo "RENODE=' in install
    assert "GITHUB_ENV" in install
    assert parse_version(str(workflow["env"]["RENODE_VERSION"])) >= RENODE_MIN_VERSION
