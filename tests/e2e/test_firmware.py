"""The Zephyr firmware for real: `hil build`, then the HIL suites on QEMU and native_sim.

The slow tests need a Zephyr workspace (zephyr_base in hil.toml, $ZEPHYR_BASE, or a west
workspace around hil.toml or the current folder; docs/firmware.md) and a toolchain; the QEMU
target also needs qemu-system-arm. Each is skipped with the reason when what it needs is absent.
A pristine build takes ~5 minutes on 2 cores; a build folder left by an earlier run is rebuilt
incrementally. The quick tests check what `hil build` says and picks without a workspace.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from hil import protocol as p
from hil import tools
from hil.backends.qemu import _listening
from hil.build import MEMORY_REPORT, BuildResult, build_firmware, detect_toolchain, find_workspace
from hil.config import HilConfig, load_config
from hil.device import Device
from hil.errors import BackendUnavailable
from hil.models import ModelZoo

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("qemu:mps2_an385", "native_sim")
SUITE_TIMEOUT_S = 1800


# --- without a workspace: what `hil build` says and picks ------------------------------------


def test_build_without_a_workspace_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZEPHYR_BASE", raising=False)
    config = load_config(root=ROOT)
    if find_workspace(config).found:
        pytest.skip(f"a Zephyr workspace is at hand here ({find_workspace(config).source})")
    with pytest.raises(BackendUnavailable, match=r"no Zephyr workspace.*west init -l.*docs/firmware.md"):
        build_firmware(config, config.target("qemu:mps2_an385"), pristine=False, console=Console())


def test_toolchain_detection_order() -> None:
    assert detect_toolchain("mps2/an385", {"ZEPHYR_TOOLCHAIN_VARIANT": "llvm"}).variant == "llvm"
    assert detect_toolchain("native_sim/native/64", {"PATH": ""}).variant == "host"
    sdk = detect_toolchain("nrf52840dk/nrf52840", {"ZEPHYR_SDK_INSTALL_DIR": str(ROOT), "PATH": ""})
    assert (sdk.variant, sdk.env["ZEPHYR_SDK_INSTALL_DIR"]) == ("zephyr", str(ROOT))
    with pytest.raises(BackendUnavailable, match="no toolchain for Zephyr"):
        detect_toolchain("nrf52840dk/nrf52840", {"PATH": ""})


def test_gnuarmemb_is_found_on_path(tmp_path: Path) -> None:
    gcc = tmp_path / "bin" / "arm-none-eabi-gcc"
    gcc.parent.mkdir()
    gcc.write_text("#!/bin/sh\n")
    gcc.chmod(0o755)
    found = detect_toolchain("stm32f4_disco", {"PATH": str(gcc.parent)})
    assert found.env == {"ZEPHYR_TOOLCHAIN_VARIANT": "gnuarmemb", "GNUARMEMB_TOOLCHAIN_PATH": str(tmp_path)}


def test_qemu_console_readiness_reads_listening_sockets(tmp_path: Path) -> None:
    table = tmp_path / "tcp"
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    table.write_text(header + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n")
    assert _listening(8080, table) is True
    assert _listening(8081, table) is False
    assert _listening(8080, tmp_path / "missing") is None


# --- with a workspace: build and run for real --------------------------------------------------


@pytest.fixture(scope="module")
def config() -> HilConfig:
    config = load_config(root=ROOT)
    workspace = find_workspace(config)
    if not workspace.found:
        pytest.skip(f"no Zephyr workspace ({workspace.source}); docs/firmware.md shows how to create one")
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


def _runnable(config: HilConfig, built: dict[str, BuildResult], name: str) -> BuildResult:
    """The target built, and its emulator at hand (else the test is skipped with the reason)."""
    result = _build(config, built, name)
    if name.startswith("qemu") and not tools.simple("qemu-system-arm").usable:
        pytest.skip(tools.simple("qemu-system-arm").why_not())
    return result


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.slow
@pytest.mark.timeout(3600)
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
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_device_reports_the_build_id_of_its_image_and_the_sha256_of_its_models(
    config: HilConfig, built: dict[str, BuildResult], target: str, tmp_path: Path
) -> None:
    result = _runnable(config, built, target)
    image_build_id = p.find_build_id(result.image.read_bytes())
    assert image_build_id is not None, f"{result.image} lacks {p.BUILD_ID_MARKER!r}: was it garbage collected?"
    zoo = ModelZoo(config.models_dir)
    with Device(config.target(target), config, tmp_path) as dut:
        assert dut.info.build_id == image_build_id
        assert {name: m.sha256 for name, m in dut.models.items()} == {
            name: zoo.manifest(name).sha256 for name in dut.models
        }


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_hil_suites_pass_on_the_firmware(
    config: HilConfig, built: dict[str, BuildResult], target: str, tmp_path: Path
) -> None:
    _runnable(config, built, target)
    argv = [sys.executable, "-m", "hil.cli", "run", "--target", target, "--out", str(tmp_path)]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["summary"]["failed"] == 0
    assert metrics["summary"]["passed"] >= 15
    golden = [t["models"][m]["golden"] for t in metrics["tests"] for m in t["models"] if "golden" in t["models"][m]]
    assert golden, "no golden-vector check ran"
    assert all(g["mismatched"] == 0 for g in golden), golden
    if target.startswith("qemu"):  # every QEMU inference is counted in instructions: 5 a 25 MHz SysTick tick
        costs = [m["emulated_cost"] for t in metrics["tests"] for m in t["models"].values() if "emulated_cost" in m]
        assert costs, "no latency check recorded emulated instructions"
        assert all(c["instructions_median"] > 0 for c in costs)
        assert all(c["virtual_us_median"] == pytest.approx(c["device_us_median"], rel=0.01) for c in costs)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_a_half_sent_request_is_abandoned_after_silence_and_the_next_one_answered(
    config: HilConfig, built: dict[str, BuildResult], target: str, tmp_path: Path
) -> None:
    # The device's stale-frame rule, whatever carries the bytes: on qemu:mps2_an385 the semihosting
    # port waits with interrupts masked, so it measures the silence itself (hil_port_semihost.c).
    _runnable(config, built, target)
    with Device(config.target(target), config, tmp_path) as dut:
        frame = p.encode_frame(p.MsgType.ECHO, 200, bytes(100))
        dut.link.write_raw(frame[:50])
        time.sleep(3 * p.STALE_FRAME_S)
        started = time.monotonic()
        assert dut.echo(b"after the silence") == b"after the silence"
        assert time.monotonic() - started < 1.0  # answered at once, not after the host's own 2 s give-up
