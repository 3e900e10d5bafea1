"""Problems in the files users write (hil.toml, model manifests, ...): where they are and what is wrong.

Every problem is one line, ``<file>:<line>: <key path>: <what is wrong>, got <value>``, with the
nearest valid key or name when the one given looks misspelt. The schemas themselves are pydantic
models; this module turns pydantic's errors into those lines.
"""

from __future__ import annotations

import bisect
import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hil.errors import ConfigError

Loc = tuple[str | int, ...]
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def suggest(word: str, options: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the option nearest ``word``, or nothing."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def describe(value: Any) -> str:
    """A value as the user wrote it (TOML/JSON spelling): ``"20"``, ``true``, ``nan``, ``a table``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:57] + '..."'
    if isinstance(value, dict):
        return "a table" if value else "an empty table"
    if isinstance(value, list | tuple):
        text = "[" + ", ".join(describe(v) for v in value[:5]) + (", ..." if len(value) > 5 else "") + "]"
        return text if len(text) <= 60 else f"a list of {len(value)} items"
    if value is None:
        return "null"
    return str(value)


def key_path(loc: Loc) -> str:
    """``targets."renode:x".timeout_s``: a key path as TOML would write it (list items as ``[2]``)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
        out += ("." if out else "") + text
    return out or "(top level)"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in one file."""

    path: Path
    line: int | None
    loc: Loc
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {key_path(self.loc)}: {self.message}" if self.loc else f"{where}: {self.message}"


class InputError(ConfigError):
    """A file the user wrote is wrong; one line per problem, each naming file, line and key."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --- pydantic errors as sentences ---------------------------------------------------------------

_EXPECTED = {
    "float_type": "expected a number",
    "finite_number": "expected a finite number (not nan or inf)",
    "float_parsing": "expected a number",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "int_parsing": "expected an integer",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "string_too_short": "expected a non-empty string",
    "too_short": "expected a non-empty list",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<", "less_than_equal": "≤"}


def _sentence(error: Any, candidates: Callable[[Loc], Iterable[str]], hints: Mapping[str, str]) -> str:
    kind, loc, value = error["type"], tuple(error["loc"]), error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(loc[-1])
        return f"unknown key {key!r}{suggest(key, candidates(loc[:-1]))}"
    if kind == "missing":
        hint = hints.get(str(loc[-1]))
        return f"missing key {str(loc[-1])!r}" + (f": {hint}" if hint else "")
    if kind in _BOUNDS:
        limit = next(iter(ctx.values()))
        return f"must be {_BOUNDS[kind]} {limit:g}, got {describe(value)}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = suggest(str(value), choices) if isinstance(value, str) else ""
        return f"{describe(value)} is not one of {', '.join(choices)}{hint}"
    if kind in _EXPECTED:
        return f"{_EXPECTED[kind]}, got {describe(value)}"
    message = str(error.get("msg", kind)).removeprefix("Value error, ")
    return f"{message}, got {describe(value)}" if "got" not in message else message


def problems_from(
    err: ValidationError,
    path: Path,
    *,
    prefix: Loc = (),
    line_of: Callable[[Loc], int | None] = lambda _loc: None,
    candidates: Callable[[Loc], Iterable[str]] = lambda _loc: (),
    hints: Mapping[str, str] | None = None,
) -> list[Problem]:
    """One :class:`Problem` per pydantic error; ``prefix`` is where the validated object sits in the file.

    ``candidates(loc)`` gives the valid keys of the table at ``loc`` (for "did you mean"); ``hints``
    says what a key is for, shown when it is missing.
    """
    errors = err.errors(include_url=False)
    # A misspelt key is also a missing one: say it once, as the misspelling.
    meant = {
        (tuple(e["loc"][:-1]), close[0])
        for e in errors
        if e["type"] == "extra_forbidden"
        and (
            close := difflib.get_close_matches(str(e["loc"][-1]), list(candidates(prefix + tuple(e["loc"][:-1]))), n=1)
        )
    }
    problems = []
    for error in errors:
        if error["type"] == "missing" and (tuple(error["loc"][:-1]), error["loc"][-1]) in meant:
            continue
        loc = prefix + tuple(error["loc"])
        sentence = _sentence({**error, "loc": loc}, candidates, hints or {})
        where = loc[:-1] if error["type"] == "missing" else loc  # the table that lacks the key
        problems.append(Problem(path, line_of(where), where, sentence))
    return problems


def model_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The field names of the (nested) model table at ``loc`` inside ``model``."""
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
        for arg in getattr(current, "__args__", ()):  # X | None
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                current = arg
    return list(getattr(current, "model_fields", {}))


# --- JSON: the line of each key ----------------------------------------------------------------


def json_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """The line (1-based) of every key and list item of a valid JSON document, by its path."""
    decoder = json.JSONDecoder()
    starts = [i for i, c in enumerate(text) if c == "\n"]
    lines: dict[tuple[str | int, ...], int] = {}

    def line(pos: int) -> int:
        return bisect.bisect_right(starts, pos) + 1

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    def value(pos: int, path: tuple[str | int, ...]) -> int:
        pos = skip(pos)
        lines.setdefault(path, line(pos))
        opener = text[pos] if pos < len(text) else ""
        if opener not in "{[" or not opener:
            return decoder.raw_decode(text, pos)[1]
        closer, index, pos = "}" if opener == "{" else "]", 0, skip(pos + 1)
        while pos < len(text) and text[pos] != closer:
            if opener == "{":
                key_pos = pos
                key, pos = decoder.raw_decode(text, pos)
                lines[(*path, key)] = line(key_pos)
                pos = value(skip(pos) + 1, (*path, key))  # past the colon
            else:
                pos = value(pos, (*path, index))
                index += 1
            pos = skip(pos)
            if pos < len(text) and text[pos] == ",":
                pos = skip(pos + 1)
        return pos + 1

    value(0, ())
    return lines


def json_line_of(text: str, loc: Loc) -> int | None:
    """The line of the deepest part of ``loc`` found in a JSON document (None if not valid JSON)."""
    try:
        lines = json_lines(text)
    except (ValueError, IndexError):
        return None
    for depth in range(len(loc), 0, -1):
        if loc[:depth] in lines:
            return lines[loc[:depth]]
    return None
