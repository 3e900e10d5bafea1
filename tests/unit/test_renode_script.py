"""The monitor script the Renode backend generates for each catalog and user target (no Renode needed)."""

from __future__ import annotations

import dataclasses
import struct
import textwrap
from pathlib import Path

import pytest

from hil import resd
from hil.backends import renode as rb
from hil.backends.renode.script import options
from hil.config import HilConfig, load_config
from hil.errors import ConfigError


@pytest.fixture(scope="module")
def catalog() -> HilConfig:
    return load_config(root=Path(__file__).resolve().parents[2])


RENODE_TARGETS = ("renode:nrf52840dk", "renode:arduino_nano_33_ble", "renode:stm32f4_disco", "renode:nucleo_f411re")


def test_every_built_in_renode_target_is_covered(catalog: HilConfig) -> None:
    assert {t.name for t in catalog.targets.values() if t.backend == "renode"} == set(RENODE_TARGETS)


@pytest.mark.parametrize("name", RENODE_TARGETS)
def test_script_builds_machine_bridges_console_and_loads_firmware(catalog: HilConfig, name: str) -> None:
    target = catalog.target(name)
    script = rb.build_script(target, catalog, firmware=Path("/fw/zephyr.elf"), console_port=4567)
    lines = script.text.splitlines()
    assert lines[0] == f":name: tinyml-hil {name}"
    assert "$bin?=@/fw/zephyr.elf" in lines
    assert f'mach create "{target.board_id}"' in lines
    assert f"machine LoadPlatformDescription @{options(target).platform}" in lines
    # our batched console bridge: Renode compiles it, then it listens on the console port
    assert lines.index(f"include @{rb.RENODE_MODELS / 'HilSocketTerminal.cs'}") < lines.index(
        'emulation CreateHilSocketTerminal 4567 "hil_console"'
    )
    assert f"connector Connect {options(target).console} hil_console" in lines
    assert lines.index(f'mach create "{target.board_id}"') < lines.index(
        'emulation CreateHilSocketTerminal 4567 "hil_console"'
    )
    assert "logLevel 3" in lines  # warnings of unmodelled registers cost emulation time: errors only
    # 1 ms: an idle Renode syncs 1,000 times a second, not 10,000; the nRF targets keep Renode's 100 us,
    # as their firmware times inferences with an RTC that Renode moves on at sync points only
    quantum = "0.000100" if "nrf52840.repl" in options(target).platform else "0.001000"
    assert f'emulation SetGlobalQuantum "{quantum}"' in lines
    assert lines.index("sysbus LoadELF $bin") > lines.index(f"connector Connect {options(target).console} hil_console")
    assert script.commands[-1] == "runMacro $reset"
    assert "start" not in script.commands  # the backend starts the emulation after the script ran


def test_renode_s_own_console_terminal_on_request(catalog: HilConfig) -> None:
    target = catalog.target("renode:nrf52840dk")
    target = dataclasses.replace(target, options=target.options.model_copy(update={"console_terminal": "renode"}))
    lines = rb.build_script(target, catalog, firmware=Path("/fw/zephyr.elf"), console_port=4567).text.splitlines()
    assert 'emulation CreateServerSocketTerminal 4567 "hil_console" false' in lines
    assert not any("HilSocketTerminal" in line for line in lines)


def arm_elf(path: Path, sections: list[tuple[int, int]], loads: list[tuple[int, int, int]]) -> Path:
    """A minimal 32-bit little-endian Arm ELF: (address, flags) sections, (vaddr, paddr, size) PT_LOAD segments."""
    ehsize, phentsize, shentsize = 52, 32, 40
    phoff, shoff = ehsize, ehsize + phentsize * len(loads)
    header = struct.pack(
        "<16sHHIIIIIHHHHHH", b"\x7fELF\x01\x01\x01" + bytes(9), 2, 40, 1, 0, phoff, shoff, 0, ehsize,
        phentsize, len(loads), shentsize, len(sections) + 1, 0,
    )  # fmt: skip
    program = b"".join(struct.pack("<IIIIIIII", 1, 0, v, pa, size, size, 5, 4) for v, pa, size in loads)
    null = bytes(shentsize)
    table = b"".join(struct.pack("<IIIIIIIIII", 0, 1, flags, address, 0, 16, 0, 0, 4, 0) for address, flags in sections)
    path.write_bytes(header + program + null + table)
    return path


def test_vector_table_is_where_renode_guesses_it_after_a_load(tmp_path: Path) -> None:
    alloc, plain = 0x2, 0x0
    stm32 = arm_elf(
        tmp_path / "stm32.elf",
        [(0x20000000, alloc), (0x08000000, alloc), (0x00000000, plain)],  # data (stored in flash), vectors, debug
        [(0x08000000, 0x08000000, 0x4000), (0x20000000, 0x08004000, 0x100)],
    )
    assert rb.script.vector_table_address(stm32) == 0x08000000
    booted = arm_elf(tmp_path / "nano.elf", [(0x10000, alloc), (0x20000000, alloc)], [(0x10000, 0x10000, 0x100)])
    assert rb.script.vector_table_address(booted) == 0x10000  # an image behind a bootloader
    assert rb.script.vector_table_address(tmp_path / "missing.elf") is None
    (tmp_path / "not.elf").write_bytes(b"\x7fELF")
    assert rb.script.vector_table_address(tmp_path / "not.elf") is None


def test_a_reset_points_the_core_at_the_vector_table_instead_of_loading_the_image_again(
    catalog: HilConfig, tmp_path: Path
) -> None:
    image = arm_elf(tmp_path / "fw.elf", [(0x08000000, 0x2)], [(0x08000000, 0x08000000, 0x100)])
    script = rb.build_script(catalog.target("renode:stm32f4_disco"), catalog, firmware=image, console_port=1)
    assert script.commands.count("sysbus LoadELF $bin") == 1  # once, at the start
    macro = 'macro reset\n"""\n    sysbus.cpu VectorTableOffset 0x8000000\n    nvic Frequency 168000000\n"""'
    assert macro in script.commands
    assert script.commands[-1] == "runMacro $reset"


def _stm32f4_disco_script(catalog: HilConfig, version: tuple[int, int, int]) -> rb.RenodeScript:
    target = catalog.target("renode:stm32f4_disco")
    return rb.build_script(target, catalog, firmware=Path("/fw.elf"), console_port=1, renode_version=version)


def test_stm32f4_disco_gets_our_i2c1_model_and_an_adxl345_on_renode_1_14(catalog: HilConfig) -> None:
    script = _stm32f4_disco_script(catalog, (1, 14, 0))
    model = script.commands.index(f"include {resd.monitor_path(rb.RENODE_MODELS / 'Hil_STM32F4_I2C.cs')}")
    bus = script.commands.index(
        'machine LoadPlatformDescriptionFromString "i2c1: I2C.Hil_STM32F4_I2C @ sysbus 0x40005400"'
    )
    sensor = script.commands.index('machine LoadPlatformDescriptionFromString "adxl345: Sensors.ADXL345 @ i2c1 0x1d"')
    assert model < bus < sensor
    assert script.commands[sensor + 1] == "sysbus.i2c1.adxl345 MaxFifoDepth 1"
    # /fw.elf is no Arm image we can read: a reset loads it again; then Zephyr's SysTick rate.
    assert 'macro reset\n"""\n    sysbus LoadELF $bin\n    nvic Frequency 168000000\n"""' in script.commands
    assert (rb.RENODE_MODELS / "Hil_STM32F4_I2C.cs").is_file()


def test_stm32f4_disco_uses_the_stock_i2c1_from_renode_1_15(catalog: HilConfig) -> None:
    script = _stm32f4_disco_script(catalog, (1, 15, 0))
    assert not any("I2C." in c or (c.startswith("include") and "I2C" in c) for c in script.commands)
    assert 'machine LoadPlatformDescriptionFromString "adxl345: Sensors.ADXL345 @ i2c1 0x1d"' in script.commands


@pytest.mark.parametrize("name", RENODE_TARGETS)
def test_built_in_targets_get_no_dwt(catalog: HilConfig, name: str) -> None:
    # Renode's DWT advances only as finely as virtual time; the firmware's SysTick fallback is finer.
    script = rb.build_script(catalog.target(name), catalog, firmware=Path("/f"), console_port=1)
    assert not any("DWT" in command for command in script.commands)


def test_nrf52840dk_gets_an_adxl345_at_0x53_on_twi0_fed_one_sample_per_fetch(catalog: HilConfig) -> None:
    script = rb.build_script(catalog.target("renode:nrf52840dk"), catalog, firmware=Path("/f"), console_port=1)
    sensor = script.commands.index('machine LoadPlatformDescriptionFromString "adxl345: Sensors.ADXL345 @ twi0 0x53"')
    assert script.commands[sensor + 1] == "sysbus.twi0.adxl345 MaxFifoDepth 1"


def test_nano_33_ble_gets_an_lsm9ds1_on_twi1(catalog: HilConfig) -> None:
    script = rb.build_script(catalog.target("renode:arduino_nano_33_ble"), catalog, firmware=Path("/f"), console_port=1)
    assert 'machine LoadPlatformDescriptionFromString "lsm9ds1: Sensors.LSM9DS1_IMU @ twi1 0x6b"' in script.commands


def _user_config(tmp_path: Path, table: str) -> HilConfig:
    (tmp_path / "hil.toml").write_text(textwrap.dedent(table))
    return load_config(tmp_path / "hil.toml")


def test_user_target_with_its_own_repl_sensor_and_commands(tmp_path: Path) -> None:
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards/my board.repl").write_text("// my board\n")
    config = _user_config(
        tmp_path,
        """
        [targets."renode:mine"]
        backend = "renode"
        platform = "boards/my board.repl"
        console = "sysbus.uart1"
        accelerometer = "sysbus.i2c0.imu"
        accelerometer_model = "lsm6dso"
        accelerometer_address = "0x6b"
        accelerometer_bus_repl = "i2c0: I2C.Foo @ sysbus 0x4000"
        performance_mips = 250
        dwt_frequency_hz = 64000000
        renode_commands = ["emulation SetGlobalQuantum \\"0.0001\\""]
        """,
    )
    script = rb.build_script(config.target("renode:mine"), config, firmware=tmp_path / "fw.elf", console_port=9)
    platform = str(tmp_path / "boards/my board.repl").replace(" ", "\\ ")
    assert f"machine LoadPlatformDescription @{platform}" in script.commands
    assert script.commands[6:12] == (
        'machine LoadPlatformDescriptionFromString "i2c0: I2C.Foo @ sysbus 0x4000"',
        'machine LoadPlatformDescriptionFromString "imu: Sensors.LSM6DSO_IMU @ i2c0 0x6b"',
        'machine LoadPlatformDescriptionFromString "dwt: Miscellaneous.DWT @ sysbus 0xE0001000 '
        '{ frequency: 64000000 }"',
        "sysbus.cpu PerformanceInMips 250",
        'emulation SetGlobalQuantum "0.001000"',  # option quantum_s (default 1 ms) ...
        'emulation SetGlobalQuantum "0.0001"',  # ... which the target's own renode_commands may change
    )


def test_accelerometer_that_is_not_a_sysbus_path_is_refused_when_the_config_loads(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"hil\.toml:6: .*accelerometer: must be sysbus\.<bus>\.<name>"):
        _user_config(
            tmp_path,
            """
            [targets."renode:bad"]
            backend = "renode"
            platform = "p.repl"
            console = "sysbus.uart0"
            accelerometer = "i2c1.adxl345"
            """,
        )


def test_accelerometer_of_unknown_model_says_to_set_accelerometer_model(tmp_path: Path) -> None:
    config = _user_config(
        tmp_path,
        """
        [targets."renode:bad"]
        backend = "renode"
        platform = "p.repl"
        console = "sysbus.uart0"
        accelerometer = "sysbus.i2c1.bmi270"
        """,
    )
    with pytest.raises(ConfigError, match="set accelerometer_model"):
        rb.build_script(config.target("renode:bad"), config, firmware=Path("/f"), console_port=1)


def test_target_without_console_is_refused_when_the_config_loads(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"hil\.toml:1: targets\.\"renode:x\": missing key 'console': the UART"):
        _user_config(tmp_path, '[targets."renode:x"]\nbackend = "renode"\nplatform = "p.repl"\n')
