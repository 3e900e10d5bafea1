"""Reading a TOML file the user wrote: UTF-8 (a BOM is fine), parse errors with their line, and the
line of every key (``tomllib`` keeps none), so that a problem can be shown where it is.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.errors import ConfigError
from hil.inputs import Loc

_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=\s*(.*)$")
_PART = re.compile(_KEY)
_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _parts(dotted: str) -> tuple[str, ...]:
    parts = []
    for token in _PART.findall(dotted):
        if token.startswith('"'):
            try:
                parts.append(json.loads(token))
            except ValueError:
                parts.append(token[1:-1])
        elif token.startswith("'"):
            parts.append(token[1:-1])
        else:
            parts.append(token)
    return tuple(parts)


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The first line (1-based) of each table header and key, by its full key path."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    closing: str | None = None  # inside a multi-line string that ends with this
    for number, line in enumerate(text.splitlines(), start=1):
        if closing:
            if closing in line:
                closing = None
            continue
        if header := _HEADER.match(line):
            table = _parts(header.group(1))
            lines.setdefault(table, number)
            continue
        if assign := _ASSIGN.match(line):
            keys = table + _parts(assign.group(1))
            for depth in range(len(table) + 1, len(keys) + 1):
                lines.setdefault(keys[:depth], number)
            value = assign.group(2).lstrip()
            for quotes in ('"""', "'''"):
                if value.startswith(quotes) and value.count(quotes) == 1:
                    closing = quotes
    return lines


@dataclass(frozen=True, slots=True)
class TomlFile:
    """A parsed TOML file and where its keys are."""

    path: Path
    data: dict[str, Any]
    lines: dict[tuple[str, ...], int]

    def line_of(self, loc: Loc) -> int | None:
        """The line of the deepest key of ``loc`` that the file spells out (list indices skipped)."""
        keys = tuple(str(part) for part in loc if not isinstance(part, int))
        for depth in range(len(keys), 0, -1):
            if keys[:depth] in self.lines:
                return self.lines[keys[:depth]]
        return None


def parse_toml(path: Path, data: bytes) -> TomlFile:
    """Parse ``data`` (the bytes of ``path``); a :class:`ConfigError` names the file and line if it is not TOML."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}): save it as UTF-8"
        ) from err
    text = text.removeprefix("\ufeff")
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        at = _AT.search(message)
        where = f"{path}:{at.group(1)}" if at else str(path)
        detail = _AT.sub("", message) + (f" (column {at.group(2)})" if at else "")
        raise ConfigError(f"{where}: not valid TOML: {detail}") from err
    return TomlFile(path, parsed, key_lines(text))


def read_toml(path: Path) -> TomlFile:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror or err}") from err
    return parse_toml(path, data)
