"""Stimulus CSVs and matching detected events against expected ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hil.errors import CheckFailed, ConfigError
from hil.stimuli import DetectedEvent, ExpectedEvent, check_events, expected_events, load_stimulus, match_events


def _write(tmp_path: Path, text: str, expected: str | None = None) -> Path:
    path = tmp_path / "s.csv"
    path.write_text(text)
    if expected is not None:
        (tmp_path / "s.expected.csv").write_text(expected)
    return path


def test_stimulus_loads_rate_units_channels_and_expected_events(tmp_path: Path) -> None:
    rows = "".join(f"{i / 50:.2f},0,0,{1 + i * 0.01}\n" for i in range(100))
    path = _write(tmp_path, "t_s,accel_x_g,accel_y_g,accel_z_g\n" + rows, "label,start_s,end_s\nwing,0.5,1.0\n")
    s = load_stimulus(path)
    assert s.channels == ("accel_x", "accel_y", "accel_z")
    assert s.unit == "g"
    assert s.sample_rate_hz == pytest.approx(50)
    assert s.samples.shape == (100, 3)
    assert s.expected == (ExpectedEvent("wing", 0.5, 1.0),)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("time,x_g\n0,1\n0.1,1\n", "header must be t_s"),
        ("t_s,x\n0,1\n0.1,1\n", "unit suffix"),
        ("t_s,x_g,y_ms2\n0,1,1\n0.1,1,1\n", "unit suffix"),
        ("t_s,x_g\n0,1\n0.1,oops\n", r"s\.csv:3: x_g: 'oops' is not a number"),
        ("t_s,x_g\n0,1\n0.1,1\n0.2,1\n0.25,1\n", r"s\.csv:5: t_s 0\.25 after 0\.2: .*steady rate"),
        ("t_s,x_g\n0,1\n", "at least 2 rows"),
        ("t_s,x_g\n0,1\n0.1,nan\n", r"s\.csv:3: x_g: nan is not a finite number"),
        ("t_s,x_g\n0,1\n0.1,-inf\n", r"s\.csv:3: x_g: -inf is not a finite number"),
        ("t_s,x_g\n0,1\n0.1,1,2\n", r"s\.csv:3: 3 values, expected 2"),
    ],
)
def test_bad_stimulus_is_refused_with_file_line_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_stimulus(_write(tmp_path, text))


def test_stimulus_with_a_utf8_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes("\ufefft_s,accel_x_g\n0,1\n0.02,2\n".encode())
    assert load_stimulus(path).channels == ("accel_x",)


def test_missing_expected_file_must_be_an_explicit_choice(tmp_path: Path) -> None:
    stimulus = load_stimulus(_write(tmp_path, "t_s,x_g\n0,1\n0.1,1\n"))
    with pytest.raises(ConfigError, match=r"has no s\.expected\.csv: .*only the header if none.*expect_none=True"):
        expected_events(stimulus)
    assert expected_events(stimulus, expect_none=True) == ()


def test_expected_file_with_only_its_header_expects_no_events(tmp_path: Path) -> None:
    stimulus = load_stimulus(_write(tmp_path, "t_s,x_g\n0,1\n0.1,1\n", "label,start_s,end_s\n"))
    assert expected_events(stimulus) == ()


def test_expect_none_with_events_listed_is_refused(tmp_path: Path) -> None:
    stimulus = load_stimulus(_write(tmp_path, "t_s,x_g\n0,1\n0.1,1\n", "label,start_s,end_s\nwing,0,1\n"))
    with pytest.raises(ConfigError, match=r"expect_none, but .* lists 1 event"):
        expected_events(stimulus, expect_none=True)


def test_events_match_within_their_windows_and_extra_ones_fail() -> None:
    expected = (ExpectedEvent("wing", 1.0, 2.0), ExpectedEvent("ring", 5.0, 6.0))
    detected = [DetectedEvent("wing", 3.5, 175, 0.9), DetectedEvent("ring", 9.0, 450, 0.95)]
    match = match_events(detected, expected, latency_s=2.56)
    assert [e.label for e in match.missed] == ["ring"]  # 9.0 s is past 6.0 + 2.56
    assert [d.label for d in match.unexpected] == ["ring"]
    with pytest.raises(CheckFailed, match=r"missed ring at 5-6 s; unexpected ring at 9\.00 s"):
        check_events("gesture", match)


def test_exact_expected_events_pass() -> None:
    match = match_events([DetectedEvent("wing", 2.1, 105, 0.9)], (ExpectedEvent("wing", 1.0, 2.0),), 2.56)
    check_events("gesture", match)
    assert match.as_dict()["delays_s"] == [pytest.approx(0.1)]


def test_samples_are_float32_in_physical_units(tmp_path: Path) -> None:
    s = load_stimulus(_write(tmp_path, "t_s,a_g\n0,0.5\n0.02,-1.25\n"))
    assert s.samples.dtype == np.float32
    assert s.samples[:, 0].tolist() == [0.5, -1.25]


def test_time_of_a_sample_follows_the_recording_then_its_rate(tmp_path: Path) -> None:
    path = tmp_path / "three.csv"
    path.write_text("t_s,accel_x_g\n10.0,0\n10.5,0\n11.0,0\n")
    stimulus = load_stimulus(path)
    assert [stimulus.time_of(n) for n in (1, 2, 3, 4, 6)] == [0.0, 0.5, 1.0, 1.5, 2.5]
