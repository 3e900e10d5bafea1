"""``hil lab list|scan|check|release-quarantine`` and ``hil flash``: the bench from the command line."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table
from serial.tools import list_ports

from hil.config import HilConfig
from hil.errors import BoardError
from hil.lab.bench import Lab
from hil.lab.image import load_image
from hil.lab.inventory import LabBoard
from hil.lab.strategy import BoardStrategy

EXIT_PROBLEMS = 1
EXIT_BOARD_ERROR = 3
WAIT_FOREVER_S = 10.0**9

# USB ids of debug probes and boards (vendor, product or None for any) -> (runner, product).
KNOWN_PROBES: dict[tuple[int, int | None], tuple[str, str]] = {
    (0x1366, None): ("jlink", "SEGGER J-Link (nRF52840 DK: J-Link OB)"),
    (0x0483, 0x3748): ("openocd", "ST-LINK/V2"),
    (0x0483, 0x374B): ("openocd", "ST-LINK/V2-1 (Nucleo)"),
    (0x0483, 0x374E): ("openocd", "STLINK-V3"),
    (0x0483, 0x374F): ("openocd", "STLINK-V3"),
    (0x0483, 0x3753): ("openocd", "STLINK-V3"),
    (0x0D28, 0x0204): ("pyocd", "DAPLink CMSIS-DAP"),
    (0x1915, None): ("nrfutil", "Nordic Semiconductor"),
    (0x2341, 0x805A): ("bossac", "Arduino Nano 33 BLE"),
    (0x2341, 0x005A): ("bossac", "Arduino Nano 33 BLE (bootloader)"),
}


def _mark(ok: bool) -> str:
    return "[green]yes[/green]" if ok else "[red]no[/red]"


def cmd_lab_list(config: HilConfig, args: argparse.Namespace, console: Console) -> int:  # noqa: ARG001 - uniform
    lab = Lab.load(config)
    table = Table(title=f"Boards in {lab.source or 'no lab file'}")
    for column in ("id", "platform", "serves", "port", "runner tool", "locked by", "quarantined"):
        table.add_column(column, overflow="fold")
    for board in lab.boards:
        s = lab.status(board)
        port = _mark(s.port == "yes") if s.port in ("yes", "no") else s.port
        tool = f"[green]{board.runner}[/green]" if s.tool is None else f"[red]{board.runner}: missing[/red]"
        holder = s.holder.describe() if s.holder else ""
        table.add_row(board.id, ", ".join(board.platforms), " ".join(s.targets), port, tool, holder,
                      f"[red]since {s.quarantined}[/red]" if s.quarantined else "")  # fmt: skip
    console.print(table)
    if not lab.boards:
        console.print("no boards: give --lab FILE (a twister hardware map), \\[lab] file in hil.toml, or ./lab.yaml")
    return 0


def _by_id(device: str) -> str:
    """The stable /dev/serial/by-id name of a port, where udev made one."""
    by_id = Path("/dev/serial/by-id")
    if by_id.is_dir():
        for link in sorted(by_id.iterdir()):
            if link.resolve() == Path(device).resolve():
                return str(link)
    return device


def scan_entries() -> list[dict[str, object]]:
    """Hardware-map entries for every serial port whose USB ids are a known probe or board."""
    entries = []
    for port in list_ports.comports():
        if port.vid is None:
            continue
        known = KNOWN_PROBES.get((port.vid, port.pid)) or KNOWN_PROBES.get((port.vid, None))
        if known is None:
            continue
        runner, product = known
        serial_number = port.serial_number or ""
        entries.append({
            "id": serial_number or Path(port.device).name,
            "platform": "FILL_IN (a Zephyr board, e.g. nrf52840dk/nrf52840)",
            "product": port.product or product,
            "runner": runner,
            "probe_id": serial_number,
            "serial": _by_id(port.device),
            "baud": 115200,
            "connected": True,
        })  # fmt: skip
    return entries


def cmd_lab_scan(config: HilConfig, args: argparse.Namespace, console: Console) -> int:  # noqa: ARG001
    entries = scan_entries()
    if not entries:
        ports = len(list_ports.comports())
        console.print(f"no debug probe or known board attached ({ports} serial port(s) seen, none with a known USB id)")
        return 0
    text = yaml.safe_dump(entries, sort_keys=False)
    if args.out:
        args.out.write_text(text)
        console.print(f"wrote {len(entries)} proposed board(s) to {args.out}: fill in each platform")
    else:
        print(text, end="")
    return 0


def board_problems(lab: Lab, board: LabBoard) -> list[str]:
    """What would stop a run on ``board`` now."""
    status = lab.status(board)
    problems = []
    if status.port == "no":
        problems.append(f"console port {board.serial} does not exist")
    if status.tool:
        problems.append(status.tool)
    if board.runner not in ("gdb", "command") and not board.probe_id:
        problems.append("no probe_id: with two probes attached the runner may pick the wrong one")
    for what, argv in (
        ("power_on", board.power_on),
        ("power_off", board.power_off),
        ("power_cycle", board.power_cycle),
    ):
        if argv and shutil.which(argv[0]) is None:
            problems.append(f"{what} command {argv[0]} not found")
    if board.place:
        try:
            import labgrid  # noqa: F401 - only checking that it imports
        except ImportError:
            problems.append(f"labgrid place {board.place} needs labgrid: pip install 'tinyml-hil[lab]'")
    if reason := lab.why_not(board):
        problems.append(reason)
    return problems


def cmd_lab_check(config: HilConfig, args: argparse.Namespace, console: Console) -> int:  # noqa: ARG001 - uniform
    lab = Lab.load(config)
    table = Table(title=f"What would stop a run ({lab.source or 'no lab file'})")
    for column in ("board", "ready", "problems"):
        table.add_column(column, overflow="fold")
    blocked = 0
    for board in lab.boards:
        problems = board_problems(lab, board)
        blocking = [p for p in problems if not p.startswith("no probe_id")]
        blocked += bool(blocking)
        table.add_row(board.id, _mark(not blocking), "; ".join(problems) or "none")
    console.print(table)
    return EXIT_PROBLEMS if blocked else 0


def cmd_lab_release(config: HilConfig, args: argparse.Namespace, console: Console) -> int:
    lab = Lab.load(config)
    if lab.quarantine.release(args.board):
        console.print(f"board {args.board} is out of quarantine")
    else:
        console.print(f"board {args.board} was not quarantined")
    return 0


def cmd_flash(config: HilConfig, args: argparse.Namespace, console: Console) -> int:
    lab = Lab.load(config)
    target = config.target(args.target)
    artifacts = (args.out or config.results_dir).resolve() / "artifacts" / target.board_id
    with lab.lease(target, fixtures=tuple(args.fixture or ()), wait_s=args.wait or 0.0,
                   ignore_quarantine=args.ignore_quarantine, purpose=f"hil flash {target.name}") as lease:  # fmt: skip
        image = load_image(args.firmware, artifacts / "images") if args.firmware else None
        try:
            facts = BoardStrategy(lab, lease, artifacts).bring_up(image, force_flash=not args.skip_if_running)
        except BoardError as err:
            console.print(f"[red]board error:[/red] {err}")
            console.print(f"  tool output: {artifacts / f'bench-{lease.board.id}.log'}")
            return EXIT_BOARD_ERROR
    table = Table(title=f"{lease.board.id} ready")
    table.add_column("fact")
    table.add_column("value", overflow="fold")
    for key, value in facts.items():
        table.add_row(key, value)
    console.print(table)
    return 0


def add_bench_options(parser: argparse.ArgumentParser) -> None:
    """Options every command that takes a board has (``hil run``, ``hil flash``)."""
    parser.add_argument("--firmware", type=lambda s: Path(s).resolve(),
                        help="image to flash first: ELF, HEX, BIN or a Zephyr build directory")  # fmt: skip
    parser.add_argument("--fixture", action="append", help="only boards with this fixture (repeatable)")
    parser.add_argument("--wait", type=float, nargs="?", const=WAIT_FOREVER_S, default=0.0, metavar="SECONDS",
                        help="queue for a busy board (forever without SECONDS); default: fail at once")  # fmt: skip
    parser.add_argument("--ignore-quarantine", action="store_true", help="use a quarantined board anyway")


def register(sub: argparse._SubParsersAction, console: Console) -> None:
    def bind(parser: argparse.ArgumentParser, func) -> None:
        parser.set_defaults(func=lambda config, args: func(config, args, console))

    lab = sub.add_parser("lab", help="the bench: list, scan, check boards; release a quarantined one")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    bind(lab_sub.add_parser("list", help="every board of the lab file: port, tool, lock, quarantine"), cmd_lab_list)
    scan = lab_sub.add_parser("scan", help="propose hardware-map entries for attached probes and boards")
    scan.add_argument("--out", type=Path, help="write the proposed entries to this YAML file")
    bind(scan, cmd_lab_scan)
    bind(lab_sub.add_parser("check", help="per board, what would stop a run"), cmd_lab_check)
    release = lab_sub.add_parser("release-quarantine", help="let a quarantined board run again")
    release.add_argument("board", help="board id")
    bind(release, cmd_lab_release)

    flash = sub.add_parser("flash", help="flash a bench board, boot it and check it runs that build")
    flash.add_argument("--target", required=True, help="board:<platform> or board:<id>")
    flash.add_argument("--out", type=Path, help="where the flash and console logs go (default: results/)")
    flash.add_argument("--skip-if-running", action="store_true", help="do not flash a board that runs this build")
    add_bench_options(flash)
    bind(flash, cmd_flash)
