"""The firmware core (firmware/src/core) built for this host: protocol vectors, decoder, fuzzing.

Needs only a C compiler and make (no Zephyr, no TFLM): the core runs on FakeInferenceEngine
(firmware/tests/host), which serves replies that do not depend on model weights. The fuzz
smoke run needs clang with libFuzzer.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from hil import protocol as p
from hil import vectors

ROOT = Path(__file__).resolve().parents[2]
HOST_DIR = ROOT / "firmware" / "tests" / "host"
BUILD_TIMEOUT_S = 300
FUZZ_SECONDS = 15


def _make(build_dir: Path, *targets: str, timeout_s: float = BUILD_TIMEOUT_S, **variables: str) -> str:
    argv = ["make", "-C", str(HOST_DIR), f"BUILD={build_dir}", *(f"{k}={v}" for k, v in variables.items()), *targets]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout + result.stderr  # libFuzzer reports on stderr


@pytest.fixture(scope="module")
def core_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """core_test built with the host C compiler (with ASan/UBSan where the compiler has them)."""
    if shutil.which("make") is None:
        pytest.skip("make not found: install it (apt install make) to build the firmware core on the host")
    compiler = next((cc for cc in ("cc", "gcc", "clang") if shutil.which(cc)), None)
    if compiler is None:
        pytest.skip("no C compiler (cc, gcc or clang) found: apt install gcc to test the firmware core on the host")
    build_dir = tmp_path_factory.mktemp("core-host")
    probe = subprocess.run(
        [compiler, "-fsanitize=address,undefined", "-x", "c", "-", "-o", str(build_dir / "probe")],
        input="int main(void) { return 0; }\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    sanitize = {} if probe.returncode == 0 else {"SANITIZE": ""}
    _make(build_dir, "all", CC=compiler, **sanitize)
    return build_dir / "core_test"


def test_core_answers_every_protocol_vector_like_the_twin(core_test: Path) -> None:
    result = subprocess.run(
        [str(core_test), str(ROOT / "docs" / "protocol-vectors.txt")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "~~~ALL TESTS PASSED~~~" in result.stdout
    count = len(vectors.parse((ROOT / "docs" / "protocol-vectors.txt").read_text()))
    assert f"{count} protocol vectors checked" in result.stdout


def _random_stream(rng: random.Random) -> bytes:
    """Frames, damaged frames, impossible headers and garbage rich in sync bytes."""
    parts = []
    for _ in range(rng.randint(1, 6)):
        kind = rng.random()
        payload = rng.randbytes(rng.choice((0, 1, 5, 40, 300)))
        frame = bytearray(p.encode_frame(rng.randint(0, 255), rng.randint(0, 255), payload))
        if kind < 0.35:
            parts.append(bytes(frame))
        elif kind < 0.5:
            frame[rng.randrange(2, len(frame))] ^= 1 << rng.randrange(8)
            parts.append(bytes(frame))
        elif kind < 0.6:
            parts.append(bytes(frame[: rng.randrange(1, len(frame))]))
        elif kind < 0.7:
            parts.append(p.SYNC + bytes([7, rng.randint(0, 255)]) + rng.randint(4097, 65535).to_bytes(2, "little"))
        else:
            parts.append(
                bytes(rng.choice((0xA5, 0x5A, 0x00, 0x41, rng.randint(0, 255))) for _ in range(rng.randint(1, 30)))
            )
    return b"".join(parts)


def _script(rng: random.Random, runs: int) -> list[tuple[str, bytes]]:
    ops: list[tuple[str, bytes]] = []
    for _ in range(runs):
        ops.append(("N", b""))
        stream = _random_stream(rng)
        pos = 0
        while pos < len(stream):
            step = rng.choice((1, 2, 3, 7, 64, len(stream)))
            ops.append(("F", stream[pos : pos + step]))
            pos += step
            if rng.random() < 0.2:
                ops.append(("A", b""))
        ops += [("A", b"")] * 3
    return ops


def _python_side(ops: list[tuple[str, bytes]]) -> list[str]:
    out = []
    decoder = p.FrameDecoder()
    for op, data in ops:
        if op == "N":
            decoder = p.FrameDecoder()
            items = []
        elif op == "A":
            items = decoder.abandon_partial()
        else:
            items = decoder.feed(data)
        rendered = " ".join(vectors.item_text(i) for i in items) or "-"
        out.append(f"{rendered} {'P' if decoder.partial_frame else '-'}")
    return out


def test_c_decoder_matches_python_decoder_on_random_streams(core_test: Path) -> None:
    ops = _script(random.Random(20261126), runs=400)
    script = "".join(f"{op} {data.hex()}\n" if op == "F" else f"{op}\n" for op, data in ops)
    result = subprocess.run(
        [str(core_test), "--decode-script"], input=script, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    c_side = result.stdout.splitlines()
    py_side = _python_side(ops)
    assert len(c_side) == len(py_side)
    for index, (c_line, py_line) in enumerate(zip(c_side, py_side, strict=True)):
        assert c_line == py_line, f"op {index} {ops[index][0]} {ops[index][1].hex()}: C {c_line} != Python {py_line}"


def test_fuzzing_decoder_and_dispatcher_finds_no_crash(tmp_path: Path) -> None:
    clang = shutil.which("clang")
    if clang is None or shutil.which("make") is None:
        pytest.skip("clang (with libFuzzer) or make not found: apt install clang make to run the fuzz smoke test")
    probe = subprocess.run(
        [clang, "-fsanitize=fuzzer", "-x", "c", "-", "-o", str(tmp_path / "probe")],
        input="#include <stdint.h>\n#include <stddef.h>\n"
        "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"clang at {clang} cannot link libFuzzer (-fsanitize=fuzzer): {probe.stderr.strip()[-300:]}")
    out = _make(tmp_path, "fuzz", timeout_s=BUILD_TIMEOUT_S + FUZZ_SECONDS * 4, FUZZ_SECONDS=str(FUZZ_SECONDS))
    assert "stat::number_of_executed_units" in out
