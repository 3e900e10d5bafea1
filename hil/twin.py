"""The reference twin: a process that plays the device, on a pty, with TFLM's own runtime.

    python -m hil.twin --models models [--model sine ...]

It prints ``HIL-TWIN PTY <path>`` on stdout, then serves the device side of the wire protocol
on that pty until its host is gone: the parent exits, stays stopped (SIGSTOP) for 30 s, or —
with ``--exit-on-close`` — closes the port. It is the executable specification of the
firmware: the firmware must answer every request exactly as :class:`TwinFirmware` does.

With ``--sensor-file PATH`` it also has an emulated accelerometer: a sensor-source stream
(``STREAM_START`` source 1) takes the float32 samples (model units, time-major) the host left in
that file, as if sampled at the model's rate, and deletes the file once it has read them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import select
import sys
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TextIO

import numpy as np

from hil import messages as msg
from hil import protocol as p
from hil import tflm
from hil.errors import HilError
from hil.models import ModelZoo
from hil.results import TFLITE_TYPE_CODES, TFLITE_TYPES, DeviceInfo, MemoryReport, ModelInfo

FIRMWARE_VERSION = "twin-" + version("tinyml-hil")
PTY_LINE_PREFIX = "HIL-TWIN PTY "
# Ticks are nanoseconds of CPU time of the thread that runs invoke: like a device's cycle counter,
# they do not grow when the host is busy with other work (wall time under load grows several-fold).
CLOCK_HZ = 1_000_000_000
WALL_LOG_EVERY = 100  # inferences of a model between the twin log's ticks-vs-wall-time lines


def twin_build_id(firmware_version: str, tflites: dict[str, bytes]) -> str:
    """The twin's build id: SHA-256 over its version and the .tflite bytes it serves (by model name)."""
    digest = hashlib.sha256(firmware_version.encode())
    for name in sorted(tflites):
        digest.update(tflites[name])
    return digest.hexdigest()[: p.BUILD_ID_DIGITS]


class Refused(Exception):
    """A request the device understood and refuses; becomes an ERROR reply."""

    def __init__(self, code: p.ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class InvokeClock:
    """Runs invoke and times it as a device would: CPU time of the invoking thread, in ticks.

    Host wall time is kept as information only: every ``WALL_LOG_EVERY`` inferences of a model,
    and at a reset, one line on ``log`` (stderr: the twin's log) compares the two.
    """

    def __init__(self, log: TextIO | None = None) -> None:
        self._log = log
        self._samples: dict[str, list[tuple[int, int]]] = {}  # model -> [(ticks, wall ns)]

    def invoke(self, model: str, interpreter: object, tensor: np.ndarray) -> tuple[np.ndarray, int]:
        """The output tensor and the ticks ``invoke`` took."""
        wall_started = time.perf_counter_ns()
        cpu_started = time.thread_time_ns()
        output = tflm.invoke(interpreter, tensor)
        ticks = time.thread_time_ns() - cpu_started
        samples = self._samples.setdefault(model, [])
        samples.append((ticks, time.perf_counter_ns() - wall_started))
        if len(samples) >= WALL_LOG_EVERY:
            self.flush()
        return output, ticks

    def flush(self) -> None:
        """Write the ticks-vs-wall-time line of every model with inferences since the last one."""
        log = self._log or sys.stderr
        for model, samples in self._samples.items():
            if samples:
                ticks_us, wall_us = (np.array(column) / 1e3 for column in zip(*samples, strict=True))
                log.write(
                    f"{model}: {len(samples)} inferences: ticks (thread CPU) median {np.median(ticks_us):.1f} µs "
                    f"p95 {np.percentile(ticks_us, 95):.1f} µs; host wall median {np.median(wall_us):.1f} µs "
                    f"p95 {np.percentile(wall_us, 95):.1f} µs\n"
                )
        log.flush()
        self._samples.clear()


@dataclass
class _LoadedModel:
    info: ModelInfo
    interpreter: object


class _Stream:
    """The windowing of docs/protocol.md "Streaming", on samples fed over the protocol."""

    def __init__(self, model: _LoadedModel, start: msg.StreamStart, clock: InvokeClock) -> None:
        shape = model.info.input.shape
        sensor_window = shape[0] == 1 and (len(shape) in (2, 3) or (len(shape) == 4 and shape[3] == 1))
        if not sensor_window:
            raise Refused(
                p.ErrorCode.UNSUPPORTED, f"{start.model} input {model.info.input.describe()} is no [1,W,C] window"
            )
        if start.hop < 1:
            raise Refused(p.ErrorCode.MALFORMED, "STREAM_START hop must be at least 1")
        if start.source not in (msg.SOURCE_FED, msg.SOURCE_SENSOR):
            raise Refused(p.ErrorCode.UNSUPPORTED, f"unknown sample source {start.source}: use 0 (FEED) or 1 (sensor)")
        self.model = model
        self.start = start
        self.clock = clock
        self.window = shape[1]
        self.channels = shape[2] if len(shape) > 2 else 1
        self.ring = np.zeros((self.window, self.channels), dtype=np.float32)
        self.samples = self.inferences = self.events = 0
        self.last_event: int | None = None

    def push(self, samples: np.ndarray) -> list[msg.Event]:
        events = []
        for sample in samples:
            self.ring[self.samples % self.window] = sample
            self.samples += 1
            due = self.samples >= self.window and (self.samples - self.window) % self.start.hop == 0
            if due and (event := self._infer()):
                events.append(event)
        return events

    def _infer(self) -> msg.Event | None:
        spec, out_spec = self.model.info.input, self.model.info.output
        oldest_first = np.roll(self.ring, -(self.samples % self.window), axis=0)
        output, ticks = self.clock.invoke(self.start.model, self.model.interpreter, spec.quantize(oldest_first))
        output = output.ravel()
        self.inferences += 1
        top = int(np.argmax(output))
        score = float(np.float32(np.float32(int(output[top]) - out_spec.zero_point) * np.float32(out_spec.scale)))
        quiet = self.last_event is None or self.samples - self.last_event >= self.start.refractory_samples
        if top == self.start.idle_class or score < self.start.threshold or not quiet:
            return None
        self.last_event = self.samples
        self.events += 1
        return msg.Event(self.samples, self.start.model, top, score, ticks)

    def totals(self) -> msg.StreamTotals:
        return msg.StreamTotals(self.samples, self.inferences, self.events)


class TwinFirmware:
    """The device's request handling, independent of the byte transport."""

    def __init__(
        self, zoo: ModelZoo, names: list[str], board: str = "reference", sensor_file: Path | None = None
    ) -> None:
        self.board = board
        self.sensor_file = sensor_file
        self._manifests = [zoo.manifest(name) for name in names]
        self._tflites = {m.name: m.tflite_path.read_bytes() for m in self._manifests}
        self.build_id = twin_build_id(FIRMWARE_VERSION, self._tflites)
        self._models: dict[str, _LoadedModel] = {}
        self._handlers: dict[int, Callable[[bytes], bytes]] = {
            p.MsgType.INFO: self._info,
            p.MsgType.MODEL_INFO: self._model_info,
            p.MsgType.INFER: self._infer,
            p.MsgType.PROFILE: self._profile,
            p.MsgType.MEMORY: self._memory,
            p.MsgType.RESET: self._reset,
            p.MsgType.ECHO: bytes,
            p.MsgType.STREAM_START: self._stream_start,
            p.MsgType.FEED: self._feed,
            p.MsgType.STREAM_STOP: self._stream_stop,
        }
        self._stream: _Stream | None = None
        self.clock = InvokeClock()
        self._outbox: list[bytes] = []  # frames and lines emitted while handling, sent before the reply
        self.boot()

    def boot(self) -> None:
        """(Re)create every interpreter, as a device reset would."""
        self.clock.flush()
        self._models.clear()
        self._stream = None
        for m in self._manifests:
            tflite = self._tflites[m.name]
            interp = tflm.interpreter(tflite, m.arena_bytes, m.name)
            in_spec = tflm.tensor_spec(interp.get_input_details(0))
            out_spec = tflm.tensor_spec(interp.get_output_details(0))
            arena_used = tflm.arena_used_bytes(interp)
            sha256 = hashlib.sha256(tflite).hexdigest()
            info = ModelInfo(m.name, m.arena_bytes, arena_used, in_spec, out_spec, sha256)
            self._models[m.name] = _LoadedModel(info, interp)

    def banner(self) -> bytes:
        return p.boot_banner(FIRMWARE_VERSION, self.board, self.build_id)

    def handle(self, frame: p.Frame) -> bytes:
        """The reply frame for one request frame."""
        handler = self._handlers.get(frame.type)
        if handler is None:
            return self._error(frame.seq, p.ErrorCode.UNKNOWN_TYPE, f"unknown request type 0x{frame.type:02x}")
        self._outbox = []
        try:
            reply = p.encode_frame(frame.type | p.REPLY_FLAG, frame.seq, handler(frame.payload))
        except p.MalformedPayload as err:
            reply = self._error(frame.seq, p.ErrorCode.MALFORMED, f"{p.type_name(frame.type)}: {err}")
        except Refused as err:
            reply = self._error(frame.seq, err.code, str(err))
        return b"".join(self._outbox) + reply

    def handle_fault(self, fault: p.FrameFault) -> bytes:
        """A report on seq 0, never a reply: the damaged header's seq may be a pending request's."""
        return self._error(p.UNSOLICITED_SEQ, fault.code, f"{fault.detail} (damaged frame's seq {fault.seq})")

    @staticmethod
    def _error(seq: int, code: p.ErrorCode, message: str) -> bytes:
        return p.encode_frame(p.MsgType.ERROR, seq, msg.pack_error(msg.ErrorReply(code, message)))

    def _info(self, payload: bytes) -> bytes:
        if payload:
            raise p.MalformedPayload("INFO takes no payload")
        runtime = "tflite-micro " + version("tflite-micro")
        info = DeviceInfo(
            p.PROTOCOL_VERSION,
            p.DEFAULT_MAX_PAYLOAD_BYTES,
            CLOCK_HZ,
            len(self._models),
            FIRMWARE_VERSION,
            self.board,
            runtime,
            self.build_id,
        )
        return msg.pack_info(info)

    def _model_info(self, payload: bytes) -> bytes:
        index = msg.unpack_model_info_request(payload)
        models = list(self._models.values())
        if index >= len(models):
            raise Refused(p.ErrorCode.UNKNOWN_MODEL, f"model index {index} out of range: this device has {len(models)}")
        return msg.pack_model_info(models[index].info)

    def _model(self, name: str) -> _LoadedModel:
        model = self._models.get(name)
        if model is None:
            known = ", ".join(self._models)
            raise Refused(p.ErrorCode.UNKNOWN_MODEL, f"unknown model '{name}': this device has {known}")
        return model

    def _infer(self, payload: bytes) -> bytes:
        request = msg.unpack_infer_request(payload)
        model = self._model(request.model)
        spec = model.info.input
        if request.dtype_code != TFLITE_TYPE_CODES[spec.dtype]:
            got = TFLITE_TYPES.get(request.dtype_code, f"type {request.dtype_code}")
            raise Refused(p.ErrorCode.BAD_DTYPE, f"model {request.model} takes {spec.dtype} input, got {got}")
        if len(request.data) != spec.nbytes:
            raise Refused(
                p.ErrorCode.BAD_SIZE,
                f"model {request.model} takes {spec.nbytes} bytes ({spec.describe()}), got {len(request.data)}",
            )
        tensor = np.frombuffer(request.data, dtype=spec.numpy_dtype).reshape(spec.shape)
        try:
            output, ticks = self.clock.invoke(request.model, model.interpreter, tensor)
        except (RuntimeError, ValueError) as err:
            raise Refused(p.ErrorCode.INVOKE_FAILED, f"invoke failed: {err}") from err
        return msg.pack_infer_reply(msg.InferReply(ticks, model.info.arena_used_bytes, output.tobytes()))

    @staticmethod
    def _reset(payload: bytes) -> bytes:
        if payload:
            raise p.MalformedPayload("RESET takes no payload")
        return b""  # the reboot itself happens after the reply is sent (see serve)

    def _stream_start(self, payload: bytes) -> bytes:
        self._stream = None  # any STREAM_START ends the running stream first, even one that is refused
        start = msg.unpack_stream_start(payload)
        stream = _Stream(self._model(start.model), start, self.clock)
        if start.source == msg.SOURCE_SENSOR:
            self._emit(stream.push(self._sensor_samples(start.model, stream.channels)))
        self._stream = stream
        return b""

    def _sensor_samples(self, model: str, channels: int) -> np.ndarray:
        """Everything waiting in the emulated accelerometer (then empty), as the firmware would sample it."""
        streaming = next(m.streaming for m in self._manifests if m.name == model)
        if streaming is None:
            raise Refused(
                p.ErrorCode.UNSUPPORTED,
                f"{model} has no sensor stream in its manifest (rate and channels): feed samples with FEED",
            )
        if self.sensor_file is None:
            raise Refused(p.ErrorCode.UNSUPPORTED, "this device has no sensor: feed samples with FEED")
        try:
            data = np.fromfile(self.sensor_file, dtype="<f4")
        except FileNotFoundError:
            return np.zeros((0, channels), dtype=np.float32)  # nothing new from the sensor yet
        self.sensor_file.unlink()
        return data[: len(data) - len(data) % channels].reshape(-1, channels)

    def _emit(self, events: list[msg.Event]) -> None:
        for event in events:
            self._outbox += [
                p.encode_frame(p.MsgType.EVENT, p.UNSOLICITED_SEQ, msg.pack_event(event)),
                msg.event_line(event),
            ]

    def _feed(self, payload: bytes) -> bytes:
        if self._stream is None:
            raise Refused(p.ErrorCode.UNSUPPORTED, "no stream: send STREAM_START first")
        stream = self._stream
        if stream.start.source != msg.SOURCE_FED:
            raise Refused(p.ErrorCode.UNSUPPORTED, "the stream takes its samples from the sensor: FEED needs source 0")
        before = stream.totals()
        self._emit(stream.push(msg.unpack_feed(payload, stream.channels)))
        after = stream.totals()
        return msg.pack_feed_reply(
            msg.FeedReply(after.samples, after.inferences - before.inferences, after.events - before.events)
        )

    def _stream_stop(self, payload: bytes) -> bytes:
        if payload:
            raise p.MalformedPayload("STREAM_STOP takes no payload")
        if self._stream is None:
            raise Refused(p.ErrorCode.UNSUPPORTED, "no stream to stop")
        totals, self._stream = self._stream.totals(), None
        return msg.pack_stream_totals(totals)

    def _profile(self, payload: bytes) -> bytes:
        if payload:
            raise p.MalformedPayload("PROFILE takes no payload")
        return msg.pack_profile([])  # TFLM's Python runtime exposes no per-op timing

    def _memory(self, payload: bytes) -> bytes:
        if payload:
            raise p.MalformedPayload("MEMORY takes no payload")
        return msg.pack_memory(MemoryReport(None, None, None, None))  # a host process has no MCU stack or heap


STOPPED_HOST_S = 30.0  # a host stopped (SIGSTOP, a debugger) this long is taken for gone


def _host_stopped(pid: int) -> bool:
    """Whether ``pid`` is stopped (state T in /proc); False where /proc cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].startswith(("T", "t"))


def serve(
    fd: int,
    firmware: TwinFirmware,
    parent_pid: int,
    slave_fd: int | None = None,
    stopped_host_s: float = STOPPED_HOST_S,
) -> None:
    """Answer requests on ``fd`` until the host is gone.

    Gone: the parent exited, or has been stopped for ``stopped_host_s``, or — when ``slave_fd`` is
    given — the host closed the port after opening it (we close our own ``slave_fd`` once the host's
    first bytes arrive, so its close ends the pty). Replies wait in an output buffer and go out as
    the host reads them: we never block writing while the host writes to us.
    """
    decoder = p.FrameDecoder()
    out = bytearray(firmware.banner())
    os.set_blocking(fd, False)
    last_rx = time.monotonic()
    stopped_since: float | None = None
    while os.getppid() == parent_pid:
        if _host_stopped(parent_pid):
            stopped_since = stopped_since or time.monotonic()
            if time.monotonic() - stopped_since > stopped_host_s:
                return
        else:
            stopped_since = None
        readable, writable, _ = select.select([fd], [fd] if out else [], [], p.STALE_FRAME_S / 2)
        if writable:
            with contextlib.suppress(BlockingIOError):
                del out[: os.write(fd, out)]
        if readable:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                return  # EIO: nobody has the port open any more
            if slave_fd is not None:
                os.close(slave_fd)  # the host is here: from now on its close ends us
                slave_fd = None
            items = decoder.feed(data)
            last_rx = time.monotonic()
        elif decoder.partial_frame and time.monotonic() - last_rx > p.STALE_FRAME_S:
            items = decoder.abandon_partial()
        else:
            continue
        for item in items:
            if isinstance(item, p.FrameFault):
                out += firmware.handle_fault(item)
            elif isinstance(item, p.Frame):
                out += firmware.handle(item)
                if item.type == p.MsgType.RESET:
                    # A rebooting MCU loses what it had received: what came with the RESET is dropped.
                    decoder = p.FrameDecoder()
                    firmware.boot()
                    out += firmware.banner()
                    break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.twin", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("models"), help="model zoo directory (default: models)")
    parser.add_argument("--model", action="append", help="serve only this model (repeatable; default: all)")
    parser.add_argument("--board", default="reference", help="board name to report (default: reference)")
    parser.add_argument("--sensor-file", type=Path, help="emulated accelerometer: float32 samples the host leaves here")
    parser.add_argument("--exit-on-close", action="store_true", help="exit when the host closes the port")
    parser.add_argument("--stopped-host-s", type=float, default=STOPPED_HOST_S,
                        help=f"exit when the parent stays stopped this long (default {STOPPED_HOST_S:g})")  # fmt: skip
    args = parser.parse_args(argv)
    parent_pid = os.getppid()
    try:
        zoo = ModelZoo(args.models)
        firmware = TwinFirmware(zoo, args.model or zoo.names(), args.board, args.sensor_file)
    except HilError as err:
        print(f"HIL-TWIN ERROR {err}", flush=True)
        return 2
    master, slave = os.openpty()
    tty.setraw(slave)  # bytes pass untouched: no echo, no CR/LF mapping, no signals
    print(PTY_LINE_PREFIX + os.ttyname(slave), flush=True)
    # Our own slave fd keeps the pty alive until the host opens it (else reads here fail with EIO).
    # With --exit-on-close we let go of it once the host is connected, so the host's close ends us;
    # without, the host may close and reopen the port (a twin playing a bench board).
    serve(master, firmware, parent_pid, slave if args.exit_on_close else None, args.stopped_host_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
