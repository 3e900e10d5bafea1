"""Model folders are checked once, before any device starts, against the .tflite itself."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hil import checks
from hil.cli import main
from hil.errors import ConfigError
from hil.models import ModelZoo

SINE = Path(__file__).resolve().parents[2] / "models" / "sine"


@pytest.fixture
def zoo(tmp_path: Path) -> ModelZoo:
    folder = tmp_path / "models" / "sine"
    folder.mkdir(parents=True)
    for name in ("sine.tflite", "manifest.json", "golden.npz", "eval.npz"):
        shutil.copy(SINE / name, folder / name)
    return ModelZoo(tmp_path / "models")


def _edit_manifest(zoo: ModelZoo, **changes: object) -> Path:
    path = zoo.root / "sine" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest, indent=2))
    return path


def test_a_folder_is_checked_once_and_then_served_from_the_check(zoo: ModelZoo) -> None:
    first = zoo.manifest("sine")
    (zoo.root / "sine" / "sine.tflite").write_bytes(b"changed after the check")
    assert zoo.manifest("sine") is first


def test_manifest_output_shape_that_disagrees_with_the_tflite_is_refused(zoo: ModelZoo) -> None:
    path = _edit_manifest(zoo, output={"dtype": "int8", "shape": [1, 2], "scale": 0.0078, "zero_point": -4})
    with pytest.raises(ConfigError, match=r"manifest\.json:\d+: output: the manifest says int8\[1,2\] but the model's"):
        zoo.check()
    assert path.is_file()


def test_manifest_file_names_cannot_leave_the_model_folder(zoo: ModelZoo) -> None:
    _edit_manifest(zoo, tflite="../../../../etc/passwd")
    with pytest.raises(ConfigError, match=r"tflite: '\.\./\.\./\.\./\.\./etc/passwd' is outside the model folder"):
        zoo.manifest("sine")


def test_a_symlink_out_of_the_folder_is_refused(zoo: ModelZoo, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.tflite"
    shutil.copy(SINE / "sine.tflite", outside)
    (zoo.root / "sine" / "link.tflite").symlink_to(outside)
    _edit_manifest(zoo, tflite="link.tflite")
    with pytest.raises(ConfigError, match="is outside the model folder"):
        zoo.manifest("sine")


def test_golden_vectors_of_the_wrong_shape_are_blamed_on_the_file_not_the_device(zoo: ModelZoo) -> None:
    golden = zoo.root / "sine" / "golden.npz"
    np.savez(golden, inputs=np.zeros((32, 1, 1), np.int8), outputs=np.zeros((32, 2), np.int8))
    with pytest.raises(ConfigError, match=r"golden\.npz: outputs: shape \(32, 2\) does not fit"):
        zoo.golden("sine")


def test_check_golden_of_an_unknown_model_lists_the_models(zoo: ModelZoo) -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'sin' \(did you mean sine\?\): known models are sine"):
        checks.run_golden(None, zoo, "sin")  # type: ignore[arg-type]  # fails before any device is used


def test_models_verify_catches_a_wrong_output_shape(zoo: ModelZoo, capsys: pytest.CaptureFixture[str]) -> None:
    _edit_manifest(zoo, output={"dtype": "int8", "shape": [1, 3], "scale": 0.0078, "zero_point": -4})
    (zoo.root.parent / "hil.toml").write_text('models_dir = "models"\n')
    assert main(["--config", str(zoo.root.parent / "hil.toml"), "models", "verify", "sine"]) == 2
    out = capsys.readouterr().out
    assert "output: the manifest says int8[1,3]" in out
    assert "Traceback" not in out
