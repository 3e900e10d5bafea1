"""The lab file: twister hardware maps load unchanged; every mistake names file, line and key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hil.config import load_config
from hil.errors import BoardBusy, ConfigError
from hil.lab.bench import Lab
from hil.lab.inventory import load_lab_file

# As `twister --generate-hardware-map` writes it, plus our optional keys on the second board.
TWISTER_MAP = """\
- connected: true
  id: 000683759358
  platform: nrf52840dk/nrf52840
  product: J-Link
  runner: jlink
  serial: /dev/serial/by-id/usb-SEGGER_J-Link_000683759358-if00
  fixtures: [gpio_loopback]
- connected: true
  id: 0670FF495157
  platform:
    - nucleo_f411re
  product: STM32 STLink
  runner: openocd
  runner_params: ["--cmd-pre-init", "source [find interface/stlink.cfg]"]
  serial: /dev/ttyACM7
  baud: 115200
  probe_id: 0670FF495157
  power_on: uhubctl -l 1-1 -p 2 -a on
  power_off: [uhubctl, -l, 1-1, -p, "2", -a, "off"]
  flash_retries: 1
  openocd_config: board/st_nucleo_f4.cfg
- connected: false
  id: spare
  platform: nrf52840dk_nrf52840
  product: J-Link
  runner: nrfjprog
  serial: /dev/ttyACM9
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    return path


def test_twister_hardware_map_loads_with_our_keys(tmp_path: Path) -> None:
    boards = load_lab_file(_write(tmp_path, TWISTER_MAP))
    assert [b.id for b in boards] == ["000683759358", "0670FF495157", "spare"]
    nucleo = boards[1]
    assert nucleo.power_on == ("uhubctl", "-l", "1-1", "-p", "2", "-a", "on")
    assert nucleo.power_off[-1] == "off"
    assert nucleo.runner_params[0] == "--cmd-pre-init"
    assert (nucleo.flash_retries, nucleo.openocd_config, nucleo.where.line) == (1, ("board/st_nucleo_f4.cfg",), 8)
    assert boards[0].fixtures == ("gpio_loopback",)


def test_boards_serve_catalog_targets_old_and_new_platform_names(tmp_path: Path) -> None:
    config = load_config(root=tmp_path)
    lab = Lab(config, load_lab_file(_write(tmp_path, TWISTER_MAP)), None)
    dk = [b.id for b in lab.boards_for(config.target("board:nrf52840dk"))]
    assert dk == ["000683759358", "spare"]  # nrf52840dk/nrf52840 and the older nrf52840dk_nrf52840
    assert [b.id for b in lab.boards_for(config.target("board:0670FF495157"))] == ["0670FF495157"]
    assert lab.targets_of(lab.boards[1]) == ("board:nucleo_f411re", "board:0670FF495157")
    with pytest.raises(ConfigError, match="no board for board:nrf52840dk has fixtures uart_loop"):
        lab.boards_for(config.target("board:nrf52840dk"), ("uart_loop",))
    assert "connected: false" in (lab.why_not(lab.boards[2]) or "")


HEAD = "- id: a\n  platform: p\n  runner: jlink\n  serial: /x\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- id: a\n  platform: p\n  runner: jlink\n  serail: /x\n", r":4: unknown key 'serail' \(did you mean serial"),
        ("- id: a\n  platform: p\n  runner: jlink\n  serial: /dev/x\n  baud: fast\n", r":5: baud: expected an integer"),
        ("- id: a\n  platform: p\n  runner: jlink\n  serial: /dev/x\n  baud: .nan\n", r":5: baud: expected an integer"),
        ("- id: a\n  platform: p\n  runner: jtag\n  serial: /dev/x\n", r":3: runner: 'jtag' is not one of jlink"),
        ("- id: a\n  platform: p\n  serial: /dev/x\n", r":1: board 'a' has no runner"),
        ("- id: a\n  platform: p\n  runner: gdb\n  serial: /dev/x\n", r":1: board 'a': runner gdb needs gdb_server"),
        ("- id: a\n  platform: p\n  runner: jlink\n", r":1: board 'a': no console"),
        ("- id: a\n  platform: p\n  runner: jlink\n  serial: /x\n  power_on: a\n", r"give both power_on and power_off"),
        ("id: a\n", r":1: a lab file is a list of boards"),
        ("- [a]\n", r":1: each board is a mapping"),
        ("- id: a\n  platform: [p\n", r":\d+: not valid YAML"),
        (HEAD + HEAD, r":5: board id 'a' appears twice"),
        (HEAD + "  flash_retries: true\n", r"flash_retries: expected an"),
        (HEAD + "  reset: [protocol, magic]\n", r"'magic' is not one of"),
    ],
)  # fmt: skip
def test_lab_file_mistakes_name_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_lab_file(path)
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


def test_lab_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_bytes(b"- id: \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_lab_file(path)


def test_hil_toml_board_target_is_a_one_board_lab(tmp_path: Path) -> None:
    (tmp_path / "hil.toml").write_text(
        '[targets."board:mine"]\nbackend = "board"\nserial = "/dev/ttyUSB3"\nbaud = 921600\n'
    )
    config = load_config(root=tmp_path)
    (board,) = Lab(config, (), None).boards_for(config.target("board:mine"))
    assert (board.id, board.serial, board.baud) == ("mine", "/dev/ttyUSB3", 921600)


def test_unknown_board_target_says_where_it_looked(tmp_path: Path) -> None:
    config = load_config(root=tmp_path)
    lab = Lab(config, load_lab_file(_write(tmp_path, TWISTER_MAP)), tmp_path / "map.yaml")
    with pytest.raises(ConfigError, match=r"no board serves board:esp32: lab file .*map.yaml; boards: 000683759358"):
        lab.boards_for(config.target("board:esp32"))


def test_two_runs_asking_for_one_platform_with_two_boards_each_get_one(tmp_path: Path) -> None:

    two_boards = "".join(
        f"- id: dk-{n}\n  platform: nrf52840dk/nrf52840\n  runner: jlink\n  serial: /dev/ttyACM{n}\n" for n in (1, 2)
    )
    config = dataclasses.replace(load_config(root=tmp_path), lab_state_dir=tmp_path)
    lab = Lab(config, load_lab_file(_write(tmp_path, two_boards)), None)
    target = config.target("board:nrf52840dk")
    first, second = lab.lease(target, purpose="run A"), lab.lease(target, purpose="run B")
    assert {first.board.id, second.board.id} == {"dk-1", "dk-2"}
    with pytest.raises(BoardBusy, match=r"board dk-1 is in use by pid \d+ .*run A.*board dk-2 is in use"):
        lab.lease(target, purpose="run C")
    first.release()
    assert lab.lease(target, purpose="run C").board.id == first.board.id
