"""The Zephyr firmware for real: `hil build`, then the HIL suites on QEMU and native_sim.

Needs a Zephyr workspace ($ZEPHYR_BASE or zephyr_base in hil.toml; docs/firmware.md) and a
toolchain; the QEMU target also needs qemu-system-arm. Each test is skipped with the reason
when what it needs is absent. A pristine build takes ~5 minutes on 2 cores; a build folder
left by an earlier run is rebuilt incrementally.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from hil import tools
from hil.build import MEMORY_REPORT, BuildResult, build_firmware
from hil.config import HilConfig, load_config
from hil.errors import BackendUnavailable

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("qemu:mps2_an385", "native_sim")
SUITE_TIMEOUT_S = 1800

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def config() -> HilConfig:
    config = load_config(root=ROOT)
    base = tools.zephyr_base(config.zephyr_base)
    if base is None:
        pytest.skip(
            "no Zephyr workspace: set $ZEPHYR_BASE (or zephyr_base in hil.toml) to build and run the firmware; "
            "docs/firmware.md shows how to create one"
        )
    return config


@pytest.fixture(scope="module")
def built(config: HilConfig) -> dict[str, BuildResult]:  # noqa: ARG001 - skips without a workspace
    """Each target built once per session (incrementally if its build folder exists)."""
    return {}


def _build(config: HilConfig, built: dict[str, BuildResult], name: str) -> BuildResult:
    if name not in built:
        try:
            built[name] = build_firmware(config, config.target(name), pristine=False, console=Console(width=160))
        except BackendUnavailable as err:
            pytest.skip(f"cannot build {name} here: {err}")
    return built[name]


@pytest.mark.parametrize("target", TARGETS)
def test_build_writes_a_memory_report_with_the_embedded_models(
    config: HilConfig, built: dict[str, BuildResult], target: str
) -> None:
    result = _build(config, built, target)
    assert result.image.is_file()
    report = json.loads((result.build_dir / MEMORY_REPORT).read_text())
    assert report["target"] == target
    assert {m["name"] for m in report["models"]} >= {"sine"}
    assert report["model_bytes"] == sum(m["flatbuffer_bytes"] for m in report["models"]) > 0
    assert report["text_bytes"] > 0
    assert report["bss_bytes"] >= report["arena_bytes"] > 0


@pytest.mark.parametrize("target", TARGETS)
def test_hil_suites_pass_on_the_firmware(
    config: HilConfig, built: dict[str, BuildResult], target: str, tmp_path: Path
) -> None:
    _build(config, built, target)
    if target.startswith("qemu") and not tools.simple("qemu-system-arm").usable:
        pytest.skip(tools.simple("qemu-system-arm").why_not())
    argv = [sys.executable, "-m", "hil.cli", "run", "--target", target, "--out", str(tmp_path)]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["summary"]["failed"] == 0
    assert metrics["summary"]["passed"] >= 15
    golden = [t["models"][m]["golden"] for t in metrics["tests"] for m in t["models"] if "golden" in t["models"][m]]
    assert golden, "no golden-vector check ran"
    assert all(g["mismatched"] == 0 for g in golden), golden
