"""Reports from real twin runs of two targets: the HTML in headless Chromium, baselines that gate, hil compare.

The runs: every suite on ``reference``, and on ``reference_small`` (a twin serving only sine and
anomaly, defined in a test hil.toml) the model pytest suite plus a Robot suite with one failing test.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hil.models import ModelZoo
from hil.report.html import write_html
from hil.report.runs import load_run

ROOT = Path(__file__).resolve().parents[2]
SECOND = "reference_small"
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class TwinRuns:
    config: Path
    reference: Path
    small: Path
    env: dict[str, str]  # baselines and calibration in the test's folder


def hil(runs: TwinRuns, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "hil.cli", "--config", str(runs.config), *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False,
                          env=runs.env)  # fmt: skip


@pytest.fixture(scope="module")
def twin_runs(tmp_path_factory: pytest.TempPathFactory) -> TwinRuns:
    folder = tmp_path_factory.mktemp("report")
    config = folder / "hil.toml"
    config.write_text(
        f'models_dir = "{ROOT / "models"}"\nbuild_dir = "{ROOT / "build"}"\n\n'
        f'[targets.{SECOND}]\nbackend = "reference"\n'
        'description = "the twin serving two models"\nmodels = ["sine", "anomaly"]\n'
    )
    env = os.environ | {"HIL_BASELINES": str(folder / "baselines.sqlite"),
                        "HIL_CALIBRATION": str(folder / "calibration.json"), "COLUMNS": "200"}  # fmt: skip
    runs = TwinRuns(config, folder / "reference", folder / "small", env)
    first = hil(runs, "run", "--target", "reference", "--out", str(runs.reference),
                "--robot-suites", "robot_tests", "--pytest-suites", "tests/hil")  # fmt: skip
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    second = hil(runs, "run", "--target", SECOND, "--out", str(runs.small),
                 "--robot-suites", "tests/e2e/hil_suites/report_second_target.robot",
                 "--pytest-suites", "tests/hil/test_models.py")  # fmt: skip
    assert second.returncode == 1, second.stdout[-3000:] + second.stderr[-3000:]  # the one test that must fail
    return runs


class _Page(HTMLParser):
    """The tables (id or class -> rows of cell texts) and the image sources of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.text: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            name = found.get("id") or found.get("class") or "table"
            self._table = name if name not in self.tables else f"{name}#{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(found.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _not_blank(image: Image.Image) -> bool:
    pixels = np.asarray(image.convert("L"), dtype=np.float64)
    return pixels.std() > 5 and (pixels < 200).mean() > 0.005


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    argv = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", *args]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)


def test_report_of_two_twin_targets_renders_its_tables_and_plots_in_chromium(
    twin_runs: TwinRuns, tmp_path: Path
) -> None:
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (Debian's chromium: make system-deps)")
    report = write_html(tmp_path / "report.html", [load_run(twin_runs.reference), load_run(twin_runs.small)],
                        zoo=ModelZoo(ROOT / "models"))  # fmt: skip
    assert "http://" not in report.read_text()
    assert "<script" not in report.read_text()

    dom = _chromium("--dump-dom", report.as_uri(), profile=tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = _Page()
    page.feed(dom.stdout)
    overview = page.tables["overview-table"]
    pairs = {(row[0].split(" (")[0], row[1]) for row in overview[1:]}
    expected = {("reference", m) for m in ("sine", "gesture", "kws", "anomaly")}
    expected |= {(SECOND, "sine"), (SECOND, "anomaly")}
    assert expected <= pairs
    assert all(all(cell for cell in row[:5]) for row in overview[1:])  # target, model, verdict, counts, latency
    verdicts = {(row[0].split(" (")[0], row[1]): row[2] for row in overview[1:]}
    assert verdicts[("reference", "kws")] == "PASS"
    assert verdicts[(SECOND, "sine")] == "FAIL"
    confusion = [rows for name, rows in page.tables.items() if name.startswith("confusion-table")]
    assert len(confusion) >= 4  # gesture, kws, anomaly on reference; anomaly on the second target
    assert all(len(rows) >= 3 and all(r[1:] for r in rows) for rows in confusion)
    comparison = next(rows for name, rows in page.tables.items() if name.startswith("comparison-table"))
    assert any(row[0] == "sine" and "bit-exact" in row[1] for row in comparison)
    text = " ".join(page.text)
    assert "Sine Latency Under An Impossible Limit Fails" in text
    assert "p95 latency" in text
    assert any(name.startswith("environment-table") and rows for name, rows in page.tables.items())

    images = [src for src in page.images if src]
    assert len(images) >= 15  # histograms, confusion matrices, memory bars, event timelines
    for src in images:
        assert src.startswith("data:image/png;base64,"), src[:60]
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        image.load()
        assert image.width > 100
        assert image.height > 100
        assert _not_blank(image)

    shot = tmp_path / "report.png"
    result = _chromium(f"--screenshot={shot}", "--window-size=1280,4000", report.as_uri(), profile=tmp_path / "p2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.is_file()
    screenshot = Image.open(shot)
    assert screenshot.size == (1280, 4000)
    assert _not_blank(screenshot)
    # the plots are drawn, not broken-image boxes: the screenshot holds the histograms' colours
    colours = np.asarray(screenshot.convert("RGB")).reshape(-1, 3)
    assert (np.abs(colours - [0x90, 0xCA, 0xF9]).sum(axis=1) < 30).sum() > 500  # latency histogram bars


def test_baseline_compare_gates_on_a_twenty_percent_latency_regression(twin_runs: TwinRuns, tmp_path: Path) -> None:
    missing = hil(twin_runs, "baseline", "compare", str(twin_runs.reference))
    assert missing.returncode == 2, missing.stdout
    assert "no baselines at" in missing.stdout
    assert "hil baseline save" in missing.stdout

    saved = hil(twin_runs, "baseline", "save", "--name", "release-1", str(twin_runs.reference))
    assert saved.returncode == 0, saved.stdout + saved.stderr
    unchanged = hil(twin_runs, "baseline", "compare", "--against", "release-1", str(twin_runs.reference))
    assert unchanged.returncode == 0, unchanged.stdout
    assert "no regression" in unchanged.stdout

    slower = tmp_path / "slower"
    shutil.copytree(twin_runs.reference, slower)
    metrics = json.loads((slower / "metrics.json").read_text())
    for test in metrics["tests"]:
        for record in test["models"].values():
            if "latency_us" in record:
                record["latency_us"] = {k: v if k == "count" else v * 1.2 for k, v in record["latency_us"].items()}
            if "latencies_us" in record:
                record["latencies_us"] = [v * 1.2 for v in record["latencies_us"]]
    (slower / "metrics.json").write_text(json.dumps(metrics))
    regressed = hil(twin_runs, "baseline", "compare", "--against", "release-1", str(slower))
    assert regressed.returncode == 1, regressed.stdout
    assert "REGRESSION" in regressed.stdout
    assert "+20.0 %" in regressed.stdout
    relaxed = hil(twin_runs, "baseline", "compare", "--latency-pct", "25", str(slower))
    assert relaxed.returncode == 0, relaxed.stdout

    other_target = hil(twin_runs, "baseline", "compare", str(twin_runs.small))
    assert other_target.returncode == 2, other_target.stdout
    assert f"no baseline holds target {SECOND}" in other_target.stdout

    history = hil(twin_runs, "report", str(twin_runs.reference), "--history", "--html", str(tmp_path / "h.html"))
    assert history.returncode == 0, history.stdout + history.stderr
    page = (tmp_path / "h.html").read_text()
    assert 'id="history"' in page
    assert "<figcaption>latency_p50_us</figcaption>" in page


def test_compare_prints_agreement_latency_ratio_and_calibration_for_later_runs(
    twin_runs: TwinRuns, tmp_path: Path
) -> None:
    result = hil(twin_runs, "compare", str(twin_runs.small), str(twin_runs.reference))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "sine: outputs bit-exact on 32 golden vectors, latency ratio B/A " in out
    assert "anomaly: outputs bit-exact on 32 golden vectors, latency ratio B/A " in out
    assert f"calibration factor {SECOND} -> reference overall:" in out
    assert "only measured on reference: gesture, kws" in out
    calibration = json.loads(Path(twin_runs.env["HIL_CALIBRATION"]).read_text())["targets"][SECOND]
    assert calibration["against"] == "reference"
    assert calibration["overall"] > 0
    assert set(calibration["models"]) == {"sine", "anomaly"}

    report = hil(twin_runs, "report", str(twin_runs.small))  # the report of a run on the calibrated target
    assert f"{SECOND} sine: median" in report.stdout
    later = hil(twin_runs, "run", "--target", SECOND, "--out", str(tmp_path / "later"), "--suite", "pytest",
                "--pytest-suites", "tests/hil/test_sine.py")  # fmt: skip
    assert later.returncode == 0, later.stdout[-3000:]
    assert f"{SECOND} sine: median" in later.stdout
    assert "predicted" in later.stdout
    assert "on reference" in later.stdout


def test_robot_tests_are_tagged_with_target_backend_and_firmware_build(twin_runs: TwinRuns) -> None:
    tags = {tag.text or "" for tag in ET.parse(twin_runs.reference / "output.xml").getroot().iter("tag")}
    assert {"target:reference", "backend:reference"} <= tags
    assert any(tag.startswith("build_id:") for tag in tags)


@pytest.mark.parametrize("target", ["qemu:mps2_an385", "native_sim"])
def test_compare_firmware_with_the_twin_where_it_is_built(twin_runs: TwinRuns, target: str, tmp_path: Path) -> None:
    from hil.backends import unavailable_reason
    from hil.config import load_config

    config = load_config(twin_runs.config)
    if reason := unavailable_reason(config.target(target), config):
        pytest.skip(f"{target} cannot run here: {reason}")
    out = tmp_path / "firmware"
    run = hil(twin_runs, "run", "--target", target, "--out", str(out), "--robot-suites", "robot_tests/sine.robot",
              "--pytest-suites", "tests/hil/test_sine.py")  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    result = hil(twin_runs, "compare", str(out), str(twin_runs.reference), "--no-save")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sine: outputs bit-exact" in result.stdout
    assert f"calibration factor {target} -> reference overall:" in result.stdout
