"""The bad-input corpus: every case is one line that says what is wrong and where, exit 2, no traceback.

File cases (hil.toml, lab files, stimuli, results folders) live in ``tests/corpus/bad_inputs/``
with what each must say in its ``expected.toml``; model folders are the committed sine model with
one thing broken; CLI arguments and protocol frames are tables here. The CLI runs in-process
(``hil.cli.main``); a few cases also run as a real ``hil`` process.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from hil import messages as msg
from hil import protocol as p
from hil.cli import main
from hil.errors import ConfigError, ProtocolError
from hil.stimuli import expected_events, load_stimulus

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "bad_inputs"
EXPECTED = tomllib.loads((CORPUS / "expected.toml").read_text(encoding="utf-8"))
SINE = ROOT / "models" / "sine"
Run = Callable[..., tuple[int, str]]


def assert_one_line_error(code: int, output: str, where: str, says: str) -> None:
    """Exit 2 and exactly one line: ``error: <where>...`` holding ``says``; no traceback."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith(f"error: {where}"), output
    assert says in lines[0], output
    assert code == 2, output


def _where(path: Path, spec: dict) -> str:
    return f"{path}:{spec['line']}: " if "line" in spec else f"{path}"


def _cases(kind: str) -> list:
    return [pytest.param(name, spec, id=name) for name, spec in EXPECTED[kind].items()]


@pytest.fixture
def hil(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    """``hil ARGS`` in this process, in an empty folder, with no configuration from the environment."""
    for name in ("HIL_CONFIG", "HIL_LAB", "HIL_TARGET", "HIL_MODELS_DIR", "HIL_LAB_STATE", "LG_COORDINATOR"):
        monkeypatch.setenv(name, "")  # restored afterwards, also where the CLI sets them
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    sigterm = signal.getsignal(signal.SIGTERM)

    def run(*argv: str) -> tuple[int, str]:
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse: usage, then one error line
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    yield run
    signal.signal(signal.SIGTERM, sigterm)


# --- hil.toml -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "spec"), _cases("config"))
def test_bad_config(hil: Run, name: str, spec: dict) -> None:
    path = CORPUS / "config" / name
    assert_one_line_error(*hil("--config", str(path), "targets"), _where(path, spec), spec["says"])


# --- lab files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "spec"), _cases("lab"))
def test_bad_lab_file(hil: Run, name: str, spec: dict) -> None:
    path = CORPUS / "lab" / name
    assert_one_line_error(*hil("--lab", str(path), "lab", "list"), _where(path, spec), spec["says"])


# --- stimuli --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "spec"), _cases("stimuli"))
def test_bad_stimulus(name: str, spec: dict) -> None:
    path = CORPUS / "stimuli" / name
    with pytest.raises(ConfigError) as caught:  # hil's CLI and keywords report a ConfigError as a usage error
        expected_events(load_stimulus(path))
    named = CORPUS / "stimuli" / spec.get("file", name)
    assert_one_line_error(2, f"error: {caught.value}", _where(named, spec), spec["says"])


# --- results folders ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "spec"), _cases("metrics"))
def test_bad_metrics(hil: Run, name: str, spec: dict) -> None:
    folder = CORPUS / "metrics" / name
    named = folder / spec.get("file", "metrics.json")
    assert_one_line_error(*hil("report", str(folder)), _where(named, spec), spec["says"])


# --- model folders: the sine model with one thing broken ------------------------------------------


def _manifest(**changes: object) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        path = folder / "manifest.json"
        manifest = json.loads(path.read_text())
        for key, value in changes.items():
            *parents, last = key.split(".")
            table = manifest
            for parent in parents:
                table = table[parent]
            if value is None:
                del table[last]
            else:
                table[last] = value
        path.write_text(json.dumps(manifest, indent=2) + "\n")

    return edit


def _write(name: str, data: bytes | Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        path = folder / name
        path.write_bytes(data(path.read_bytes()) if callable(data) else data)

    return edit


def _npz(name: str, **arrays: np.ndarray) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        with (folder / name).open("wb") as f:
            np.savez(f, **arrays)

    return edit


def _text(name: str, old: str, new: str) -> Callable[[Path], None]:
    return _write(name, lambda data: data.decode().replace(old, new, 1).encode())


def _remove(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


I8 = np.int8
OUT = {"dtype": "int8", "scale": 0.007814216427505016, "zero_point": -4}
MODEL_CASES: list[tuple[str, Callable[[Path], None], str, str]] = [
    # (case, what is broken, file named, what the error says)
    ("tflite-garbage", _write("sine.tflite", b"not a model at all" * 8), "sine.tflite", "not a TFLite model"),
    ("tflite-truncated", _write("sine.tflite", lambda d: d[:300]), "sine.tflite", "corrupt or truncated TFLite"),
    ("tflite-empty", _write("sine.tflite", b""), "sine.tflite", "not a TFLite model"),
    ("tflite-zeroed", _write("sine.tflite", lambda d: d[:8] + bytes(len(d) - 8)), "sine.tflite", "corrupt TFLite"),
    ("tflite-missing", _remove("sine.tflite"), "manifest.json", "tflite: cannot read"),
    ("tflite-outside", _manifest(tflite="../../../../etc/passwd"), "manifest.json", "is outside the model folder"),
    ("tflite-absolute", _manifest(tflite="/etc/passwd"), "manifest.json", "'/etc/passwd' is outside the model folder"),
    ("tflite-is-the-folder", _manifest(tflite="."), "manifest.json", "is outside the model folder"),
    ("golden-outside", _manifest(**{"golden.file": "../golden.npz"}), "manifest.json", "golden.file: '../golden.npz'"),
    ("shape-a-string", _manifest(**{"input.shape": "1,1"}), "manifest.json", 'input.shape: expected a list, got "1,1"'),
    ("shape-zero", _manifest(**{"input.shape": [1, 0]}), "manifest.json", "input.shape[1]: must be ≥ 1, got 0"),
    ("output-shape", _manifest(output={**OUT, "shape": [1, 2]}), "manifest.json", "output: the manifest says int8[1,"),
    ("input-dtype", _manifest(**{"input.dtype": "uint8"}), "manifest.json", "input: the manifest says uint8[1,1]"),
    ("dtype-unknown", _manifest(**{"input.dtype": "int9"}), "manifest.json", '"int9" is not one of'),
    ("scale", _manifest(output={**OUT, "shape": [1, 1], "scale": 0.5}), "manifest.json", "quantization scale 0.5"),
    ("zero-point", _manifest(**{"output.zero_point": 3}), "manifest.json", "zero point 3 but the model's is"),
    ("misspelt-key", _text("manifest.json", '"arena_bytes"', '"arena_byte"'), "manifest.json", "mean arena_bytes?"),
    ("metric-misspelt", _manifest(**{"metric.name": "acuracy"}), "manifest.json", '"acuracy" is not one of accuracy'),
    ("nan", _text("manifest.json", '"threshold": 0.1', '"threshold": NaN'), "manifest.json", "NaN is not a number"),
    ("broken-json", _write("manifest.json", lambda d: d[:200]), "manifest.json", "not valid JSON"),
    ("not-an-object", _write("manifest.json", b"[1, 2]\n"), "manifest.json", "a manifest is a JSON object"),
    ("not-utf8", _write("manifest.json", lambda d: d.replace(b"sine", b"s\xefne", 1)), "manifest.json", "not UTF-8"),
    ("name-not-the-folder", _manifest(name="cosine"), "manifest.json", "name: 'cosine', but the folder is 'sine'"),
    ("ops", _manifest(ops=["CONV_2D"]), "manifest.json", "ops: ['CONV_2D'] but sine.tflite uses ['FULLY_CONNECTED']"),
    ("sha256", _manifest(sha256="0" * 64), "manifest.json", "sha256: sine.tflite hashes to"),
    ("sha256-not-hex", _manifest(sha256="xyz"), "manifest.json", "sha256: String should match pattern"),
    ("flash-bytes", _manifest(flash_bytes=12), "manifest.json", "flash_bytes: 12 but sine.tflite has"),
    ("arena-a-string", _manifest(arena_bytes="2 KiB"), "manifest.json", 'arena_bytes: expected an integer, got "2'),
    ("no-decision-threshold", _manifest(**{"metric.name": "threshold_accuracy"}), "manifest.json", "needs a decision"),
    ("budget-negative", _manifest(**{"budgets.default.latency_us": -1}), "manifest.json", "latency_us: must be > 0"),
    ("task-missing", _manifest(task=None), "manifest.json", "missing key 'task'"),
    ("golden-garbage", _write("golden.npz", b"PK\x03\x04 not a zip"), "golden.npz", "not a readable .npz"),
    ("golden-missing", _remove("golden.npz"), "golden.npz", "is missing: re-run the model's train.py"),
    ("golden-shape", _npz("golden.npz", inputs=np.zeros((32, 1, 1), I8), outputs=np.zeros((32, 2), I8)), "golden.npz",
     "outputs: shape (32, 2) does not fit 32 of the model's output int8[1,1]"),
    ("golden-count", _npz("golden.npz", inputs=np.zeros((16, 1, 1), I8), outputs=np.zeros((16, 1, 1), I8)),
     "golden.npz", "inputs: shape (16, 1, 1) does not fit 32"),
    ("golden-dtype", _npz("golden.npz", inputs=np.zeros((32, 1, 1), I8), outputs=np.zeros((32, 1, 1), np.float32)),
     "golden.npz", "outputs: float32 values, but"),
    ("golden-no-outputs", _npz("golden.npz", inputs=np.zeros((32, 1, 1), I8)), "golden.npz", "no array 'outputs'"),
    ("golden-pickled", _npz("golden.npz", inputs=np.array([object()]), outputs=np.zeros(1)), "golden.npz",
     "not a readable .npz"),
    ("eval-missing", _remove("eval.npz"), "eval.npz", "is missing"),
    ("eval-garbage", _write("eval.npz", b"\x00" * 64), "eval.npz", "not a readable .npz"),
    ("eval-width", _npz("eval.npz", x=np.zeros((8, 2), np.float32), y=np.zeros(8)), "eval.npz", "x: shape (8, 2)"),
    ("eval-labels", _npz("eval.npz", x=np.zeros((8, 1), np.float32), y=np.zeros(5)), "eval.npz", "y: shape (5,)"),
    ("eval-integers", _npz("eval.npz", x=np.zeros((8, 1), I8), y=np.zeros(8)), "eval.npz", "x: int8 values"),
]  # fmt: skip


@pytest.mark.parametrize(("breaks", "file", "says"), [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_bad_model_folder(hil: Run, tmp_path: Path, breaks: Callable[[Path], None], file: str, says: str) -> None:
    folder = tmp_path / "models" / "sine"
    folder.mkdir(parents=True)
    for name in ("sine.tflite", "manifest.json", "golden.npz", "eval.npz"):
        shutil.copy(SINE / name, folder / name)
    breaks(folder)
    config = tmp_path / "hil.toml"
    config.write_text('models_dir = "models"\n')
    assert_one_line_error(*hil("--config", str(config), "models"), str(folder / file), says)


# --- CLI arguments --------------------------------------------------------------------------------

ARGUMENT_CASES: list[tuple[list[str], str]] = [
    ([], "the following arguments are required: command"),
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["run", "--suite", "bogus"], "argument --suite: invalid choice: 'bogus'"),
    (["run", "--wait", "soon"], "argument --wait: invalid float value: 'soon'"),
    (["run", "--fixture"], "argument --fixture: expected one argument"),
    (["report"], "the following arguments are required: DIR"),
    (["models", "bogus"], "argument action: invalid choice: 'bogus'"),
    (["lab", "bogus"], "invalid choice: 'bogus'"),
    (["flash"], "the following arguments are required: --target"),
    (["targets", "--bogus"], "unrecognized arguments: --bogus"),
]
HIL_ERROR_CASES: list[tuple[list[str], str, str]] = [
    # (argv, what the line starts with after "error: ", what it says)
    (["run", "--target", "renode:nrf52840"], "unknown target", "(did you mean renode:nrf52840dk?)"),
    (["build", "--target", "nosuch"], "unknown target", "known targets are reference"),
    (["--config", "/nonexistent/hil.toml", "targets"], "cannot read config /nonexistent/hil.toml", "No such file"),
    (["--lab", "/nonexistent/lab.yaml", "lab", "list"], "cannot read lab file /nonexistent/lab.yaml", "No such file"),
    (["report", "/nonexistent/results"], "/nonexistent/results holds no results", "run `hil run --out"),
    (["models", "verify", "sin"], "unknown model 'sin'", "(did you mean sine?)"),
    (["models", "list", "../sine"], "unknown model '../sine'", "known models are"),
    (["run", "--suites", "/nonexistent/suites"], "--suites /nonexistent/suites is not a folder", "give the folder"),
    (["run", "--models-dir", "/nonexistent/models"], "reference cannot run here", "no models directory"),
    (["flash", "--target", "board:x"], "no board serves board:x", "no lab file"),
    (["run", "--target", "board:x"], "board:x cannot run here: no board serves board:x", "no lab file"),
    (
        ["run", "--target", "reference:few", "--suites", str(ROOT / "tests" / "hil")],
        "target reference:few: models: unknown model 'sin'",
        "(did you mean sine?)",
    ),
]


@pytest.mark.parametrize(("argv", "says"), ARGUMENT_CASES, ids=[" ".join(a) or "nothing" for a, _ in ARGUMENT_CASES])
def test_bad_arguments_are_a_usage_error(hil: Run, argv: list[str], says: str) -> None:
    code, output = hil(*argv)
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert "error: " in lines[-1], output  # after argparse's usage lines
    assert says in lines[-1], output
    assert code == 2


@pytest.fixture
def zoo_config(tmp_path: Path) -> Path:
    config = tmp_path / "zoo.toml"
    config.write_text(
        f"models_dir = {json.dumps(str(ROOT / 'models'))}\n"
        '[targets."reference:few"]\nbackend = "reference"\nmodels = ["sin"]\n'
    )
    return config


@pytest.mark.parametrize(("argv", "starts", "says"), HIL_ERROR_CASES, ids=[" ".join(a) for a, _, _ in HIL_ERROR_CASES])
def test_bad_argument_values_are_one_line(hil: Run, zoo_config: Path, argv: list[str], starts: str, says: str) -> None:
    if argv[0] != "--config":
        argv = ["--config", str(zoo_config), *argv]
    assert_one_line_error(*hil(*argv), starts, says)


# --- protocol frames ------------------------------------------------------------------------------


def _frame(msg_type: int, payload: bytes, seq: int = 7) -> bytes:
    return p.encode_frame(msg_type, seq, payload)


FRAME_CASES: list[tuple[str, bytes, p.ErrorCode, str]] = [
    # (case, bytes on the line, the fault the decoder reports, its detail)
    ("crc-flipped", _frame(p.MsgType.INFO, b"")[:-1] + b"\x00", p.ErrorCode.BAD_CRC, "CRC-32 mismatch"),
    ("payload-flipped", _frame(p.MsgType.INFO, b"abc")[:-5] + b"x" + _frame(p.MsgType.INFO, b"abc")[-4:],
     p.ErrorCode.BAD_CRC, "CRC-32 mismatch"),
    ("length-too-large", p.SYNC + bytes([p.MsgType.INFO, 7]) + (0xFFFF).to_bytes(2, "little"), p.ErrorCode.TOO_LARGE,
     "length 65535 > max"),
    ("garbage-then-bad-crc", b"\xff\x00noise" + _frame(p.MsgType.INFO, b"")[:-1] + b"\x01", p.ErrorCode.BAD_CRC,
     "CRC-32 mismatch"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "data", "code", "detail"), FRAME_CASES, ids=[c[0] for c in FRAME_CASES])
def test_bad_frame_is_a_fault_never_an_exception(case: str, data: bytes, code: p.ErrorCode, detail: str) -> None:
    items = p.FrameDecoder().feed(data)
    faults = [item for item in items if isinstance(item, p.FrameFault)]
    assert faults, f"{case}: {items}"
    assert (faults[0].code, faults[0].seq) == (code, 7)
    assert detail in faults[0].detail
    assert not any(isinstance(item, p.Frame) for item in items)


def test_frame_cut_short_is_a_fault_once_the_line_goes_silent() -> None:
    decoder = p.FrameDecoder()
    assert decoder.feed(_frame(p.MsgType.INFO, b"abcdef")[:-3]) == []
    (fault,) = decoder.abandon_partial()[:1]
    assert isinstance(fault, p.FrameFault)
    assert "frame truncated" in fault.detail


PAYLOAD_CASES: list[tuple[str, Callable[[bytes], object], bytes, str]] = [
    # (case, the reply's decoder, its payload, what the error says)
    ("info-short", msg.unpack_info, b"\x01", "payload ends at byte 1, needed"),
    ("info-long", msg.unpack_info, b"\xff" * 200, "payload ends at byte 200"),
    ("model-info-short", msg.unpack_model_info, b"\x00" * 3, "payload ends at byte 3"),
    ("error-empty", msg.unpack_error, b"", "payload ends at byte 0, needed 1"),
    ("event-short", msg.unpack_event, b"\x00", "payload ends at byte 1"),
    ("infer-reply-short", msg.unpack_infer_reply, b"\x01\x02", "payload ends at byte 2"),
    ("memory-empty", msg.unpack_memory, b"", "payload ends at byte 0, needed 16"),
    ("stream-totals-short", msg.unpack_stream_totals, b"\x00\x00", "payload ends at byte 2"),
    ("feed-reply-empty", msg.unpack_feed_reply, b"", "payload ends at byte 0"),
    ("profile-short", msg.unpack_profile, b"\x05", "payload ends at byte 1"),
]


@pytest.mark.parametrize(("case", "decode", "payload", "says"), PAYLOAD_CASES, ids=[c[0] for c in PAYLOAD_CASES])
def test_bad_payload_is_one_line_naming_the_byte(case: str, decode: Callable[[bytes], object], payload: bytes,
                                                 says: str) -> None:  # fmt: skip
    with pytest.raises(ProtocolError) as caught:
        decode(payload)
    assert says in str(caught.value), case
    assert "\n" not in str(caught.value)


# --- the same through a real hil process ----------------------------------------------------------

PROCESS_CASES: list[tuple[list[str], str, str]] = [
    (["--config", str(CORPUS / "config" / "timeout-nan.toml"), "targets"], "timeout-nan.toml:3: ", "got nan"),
    (["--config", str(CORPUS / "config" / "not-utf8.toml"), "targets"], "not-utf8.toml:2: ", "not UTF-8"),
    (["report", str(CORPUS / "metrics" / "truncated")], "metrics.json:24: ", "truncated?"),
    (["--lab", str(CORPUS / "lab" / "misspelt-key.yaml"), "lab", "check"], "misspelt-key.yaml:4: ", "serial?"),
]


@pytest.mark.parametrize(("argv", "where", "says"), PROCESS_CASES, ids=[c[1].strip(": ") for c in PROCESS_CASES])
def test_bad_input_through_the_hil_command(tmp_path: Path, argv: list[str], where: str, says: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    result = subprocess.run(
        [sys.executable, "-m", "hil.cli", *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.strip()]
    assert line.startswith("error: "), line
    assert where in line, line
    assert says in line, line
