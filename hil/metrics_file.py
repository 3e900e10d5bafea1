"""Reading a run's metrics back (``hil report``): checked, so a corrupt or truncated file is one clear
error with its file and line, never a traceback.

Records are those :class:`hil.metrics.MetricsRecorder` writes and ``docs/metrics.md`` describes;
fields this module does not know are kept (newer writers may add some).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hil.errors import ConfigError
from hil.inputs import InputError, Problem, json_line_of, problems_from

SCHEMA_PREFIX = "tinyml-hil.metrics/"
Count = Annotated[int, Field(ge=0)]


class Record(BaseModel):
    """A record of a metrics file: the fields the report reads, typed; any others kept."""

    model_config = ConfigDict(extra="allow", strict=True)


class Latency(Record):
    median: float


class Golden(Record):
    vectors: Count
    mismatched: Count


class Evaluation(Record):
    metric: str
    score: float


class Events(Record):
    matched: Count
    expected: Count
    unexpected: list[Any]


class ModelMetrics(Record):
    inferences: Count | None = None
    latency_us: Latency | None = None
    arena_used_bytes: Count | None = None
    golden: Golden | None = None
    evaluation: Evaluation | None = None
    events: Events | None = None


class TestRecord(Record):
    framework: str
    test: str
    target: str
    status: Literal["PASS", "FAIL", "SKIP"]
    message: str = ""
    models: dict[str, ModelMetrics] = Field(default_factory=dict)


class DeviceRecord(Record):
    target: str


class Summary(Record):
    tests: Count
    passed: Count
    failed: Count
    skipped: Count


class MetricsFile(Record):
    """``tinyml-hil.metrics/1`` (before results bundles) and any later version's common fields."""

    schema_name: str = Field(alias="schema")
    targets: list[str]
    summary: Summary
    tests: list[TestRecord]
    devices: list[DeviceRecord] = Field(default_factory=list)
    run_id: str | None = None
    complete: bool | None = None
    environment: dict[str, Any] | None = None


class BundleMetricsFile(MetricsFile):
    """``tinyml-hil.metrics/2``: a results bundle knows its run, whether it completed, and where it ran."""

    run_id: str
    complete: bool
    environment: dict[str, Any]


SCHEMA_MODELS: dict[str, type[MetricsFile]] = {f"{SCHEMA_PREFIX}2": BundleMetricsFile}


def check_record(path: Path, line: int, record: Any) -> dict[str, Any]:
    """One line of ``metrics/<framework>.jsonl``: a test or device record, else an error naming file and line."""
    if not isinstance(record, dict):
        raise ConfigError(
            f"{path}:{line}: expected a JSON object (a test or device record), got a {type(record).__name__}"
        )
    model = DeviceRecord if record.get("kind") == "device" else TestRecord
    try:
        model.model_validate(record)
    except ValidationError as err:
        raise InputError(problems_from(err, path, line_of=lambda _loc: line)[:1]) from err
    return record


def _decode(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        line = err.object.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte offset {err.start}): the file is corrupt") from err


def read_metrics_json(path: Path) -> dict[str, Any]:
    """``metrics.json`` checked against :class:`MetricsFile`; the first problem raises, with its line."""
    text = _decode(path)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        started = text.lstrip().startswith(("{", "["))
        cut = " (the file ends early: truncated?)" if started and not text.rstrip().endswith(("}", "]")) else ""
        raise ConfigError(f"{path}:{err.lineno}: not valid JSON: {err.msg} (column {err.colno}){cut}") from err
    if not isinstance(raw, dict):
        message = f"not a tinyml-hil metrics file: expected a JSON object, got a {type(raw).__name__}"
        raise InputError([Problem(path, 1, (), message)])
    if not str(raw.get("schema", "")).startswith(SCHEMA_PREFIX):
        message = f"{raw.get('schema')!r}: not a tinyml-hil metrics file (expected {SCHEMA_PREFIX}…)"
        raise InputError([Problem(path, json_line_of(text, ("schema",)) or 1, ("schema",), message)])
    try:
        SCHEMA_MODELS.get(str(raw["schema"]), MetricsFile).model_validate(raw)
    except ValidationError as err:
        problems = problems_from(err, path, line_of=lambda loc: json_line_of(text, loc))
        raise InputError(problems[:1]) from err
    return raw


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of one ``.jsonl`` file; a line cut short by a crash at its end is dropped, any other bad
    line is an error naming the file and line."""
    lines = _decode(path).splitlines()
    last = max((n for n, line in enumerate(lines, start=1) if line.strip()), default=0)
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if number == last:
                continue  # the record a crash cut short; the rest still counts
            raise ConfigError(f"{path}:{number}: not a JSON record: {err.msg} (column {err.colno})") from err
        records.append(check_record(path, number, record))
    return records
