"""What a suite writer reads: the keyword reference builds, and the examples run as written on the twin."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _pytest.fixtures import getfixturemarker

from hil import pytest_plugin
from hil.docs import build_keyword_reference

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
ROBOT_TEST = re.compile(r"^\*\*\* Test Cases \*\*\*\n(.*?)(?=^\*\*\*|\Z)", re.MULTILINE | re.DOTALL)


def blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(page.read_text(encoding="utf-8")) if lang == language]


def robot_tests(suite: str) -> list[str]:
    (section,) = ROBOT_TEST.findall(suite)
    return [line for line in section.splitlines() if line and not line[0].isspace()]


def run_hil(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "hil.cli", "run", "--target", "reference", *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def outcomes(out: Path) -> dict[str, str]:
    metrics = json.loads((out / "metrics.json").read_text())
    return {t["test"]: t["status"] for t in metrics["tests"]}


def junit_outcomes(junit: Path) -> dict[str, str]:
    """Every test of a JUnit file, also those that never touch the device (they leave no metrics record)."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = {child.tag for child in case} & {"failure", "error", "skipped"}
        found[case.get("name", "")] = kinds.pop().upper() if kinds else "PASS"
    return found


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # libdoc's call into docutils, not ours
def test_keyword_reference_builds_with_every_keyword_documented(tmp_path: Path) -> None:
    html = build_keyword_reference(tmp_path).read_text(encoding="utf-8")
    spec, _ = json.JSONDecoder().raw_decode(html, html.index("libdoc = ") + len("libdoc = "))
    names = {kw["name"] for kw in spec["keywords"]}
    assert {"Open Device", "Output Should Match Golden", "Quantize", "Dequantize", "Latency Should Be Below"} <= names
    # docutils marks reStructuredText it could not read with a system message: our docs have none.
    assert "system-message" not in spec["doc"]
    for kw in spec["keywords"]:
        assert "system-message" not in kw["doc"], kw["name"]
        assert "Example" in kw["doc"], f"{kw['name']} has no example"


def test_readme_robot_and_pytest_examples_run_as_written(tmp_path: Path) -> None:
    robot_blocks, python_blocks = blocks(ROOT / "README.md", "robot"), blocks(ROOT / "README.md", "python")
    assert len(robot_blocks) >= 2
    assert python_blocks
    robot_dir, pytest_dir = tmp_path / "robot_tests", tmp_path / "tests"
    robot_dir.mkdir()
    pytest_dir.mkdir()
    (tmp_path / "models").symlink_to(ROOT / "models")  # the README's suites live in robot_tests/ beside models/
    for i, suite in enumerate(robot_blocks):
        (robot_dir / f"readme_{i}.robot").write_text(suite)
    for i, module in enumerate(python_blocks):
        (pytest_dir / f"test_readme_{i}.py").write_text(module)
    out = tmp_path / "out"
    result = run_hil("--robot-suites", str(robot_dir), "--pytest-suites", str(pytest_dir), "--out", str(out))
    assert result.returncode == 0, result.stdout[-4000:]
    expected = [name for suite in robot_blocks for name in robot_tests(suite)]
    expected += re.findall(r"^def (test_\w+)", "\n".join(python_blocks), re.MULTILINE)
    assert outcomes(out) == dict.fromkeys(expected, "PASS")


def test_pytest_page_examples_run_as_written(tmp_path: Path) -> None:
    modules = [m for m in blocks(ROOT / "docs" / "pytest.md", "python") if "def test_" in m]
    assert len(modules) >= 4
    for i, module in enumerate(modules):
        (tmp_path / f"test_page_{i}.py").write_text(module)
    out = tmp_path / "out"
    result = run_hil("--suite", "pytest", "--pytest-suites", str(tmp_path), "--out", str(out))
    assert result.returncode == 0, result.stdout[-4000:]
    expected = re.findall(r"^def (test_\w+)", "\n".join(modules), re.MULTILINE)
    assert junit_outcomes(out / "junit-pytest.xml") == dict.fromkeys(expected, "PASS")


def test_pytest_page_describes_every_fixture_option_and_variable() -> None:
    page = (ROOT / "docs" / "pytest.md").read_text(encoding="utf-8")
    fixtures = [n for n in dir(pytest_plugin) if not n.startswith("_") and getfixturemarker(getattr(pytest_plugin, n))]
    assert sorted(fixtures) == ["dut", "hil", "hil_session", "hil_zoo"]
    options = re.findall(r'addoption\(\s*"(--hil-[\w-]+)"', Path(pytest_plugin.__file__).read_text())
    assert sorted(options) == ["--hil-config", "--hil-out", "--hil-target"]
    for name in (*(f"### `{f}`" for f in fixtures), *options, "HIL_RESULTS", "HIL_TARGET", "HIL_CONFIG"):
        assert name in page, name
