"""The docs' tables of figures are made by ``hil docs tables``: from a fake build and a fake results bundle.

The firmware image is a small ELF the host's gcc links here with a Zephyr-like layout (code and
constants in FLASH, initialised data in RAM stored in FLASH, zeroed data in RAM) and the symbols
``hil build`` looks for (model arrays, arenas, the build id).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from minimal_metrics import minimal_metrics

from hil import doctables
from hil.build import _linker_regions, image_sizes
from hil.config import HilConfig, load_config
from hil.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 12, 3)
BUILD_ID = "00ff00ff12345678"
FIRMWARE_C = f"""
const unsigned char kModel0Flatbuffer[96] = {{1}};
const unsigned char kModel1Flatbuffer[64] = {{2}};
unsigned char Model0Arena[256];
unsigned char Model1Arena[128];
int initialised[3] = {{5, 6, 7}};
const char build_id[] = "HIL_BUILD_ID={BUILD_ID}";
int main(void)
{{
    return kModel0Flatbuffer[0] + kModel1Flatbuffer[0] + Model0Arena[0] + Model1Arena[0] + initialised[0] +
           build_id[0];
}}
"""
LINKER_SCRIPT = """
MEMORY
{
  FLASH (rx) : ORIGIN = 0x0, LENGTH = 64K
  RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 16K
}
ENTRY(main)
SECTIONS
{
  .text : { *(.text*) } > FLASH
  .rodata : { *(.rodata*) } > FLASH
  .data : { *(.data*) } > RAM AT > FLASH
  .bss (NOLOAD) : { *(.bss*) *(COMMON) } > RAM
  /DISCARD/ : { *(.eh_frame*) *(.note*) }
}
"""
KCONFIG = (
    "CONFIG_FLASH_SIZE=64\nCONFIG_FLASH_BASE_ADDRESS=0x0\nCONFIG_SRAM_SIZE=16\nCONFIG_SRAM_BASE_ADDRESS=0x20000000\n"
)
DOC = """# A page

Text before.

<!-- generated: memory (hil docs tables) -->
old memory numbers
<!-- end generated -->

Between.

<!-- generated: latency (hil docs tables) -->
old latency numbers
<!-- end generated -->

Text after.
"""
RENODE_DOC = "# Renode\n\n<!-- generated: renode-latency (hil docs tables) -->\n<!-- end generated -->\n"


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A linked image and what the linker printed of its memory regions."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no host gcc to link a test image: apt install build-essential")
    folder = tmp_path_factory.mktemp("firmware")
    (folder / "fw.c").write_text(FIRMWARE_C)
    (folder / "link.ld").write_text(LINKER_SCRIPT)
    argv = [gcc, "-O0", "-fno-pic", "-no-pie", "-nostdlib", "-static", "-fno-asynchronous-unwind-tables",
            "-T", str(folder / "link.ld"), "-Wl,--print-memory-usage", "-o", str(folder / "zephyr.elf"),
            str(folder / "fw.c")]  # fmt: skip
    linked = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if linked.returncode != 0:
        pytest.skip(f"the host gcc cannot link the test image: {linked.stderr.strip()[-300:]}")
    return folder / "zephyr.elf", linked.stdout


def config_with_build(tmp_path: Path, firmware: Path, target: str = "qemu:mps2_an385") -> HilConfig:
    (tmp_path / "hil.toml").write_text('build_dir = "build"\n')
    config = load_config(tmp_path / "hil.toml")
    build = config.build_dir / config.target(target).board_id
    (build / "zephyr").mkdir(parents=True)
    shutil.copy(firmware, build / "zephyr" / "zephyr.elf")
    (build / "zephyr" / ".config").write_text(KCONFIG)
    (build / "hil_generated").mkdir()
    (build / "hil_generated" / "hil_models.cc").write_text(
        '{"sine", kModel0Flatbuffer, ...},\n{"kws", kModel1Flatbuffer, ...},\n'
    )
    return config


def write_bundle(folder: Path, target: str, build_id: str, instructions: float | None = None) -> Path:
    record: dict[str, object] = {
        "inferences": 4,
        "latency_us": {"count": 4, "median": 58.0, "p95": 68.2, "max": 70.0},
        "latencies_us": [50.0, 58.0, 58.0, 70.0],  # p95: 58 + 0.85 * 12
    }
    if instructions is not None:
        record["emulated_cost"] = {"count": 4, "instructions_median": instructions, "virtual_us_median": 128.5,
                                   "device_us_median": 58.0}  # fmt: skip
    metrics = minimal_metrics(target, {"sine": record}, {"build_id": build_id})
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def docs_folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "firmware.md").write_text(DOC)
    (docs / "renode.md").write_text(RENODE_DOC)
    return docs


def test_the_docs_hold_the_markers_of_every_generated_table() -> None:
    for block in doctables.BLOCKS:
        text = (ROOT / "docs" / block.doc).read_text(encoding="utf-8")
        assert doctables.block_names(text).count(block.name) == 1, f"docs/{block.doc} lacks block {block.name}"


def test_memory_regions_read_from_the_elf_agree_with_the_linker(firmware: tuple[Path, str], tmp_path: Path) -> None:
    image, linker_output = firmware
    config = config_with_build(tmp_path, image)
    figures = doctables.image_figures(config, config.target("qemu:mps2_an385"))
    printed = _linker_regions(linker_output)
    assert {r.name: {"used_bytes": r.used_bytes, "size_bytes": r.size_bytes} for r in figures.regions} == printed


def test_memory_table_shows_a_built_target_from_its_elf(firmware: tuple[Path, str], tmp_path: Path) -> None:
    image, linker_output = firmware
    config = config_with_build(tmp_path, image)
    table = doctables.memory_table(config, doctables.zephyr_targets(config), {}, TODAY)
    row = next(line for line in table.splitlines() if line.startswith("| `qemu:mps2_an385`"))
    sizes = image_sizes(image, image.parent.parent)
    flash = _linker_regions(linker_output)["FLASH"]["used_bytes"]
    assert f"| {flash:,} B of 64 KB |" in row
    assert f"{sizes.text_bytes:,} / {sizes.rodata_bytes:,} / {sizes.data_bytes:,} / {sizes.bss_bytes:,}" in row
    assert "| sine, kws: 160 / 384 |" in row
    assert f"`{BUILD_ID}`, GCC " in row
    assert "on 2026-12-03" in table


def test_memory_table_lists_targets_not_built_as_such(firmware: tuple[Path, str], tmp_path: Path) -> None:
    config = config_with_build(tmp_path, firmware[0])
    table = doctables.memory_table(config, doctables.zephyr_targets(config), {}, TODAY)
    row = next(line for line in table.splitlines() if line.startswith("| `renode:nrf52840dk`"))
    assert "not built (`hil build --target renode:nrf52840dk`)" in row
    assert "B of" not in row


def test_latency_table_shows_a_runs_median_p95_and_instructions(firmware: tuple[Path, str], tmp_path: Path) -> None:
    config = config_with_build(tmp_path, firmware[0], "renode:nrf52840dk")
    runs = doctables.run_figures([write_bundle(tmp_path / "run", "renode:nrf52840dk", BUILD_ID, 12843.0)])
    targets = [config.target("renode:nrf52840dk"), config.target("renode:stm32f4_disco")]
    table = doctables.latency_table(config, targets, runs, TODAY)
    assert (
        f"| `renode:nrf52840dk` | sine | 58.0 µs / 68.2 µs (4) | 12,843 | 128.5 µs | 2026-11-30, build `{BUILD_ID}` |"
        in table
    )
    assert "| `renode:stm32f4_disco` | not run (`hil run --target renode:stm32f4_disco`) |" in table


def test_latency_of_another_build_than_the_build_folders_is_stale_not_shown(
    firmware: tuple[Path, str], tmp_path: Path
) -> None:
    config = config_with_build(tmp_path, firmware[0])
    runs = doctables.run_figures([write_bundle(tmp_path / "run", "qemu:mps2_an385", "1111222233334444")])
    table = doctables.latency_table(config, [config.target("qemu:mps2_an385")], runs, TODAY)
    row = next(line for line in table.splitlines() if line.startswith("| `qemu:mps2_an385`"))
    assert "stale: the results (2026-11-30) are of build `1111222233334444`" in row
    assert f"the build folder holds `{BUILD_ID}`" in row
    assert "58.0 µs" not in row


def test_write_rewrites_only_between_the_markers(firmware: tuple[Path, str], tmp_path: Path) -> None:
    config = config_with_build(tmp_path, firmware[0])
    docs = docs_folder(tmp_path)
    bundle = write_bundle(tmp_path / "run", "qemu:mps2_an385", BUILD_ID)
    args = doctables_args(docs, [bundle], write=True)
    assert doctables.run_command(config, args, out=lambda _: None) == 0
    text = (docs / "firmware.md").read_text()
    assert "old memory numbers" not in text
    assert "old latency numbers" not in text
    assert text.startswith("# A page\n\nText before.\n\n<!-- generated: memory (hil docs tables) -->\nMade by")
    assert "<!-- end generated -->\n\nBetween.\n\n<!-- generated: latency" in text
    assert text.endswith("<!-- end generated -->\n\nText after.\n")
    assert "| `qemu:mps2_an385` | sine | 58.0 µs" in text
    assert "| `renode:nrf52840dk` | not run" in (docs / "renode.md").read_text()


def test_only_leaves_the_other_tables_as_they_were(firmware: tuple[Path, str], tmp_path: Path) -> None:
    config = config_with_build(tmp_path, firmware[0])
    docs = docs_folder(tmp_path)
    doctables.run_command(config, doctables_args(docs, [], write=True, only=["memory"]), out=lambda _: None)
    text = (docs / "firmware.md").read_text()
    assert "old memory numbers" not in text
    assert "old latency numbers" in text
    assert (docs / "renode.md").read_text() == RENODE_DOC


def test_without_write_the_docs_are_left_alone(firmware: tuple[Path, str], tmp_path: Path) -> None:
    config = config_with_build(tmp_path, firmware[0])
    docs = docs_folder(tmp_path)
    printed: list[str] = []
    doctables.run_command(config, doctables_args(docs, []), out=printed.append)
    assert (docs / "firmware.md").read_text() == DOC
    assert any("memory (would change)" in line and "| `qemu:mps2_an385`" in line for line in printed)


def test_a_doc_without_the_markers_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"firmware\.md: no block '<!-- generated: memory"):
        doctables.replace_block("# no markers\n", "memory", "table", "firmware.md")


def doctables_args(docs: Path, results: list[Path], write: bool = False, only: list[str] | None = None) -> object:
    parser = __import__("argparse").ArgumentParser()
    doctables.add_arguments(parser)
    argv = ["--docs", str(docs), *(["--write"] if write else [])]
    argv += [a for r in results for a in ("--results", str(r))] + [a for o in only or [] for a in ("--only", o)]
    return parser.parse_args(argv)
