"""RESD files and sensor feed commands, checked against the layout Renode's reader expects.

The field-by-field tests decode the bytes with ``struct`` straight from the layout in Renode's
sources (renode-infrastructure ``src/Emulator/Main/Utilities/RESD/``), not with ``hil.resd``'s
own reader, so a mistake shared by our writer and reader still fails here.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from hil import resd
from hil.errors import ConfigError
from hil.stimuli import Stimulus, load_stimulus

RATE_HZ = 50


def _stimulus(tmp_path: Path, rows: list[tuple[float, float, float]], unit: str = "g", t0_s: float = 0.0) -> Stimulus:
    lines = [f"t_s,accel_x_{unit},accel_y_{unit},accel_z_{unit}"]
    lines += [f"{t0_s + i / RATE_HZ:.4f},{x},{y},{z}" for i, (x, y, z) in enumerate(rows)]
    path = tmp_path / "wave.csv"
    path.write_text("\n".join(lines) + "\n")
    return load_stimulus(path)


ROWS = [(0.123047, -0.009766, 0.986328), (0.128906, -0.021484, 1.015625), (-1.5, 2.25, -0.000002)]


def test_file_starts_with_magic_version_and_three_zero_bytes(tmp_path: Path) -> None:
    path = resd.stimulus_to_resd(_stimulus(tmp_path, ROWS), tmp_path / "s.resd")
    assert path.read_bytes()[:8] == b"RESD\x01\x00\x00\x00"


def test_acceleration_block_matches_renode_layout_field_by_field(tmp_path: Path) -> None:
    path = resd.stimulus_to_resd(_stimulus(tmp_path, ROWS, t0_s=0.5), tmp_path / "s.resd", channel=3)
    data = path.read_bytes()
    # DataBlockHeader.ReadFromStream: u8 block type, u16 sample type, u16 channel, u64 size.
    block_type, sample_type, channel, size = struct.unpack_from("<BHHQ", data, 8)
    assert (block_type, sample_type, channel) == (2, 2, 3)  # constant frequency, acceleration
    assert size == len(data) - 8 - 13, "size counts the bytes after the 13-byte block header"
    # ConstantFrequencySamplesDataBlock.ReadFromStream: u64 start time, u64 period, both in ns.
    start_ns, period_ns = struct.unpack_from("<QQ", data, 21)
    assert start_ns == 500_000_000
    assert period_ns == 20_000_000
    # MetadataBlock.ReadFromStream: u64 length, then key\0, u8 type, value.
    (meta_len,) = struct.unpack_from("<Q", data, 37)
    meta = data[45 : 45 + meta_len]
    key, rest = meta.split(b"\0", 1)
    assert key == b"source"
    assert rest[0] == 0x0B  # MetadataValueType.String
    assert rest[1:].startswith(b"wave.csv\0")
    assert b"sample_rate_hz\0\x0a" in meta  # MetadataValueType.Double, then 8 bytes
    # AccelerationSample.TryReadFromStream: three i32 per sample, in micro-g.
    samples = np.frombuffer(data[45 + meta_len :], dtype="<i4").reshape(-1, 3)
    assert samples.tolist() == [[123047, -9766, 986328], [128906, -21484, 1015625], [-1500000, 2250000, -2]]


def test_double_metadata_value_is_little_endian_ieee(tmp_path: Path) -> None:
    data = resd.stimulus_to_resd(_stimulus(tmp_path, ROWS), tmp_path / "s.resd").read_bytes()
    at = data.index(b"sample_rate_hz\0\x0a") + len(b"sample_rate_hz\0\x0a")
    assert struct.unpack_from("<d", data, at)[0] == pytest.approx(RATE_HZ)


def test_reader_round_trips_what_the_writer_wrote(tmp_path: Path) -> None:
    stimulus = _stimulus(tmp_path, ROWS)
    (block,) = resd.read_resd(resd.stimulus_to_resd(stimulus, tmp_path / "s.resd"))
    assert block.sample_type == resd.SampleType.ACCELERATION
    assert block.block_type == resd.BlockType.CONSTANT_FREQUENCY
    assert block.period_ns == 20_000_000
    np.testing.assert_allclose(block.samples / 1e6, stimulus.samples, atol=1e-6)
    assert block.metadata["source"] == resd.MetaValue(resd.MetaType.STRING, "wave.csv")
    assert block.metadata["unit"].value == "ug"


def test_every_metadata_type_round_trips(tmp_path: Path) -> None:
    metadata = {
        "i8": resd.MetaValue(resd.MetaType.INT8, -5),
        "u16": resd.MetaValue(resd.MetaType.UINT16, 65535),
        "i64": resd.MetaValue(resd.MetaType.INT64, -(2**40)),
        "f": resd.MetaValue(resd.MetaType.FLOAT, 0.5),
        "s": resd.MetaValue(resd.MetaType.STRING, "héllo"),
        "b": resd.MetaValue(resd.MetaType.BLOB, b"\x00\xff\x01"),
    }
    block = resd.ResdBlock(
        resd.SampleType.TEMPERATURE, 0, 0, np.array([[21000], [21500]]), period_ns=1_000_000, metadata=metadata
    )
    (back,) = resd.read_resd(resd.write_resd(tmp_path / "t.resd", [block]))
    assert dict(back.metadata) == metadata
    assert back.samples.tolist() == [[21000], [21500]]


def test_arbitrary_timestamp_block_puts_a_u64_timestamp_before_each_sample(tmp_path: Path) -> None:
    block = resd.ResdBlock(
        resd.SampleType.ACCELERATION, 1, 100, np.array([[1, 2, 3], [4, 5, 6]]), timestamps_ns=np.array([100, 350])
    )
    data = resd.write_resd(tmp_path / "a.resd", [block]).read_bytes()
    assert struct.unpack_from("<BHH", data, 8) == (1, 2, 1)
    (start,) = struct.unpack_from("<Q", data, 21)  # no period in this block type
    assert start == 100
    assert struct.unpack_from("<Q", data, 29) == (0,)  # empty metadata
    assert struct.unpack_from("<Q3iQ3i", data, 37) == (100, 1, 2, 3, 350, 4, 5, 6)
    (back,) = resd.read_resd(tmp_path / "a.resd")
    assert back.timestamps_ns.tolist() == [100, 350]


def test_reader_skips_blocks_of_unknown_sample_types_as_renode_does(tmp_path: Path) -> None:
    known = resd.pack_block(resd.ResdBlock(resd.SampleType.VOLTAGE, 0, 0, np.array([[3300]]), period_ns=10))
    unknown = struct.pack("<BHHQ", 2, 0xF000, 0, 4) + b"abcd"
    path = tmp_path / "mixed.resd"
    path.write_bytes(b"RESD\x01\x00\x00\x00" + unknown + known)
    (block,) = resd.read_resd(path)
    assert block.sample_type == resd.SampleType.VOLTAGE


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"RESE\x01\x00\x00\x00", "not a RESD file"),
        (b"RESD\x02\x00\x00\x00", "version 2"),
        (b"RESD\x01\x00\x01\x00", "padding"),
        (b"RESD\x01\x00\x00\x00\x02\x02\x00", "ends inside block header"),
    ],
)
def test_reader_rejects_what_renode_rejects(tmp_path: Path, data: bytes, problem: str) -> None:
    path = tmp_path / "bad.resd"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=problem):
        resd.read_resd(path)


@pytest.mark.parametrize(("unit", "scale"), [("g", 1.0), ("mg", 1e-3), ("ms2", 1 / 9.80665)])
def test_stimulus_units_convert_to_micro_g(tmp_path: Path, unit: str, scale: float) -> None:
    (block,) = resd.read_resd(resd.stimulus_to_resd(_stimulus(tmp_path, [(1, -2, 3)] * 2, unit), tmp_path / "u.resd"))
    assert block.samples[0].tolist() == [round(v * scale * 1e6) for v in (1, -2, 3)]


def test_stimulus_that_is_not_three_axis_acceleration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("t_s,a_g,b_g\n0,1,1\n0.02,1,1\n")
    with pytest.raises(ConfigError, match="3 channels"):
        resd.stimulus_to_resd(load_stimulus(path), tmp_path / "x.resd")
    path.write_text("t_s,a_degc,b_degc,c_degc\n0,1,1,1\n0.02,1,1,1\n")
    with pytest.raises(ConfigError, match="cannot convert unit 'degc'"):
        resd.stimulus_to_resd(load_stimulus(path), tmp_path / "x.resd")


def test_adxl345_feed_commands_are_int16_units_of_one_1024th_g(tmp_path: Path) -> None:
    commands = resd.feed_sample_commands(_stimulus(tmp_path, ROWS), "sysbus.i2c1.adxl345", "adxl345")
    assert commands == [
        "sysbus.i2c1.adxl345 FeedSample 126 -10 1010",
        "sysbus.i2c1.adxl345 FeedSample 132 -22 1040",
        "sysbus.i2c1.adxl345 FeedSample -1536 2304 0",
    ]


def test_lsm9ds1_feed_commands_are_decimal_g(tmp_path: Path) -> None:
    commands = resd.feed_sample_commands(_stimulus(tmp_path, ROWS), "sysbus.twi1.lsm9ds1", "lsm9ds1")
    assert commands[0] == "sysbus.twi1.lsm9ds1 FeedAccelerationSample 0.123047 -0.009766 0.986328"
    assert commands[2] == "sysbus.twi1.lsm9ds1 FeedAccelerationSample -1.5 2.25 -0.000002"


def test_feed_files_hold_one_sample_per_line_in_the_models_units(tmp_path: Path) -> None:
    stimulus = _stimulus(tmp_path, ROWS)
    adxl = resd.write_feed_file(stimulus, tmp_path / "a.data", "adxl345").read_text().splitlines()
    assert adxl == ["126 -10 1010", "132 -22 1040", "-1536 2304 0"]  # ADXL345.cs: no comments allowed
    lsm = resd.write_feed_file(stimulus, tmp_path / "l.data", "lsm9ds1").read_text().splitlines()
    assert lsm[0].startswith("#")  # SensorSamplesFifo skips '#' lines
    assert lsm[1:] == ["0.123047 -0.009766 0.986328", "0.128906 -0.021484 1.015625", "-1.5 2.25 -0.000002"]
    assert resd.feed_file_command("sysbus.i2c1.adxl345", tmp_path / "a.data", "adxl345") == (
        f"sysbus.i2c1.adxl345 FeedSample @{tmp_path / 'a.data'}"
    )


def test_feed_refuses_peaks_the_model_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"peak 40\.000 g does not fit adxl345"):
        resd.feed_sample_commands(_stimulus(tmp_path, [(40, 0, 0)] * 2), "sysbus.i2c1.adxl345", "adxl345")


def test_unknown_feed_model_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="known are adxl345, lsm9ds1"):
        resd.feed_sample_commands(_stimulus(tmp_path, ROWS), "sysbus.i2c1.x", "bmi270")


def test_monitor_paths_escape_spaces_as_renode_does(tmp_path: Path) -> None:
    spaced = tmp_path / "a b" / "c.resd"
    assert resd.monitor_path(spaced) == "@" + str(spaced).replace(" ", "\\ ")
    command = resd.resd_feed_command("sysbus.i2c1.lsm6dso", spaced, sample_offset_ns=-5)
    assert command.endswith(" 0 0 -5")
    assert "FeedAccelerationSamplesFromRESD @" in command
