"""The results bundle: one folder per run, never mixed with another run, marked complete only at the end.

A run builds a fresh folder beside ``--out``, writes an incomplete ``metrics.json`` into it and
swaps it into place before any suite starts (:func:`open_bundle`); an exclusive lock beside the
folder keeps a second run out (:class:`OutLock`). :func:`write_metrics` joins what the suites
recorded (``metrics/*.jsonl``) with what the run knows (targets, environment, suites) into
``metrics.json``, one per target sub-bundle and a combined one for several targets.
:func:`read_bundle` is the read-only side for ``hil report``. The layout and every field are in
docs/metrics.md; the JSON Schema is ``metrics.schema.json`` next to this module.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import getpass
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from hil import __version__
from hil.errors import ConfigError, HilError
from hil.lab.state import Holder
from hil.metrics import METRICS_DIR, collect_metrics
from hil.metrics_file import read_metrics_json, read_records
from hil.report.environment import sha256_of
from hil.report.summary import write_run_log

SCHEMA = "tinyml-hil.metrics/2"
METRICS_FILE = "metrics.json"
RUN_LOG = "run.log"  # the per-test table and the summary, as text
RUNNING = "running (or hil was killed)"
# What a folder holds when it is a results bundle (of this version or an older one).
BUNDLE_MARKS = (METRICS_FILE, METRICS_DIR, "output.xml", "junit-robot.xml", "junit-pytest.xml", "log.html")
# Keys whose relative values are paths inside the bundle (re-rooted when sub-bundles are combined).
PATH_KEYS = frozenset({"console_log", "snapshot", "confusion_csv", "stimulus_file", "console", "junit", "path"})
LOCK_POLL_S = 0.5
RENAME_EXCHANGE = 2  # <linux/fs.h>
AT_FDCWD = -100


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    """UTC start time, pid and a random suffix: sortable, and unique enough to mark every process of the run."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{os.getpid()}-{os.urandom(4).hex()}"


def schema_path() -> Path:
    """The JSON Schema of ``metrics.json`` (package data)."""
    return Path(str(files("hil.report") / "metrics.schema.json"))


# --- the lock on --out ----------------------------------------------------------------------------


class ResultsBusy(ConfigError):
    """Another run writes into the same ``--out``."""


class OutLock:
    """An exclusive ``flock`` on ``.<name>.lock`` beside the results folder (inside it if the parent is read-only).

    The OS drops it when every holder of the file is gone, ``kill -9`` included; the suite processes
    inherit it (``fd``), so a second run cannot start while a killed run's suites still write.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        parent_writable = os.access(out_dir.parent, os.W_OK) or not out_dir.exists()
        self.path = out_dir.parent / f".{out_dir.name}.lock" if parent_writable else out_dir / ".hil.lock"
        self.fd: int | None = None

    def acquire(self, purpose: str, wait_s: float = 0.0) -> None:
        """Take the lock, queueing up to ``wait_s``; a :class:`ResultsBusy` naming the holder if it stays taken."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as err:
            raise ConfigError(
                f"cannot write results to {self.out_dir}: {err.strerror or err}: give --out a writable directory"
            ) from err
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(self.path)
                    os.close(fd)
                    who = holder.describe() if holder else "another process"
                    raise ResultsBusy(
                        f"results folder {self.out_dir} is in use by {who}: wait for that run, "
                        "queue with --wait, or give another --out"
                    ) from None
                time.sleep(LOCK_POLL_S)
        holder = Holder(os.getpid(), getpass.getuser(), socket.gethostname(), now(), purpose)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(holder)).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)  # the lock goes when the suites that inherited it are gone too

    def __enter__(self) -> OutLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(path: Path) -> Holder | None:
    try:
        return Holder(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


# --- a fresh folder, swapped in ---------------------------------------------------------------------


def is_bundle(folder: Path) -> bool:
    return any((folder / mark).exists() for mark in BUNDLE_MARKS)


def check_out_dir(out_dir: Path) -> None:
    """``--out`` must be new, an empty folder or a bundle, and writable; else a ConfigError that says why."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"results directory {out_dir} is a file: give --out a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass  # root ignores permission bits: only a real write tells
    except OSError as err:
        raise ConfigError(
            f"cannot write results to {out_dir}: {err.strerror or err}: give --out a writable directory"
        ) from err
    others = sorted(p.name for p in out_dir.iterdir() if p.name != ".hil.lock")
    if others and not is_bundle(out_dir):
        listed = ", ".join(others[:4]) + (", ..." if len(others) > 4 else "")
        raise ConfigError(
            f"results directory {out_dir} holds files that are not a hil results bundle ({listed}): "
            "each run replaces the folder, so give --out a new or empty folder"
        )


def open_bundle(out_dir: Path, first_metrics: Mapping[str, Any]) -> None:
    """Replace ``out_dir`` with a fresh folder holding only ``first_metrics`` (call with the lock held).

    The folder is built beside ``out_dir`` and exchanged with it in one step where the OS can
    (Linux ``renameat2``), so no reader ever sees the old run and the new one mixed.
    """
    check_out_dir(out_dir)
    staging = out_dir.parent / f".{out_dir.name}.{first_metrics['run_id']}.new"
    try:
        staging.mkdir()
    except OSError:  # the parent is read-only: empty the folder in place instead
        _empty(out_dir)
        write_json(out_dir / METRICS_FILE, first_metrics)
        return
    try:
        write_json(staging / METRICS_FILE, first_metrics)
        _exchange(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # after the exchange: the previous run's bundle


def _empty(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.name == ".hil.lock":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _exchange(new: Path, old: Path) -> None:
    """Put ``new`` at ``old``'s path; ``new``'s path then holds the previous folder."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc >= 2.28: two renames
        renameat2 = None
    if renameat2 is not None:
        if renameat2(AT_FDCWD, bytes(new), AT_FDCWD, bytes(old), RENAME_EXCHANGE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), str(old))
    aside = new.with_suffix(".old")
    old.rename(aside)
    new.rename(old)
    aside.rename(new)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write whole or not at all: a reader never sees half a ``metrics.json``."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    partial.replace(path)


# --- writing metrics.json ---------------------------------------------------------------------------------


@dataclass(slots=True)
class RunRecord:
    """What one run knows about itself, beyond what its suites recorded."""

    run_id: str
    out_dir: Path
    targets: tuple[str, ...]
    sub_dirs: dict[str, Path]  # target -> its sub-bundle (``out_dir`` itself for one target)
    environment: dict[str, Any]
    started: str = field(default_factory=now)
    suites: list[dict[str, Any]] = field(default_factory=list)  # one per finished framework run

    def header(self, complete: bool, reason: str, targets: Sequence[str], base: Path) -> dict[str, Any]:
        env = dict(self.environment)
        env["targets"] = {t: v for t, v in (env.get("targets") or {}).items() if t in targets}
        return {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "complete": complete,
            "incomplete_reason": "" if complete else reason,
            "started": self.started,
            "finished": now() if reason != RUNNING else None,
            "generated": now(),
            "tool_version": __version__,
            "targets": list(targets),
            "bundles": {t: _relative(self.sub_dirs[t], base) for t in targets},
            "suites": [rooted(s, self.sub_dirs[s["target"]], base) for s in self.suites if s["target"] in targets],
            "environment": env,
        }

    def first_metrics(self) -> dict[str, Any]:
        """The ``metrics.json`` a bundle starts with: nothing ran yet, not complete."""
        return self.header(False, RUNNING, self.targets, self.out_dir) | {
            "stimuli": [],
            "devices": [],
            "summary": summary_of([]),
            "tests": [],
        }


def _relative(path: Path, base: Path) -> str:
    return os.path.relpath(path, base)


def rooted(record: Mapping[str, Any], sub_dir: Path, base: Path) -> dict[str, Any]:
    """``record`` with its relative paths (relative to ``sub_dir``) made relative to ``base``."""
    prefix = _relative(sub_dir, base)
    return _map_paths(record, lambda value: value if prefix == "." else f"{prefix}/{value}", relative=True)


def _map_paths(value: Any, change: Any, *, relative: bool, key: str = "") -> Any:
    if isinstance(value, Mapping):
        return {k: _map_paths(v, change, relative=relative, key=str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_paths(v, change, relative=relative, key=key) for v in value]
    if isinstance(value, str) and key in PATH_KEYS and value and os.path.isabs(value) != relative:
        return change(value)
    return value


def summary_of(tests: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = {status: sum(t.get("status") == status for t in tests) for status in ("PASS", "FAIL", "SKIP")}
    return {"tests": len(tests), "passed": counts["PASS"], "failed": counts["FAIL"], "skipped": counts["SKIP"]}


def _inside(path: str, folder: Path) -> bool:
    return path == str(folder) or path.startswith(f"{folder}{os.sep}")


def _bundle_records(sub_dir: Path, run_id: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Tests and devices of one sub-bundle, only this run's, with absolute paths inside it made relative."""
    collected = collect_metrics(sub_dir)
    keep = [r for r in collected["tests"] if run_id is None or r.get("run_id") == run_id]
    devices = [d for d in collected["devices"] if run_id is None or d.get("run_id") == run_id]

    def relative(value: str) -> str:
        return _relative(Path(value), sub_dir) if _inside(value, sub_dir) else value

    return (
        [_map_paths(t, relative, relative=False) for t in keep],
        [_map_paths(d, relative, relative=False) for d in devices],
    )


def _keep_stimuli(sub_dir: Path, tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copy every recording a test streamed into ``<sub>/stimuli/`` and point the test's record at the copy."""
    kept: dict[str, dict[str, Any]] = {}
    for test in tests:
        for model in (test.get("models") or {}).values():
            for key, events in model.items():
                if not (key == "events" or key.startswith("events_")) or not isinstance(events, dict):
                    continue
                source = events.get("stimulus_file")
                if not isinstance(source, str) or not os.path.isabs(source) or not Path(source).is_file():
                    continue
                if source not in kept:
                    kept[source] = _copy_stimulus(Path(source), sub_dir, kept.values())
                events["stimulus_file"] = kept[source]["path"]
    return list(kept.values())


def _copy_stimulus(source: Path, sub_dir: Path, taken: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    digest = sha256_of(source)
    used = {entry["path"] for entry in taken}
    name = f"stimuli/{source.name}"
    if name in used:
        name = f"stimuli/{source.stem}-{digest[:8]}{source.suffix}"
    dest = sub_dir / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    expected = source.with_name(f"{source.stem}.expected.csv")  # the events the recording should raise
    if expected.is_file():
        shutil.copyfile(expected, dest.with_name(f"{dest.stem}.expected.csv"))
    return {"path": name, "source": str(source), "sha256": digest}


def write_metrics(run: RunRecord, complete: bool, reason: str = "") -> dict[str, Any]:
    """Write ``metrics.json`` of every sub-bundle and, for several targets, the combined one; return the top one."""
    combined_tests: list[dict[str, Any]] = []
    combined_devices: list[dict[str, Any]] = []
    combined_stimuli: list[dict[str, Any]] = []
    top: dict[str, Any] = {}
    for target in run.targets:
        sub_dir = run.sub_dirs[target]
        tests, devices = _bundle_records(sub_dir, run.run_id)
        stimuli = _keep_stimuli(sub_dir, tests)
        body = {"stimuli": stimuli, "devices": devices, "summary": summary_of(tests), "tests": tests}
        top = run.header(complete, reason, [target], sub_dir) | body
        write_json(sub_dir / METRICS_FILE, top)
        write_run_log(sub_dir / RUN_LOG, top)
        combined_tests += [rooted(t, sub_dir, run.out_dir) for t in tests]
        combined_devices += [rooted(d, sub_dir, run.out_dir) for d in devices]
        combined_stimuli += [rooted(s, sub_dir, run.out_dir) for s in stimuli]
    if len(run.targets) > 1 or run.sub_dirs[run.targets[0]] != run.out_dir:
        top = run.header(complete, reason, run.targets, run.out_dir) | {
            "stimuli": combined_stimuli,
            "devices": combined_devices,
            "summary": summary_of(combined_tests),
            "tests": combined_tests,
        }
        write_json(run.out_dir / METRICS_FILE, top)
        write_run_log(run.out_dir / RUN_LOG, top)
    return top


def previous_durations(out_dir: Path) -> dict[tuple[str, str], float]:
    """How long each (target, framework) took in the bundle at ``out_dir`` (none if there is none)."""
    try:
        suites = json.loads((out_dir / METRICS_FILE).read_text(encoding="utf-8")).get("suites") or []
        return {(str(s["target"]), str(s["framework"])): float(s["duration_s"]) for s in suites}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


# --- reading a bundle (hil report) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bundle:
    """A bundle as read back: its folder, its metrics (schema /2 shape) and what the reader noticed."""

    path: Path
    metrics: dict[str, Any]
    notes: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return bool(self.metrics.get("complete", True))

    @property
    def incomplete_reason(self) -> str:
        return str(self.metrics.get("incomplete_reason") or "")


def read_bundle(folder: Path) -> Bundle:
    """The bundle in ``folder``, read only; a ConfigError naming file and line if a file is corrupt.

    An incomplete bundle's tests are re-read from the per-test lines its suites wrote (a killed run
    never merged them). A folder with per-test lines but no bundle (``robot``/``pytest`` run
    directly) reads as those records, noted as such.
    """
    metrics_path = folder / METRICS_FILE
    if not metrics_path.is_file():
        if not any((folder / METRICS_DIR).glob("*.jsonl")):
            raise ConfigError(f"{folder} holds no results (no metrics.json): run `hil run --out {folder}`")
        tests, devices = _bundle_records(folder, None)
        run_ids = {t.get("run_id") for t in tests} - {None}
        metrics = {
            "schema": SCHEMA,
            "run_id": run_ids.pop() if len(run_ids) == 1 else "direct",
            "complete": True,
            "incomplete_reason": "",
            "targets": sorted({t["target"] for t in tests} | {d["target"] for d in devices}),
            "environment": {},
            "devices": devices,
            "summary": summary_of(tests),
            "tests": tests,
        }
        return Bundle(folder, metrics, ("per-test records of robot/pytest run directly: not a hil run bundle",))
    metrics = read_metrics_json(metrics_path)
    if metrics.get("complete", True):
        return Bundle(folder, metrics, _foreign_records(folder, metrics))
    tests: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    for relative in (metrics.get("bundles") or {"": "."}).values():
        sub_dir = (folder / relative).resolve()
        if not (sub_dir / METRICS_DIR).is_dir():
            continue
        sub_tests, sub_devices = _bundle_records(sub_dir, metrics.get("run_id"))
        tests += [rooted(t, sub_dir, folder.resolve()) for t in sub_tests]
        devices += [rooted(d, sub_dir, folder.resolve()) for d in sub_devices]
    if len(tests) >= len(metrics.get("tests") or []):
        metrics = metrics | {"tests": tests, "devices": devices, "summary": summary_of(tests)}
    return Bundle(folder, metrics)


def _foreign_records(folder: Path, metrics: Mapping[str, Any]) -> tuple[str, ...]:
    """A note when ``metrics/`` holds records of another run (robot or pytest run directly into the bundle)."""
    run_id = metrics.get("run_id")
    if not run_id:
        return ()
    foreign = 0
    for path in (folder / METRICS_DIR).glob("*.jsonl"):
        with contextlib.suppress(HilError):
            records = read_records(path)
            foreign += sum(1 for r in records if r.get("kind", "test") == "test" and r.get("run_id") != run_id)
    if not foreign:
        return ()
    return (f"{folder / METRICS_DIR} also holds {foreign} record(s) of another run (robot or pytest run directly "
            "into this folder): not shown",)  # fmt: skip
