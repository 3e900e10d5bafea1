"""``hil run`` over two twin targets with ``--jobs 2`` against ``--jobs 1``: the wall-time ratio.

    python benchmarks/bench_jobs.py [--repeat 3] [--json]

Two reference-twin targets (``reference`` and ``reference:b``, the same twin under a second name,
declared in a throw-away ``hil.toml``) run every Robot and pytest HIL suite: four suite processes,
one twin each. ``--jobs 1`` runs them one after the other, ``--jobs 2`` two at a time. Each setting
runs ``--repeat`` times, alternating, and the best wall time of each counts (the least disturbed
by whatever else the machine does). The goal on a 2-core machine is a ratio of at least 1.6.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 900.0
GOAL = 1.6
SPIN_LOOPS = 20_000_000  # about a second of one core
CONFIG = """\
models_dir = "{models}"

[targets."reference:b"]
backend = "reference"
description = "the reference twin again, under a second name: a second target of the same size"
"""


def run_once(config: Path, out: Path, jobs: int) -> float:
    """Wall time of one ``hil run`` over both targets; fails loudly if the run does not pass."""
    argv = [sys.executable, "-m", "hil.cli", "--config", str(config), "run",
            "--target", "reference", "--target", "reference:b", "--jobs", str(jobs), "--out", str(out),
            "--robot-suites", str(ROOT / "robot_tests"), "--pytest-suites", str(ROOT / "tests" / "hil")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("HIL_CONFIG", "HIL_TARGET", "HIL_RESULTS")}
    started = time.monotonic()
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        tails = [f"\n--- {p} (end)\n" + p.read_text(errors="replace")[-3000:] for p in out.rglob("console-*.txt")]
        printed = "".join(tails)
        raise SystemExit(f"hil run --jobs {jobs} exited {result.returncode}:\n{result.stdout[-3000:]}{printed}")
    return elapsed


def parallel_capacity() -> float:
    """How much faster two CPU-bound processes get through the same work than one, on this machine now.

    2.0 on two idle cores; less when other work (other users, a compile) takes the cores: the
    ceiling for the ratio of this benchmark at the time it runs.
    """
    spin = [sys.executable, "-c", f"for i in range({SPIN_LOOPS}): pass"]

    def wall(copies: int) -> float:
        started = time.monotonic()
        procs = [subprocess.Popen(spin) for _ in range(copies)]
        for proc in procs:
            proc.wait(timeout=RUN_TIMEOUT_S)
        return time.monotonic() - started

    return 2 * wall(1) / wall(2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting (default 3); the best counts")
    parser.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        config = Path(tmp) / "hil.toml"
        config.write_text(CONFIG.format(models=ROOT / "models"))
        times: dict[int, list[float]] = {1: [], 2: []}
        for i in range(args.repeat):
            for jobs in (1, 2) if i % 2 == 0 else (2, 1):
                times[jobs].append(run_once(config, Path(tmp) / f"out-{jobs}", jobs))
                print(f"run {i + 1}/{args.repeat} --jobs {jobs}: {times[jobs][-1]:.1f} s", flush=True)
    capacity = parallel_capacity()
    serial, parallel = min(times[1]), min(times[2])
    ratio = serial / parallel
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"two twin targets, 4 suite processes, {cores} cores, load average {load:.1f}, "
        f"parallel capacity now {capacity:.2f}x (two busy loops against one)"
    )
    print(f"--jobs 1: {serial:.1f} s   --jobs 2: {parallel:.1f} s   ratio {ratio:.2f}x (goal >= {GOAL}x)")
    if args.json:
        numbers = {"jobs_1_s": times[1], "jobs_2_s": times[2], "ratio": round(ratio, 3), "cores": cores}
        numbers |= {"load_average": round(load, 2), "parallel_capacity": round(capacity, 3), "goal": GOAL}
        print(json.dumps(numbers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
