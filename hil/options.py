"""The backends, in one table, and each one's target options as a typed, validated model.

A target table in ``hil/targets.toml`` or a user's ``hil.toml`` has the keys every target has
(:class:`TargetKeys`) and its backend's own (:class:`ReferenceOptions`, :class:`RenodeOptions`,
:class:`QemuOptions`, :class:`NativeOptions`, :class:`BoardOptions`); both are checked when the
configuration loads, so a misspelt key or a string where a number belongs is reported with its
file and line before anything starts. The table :data:`BACKENDS` also names the driver class of
each backend, imported only when that backend is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr
from pydantic_core import PydanticCustomError


class Strict(BaseModel):
    """A table of a file we read: no unknown keys, no coercion ("20" is not a number), no nan/inf."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _one_or_more(value: Any) -> Any:
    """A string or a list of strings, as twister's hardware map allows."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PydanticCustomError("one_or_more", "expected a string or a non-empty list of strings")


def _number_text(value: Any) -> Any:
    """Twister writes probe ids that look like numbers."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _address(value: Any) -> Any:
    """An I2C address: 0x53, 83 or "0x53"."""
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            raise PydanticCustomError("address", "expected an I2C address such as 0x53") from None
    return value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sysbus_path(value: str) -> str:
    parts = value.split(".")
    if len(parts) < 3 or parts[0] != "sysbus" or not all(parts):
        raise PydanticCustomError("sysbus_path", "must be sysbus.<bus>.<name> (e.g. sysbus.i2c1.adxl345)")
    return value


Text = Annotated[str, Field(min_length=1)]
Strings = Annotated[tuple[Text, ...], BeforeValidator(_tuple)]
OneOrMore = Annotated[tuple[str, ...], BeforeValidator(_one_or_more)]
Seconds = Annotated[float, Field(gt=0)]
Port = Annotated[int, Field(ge=1, le=65535)]


class TargetKeys(Strict):
    """The keys every target has."""

    backend: Text
    description: str = ""
    zephyr_board: Text | None = None
    timeout_s: Seconds = 30.0
    boot_timeout_s: Seconds = 30.0


class TargetOptions(Strict):
    """A backend's own keys of a target; every backend's options derive from this."""

    snapshot_on_failure: bool = True  # where the backend can save the machine (Renode)
    # Evaluation-set checks score a seeded subset of this many samples (default: the whole set), e.g. on
    # emulators; $HIL_EVAL_SAMPLES (hil run --eval-samples) overrides it. Results always say so.
    eval_samples: Annotated[int, Field(ge=1)] | None = None
    _written: dict[str, Any] = PrivateAttr(default_factory=dict)

    def as_written(self) -> dict[str, Any]:
        """The keys the configuration gave, with their values as written (the lab reads board keys so)."""
        return dict(self._written)


class FirmwareOptions(TargetOptions):
    firmware: Text | None = None  # an image instead of <build_dir>/<target>/zephyr/zephyr.elf
    # Kconfig fragments for this target's build only (relative to firmware_dir): west's EXTRA_CONF_FILE
    firmware_conf: Strings = ()


class ReferenceOptions(TargetOptions):
    models: Strings | None = None  # serve only these models (default: every one in models_dir)
    accelerometer: bool = True  # false: a twin without an emulated accelerometer


SensorModelName = Literal["adxl345", "lsm9ds1", "lsm6dso"]


class RenodeOptions(FirmwareOptions):
    platform: Text = Field(description="the Renode platform (.repl), e.g. platforms/cpus/nrf52840.repl")
    console: Text = Field(description="the UART the firmware speaks the protocol on, e.g. sysbus.uart0")
    accelerometer: Annotated[Text, AfterValidator(_sysbus_path)] | None = None
    accelerometer_model: Annotated[SensorModelName, BeforeValidator(_lower)] | None = None
    accelerometer_address: Annotated[int, BeforeValidator(_address), Field(ge=0, le=0x7F)] | None = None
    accelerometer_bus_repl: Text | None = None
    dwt_frequency_hz: Annotated[int, Field(ge=0)] = 0
    cpu: Text = "sysbus.cpu"
    performance_mips: Annotated[float, Field(gt=0)] | None = None
    renode_commands: Strings = ()
    reset_commands: Strings = ()
    reset_between_tests: bool = True
    log_level: Literal["noisy", "debug", "info", "warning", "error"] = "error"  # Renode's log (renode.log)
    quantum_s: Annotated[float, Field(gt=0, le=1)] = 0.001  # Renode's time quantum (its default 0.0001)
    fast_forward_quantum_s: Annotated[float, Field(gt=0, le=1)] = 0.01  # while virtual time runs ahead
    # the console's TCP bridge: ours (models/HilSocketTerminal.cs, batched, no spinning) or Renode's own
    console_terminal: Literal["hil", "renode"] = "hil"
    sensor_unavailable: Text | None = None
    robot_server: bool = False
    robot_server_port: Port | None = None


class QemuOptions(FirmwareOptions):
    machine: Text = Field(description="the QEMU -machine, e.g. mps2-an385")
    cpu: Text = "cortex-m3"
    icount_shift: Annotated[int, Field(ge=0, le=10)] = 3  # 8 ns per instruction: 125 MIPS (see hil.backends.qemu)


class NativeOptions(FirmwareOptions):
    pass


# The lab file's runners and reset methods (hil.lab.inventory; a unit test keeps them equal).
Runner = Literal["jlink", "pyocd", "openocd", "nrfjprog", "nrfutil", "stm32cubeprogrammer", "bossac", "gdb", "command"]
ResetMethod = Literal["protocol", "runner", "power"]


class BoardOptions(FirmwareOptions):
    """A ``[targets."board:…"]`` entry is a lab of one board: any key of a lab-file entry but ``id`` and
    ``platform`` (the target's name and ``zephyr_board``), with the lab file's types."""

    serial: Text | None = None
    runner: Runner | None = None
    product: Text | None = None
    connected: bool | None = None
    available: bool | None = None
    runner_params: OneOrMore | None = None
    serial_pty: Text | None = None
    baud: Annotated[int, Field(ge=1)] | None = None
    fixtures: OneOrMore | None = None
    probe_id: Annotated[Text, BeforeValidator(_number_text)] | None = None
    notes: Text | None = None
    pre_script: Text | None = None
    post_script: Text | None = None
    post_flash_script: Text | None = None
    flash_timeout: Annotated[float, Field(ge=1)] | None = None
    flash_with_test: Any = None  # twister's; accepted and unused
    flash_before: Any = None
    script_param: Any = None
    flash_retries: Annotated[int, Field(ge=0)] | None = None
    flash_command: Text | None = None
    gdb_server: Text | None = None
    gdb: Text | None = None
    gdb_reset: Text | None = None
    chip: Text | None = None
    openocd_config: OneOrMore | None = None
    power_on: OneOrMore | None = None
    power_off: OneOrMore | None = None
    power_cycle: OneOrMore | None = None
    power_off_s: Annotated[float, Field(ge=0)] | None = None
    reset: Annotated[tuple[ResetMethod, ...], BeforeValidator(_one_or_more)] | None = None
    quarantine_after: Annotated[int, Field(ge=1)] | None = None
    dtr_rts: bool | None = None
    place: Text | None = None
    coordinator: Text | None = None


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """One backend: its options model and its driver (``module:Class``, imported when used)."""

    name: str
    options: type[TargetOptions]
    driver: str


BACKENDS: Mapping[str, BackendSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            BackendSpec("reference", ReferenceOptions, "hil.backends.reference:ReferenceBackend"),
            BackendSpec("renode", RenodeOptions, "hil.backends.renode:RenodeBackend"),
            BackendSpec("qemu", QemuOptions, "hil.backends.qemu:QemuBackend"),
            BackendSpec("native", NativeOptions, "hil.backends.native:NativeBackend"),
            BackendSpec("board", BoardOptions, "hil.backends.board:BoardBackend"),
        )
    }
)
