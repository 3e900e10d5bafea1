"""Tables of figures in the docs, made from builds and results instead of typed (``hil docs tables``).

    hil docs tables [--write] [--results DIR]... [--only memory|latency|renode-latency]...
    python -m hil.doctables ...                 (the same command)

Each table lives in a doc between two marker comments, and only what is between them is rewritten::

    <!-- generated: memory (hil docs tables) -->
    ...
    <!-- end generated -->

* ``memory`` (docs/firmware.md): per Zephyr target, the image in its build folder
  (``<build_dir>/<target>/zephyr/zephyr.elf``, ``zephyr.exe`` on native boards), read with
  :mod:`hil.build`'s memory report code: FLASH and RAM used as the linker counts them, text /
  rodata / data / bss, the embedded models and arenas, and the build id the image carries.
* ``latency`` (docs/firmware.md: QEMU and native_sim) and ``renode-latency`` (docs/renode.md): per target and
  model, from results bundles' ``metrics.json``: device-measured latency (``latency_us``) and, in
  emulators that count them, instructions and virtual time per inference (``emulated_cost``).

A target without an image is listed as not built, one without results as not run, and results of
a build other than the one in the build folder as stale: a table never shows numbers it cannot
vouch for. Without ``--write`` the tables are printed and the docs left alone.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from hil import protocol
from hil.build import ImageSizes, Region, build_dir_of, image_sizes, kconfig_values, memory_regions
from hil.checks import duration
from hil.config import HilConfig, Target, load_config
from hil.errors import ConfigError, HilError

COMMAND = "hil docs tables --write"
START = "<!-- generated: {name} (hil docs tables) -->"
END = "<!-- end generated -->"
_BLOCK = re.compile(r"(<!-- generated: ([\w-]+) \(hil docs tables\) -->\n)(.*?)(<!-- end generated -->)", re.DOTALL)
NATIVE_BACKENDS = ("native",)
DOC_WIDTH = 100  # the docs' prose is wrapped at 100 columns
_COMPILER = re.compile(rb"GCC: \([^)]*\) (\d+\.\d+\.\d+)|clang version (\d+\.\d+\.\d+)")


@dataclass(frozen=True, slots=True)
class ImageFigures:
    """What a target's built image holds, or why there is none."""

    target: Target
    image: Path | None  # None: not built
    sizes: ImageSizes | None = None
    regions: tuple[Region, ...] = ()
    build_id: str | None = None
    compiler: str | None = None
    problem: str | None = None  # the image is there but could not be read


@dataclass(frozen=True, slots=True)
class ModelFigures:
    """One model's numbers in one run of one target."""

    model: str
    inferences: int
    latency_median_us: float
    latency_p95_us: float
    instructions: float | None  # median per inference, where the emulator counts
    virtual_us: float | None


@dataclass(frozen=True, slots=True)
class RunFigures:
    """What one results bundle measured on one target."""

    target: str
    bundle: Path
    when: str  # the run's date, YYYY-MM-DD
    build_id: str | None  # the firmware the device reported
    complete: bool
    models: tuple[ModelFigures, ...]


@dataclass(frozen=True, slots=True)
class Block:
    """A generated table: which doc, which marker, and how it is made."""

    doc: str  # relative to the docs folder
    name: str
    targets: Callable[[HilConfig], list[Target]]
    render: Callable[[HilConfig, list[Target], dict[str, RunFigures], date], str]


def zephyr_targets(config: HilConfig) -> list[Target]:
    return [t for t in config.targets.values() if t.zephyr_board]


def _compiler(image: Path) -> str | None:
    from elftools.elf.elffile import ELFFile

    with image.open("rb") as f:
        comment = ELFFile(f).get_section_by_name(".comment")
        data = comment.data() if comment is not None else b""
    found = _COMPILER.search(data)
    if not found:
        return None
    return f"GCC {found.group(1).decode()}" if found.group(1) else f"clang {found.group(2).decode()}"


def image_of(config: HilConfig, target: Target) -> Path:
    """Where ``hil build`` puts ``target``'s image (zephyr.exe on native boards)."""
    name = "zephyr.exe" if target.backend in NATIVE_BACKENDS else "zephyr.elf"
    return build_dir_of(config, target) / "zephyr" / name


def image_figures(config: HilConfig, target: Target) -> ImageFigures:
    image = image_of(config, target)
    if not image.is_file():
        return ImageFigures(target, None)
    build_dir = build_dir_of(config, target)
    try:
        from elftools.common.exceptions import ELFError
    except ImportError as err:
        raise ConfigError("pyelftools is missing: pip install 'tinyml-hil[build]'") from err
    try:
        sizes = image_sizes(image, build_dir)
        regions = memory_regions(image, kconfig_values(build_dir))
        compiler = _compiler(image)
        build_id = protocol.find_build_id(image.read_bytes())
    except (ELFError, OSError, HilError) as err:
        return ImageFigures(target, image, problem=f"{image} cannot be read: {err}")
    return ImageFigures(target, image, sizes, regions, build_id, compiler)


def _wrap(text: str) -> str:
    return textwrap.fill(text, DOC_WIDTH, break_on_hyphens=False, break_long_words=False)


def _bytes(n: int) -> str:
    return f"{n:,}"


def _size(n: int) -> str:
    """A region size as Zephyr's linker prints it: 4 MB, 256 KB, 1,000 B."""
    for unit, scale in (("MB", 1024**2), ("KB", 1024)):
        if n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n:,} B"


def _region(regions: Sequence[Region], name: str) -> str:
    found = next((r for r in regions if r.name == name), None)
    return f"{_bytes(found.used_bytes)} B of {_size(found.size_bytes)}" if found else "n/a"


def memory_row(figures: ImageFigures) -> str:
    target = figures.target
    head = f"| `{target.name}` | `{target.zephyr_board}` "
    if figures.image is None:
        return head + f"| not built (`hil build --target {target.name}`) | | | | |"
    if figures.sizes is None:
        return head + f"| {figures.problem} | | | | |"
    s = figures.sizes
    sections = " / ".join(_bytes(n) for n in (s.text_bytes, s.rodata_bytes, s.data_bytes, s.bss_bytes))
    models = ", ".join(m.name for m in s.models) or "none found"
    embedded = f"{models}: {_bytes(s.model_bytes)} / {_bytes(s.arena_bytes)}"
    build = f"`{figures.build_id}`" if figures.build_id else "none"
    return (
        head + f"| {_region(figures.regions, 'FLASH')} | {_region(figures.regions, 'RAM')} | {sections} "
        f"| {embedded} | {build}, {figures.compiler or 'compiler unknown'} |"
    )


def memory_table(config: HilConfig, targets: list[Target], _runs: dict[str, RunFigures], today: date) -> str:
    rows = [memory_row(image_figures(config, t)) for t in targets]
    return "\n".join(
        [
            _wrap(
                f"Made by `{COMMAND}` on {today.isoformat()} from the images in the build folder "
                "(`<build_dir>/<target>/zephyr/zephyr.elf`; `zephyr.exe` on native_sim). FLASH and RAM used: how far "
                "the image reaches into the flash and SRAM regions of the build's `.config`, as the linker's "
                "'Memory region' table counts (initialised data is stored in flash and copied to RAM); "
                "text / rodata / data / bss: the ELF's allocated sections (bss includes noinit and the tensor "
                "arenas). Models: the embedded `.tflite` arrays / their static arenas."
            ),
            "",
            "| target | Zephyr board | FLASH used | RAM used | text / rodata / data / bss (bytes) "
            "| models: flatbuffers / arenas (bytes) | build id, compiler |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )


def _date(metrics: dict[str, Any]) -> str:
    stamp = str(metrics.get("finished") or metrics.get("generated") or "")
    return stamp[:10] or "date unknown"


def run_figures(bundles: Iterable[Path]) -> dict[str, RunFigures]:
    """Per target, what the bundles measured; a later bundle wins for a target two of them ran."""
    from hil.report.runs import load_run, model_views

    found: dict[str, RunFigures] = {}
    for bundle in bundles:
        run = load_run(bundle)
        views: dict[str, list[ModelFigures]] = {}
        for view in model_views(run):
            if view.latency is None:
                continue
            cost = view.emulated_cost or {}
            views.setdefault(view.target, []).append(
                ModelFigures(
                    view.model,
                    view.latency.count,
                    view.latency.median_us,
                    view.latency.p95_us,
                    cost.get("instructions_median"),
                    cost.get("virtual_us_median"),
                )
            )
        for target in run.targets:
            found[target] = RunFigures(
                target,
                run.path,
                _date(run.metrics),
                run.device(target).get("build_id"),
                run.complete,
                tuple(views.get(target, ())),
            )
    return found


def latency_rows(config: HilConfig, target: Target, run: RunFigures | None) -> list[str]:
    head = f"| `{target.name}` "
    if run is None:
        return [head + f"| not run (`hil run --target {target.name}`) | | | | |"]
    image = image_of(config, target)
    built = protocol.find_build_id(image.read_bytes()) if image.is_file() else None
    if built and run.build_id and built != run.build_id:
        return [
            head + f"| stale: the results ({run.when}) are of build `{run.build_id}`, the build folder holds "
            f"`{built}`: run `hil run --target {target.name}` again | | | | |"
        ]
    if not run.models:
        return [head + f"| ran on {run.when}, no latency measured | | | | |"]
    when = f"{run.when}, build `{run.build_id or 'unknown'}`" + ("" if run.complete else " (incomplete run)")
    rows = []
    for m in run.models:
        instructions = f"{m.instructions:,.0f}" if m.instructions is not None else "not counted"
        virtual = duration(m.virtual_us) if m.virtual_us is not None else "—"
        rows.append(
            head + f"| {m.model} | {duration(m.latency_median_us)} / {duration(m.latency_p95_us)} "
            f"({m.inferences}) | {instructions} | {virtual} | {when} |"
        )
    return rows


def latency_table(config: HilConfig, targets: list[Target], runs: dict[str, RunFigures], today: date) -> str:
    rows = [row for t in targets for row in latency_rows(config, t, runs.get(t.name))]
    return "\n".join(
        [
            _wrap(
                f"Made by `{COMMAND} --results DIR` on {today.isoformat()} from the results bundles of `hil run` "
                "(`metrics.json`): device-measured latency (the firmware's ticks ÷ its clock), median and p95 over "
                "the run's inferences (their count in brackets); where the run recorded them (`emulated_cost`), "
                "the median instructions executed and virtual time per inference request. A target whose results "
                "are of another build than its build folder's is marked stale."
            ),
            "",
            "| target | model | latency median / p95 (inferences) | instructions | virtual time | run, firmware |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )


BLOCKS = (
    Block("firmware.md", "memory", zephyr_targets, memory_table),
    Block(
        "firmware.md",
        "latency",
        lambda c: [t for t in zephyr_targets(c) if t.backend in ("qemu", *NATIVE_BACKENDS)],
        latency_table,
    ),
    Block(
        "renode.md",
        "renode-latency",
        lambda c: [t for t in zephyr_targets(c) if t.backend == "renode"],
        latency_table,
    ),
)


def replace_block(text: str, name: str, body: str, where: str = "the doc") -> str:
    """``text`` with what lies between ``name``'s markers replaced by ``body``; the rest is kept as it is."""
    matches = [m for m in _BLOCK.finditer(text) if m.group(2) == name]
    if len(matches) != 1:
        found = "no" if not matches else f"{len(matches)}"
        raise ConfigError(
            f"{where}: {found} block '{START.format(name=name)}' ... '{END}' (expected one): add the markers "
            "where the table belongs"
        )
    m = matches[0]
    return text[: m.start(3)] + body.rstrip("\n") + "\n" + text[m.end(3) :]


def block_names(text: str) -> list[str]:
    return [m.group(2) for m in _BLOCK.finditer(text)]


def generate(
    config: HilConfig, docs_dir: Path, results: Sequence[Path], only: Sequence[str] = (), today: date | None = None
) -> dict[Path, tuple[str, str, list[str]]]:
    """Per doc: its text now, its text with the tables made again, and the blocks that changed."""
    today = today or datetime.now(UTC).date()
    runs = run_figures(results)
    docs: dict[Path, tuple[str, str, list[str]]] = {}
    for block in BLOCKS:
        if only and block.name not in only:
            continue
        path = docs_dir / block.doc
        if path not in docs:
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as err:
                raise ConfigError(f"{path}: cannot read it ({err.strerror}): pass --docs DIR") from err
            docs[path] = (text, text, [])
        before, current, changed = docs[path]
        body = block.render(config, block.targets(config), runs, today)
        updated = replace_block(current, block.name, body, str(path))
        docs[path] = (before, updated, [*changed, block.name] if updated != current else changed)
    return docs


def default_docs_dir() -> Path:
    """The docs of the checkout this package runs from (an editable install), else ./docs."""
    beside = Path(__file__).resolve().parent.parent / "docs"
    return beside if (beside / "firmware.md").is_file() else Path.cwd() / "docs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--write", action="store_true", help="rewrite the tables in the docs (default: print them)")
    parser.add_argument("--results", type=Path, action="append", default=[], metavar="DIR",
                        help="a results bundle of hil run, repeatable (a later one wins per target)")  # fmt: skip
    parser.add_argument("--only", action="append", choices=sorted({b.name for b in BLOCKS}), default=[],
                        help="make only these tables (default: all); --only memory keeps the others")  # fmt: skip
    parser.add_argument("--docs", type=Path, help="the docs folder (default: this checkout's docs/)")


def run_command(config: HilConfig, args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    docs_dir = (args.docs or default_docs_dir()).resolve()
    docs = generate(config, docs_dir, [r.resolve() for r in args.results], args.only)
    for path, (before, after, changed) in docs.items():
        if args.write:
            if after != before:
                path.write_text(after, encoding="utf-8")
            out(f"{path}: {', '.join(changed) or 'nothing'} rewritten")
            continue
        for name in block_names(after):
            if args.only and name not in args.only:
                continue
            block = next(m for m in _BLOCK.finditer(after) if m.group(2) == name)
            state = "would change" if name in changed else "unchanged"
            out(f"{path}: {name} ({state})\n{block.group(3)}")
    return 0


def register(sub: Any) -> None:
    """``hil docs tables`` on the ``hil`` command's subparsers."""
    docs = sub.add_parser("docs", help="documentation made from this machine's builds and results")
    what = docs.add_subparsers(dest="docs_command", required=True)
    tables = what.add_parser("tables", help="make the docs' memory and latency tables from builds and results")
    add_arguments(tables)
    tables.set_defaults(func=run_command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.doctables", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="hil.toml to use (default: $HIL_CONFIG or ./hil.toml)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_command(load_config(args.config), args)
    except HilError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
