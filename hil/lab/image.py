"""A firmware image to flash: an ELF, an Intel HEX, a raw binary or a Zephyr build directory.

Flashers need different forms (gdb loads an ELF, nrfjprog a HEX, bossac a BIN); the missing
ones are made from the ELF with ``arm-none-eabi-objcopy``. The image's build id is read from
its bytes (the firmware carries ``HIL_BUILD_ID=<16 hex>``), so the host knows what it flashes
before it flashes it and can check afterwards that the board runs exactly that.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hil import protocol as p
from hil.errors import ConfigError

OBJCOPY = "arm-none-eabi-objcopy"
OBJCOPY_TIMEOUT_S = 60
_KINDS = {".elf": "elf", ".hex": "hex", ".ihex": "hex", ".bin": "bin"}


@dataclass(frozen=True, slots=True)
class FirmwareImage:
    """The forms of one image that exist (or were made) and what the image is."""

    source: Path
    build_dir: Path | None
    elf: Path | None
    hex: Path | None
    bin: Path | None
    build_id: str | None
    sha256: str

    def form(self, kind: str) -> Path:
        path = {"elf": self.elf, "hex": self.hex, "bin": self.bin}[kind]
        if path is None:
            raise ConfigError(f"{self.source} has no {kind.upper()} form, and none can be made from it: give the ELF")
        return path

    def facts(self) -> dict[str, str]:
        return {"firmware": str(self.source), "firmware_sha256": self.sha256, "firmware_build_id": self.build_id or ""}


def _hex_bytes(path: Path) -> bytes:
    """The data bytes of an Intel HEX file, in file order (enough to find the build id marker)."""
    out = bytearray()
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            record = bytes.fromhex(line.removeprefix(":"))
        except ValueError:
            raise ConfigError(f"{path}:{number}: not an Intel HEX record") from None
        if not line.startswith(":") or len(record) < 5 or len(record) != record[0] + 5 or sum(record) & 0xFF:
            raise ConfigError(f"{path}:{number}: damaged Intel HEX record (length or checksum)")
        if record[3] == 0:
            out += record[4:-1]
    return bytes(out)


def _objcopy(elf: Path, kind: str, out_dir: Path) -> Path | None:
    tool = shutil.which(OBJCOPY)
    if tool is None:
        return None
    out = out_dir / f"{elf.stem}.{kind}"
    out_dir.mkdir(parents=True, exist_ok=True)
    fmt = "ihex" if kind == "hex" else "binary"
    try:
        subprocess.run(
            [tool, "-O", fmt, str(elf), str(out)], check=True, capture_output=True, timeout=OBJCOPY_TIMEOUT_S
        )
    except subprocess.CalledProcessError as err:
        why = " ".join(err.stderr.decode(errors="replace").split()).replace(f"{tool}: ", "")
        raise ConfigError(f"{elf}: not a usable ELF image ({OBJCOPY} could not make a {kind}: {why})") from err
    return out


def load_image(path: Path, work_dir: Path) -> FirmwareImage:
    """Describe ``path`` (file or Zephyr build directory); make missing forms from an ELF in ``work_dir``."""
    path = path.resolve()
    build_dir = None
    if path.is_dir():
        build_dir = path
        zephyr = path / "zephyr"
        if not (zephyr / "zephyr.elf").is_file():
            raise ConfigError(
                f"{path} is not a Zephyr build directory (no zephyr/zephyr.elf): give the build dir or an image"
            )
        forms = {kind: zephyr / f"zephyr.{kind}" for kind in ("elf", "hex", "bin")}
        source = zephyr / "zephyr.elf"
    elif path.is_file():
        kind = _KINDS.get(path.suffix.lower())
        if kind is None:
            raise ConfigError(
                f"{path}: unknown image type {path.suffix!r}: give an .elf, .hex, .bin or a build directory"
            )
        forms = {kind: path}
        source = path
    else:
        raise ConfigError(f"firmware {path} does not exist")
    found = {kind: f for kind, f in forms.items() if f.is_file()}
    if "elf" in found:
        with found["elf"].open("rb") as f:
            if f.read(4) != b"\x7fELF":
                raise ConfigError(f"{found['elf']} is not an ELF file")
        for kind in ("hex", "bin"):
            if kind not in found and (made := _objcopy(found["elf"], kind, work_dir)):
                found[kind] = made
    data = _hex_bytes(found["hex"]) if source.suffix.lower() in (".hex", ".ihex") else source.read_bytes()
    try:
        build_id = p.find_build_id(data)
    except p.ProtocolError as err:
        raise ConfigError(f"{source}: {err}") from err
    return FirmwareImage(
        source=source,
        build_dir=build_dir,
        elf=found.get("elf"),
        hex=found.get("hex"),
        bin=found.get("bin"),
        build_id=build_id,
        sha256=hashlib.sha256(source.read_bytes()).hexdigest(),
    )
