"""The example CI matrix (docs/ci/hil-matrix-github-actions.yml) agrees with the project.

GitHub Actions cannot run here, so this checks what can be checked offline: every ``hil``
command of every matrix job parses with our CLI, each matrix entry is a catalog target with its
own board id and Zephyr board, the firmware is built where the target looks for it, and the last
job merges exactly the bundles the matrix jobs keep, whatever became of them.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from hil.backends import firmware_image
from hil.cli import build_parser
from hil.config import load_config
from hil.options import FirmwareOptions

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "docs" / "ci" / "hil-matrix-github-actions.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def _entries(workflow: dict[str, Any]) -> list[dict[str, str]]:
    return workflow["jobs"]["hil"]["strategy"]["matrix"]["include"]


def _expand(text: str, entry: dict[str, str], env: dict[str, str]) -> str:
    """``text`` as the runner would run it for one matrix entry: ``${{ matrix.x }}`` and ``$VAR`` expanded."""
    text = re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", lambda m: entry[m[1]], text)
    env = {k: re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", lambda m: entry[m[1]], str(v)) for k, v in env.items()}
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m[1], m[0]), text)


def _hil_commands(job: dict[str, Any], entry: dict[str, str], env: dict[str, str]) -> list[list[str]]:
    commands = []
    for step in job["steps"]:
        for line in step.get("run", "").splitlines():
            line = line.strip().split("||")[0].strip()
            if re.search(r"(^|\s|/)hil\s", line):
                argv = shlex.split(_expand(line, entry, env))
                commands.append(argv[next(i for i, a in enumerate(argv) if a.endswith("hil")) + 1 :])
    return commands


def test_every_hil_command_parses_for_every_target(workflow: dict[str, Any]) -> None:
    parser = build_parser()
    seen = set()
    for name, job in workflow["jobs"].items():
        entries = _entries(workflow) if name == "hil" else [{}]
        for entry in entries:
            env = workflow.get("env", {}) | job.get("env", {})
            for argv in _hil_commands(job, entry, env):
                parser.parse_args(argv)  # SystemExit (a failed test) on an unknown option
                seen.add(argv[0])
    assert {"targets", "run", "report"} <= seen  # the commands were found, not skipped by the pattern


def test_each_matrix_entry_is_a_catalog_target_built_where_it_is_looked_for(workflow: dict[str, Any]) -> None:
    config = load_config(root=ROOT)
    job = workflow["jobs"]["hil"]
    for entry in _entries(workflow):
        target = config.target(entry["target"])
        assert entry["board_id"] == target.board_id
        assert entry["zephyr_board"] == (target.zephyr_board or "")
        if not entry["zephyr_board"]:
            continue
        build = next(s["run"] for s in job["steps"] if "west build" in s.get("run", ""))
        build_dir = Path(re.search(r'-d "?([^"\s]+)', _expand(build, entry, job["env"]))[1])
        # the Kconfig fragments hil build would add (renode.conf: no MPU in Renode)
        assert entry["firmware_conf"] == ";".join(target.options_as(FirmwareOptions).firmware_conf)
        assert '-DEXTRA_CONF_FILE="$FIRMWARE_CONF"' in build
        assert job["env"]["FIRMWARE_CONF"] == "${{ matrix.firmware_conf }}"
        checkout = next(s["with"]["path"] for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
        image = firmware_image(target, config, "zephyr.exe" if target.backend == "native" else "zephyr.elf")
        assert Path(checkout) / image.relative_to(ROOT) == build_dir / "zephyr" / image.name


def test_each_target_runs_into_its_own_bundle_and_keeps_it(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["hil"]
    for entry in _entries(workflow):
        (run,) = [argv for argv in _hil_commands(job, entry, job["env"]) if argv[0] == "run"]
        args = build_parser().parse_args(run)
        assert args.target == [entry["target"]]
        assert args.out == Path("results") / entry["board_id"]
        keep = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
        assert keep["if"] == "always()"  # an interrupted or failed run's bundle is kept too
        assert _expand(keep["with"]["path"], entry, job["env"]).rstrip("/").endswith(f"results/{entry['board_id']}")


def test_the_last_job_merges_every_bundle_even_when_a_target_failed(workflow: dict[str, Any]) -> None:
    report = workflow["jobs"]["report"]
    assert report["needs"] == "hil"
    assert report["if"] == "always()"
    keep = next(s for s in workflow["jobs"]["hil"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    names = [_expand(keep["with"]["name"], entry, {}) for entry in _entries(workflow)]
    fetch = next(s for s in report["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    pattern = fetch["with"]["pattern"]
    assert all(re.fullmatch(pattern.replace("*", ".*"), name) for name in names)
    (merge,) = [argv for argv in _hil_commands(report, {}, {}) if argv[0] == "report" and "--out" in argv]
    args = build_parser().parse_args(merge)
    assert args.out == Path("merged")
    assert args.dirs == [Path("shards/*")]  # the shell expands it to one folder per downloaded bundle
    assert Path(fetch["with"]["path"]).name == "shards"
    assert args.html is not None
    assert args.html.parent == Path("merged")
