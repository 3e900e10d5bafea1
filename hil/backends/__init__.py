"""Backends: each brings a device up and hands back a byte stream that speaks the wire protocol.

One module per backend, named in the one table of backends (``hil.options.BACKENDS``, with each
backend's options model); a module is imported only when its backend is used, so a missing
optional tool never breaks the others.
"""

from __future__ import annotations

import importlib
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hil.config import HilConfig, Target
from hil.errors import ConfigError, SensorUnavailable
from hil.inputs import suggest
from hil.options import BACKENDS, FirmwareOptions
from hil.phases import PHASES_FILE, PhaseLog
from hil.stimuli import Stimulus

T = TypeVar("T")

# Set by ``hil run`` for its suite processes when the bench board could not be brought up:
# every test then reports that board error instead of running.
BOARD_ERROR_ENV = "HIL_BOARD_ERROR"


class SensorPlayback(ABC):
    """A recording queued in a target's emulated sensor; the device reads it once a sensor stream starts."""

    def __init__(self, path: Path, stimulus: Stimulus) -> None:
        self.path = path  # the file the emulator was fed (kept in the artifacts)
        self.stimulus = stimulus

    @abstractmethod
    def played(self) -> bool:
        """True once the device has had time to read every sample (and run its last window)."""

    def run_to_end(self, timeout_s: float) -> bool:
        """Run the device until the recording has played, where the backend can do it at once
        (an emulator advancing virtual time as fast as the host allows); False where it cannot,
        and the caller waits for :meth:`played` instead."""
        del timeout_s
        return False


@dataclass(frozen=True, slots=True)
class EmulatorCost:
    """What one action cost in an emulator.

    ``instructions`` is deterministic; ``virtual_time_s`` also counts the time the CPU idled
    while the host talked to it, so the device's own ticks are the better latency.
    """

    instructions: int
    virtual_time_s: float
    host_time_s: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "instructions": self.instructions,
            "virtual_time_s": round(self.virtual_time_s, 6),
            "host_time_s": round(self.host_time_s, 6),
        }


@dataclass(frozen=True, slots=True)
class BenchRequest:
    """What ``hil run`` asks of a bench board for the whole run (ignored by emulators)."""

    artifacts_dir: Path
    firmware: Path | None = None
    fixtures: tuple[str, ...] = ()
    wait_s: float = 0.0
    ignore_quarantine: bool = False
    force_flash: bool = False


class Backend(ABC):
    """Brings one target's device up and down; the protocol itself lives in ``hil.device``."""

    def __init__(self, target: Target, config: HilConfig, artifacts_dir: Path) -> None:
        self.target = target
        self.config = config
        self.artifacts_dir = artifacts_dir
        self.phases = PhaseLog(artifacts_dir / PHASES_FILE)  # where this device's time goes (hil.phases)

    @classmethod
    @abstractmethod
    def unavailable_reason(cls, target: Target, config: HilConfig) -> str | None:
        """Why this target cannot run on this machine now, or None if it can."""

    @classmethod
    def check_target(cls, target: Target, config: HilConfig) -> None:
        """Raise a ConfigError if ``target``'s options do not fit ``config`` (run before anything starts)."""
        del target, config

    @abstractmethod
    def start(self) -> str:
        """Start the device and return the pyserial URL of its protocol console."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the device and everything started for it; safe to call twice."""

    def exit_reason(self) -> str | None:
        """If the device's process is gone, how it ended; None while it runs."""
        return None

    def serial_options(self) -> dict[str, Any]:
        """Extra ``Link.open`` settings for the console (a board's baud rate, DTR/RTS)."""
        return {}

    @classmethod
    @contextmanager
    def hold_for_run(cls, target: Target, config: HilConfig, request: BenchRequest) -> Iterator[dict[str, str]]:
        """What one ``hil run`` holds around all its suites (a bench board: its lease, flashed once).

        Yields environment variables that hand it to the suite processes.
        """
        del target, config, request
        yield {}

    def facts(self) -> dict[str, str]:
        """Versions and paths worth keeping in the results (emulator version, ELF, ...)."""
        return {}

    # Optional abilities: emulators have them, a board or a plain executable does not.

    def play_into_sensor(self, stimulus: Stimulus) -> SensorPlayback:
        """Queue ``stimulus`` in the target's (emulated) accelerometer for the next sensor-source stream."""
        del stimulus
        raise SensorUnavailable(
            f"{self.target.name} has no emulated sensor to play recordings into "
            f"({self.target.backend} backend): sensor streams run on the reference twin and Renode targets"
        )

    def cost_of(self, action: Callable[[], T]) -> tuple[T, EmulatorCost | None]:
        """Run ``action``; also return its emulated cost where the backend can count it (else None)."""
        return action(), None

    def machine_reset(self) -> Callable[[], object] | None:
        """How to reset the whole machine between tests (peripherals, emulated sensors and all);
        None where the backend has no such reset or the target turned it off."""
        return None

    def save_snapshot(self, path: Path) -> Path | None:
        """Save the whole emulated machine to ``path`` for a post-mortem; None if the backend cannot."""
        del path
        return None


def firmware_image(target: Target, config: HilConfig, filename: str = "zephyr.elf") -> Path:
    """The built firmware of ``target``: its ``firmware`` option, else ``<build_dir>/<target>/zephyr/<filename>``."""
    options = target.options
    if isinstance(options, FirmwareOptions) and options.firmware:
        return (config.root / options.firmware).resolve()
    return config.build_dir / target.board_id / "zephyr" / filename


def missing_firmware(target: Target, config: HilConfig, filename: str = "zephyr.elf") -> str | None:
    image = firmware_image(target, config, filename)
    if image.is_file():
        return None
    return f"firmware for {target.name} not built ({image} is missing): run `hil build --target {target.name}`"


def free_tcp_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (the emulator binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backend_class(name: str) -> type[Backend]:
    """The driver class of backend ``name`` (its module imported now: only the backends used are)."""
    spec = BACKENDS.get(name)
    if spec is None:
        hint = suggest(name, BACKENDS)
        raise ConfigError(f"unknown backend {name!r}{hint}: known backends are {', '.join(BACKENDS)}")
    module_name, class_name = spec.driver.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def unavailable_reason(target: Target, config: HilConfig) -> str | None:
    return backend_class(target.backend).unavailable_reason(target, config)
