"""The ``Device`` contract: the one object every Robot keyword and pytest test talks to.

A device is a backend (which brings the firmware up: twin, Renode, QEMU, native_sim, board)
plus the wire-protocol link to it. Tests never see which backend they run on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from hil import messages as msg
from hil import protocol as p
from hil.backends import Backend, EmulatorCost, SensorPlayback, backend_class
from hil.config import HilConfig, Target
from hil.errors import ConfigError, DeviceLost, DeviceTimeout, HilError, ProtocolError
from hil.link import Link
from hil.phases import BOOT, HANDSHAKE, OPEN, REQUEST, RESET, STOP, PhaseLog
from hil.results import TFLITE_TYPE_CODES, DeviceInfo, InferenceResult, MemoryReport, ModelInfo, OpProfile
from hil.stimuli import Stimulus

HANDSHAKE_RETRY_S = 0.5

InferenceObserver = Callable[[InferenceResult], None]
T = TypeVar("T")


class Device:
    """A device under test, reached through the wire protocol whatever the backend.

    Use as a context manager, or call :meth:`open` and :meth:`close`::

        with Device(config.target("reference"), config, Path("results")) as dut:
            result = dut.infer("sine", np.array([[12]], dtype=np.int8))
    """

    def __init__(self, target: Target, config: HilConfig, artifacts_dir: Path) -> None:
        self.target = target
        self.config = config
        self.artifacts_dir = artifacts_dir
        self.backend: Backend = backend_class(target.backend)(target, config, artifacts_dir)
        self.observers: list[InferenceObserver] = []
        self._link: Link | None = None
        self._info: DeviceInfo | None = None
        self._models: dict[str, ModelInfo] = {}
        self._stream_channels: int | None = None
        self._broken: str | None = None  # why the last request left the device unusable
        self._log = logging.getLogger(f"hil.device({target.name})")

    # --- life cycle -------------------------------------------------------------------------

    def open(self) -> DeviceInfo:
        """Start the backend, connect, and handshake; returns what the device says it is."""
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self._broken = None
        with self.phases.span(OPEN, target=self.target.name):
            url = self.backend.start()
            try:
                self._link = Link.open(
                    url,
                    name=self.target.name,
                    console_log=self.artifacts_dir / f"console-{self.target.board_id}.log",
                    exit_reason=self.backend.exit_reason,
                    **self.backend.serial_options(),
                )
                return self._handshake()
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        if self._link:
            self._link.close()
            self._link = None
        with self.phases.span(STOP):
            self.backend.stop()
        self.phases.close()

    @property
    def phases(self) -> PhaseLog:
        """Where this device's time goes (``phases.jsonl`` in the artifacts; see ``hil.phases``)."""
        return self.backend.phases

    def restart(self) -> DeviceInfo:
        """Bring a device that went away back up (the backend is started afresh)."""
        self.close()
        return self.open()

    def __enter__(self) -> Device:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._link is not None

    def lost_reason(self) -> str | None:
        """Why the device is unusable (closed, its process ended, or it stopped answering), or None."""
        if self._link is None:
            return f"{self.target.name} is not open"
        return self.backend.exit_reason() or self._broken

    @property
    def link(self) -> Link:
        if self._link is None:
            raise HilError(f"{self.target.name} is not open: call open() (Robot: Open Device) first")
        return self._link

    def _handshake(self, known: DeviceInfo | None = None) -> DeviceInfo:
        """Ask INFO until the device answers: it may still be booting, or printing a banner.

        With ``known`` (the INFO of the same image before a machine reset), an INFO equal to it
        keeps the models already known instead of asking MODEL_INFO for each again.
        """
        started = time.monotonic()
        deadline = started + self.target.boot_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            attempt = time.monotonic()
            try:
                payload = self._request(
                    p.MsgType.INFO, b"", max(0.05, min(HANDSHAKE_RETRY_S, remaining)), reboot_ok=True
                )
                break
            except DeviceLost:
                raise
            except HilError as err:
                if time.monotonic() >= deadline:
                    raise type(err)(f"handshake with {self.target.name} failed: {err}") from err
        self._broken = None  # retries while booting are expected
        self.phases.add(BOOT, started, attempt)  # the attempts the booting device did not answer
        version = payload[0] if payload else None  # before decoding: other versions lay INFO out differently
        if version != p.PROTOCOL_VERSION:
            raise ProtocolError(
                f"{self.target.name} speaks protocol {version}, this host speaks {p.PROTOCOL_VERSION}: "
                "rebuild the firmware or upgrade tinyml-hil"
            )
        info = msg.unpack_info(payload)
        self.link.max_payload_bytes = info.max_payload_bytes  # oversize requests fail before they are sent
        if known is not None and info == known and len(self._models) == info.model_count:
            self.phases.add(HANDSHAKE, attempt, time.monotonic())
            return info
        self._info = info
        self._models = {}
        for index in range(info.model_count):
            model = msg.unpack_model_info(self._request(p.MsgType.MODEL_INFO, msg.pack_model_info_request(index)))
            self._models[model.name] = model
        self.phases.add(HANDSHAKE, attempt, time.monotonic())  # the answered INFO and every MODEL_INFO
        return info

    def _request(
        self,
        msg_type: p.MsgType,
        payload: bytes = b"",
        timeout_s: float | None = None,
        *,
        reboot_ok: bool = False,
        model: str | None = None,
    ) -> bytes:
        detail = {"bytes": len(payload)} | ({"model": model} if model else {})
        try:
            with self.phases.span(f"{REQUEST}.{msg_type.name}", **detail):
                return self.link.request(msg_type, payload, timeout_s or self.target.timeout_s, reboot_ok=reboot_ok)
        except (DeviceTimeout, DeviceLost) as err:
            # A device that missed a reply may answer it late and desynchronise the next test: restart it.
            self._broken = str(err)
            raise

    # --- what the device is -----------------------------------------------------------------

    @property
    def info(self) -> DeviceInfo:
        if self._info is None:
            raise HilError(f"{self.target.name} is not open: call open() first")
        return self._info

    @property
    def models(self) -> dict[str, ModelInfo]:
        return dict(self._models)

    def model(self, name: str) -> ModelInfo:
        try:
            return self._models[name]
        except KeyError:
            known = ", ".join(self._models) or "none"
            raise ConfigError(f"unknown model {name!r}: {self.target.name} serves {known}") from None

    # --- inference ----------------------------------------------------------------------------

    def infer(self, model: str, tensor: np.ndarray | Sequence, timeout_s: float | None = None) -> InferenceResult:
        """Run one inference on an already-quantized input tensor of the model's exact dtype and shape."""
        spec = self.model(model).input
        array = np.asarray(tensor)
        if array.dtype != spec.numpy_dtype:
            raise ConfigError(
                f"wrong input dtype for {model}: got {array.dtype}, the model takes {spec.describe()}; "
                "quantize real values with infer_values()"
            )
        if array.shape != spec.shape:
            raise ConfigError(
                f"wrong input shape for {model}: got {list(array.shape)}, the model takes {spec.describe()}"
            )
        request = msg.InferRequest(model, TFLITE_TYPE_CODES[spec.dtype], array.tobytes())
        raw = self._request(p.MsgType.INFER, msg.pack_infer_request(request), timeout_s, model=model)
        reply = msg.unpack_infer_reply(raw)
        out_spec = self.model(model).output
        if len(reply.output) != out_spec.nbytes:
            raise ProtocolError(f"{model} output has {len(reply.output)} bytes, expected {out_spec.nbytes}")
        output = np.frombuffer(reply.output, dtype=out_spec.numpy_dtype).reshape(out_spec.shape)
        result = InferenceResult(model, output, reply.ticks, self.info.clock_hz, reply.arena_used_bytes, raw)
        for observer in self.observers:
            observer(result)
        return result

    def infer_values(
        self, model: str, values: np.ndarray | Sequence, timeout_s: float | None = None
    ) -> InferenceResult:
        """Quantize real-valued input with the model's input scale and zero point, then infer."""
        return self.infer(model, self.quantize(model, values), timeout_s)

    def quantize(self, model: str, values: np.ndarray | Sequence) -> np.ndarray:
        """Real values as ``model``'s input tensor (scale, zero point, dtype, shape), rounded as the firmware does.

        ``dut.infer("sine", dut.quantize("sine", [1.5708]))`` is ``dut.infer_values("sine", [1.5708])``.
        """
        spec = self.model(model).input
        array = np.asarray(values, dtype=np.float64)
        if array.size != int(np.prod(spec.shape)):
            raise ConfigError(
                f"wrong input size for {model}: got {array.size} values, the model takes {spec.describe()}"
            )
        return spec.quantize(array)

    def dequantize(self, result: InferenceResult) -> np.ndarray:
        """The real values of an inference's output, with its model's output scale and zero point.

        ``dut.dequantize(dut.infer_values("sine", [1.5708])).item()`` is about 1.0.
        """
        return self.model(result.model).output.dequantize(result.output)

    # --- streaming ----------------------------------------------------------------------------

    def start_stream(
        self,
        model: str,
        *,
        hop: int,
        threshold: float,
        idle_class: int | None = None,
        refractory_samples: int = 0,
        source: int = msg.SOURCE_FED,
    ) -> None:
        """Start windowed inference on a sample stream (docs/protocol.md, "Streaming")."""
        self.model(model)
        idle = msg.NO_IDLE_CLASS if idle_class is None else idle_class
        start = msg.StreamStart(model, source, hop, idle, threshold, refractory_samples)
        self._stream_channels = self._window_channels(model)
        self.link.unsolicited.clear()
        self._request(p.MsgType.STREAM_START, msg.pack_stream_start(start))

    def _window_channels(self, model: str) -> int:
        shape = self.model(model).input.shape
        return shape[2] if len(shape) > 2 else 1

    def feed(self, samples: np.ndarray) -> list[msg.Event]:
        """Send samples (count x channels, physical units) in as few frames as fit; return the events raised."""
        channels = self._stream_channels
        if channels is None:
            raise HilError(f"{self.target.name}: no stream: call start_stream() first")
        data = np.asarray(samples, dtype=np.float32).reshape(-1, channels)
        per_frame = (self.info.max_payload_bytes - 2) // (4 * channels)
        for first in range(0, len(data), per_frame):
            self._request(p.MsgType.FEED, msg.pack_feed(data[first : first + per_frame]))
        return self.events()

    def stop_stream(self) -> msg.StreamTotals:
        self._stream_channels = None
        return msg.unpack_stream_totals(self._request(p.MsgType.STREAM_STOP))

    def events(self) -> list[msg.Event]:
        """Events received since the last call (device-side detections while streaming)."""
        frames = [f for f in self.link.unsolicited if f.type == p.MsgType.EVENT]
        self.link.unsolicited.clear()
        return [msg.unpack_event(f.payload) for f in frames]

    # --- memory, profile, maintenance -------------------------------------------------------

    def memory(self) -> MemoryReport:
        return msg.unpack_memory(self._request(p.MsgType.MEMORY))

    def profile(self) -> list[OpProfile]:
        """Per-operator ticks of the last inference (empty if the device cannot profile)."""
        return msg.unpack_profile(self._request(p.MsgType.PROFILE))

    def echo(self, data: bytes) -> bytes:
        return self._request(p.MsgType.ECHO, data)

    def reset(self) -> DeviceInfo:
        """Reboot the device through the protocol and wait until it answers again."""
        return self.reboot(lambda: self._request(p.MsgType.RESET, reboot_ok=True))

    def reboot(self, how: Callable[[], object], *, same_image: bool = False) -> DeviceInfo:
        """Reboot the device with ``how`` (a RESET request, an emulator's machine reset, ...),
        then wait for its ready line and handshake again.

        ``same_image``: the reboot cannot have changed the firmware (a machine reset runs the image
        the device was opened with), so once INFO names the same build, the models it reported at
        open stand and are not asked again.
        """
        since = self.link.lines_seen
        how()
        self.link.expect_line(p.READY_LINE, self.target.boot_timeout_s, since=since)
        return self._handshake(known=self._info if same_image else None)

    # --- what the backend can do beyond the protocol (emulators can more than boards) -------

    def facts(self) -> dict[str, str]:
        """Where and what the device is: emulator version, board id, firmware, ... (for the results)."""
        return self.backend.facts()

    def reset_machine(self) -> bool:
        """Reset the whole machine (peripherals and emulated sensors too) and wait until it answers.

        False where the backend has no such reset (boards, plain executables) or the target turned it off.
        """
        how = self.backend.machine_reset()
        if how is None:
            return False
        with self.phases.span(RESET):
            self.reboot(how, same_image=True)
        return True

    def cost_of(self, action: Callable[[], T]) -> tuple[T, EmulatorCost | None]:
        """Run ``action``; also return what it cost in the emulator (None where nothing counts it)."""
        return self.backend.cost_of(action)

    def save_snapshot(self, path: Path) -> Path | None:
        """Save the emulated machine for a post-mortem; None where the backend cannot."""
        return self.backend.save_snapshot(path)

    def play_into_sensor(self, stimulus: Stimulus) -> SensorPlayback:
        """Queue a recording in the device's emulated accelerometer (``SensorUnavailable`` elsewhere)."""
        return self.backend.play_into_sensor(stimulus)

    def console_tail(self, lines: int = 20) -> list[str]:
        return list(self.link.console)[-lines:]
