"""Drivers that put an image on a board, chosen by the board's ``runner``.

* ``west flash -d BUILD_DIR --runner R`` when the image is a Zephyr build directory: the
  user's own habit, the runner's own output;
* the runner's own tool for a prebuilt image (pyocd, openocd, nrfjprog, nrfutil, JLinkExe,
  STM32_Programmer_CLI, bossac), its argv built from the lab entry;
* ``gdb``: load through any GDB server (OpenOCD, pyOCD, J-Link, QEMU ``-gdb``, Renode
  ``machine StartGdbServer``), verify with ``compare-sections``, reset, detach;
* ``command``: the user's template with ``{elf}``, ``{hex}``, ``{bin}``, ``{probe_id}``, ``{port}``.

Each flasher can also reset the board through its tool (:meth:`Flasher.reset_argv`), which the
strategy prefers to a power cycle.
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from hil.errors import BoardError, ConfigError
from hil.lab.commands import CommandResult, run_command
from hil.lab.image import FirmwareImage
from hil.lab.inventory import LabBoard

GDB_CANDIDATES = ("gdb-multiarch", "arm-none-eabi-gdb", "gdb")
RESET_TIMEOUT_S = 30.0

# The tool each runner flashes a prebuilt image with, and the Debian/PyPI/vendor source of it.
TOOLS = {
    "pyocd": ("pyocd", "pip install pyocd"),
    "openocd": ("openocd", "apt install openocd"),
    "nrfjprog": ("nrfjprog", "Nordic's nRF Command Line Tools"),
    "nrfutil": ("nrfutil", "Nordic's nrfutil (with its device command)"),
    "jlink": ("JLinkExe", "SEGGER's J-Link Software Pack"),
    "stm32cubeprogrammer": ("STM32_Programmer_CLI", "ST's STM32CubeProgrammer"),
    "bossac": ("bossac", "apt install bossa-cli"),
}

# A gdb script that checks every step: a batch of -ex commands exits with the last one's status,
# so a failed load would otherwise "succeed".
_GDB_SCRIPT = """\
import gdb

def fail(name, why, code):
    print("HIL-GDB FAILED %s: %s" % (name, why), flush=True)
    try:
        gdb.execute("disconnect")  # not detach: that would start a blank or half-written board
    except gdb.error:
        pass
    gdb.execute("quit %d" % code)

def step(name, command):
    try:
        out = gdb.execute(command, to_string=True)
    except gdb.error as err:
        fail(name, err, 3)
    print(out, end="", flush=True)
    if command.startswith("monitor") and "unknown command" in out:
        fail(name, out.strip(), 6)  # the server refused the monitor command but gdb calls it a success
    return out

gdb.execute("set confirm off")
gdb.execute("set pagination off")
gdb.execute("set tcp connect-timeout 5")  # a board just powered on may take a moment to serve
step("connect", "target extended-remote {server}")
{load}
{reset}
step("detach", "detach")
print("HIL-GDB DONE", flush=True)
"""
_GDB_LOAD = """\
step("load", "load")
if "MIS-MATCHED" in step("verify", "compare-sections"):
    fail("verify", "sections differ from the image after load", 4)"""


@dataclass(frozen=True, slots=True)
class FlashPlan:
    """What a flasher will run, for the log and the results."""

    method: str
    argv: tuple[str, ...]


class Flasher:
    """Flashes one board; the subclass decides how from the board's runner."""

    method = "tool"

    def __init__(self, board: LabBoard, log: Path) -> None:
        self.board = board
        self.log = log

    def plan(self, image: FirmwareImage) -> FlashPlan:
        raise NotImplementedError

    def _script(self, name: str, text: str) -> Path:
        """A script file for the tool, kept beside the flash log."""
        path = self.log.parent / f"{self.board.id}-{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def tool_missing(self) -> str | None:
        """Why this flasher's tool cannot run here, or None."""
        return None

    def flash(self, image: FirmwareImage) -> CommandResult:
        plan = self.plan(image)
        return run_command(plan.argv, self.board.flash_timeout_s, self.log)

    def reset_argv(self) -> tuple[str, ...] | None:
        """How the runner's tool resets the board (None if it cannot)."""
        return None

    def reset(self) -> CommandResult | None:
        argv = self.reset_argv()
        return run_command(argv, RESET_TIMEOUT_S, self.log) if argv else None


class WestFlasher(Flasher):
    method = "west"

    def tool_missing(self) -> str | None:
        return None if shutil.which("west") else "west is not installed: pip install 'tinyml-hil[build]'"

    def plan(self, image: FirmwareImage) -> FlashPlan:
        if image.build_dir is None:
            raise ConfigError(f"west flash needs a build directory, not {image.source}")
        argv = ["west", "flash", "--skip-rebuild", "-d", str(image.build_dir), "--runner", self.board.runner]
        if self.board.probe_id:
            argv += ["--dev-id", self.board.probe_id]  # every Zephyr runner with a dev_id capability takes -i/--dev-id
        if self.board.runner_params:
            argv += ["--", *self.board.runner_params]
        return FlashPlan(self.method, tuple(argv))


class ToolFlasher(Flasher):
    """The runner's own tool on a prebuilt image (no Zephyr workspace needed)."""

    @property
    def tool(self) -> str:
        return TOOLS[self.board.runner][0]

    def tool_missing(self) -> str | None:
        if shutil.which(self.tool):
            return None
        return f"{self.tool} (runner {self.board.runner}) is not installed: {TOOLS[self.board.runner][1]}"

    def _chip(self, what: str) -> str:
        if not self.board.chip:
            raise ConfigError(f"board {self.board.id}: runner {self.board.runner} needs chip ({what}) in the lab file")
        return self.board.chip

    def _openocd_head(self) -> list[str]:
        if not self.board.openocd_config:
            raise ConfigError(
                f"board {self.board.id}: runner openocd needs openocd_config (e.g. board/st_nucleo_f4.cfg)"
            )
        argv = ["openocd", *(arg for cfg in self.board.openocd_config for arg in ("-f", cfg))]
        if self.board.probe_id:
            argv += ["-c", f"adapter serial {self.board.probe_id}"]
        return argv

    def _jlink(self, script: str) -> list[str]:
        path = self._script("jlink-commands.jlink", script)
        argv = ["JLinkExe", "-nogui", "1", "-ExitOnError", "1", "-if", "swd", "-speed", "auto"]
        argv += ["-device", self._chip("J-Link device name, e.g. nRF52840_xxAA")]
        if self.board.probe_id:
            argv += ["-SelectEmuBySN", self.board.probe_id]
        return [*argv, "-CommanderScript", str(path)]

    def _nrf_family(self) -> str:
        return (self.board.chip or "NRF52").upper()[:5]

    def plan(self, image: FirmwareImage) -> FlashPlan:
        probe = self.board.probe_id
        extra = list(self.board.runner_params)
        match self.board.runner:
            case "pyocd":
                argv = ["pyocd", "flash", "--no-wait", "-t", self._chip("pyOCD target, e.g. nrf52840"), *extra]
                argv += ["-u", probe] if probe else []
                argv.append(str(image.form("hex")))
            case "openocd":
                elf = image.form("elf")
                argv = [*self._openocd_head(), *extra, "-c", f"program {elf} verify reset exit"]
            case "nrfjprog":
                argv = ["nrfjprog", "-f", self._nrf_family(), *extra, "--program", str(image.form("hex"))]
                argv += ["--sectorerase", "--verify", "--reset"] + (["--snr", probe] if probe else [])
            case "nrfutil":
                argv = ["nrfutil", "device", "program", "--firmware", str(image.form("hex")), *extra]
                argv += ["--options", "chip_erase_mode=ERASE_RANGES_TOUCHED_BY_FIRMWARE,verify=VERIFY_READ"]
                argv += ["--serial-number", probe] if probe else []
            case "jlink":
                argv = [*self._jlink(f'r\nh\nloadfile "{image.form("hex")}"\nr\ng\nexit\n'), *extra]
            case "stm32cubeprogrammer":
                connect = ["port=SWD"] + ([f"sn={probe}"] if probe else [])
                argv = ["STM32_Programmer_CLI", "-c", *connect, *extra, "-w", str(image.form("hex")), "-v", "-rst"]
            case "bossac":
                if not self.board.serial:
                    raise ConfigError(f"board {self.board.id}: runner bossac needs serial (the bootloader's port)")
                argv = ["bossac", "-p", self.board.serial, *extra, "-R", "-e", "-w", "-v", "-b", str(image.form("bin"))]
            case other:
                raise ConfigError(f"board {self.board.id}: runner {other} has no tool to flash a prebuilt image with")
        return FlashPlan(self.board.runner, tuple(argv))

    def reset_argv(self) -> tuple[str, ...] | None:
        probe = self.board.probe_id
        match self.board.runner:
            case "pyocd":
                argv = ["pyocd", "reset", "--no-wait", "-t", self._chip("pyOCD target")] + (
                    ["-u", probe] if probe else []
                )
            case "openocd":
                argv = [*self._openocd_head(), "-c", "init", "-c", "reset run", "-c", "shutdown"]
            case "nrfjprog":
                argv = ["nrfjprog", "-f", self._nrf_family(), "--reset"] + (["--snr", probe] if probe else [])
            case "nrfutil":
                argv = ["nrfutil", "device", "reset"] + (["--serial-number", probe] if probe else [])
            case "jlink":
                argv = self._jlink("r\ng\nexit\n")
            case "stm32cubeprogrammer":
                argv = ["STM32_Programmer_CLI", "-c", "port=SWD", *([f"sn={probe}"] if probe else []), "-rst"]
            case _:
                return None
        return tuple(argv)


class GdbFlasher(Flasher):
    """Load through a GDB server: connect, load, compare-sections, reset, detach — each step checked."""

    method = "gdb"

    @property
    def gdb(self) -> str | None:
        if self.board.gdb:
            return shutil.which(self.board.gdb)
        return next((path for name in GDB_CANDIDATES if (path := shutil.which(name))), None)

    def tool_missing(self) -> str | None:
        if self.gdb:
            return None
        return f"no GDB for Arm found ({self.board.gdb or ', '.join(GDB_CANDIDATES)}): apt install gdb-multiarch"

    def _argv(self, load: bool, elf: Path | None) -> tuple[str, ...]:
        script = _GDB_SCRIPT.format(
            server=self.board.gdb_server,
            load=_GDB_LOAD if load else "",
            reset=f'step("reset", {self.board.gdb_reset!r})' if self.board.gdb_reset else "",
        )
        path = self._script("gdb-flash.py" if load else "gdb-reset.py", script)
        return (self.gdb or "gdb-multiarch", "-nx", "-batch", "-x", str(path), *([str(elf)] if elf else []))

    def plan(self, image: FirmwareImage) -> FlashPlan:
        return FlashPlan(self.method, self._argv(True, image.form("elf")))

    def flash(self, image: FirmwareImage) -> CommandResult:
        result = super().flash(image)
        if result.ok and "HIL-GDB DONE" not in result.output:
            return CommandResult(
                result.argv, 5, result.output + "\n[gdb ended before its last step]", result.duration_s
            )
        return result

    def reset_argv(self) -> tuple[str, ...] | None:
        return self._argv(False, None)


class CommandFlasher(Flasher):
    method = "command"

    def plan(self, image: FirmwareImage) -> FlashPlan:
        template = self.board.flash_command or ""
        fields = {
            "elf": image.elf,
            "hex": image.hex,
            "bin": image.bin,
            "probe_id": self.board.probe_id,
            "port": self.board.serial,
            "board": self.board.id,
        }
        argv = []
        for arg in shlex.split(template):
            try:
                argv.append(arg.format(**{k: "" if v is None else str(v) for k, v in fields.items()}))
            except (KeyError, IndexError, ValueError) as err:
                raise ConfigError(f"board {self.board.id}: flash_command {template!r}: unknown field {err}") from err
            for name, value in fields.items():
                if "{" + name + "}" in arg and value is None:
                    raise ConfigError(f"board {self.board.id}: flash_command uses {{{name}}} but the image has none")
        if not argv:
            raise ConfigError(f"board {self.board.id}: flash_command is empty")
        return FlashPlan(self.method, tuple(argv))

    def tool_missing(self) -> str | None:
        try:
            tool = shlex.split(self.board.flash_command or "")[0]
        except (ValueError, IndexError):
            return "flash_command is not a command line"
        return None if shutil.which(tool) else f"{tool} (flash_command) is not installed or not on PATH"


def flasher_for(board: LabBoard, image: FirmwareImage | None, log: Path) -> Flasher:
    """The flasher a board's runner calls for: west for a build directory, else the runner's own tool."""
    if board.runner == "gdb":
        return GdbFlasher(board, log)
    if board.runner == "command":
        return CommandFlasher(board, log)
    if image is not None and image.build_dir is not None and shutil.which("west"):
        return WestFlasher(board, log)
    return ToolFlasher(board, log)


def flash_error(board: LabBoard, flasher: Flasher, result: CommandResult, attempts: int) -> BoardError:
    what = f"flashing failed {attempts} time(s); last: `{' '.join(result.argv[:3])} …` exited with {result.exit_code}"
    return BoardError(board.id, what, runner=f"{flasher.method}/{board.runner}", tail=result.tail())
