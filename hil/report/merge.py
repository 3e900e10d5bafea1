"""Bundles joined into one: the targets of one run (OUT/<board_id>/ sub-bundles) or the shards of a CI matrix.

Robot outputs are merged with rebot (``output.xml``, ``log.html``, ``report.html`` and the Robot
JUnit file), pytest's JUnit files by gathering their ``<testsuite>`` elements, and the metrics by
re-rooting every sub-bundle's records under its folder (docs/metrics.md, "Layout").
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hil.config import HilConfig
from hil.errors import ConfigError
from hil.report.bundle import (
    METRICS_FILE,
    SCHEMA,
    Bundle,
    OutLock,
    check_out_dir,
    new_run_id,
    now,
    open_bundle,
    read_bundle,
    rooted,
    summary_of,
    write_json,
)
from hil.report.environment import host_identity

REBOT_TIMEOUT_S = 600.0
ROBOT_FILES = ("output.xml", "log.html", "report.html", "junit-robot.xml")
JUNIT_PYTEST = "junit-pytest.xml"


def merge_robot(outputs: Sequence[Path], out_dir: Path, name: str) -> Path | None:
    """rebot ``outputs`` into ``out_dir`` (output.xml, log.html, report.html, junit-robot.xml); None if none."""
    outputs = [p for p in outputs if p.is_file()]
    if not outputs:
        return None
    argv = [sys.executable, "-m", "robot.rebot", "--name", name, "--outputdir", str(out_dir),
            "--output", "output.xml", "--log", "log.html", "--report", "report.html",
            "--xunit", "junit-robot.xml", "--nostatusrc", *map(str, outputs)]  # fmt: skip
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=REBOT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as err:
        raise ConfigError(f"rebot did not merge {len(outputs)} Robot outputs within {REBOT_TIMEOUT_S:g} s") from err
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise ConfigError(f"rebot could not merge the Robot outputs into {out_dir}: {' '.join(tail)}")
    return out_dir / "output.xml"


def merge_junit(files: Sequence[Path], dest: Path, name: str) -> Path | None:
    """One JUnit file holding every ``<testsuite>`` of ``files`` (pytest writes one per run); None if none."""
    merged = ET.Element("testsuites", {"name": name})
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for path in files:
        if not path.is_file():
            continue
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as err:
            raise ConfigError(f"{path}: not a JUnit XML file: {err}") from err
        for suite in [root] if root.tag == "testsuite" else root.iter("testsuite"):
            merged.append(suite)
            for key in totals:
                totals[key] += int(suite.get(key, 0) or 0)
    if not len(merged):
        return None
    merged.attrib.update({k: str(v) for k, v in totals.items()})
    ET.ElementTree(merged).write(dest, encoding="utf-8", xml_declaration=True)
    return dest


def combine_reports(out_dir: Path, sub_dirs: Sequence[Path], name: str) -> None:
    """The top of a several-target bundle: Robot merged with rebot, pytest's JUnit files gathered."""
    merge_robot([d / "output.xml" for d in sub_dirs], out_dir, name)
    merge_junit([d / JUNIT_PYTEST for d in sub_dirs], out_dir / JUNIT_PYTEST, name)


# --- hil report DIR [DIR ...] -----------------------------------------------------------------------------


def _sub_bundles(bundle: Bundle) -> list[tuple[str, Path]]:
    """(target, folder) of every sub-bundle of ``bundle`` (the bundle itself for one target)."""
    mapping = bundle.metrics.get("bundles") or dict.fromkeys(bundle.metrics.get("targets") or [""], ".")
    return [(target, (bundle.path / relative).resolve()) for target, relative in mapping.items()]


def _folder_name(target: str, bundle: Bundle, taken: set[str]) -> str:
    info = ((bundle.metrics.get("environment") or {}).get("targets") or {}).get(target) or {}
    base = str(info.get("board_id") or target.replace(":", "-").replace("/", "_") or "run")
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    taken.add(name)
    return name


def combine_metrics(bundles: Sequence[Bundle], folders: Sequence[Sequence[tuple[str, Path, str]]]) -> dict[str, Any]:
    """One ``metrics.json`` over ``bundles``; ``folders[i]`` maps bundle i's targets to their sub-bundle folder
    (as read) and their folder name in the merged bundle."""
    tests: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    stimuli: list[dict[str, Any]] = []
    suites: list[dict[str, Any]] = []
    targets: list[str] = []
    bundle_map: dict[str, str] = {}
    env_targets: dict[str, Any] = {}
    runs = []
    for bundle, subs in zip(bundles, folders, strict=True):
        metrics = bundle.metrics
        runs.append(
            {
                "path": str(bundle.path),
                "run_id": str(metrics.get("run_id") or bundle.path.name),
                "complete": bundle.complete,
                "incomplete_reason": bundle.incomplete_reason,
                "environment": metrics.get("environment") or {},
                "bundles": {target: name for target, _, name in subs},
            }
        )
        env_targets |= (metrics.get("environment") or {}).get("targets") or {}
        for target, folder, name in subs:
            sub = read_bundle(folder).metrics if (folder / METRICS_FILE).is_file() else metrics
            mine = [t for t in sub.get("tests") or [] if t.get("target") == target or not target]
            tests += [rooted(t, Path(name), Path(".")) for t in mine]
            devices += [rooted(d, Path(name), Path(".")) for d in sub.get("devices") or [] if d.get("target") == target]
            stimuli += [rooted(s, Path(name), Path(".")) for s in sub.get("stimuli") or []]
            suites += [rooted(s, Path(name), Path(".")) for s in sub.get("suites") or [] if s.get("target") == target]
            if target not in targets:
                targets.append(target)
                bundle_map[target] = name
    complete = all(b.complete for b in bundles)
    reasons = [f"{r['path']}: {r['incomplete_reason'] or 'incomplete'}" for r in runs if not r["complete"]]
    return {
        "schema": SCHEMA,
        "run_id": f"merge-{new_run_id()}",
        "complete": complete,
        "incomplete_reason": "; ".join(reasons),
        "started": min((str(b.metrics.get("started") or "") for b in bundles), default="") or None,
        "finished": now(),
        "generated": now(),
        "targets": targets,
        "bundles": bundle_map,
        "suites": suites,
        "environment": {
            "command": [],
            "host": host_identity(),
            "tools": {},
            "suites": {},
            "targets": env_targets,
        },
        "runs": runs,
        "stimuli": stimuli,
        "devices": devices,
        "summary": summary_of(tests),
        "tests": tests,
    }


def plan_merge(dirs: Sequence[Path]) -> tuple[list[Bundle], list[list[tuple[str, Path, str]]]]:
    """Read every bundle (read only) and name the folder each of its sub-bundles gets in a merged bundle."""
    bundles = [read_bundle(d.resolve()) for d in dirs]
    taken: set[str] = set()
    folders = [[(t, folder, _folder_name(t, b, taken)) for t, folder in _sub_bundles(b)] for b in bundles]
    return bundles, folders


def merged_view(dirs: Sequence[Path]) -> dict[str, Any]:
    """The bundles in ``dirs`` as one, in memory only (``hil report DIR DIR`` without ``--out``)."""
    return combine_metrics(*plan_merge(dirs))


def merge_bundles(config: HilConfig, dirs: Sequence[Path], out_dir: Path, wait_s: float = 0.0) -> dict[str, Any]:
    """Write one bundle at ``out_dir`` from the bundles in ``dirs`` (CI shards); the inputs are only read."""
    del config
    bundles, folders = plan_merge(dirs)
    out_dir = out_dir.resolve()
    for bundle in bundles:
        if out_dir == bundle.path or bundle.path in out_dir.parents:
            raise ConfigError(f"--out {out_dir} is inside the bundle {bundle.path}: merge into another folder")
    check_out_dir(out_dir)
    metrics = combine_metrics(bundles, folders)
    with OutLock(out_dir) as lock:
        lock.acquire("hil report --out (merge)", wait_s)
        open_bundle(out_dir, metrics | {"complete": False, "incomplete_reason": "merging"})
        for subs in folders:
            for _, folder, name in subs:
                shutil.copytree(folder, out_dir / name, ignore=_not_hidden)
        sub_dirs = [out_dir / name for subs in folders for _, _, name in subs]
        combine_reports(out_dir, sub_dirs, "HIL on " + ", ".join(metrics["targets"]))
        write_json(out_dir / METRICS_FILE, metrics)
    return metrics


def _not_hidden(directory: str, names: list[str]) -> list[str]:
    """A copytree filter: a bundle's lock and half-written files stay behind."""
    del directory
    return [n for n in names if n.startswith(".")]
