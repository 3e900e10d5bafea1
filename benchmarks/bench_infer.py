"""End-to-end inference through the reference twin vs TFLM's raw invoke, per model.

    python benchmarks/bench_infer.py [--n 500]

Prints, per model: median raw invoke time, median end-to-end ``Device.infer`` time through the
twin (pyserial + pty + framing + the twin's dispatch), their ratio (goal: <= 1.10), and the
share of wire bytes that is tensor payload for one inference (goal: >= 0.95 on a real UART).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hil import protocol as p
from hil import tflm
from hil.config import load_config
from hil.device import Device
from hil.models import ModelZoo

GOAL_RATIO = 1.10


def median_us(fn: object, n: int) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def wire_efficiency(model: str, in_bytes: int, out_bytes: int) -> float:
    request = p.FRAME_OVERHEAD_BYTES + 1 + len(model) + 1 + in_bytes
    reply = p.FRAME_OVERHEAD_BYTES + 12 + out_bytes
    return (in_bytes + out_bytes) / (request + reply)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="inferences per measurement (default 500)")
    args = parser.parse_args()
    config = load_config()
    zoo = ModelZoo(config.models_dir)
    table = Table(title=f"infer through the twin vs raw TFLM invoke (median of {args.n})")
    columns = ("model", "raw invoke µs", "twin infer µs", "overhead µs", "ratio", f"≤ {GOAL_RATIO}?", "payload share")
    for column in columns:
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp, Device(config.target("reference"), config, Path(tmp)) as dut:
        for name in zoo.names():
            m = zoo.manifest(name)
            x = zoo.golden(name).inputs[0]
            interp = tflm.interpreter(m.tflite_path.read_bytes(), m.arena_bytes)
            raw = median_us(lambda: tflm.invoke(interp, x), args.n)  # noqa: B023 - used within the iteration
            e2e = median_us(lambda: dut.infer(name, x), args.n)  # noqa: B023
            ratio = e2e / raw
            verdict = "[green]yes[/green]" if ratio <= GOAL_RATIO else "[red]no[/red]"
            share = wire_efficiency(name, m.input.nbytes, m.output.nbytes)
            table.add_row(name, f"{raw:.1f}", f"{e2e:.1f}", f"{e2e - raw:.1f}", f"{ratio:.2f}", verdict, f"{share:.3f}")
    Console().print(table)
    print("The overhead is a fixed cost per inference (pty round trip, framing, dispatch): the ratio goal")
    print("holds only for models whose invoke is long compared with it.")


if __name__ == "__main__":
    main()
