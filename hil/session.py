"""What both test frameworks need: config, the model zoo, one device, a metrics recorder.

The Robot library and the pytest plugin are thin layers over :class:`HilSession`, so the two
behave the same: same target selection, same recovery, same metrics.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Literal

from hil import checks, stimuli
from hil import messages as msg
from hil.backends import SensorPlayback
from hil.config import HilConfig, load_config
from hil.device import Device
from hil.errors import CheckFailed, ConfigError, DeviceTimeout, HilError
from hil.metrics import MetricsRecorder
from hil.models import ModelZoo, Streaming
from hil.phases import SENSOR

log = logging.getLogger(__name__)

Source = Literal["protocol", "sensor"]
SOURCES: tuple[Source, ...] = ("protocol", "sensor")
SENSOR_POLL_S = 0.25
EVAL_SAMPLES_ENV = "HIL_EVAL_SAMPLES"  # a seeded subset of each evaluation set (hil run --eval-samples)
# Set by hil run for each suite process: where its device keeps its own logs, so the Robot and
# pytest halves of one target can run side by side (artifacts/<board_id>/<framework>/).
DEVICE_ARTIFACTS_ENV = "HIL_DEVICE_ARTIFACTS"


class HilSession:
    def __init__(
        self,
        framework: str,
        target: str | None = None,
        config_path: Path | None = None,
        out_dir: Path | None = None,
    ) -> None:
        self.config: HilConfig = load_config(config_path)
        self.target = self.config.target(target or self.config.default_target)
        env_out = os.environ.get("HIL_RESULTS")
        self.out_dir = (out_dir or (Path(env_out) if env_out else self.config.results_dir)).resolve()
        self.zoo = ModelZoo(self.config.models_dir)
        self.zoo.check()  # every model folder against its .tflite, before any device starts
        self.recorder = MetricsRecorder(self.out_dir, framework, self.target.name)
        self._device: Device | None = None
        self._test_name: str | None = None
        self._console_mark: int | None = None  # the console line the running test started at
        self.last_emulated_cost: checks.EmulatedCostStats | None = None  # of the last latency check

    @property
    def artifacts_dir(self) -> Path:
        return self.out_dir / "artifacts" / self.target.board_id

    @property
    def device_artifacts_dir(self) -> Path:
        """Where the device's own logs go (twin.log, renode.log, ...): ``$HIL_DEVICE_ARTIFACTS`` under hil run."""
        env_dir = os.environ.get(DEVICE_ARTIFACTS_ENV)
        return Path(env_dir) if env_dir else self.artifacts_dir

    def device(self) -> Device:
        """The open device, started on first use and restarted if it went away since."""
        if self._device is None:
            device = Device(self.target, self.config, self.device_artifacts_dir)
            device.observers.append(self.recorder.on_inference)
            info = device.open()
            self.recorder.device_opened(info, device.facts(), device.models)
            self._device = device
        elif reason := self._device.lost_reason():
            log.warning("%s went away (%s): restarting it", self.target.name, reason)
            self.recorder.note("device_restarted", reason)
            info = self._device.restart()
            self.recorder.device_opened(info, self._device.facts(), self._device.models)
        return self._device

    def start_test(self, suite: str, name: str) -> None:
        """A test begins: its metrics record opens, its console lines are counted from here."""
        self.recorder.start_test(suite, name)
        self._test_name = f"{suite}.{name}" if suite else name
        self._console_mark = self._device.link.lines_seen if self._device and self._device.is_open else None
        self.begin_test()

    def end_test(self, status: str, message: str = "") -> None:
        """A test ended: keep the console lines it saw in ``artifacts/<target>/console/<test>.log``."""
        device = self._device
        if device is not None and device.is_open and self._test_name:
            link = device.link
            oldest = link.lines_seen - len(link.console)
            start = oldest if self._console_mark is None else max(self._console_mark, oldest)
            lines = list(link.console)[start - oldest :]
            path = self.artifacts_dir / "console" / f"{_file_name(self._test_name)}.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            cut = (
                f"(earlier lines: {link.console_log})\n"
                if self._console_mark is not None and start > self._console_mark
                else ""
            )
            path.write_text(cut + "".join(f"{line}\n" for line in lines), encoding="utf-8")
            self.recorder.note("console_log", str(path))
        self.recorder.end_test(status, message)
        self._test_name = None

    def begin_test(self) -> None:
        """Give the next test a freshly reset machine where the backend can reset one (Renode).

        The first test gets the device as it booted; a device lost since is restarted by the
        next ``device()`` call instead.
        """
        device = self._device
        if device is None or device.lost_reason():
            return
        device.reset_machine()

    @property
    def device_if_open(self) -> Device | None:
        return self._device

    def identity(self) -> dict[str, str]:
        """Who ran the tests, for JUnit properties and Robot metadata: target, board, build, model hashes."""
        facts = {"target": self.target.name, "backend": self.target.backend}
        device = self._device
        if device is None or device.lost_reason():
            return facts
        info = device.info
        facts |= {"firmware_version": info.firmware_version, "firmware_build_id": info.build_id, "board": info.board}
        backend_facts = device.facts()
        for key in ("board_id", "board_product", "board_probe_id", "flash_method", "serial"):
            if backend_facts.get(key):
                facts[key] = backend_facts[key]
        facts |= {f"model_sha256_{name}": model.sha256 for name, model in device.models.items()}
        return facts

    def snapshot_after_failure(self, test: str) -> Path | None:
        """Save the emulated machine as the failed ``test`` left it (Renode ``Save``), for a post-mortem.

        Only where the backend can; target option ``snapshot_on_failure = false`` turns it off.
        """
        device = self._device
        if device is None or device.lost_reason() or not self.target.options.snapshot_on_failure:
            return None
        name = _file_name(test)
        try:
            path = device.save_snapshot(self.artifacts_dir / "snapshots" / f"{name}.save")
        except HilError as err:
            log.warning("no snapshot after %s failed: %s", test, err)
            return None
        if path is not None:
            self.recorder.note("snapshot", str(path))
        return path

    def close(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            try:
                device.close()
            except HilError as err:
                log.warning("closing %s: %s", self.target.name, err)

    # --- checks that also record what they measured --------------------------------------------

    def check_golden(self, model: str, tolerance: int | None = None) -> checks.GoldenComparison:
        """Run every golden vector on the device; fail unless outputs match TFLM's within ``tolerance``."""
        comparison = checks.run_golden(self.device(), self.zoo, model, tolerance)
        self.recorder.golden(comparison)
        checks.check_golden(comparison)
        return comparison

    @property
    def eval_samples(self) -> int | None:
        """Score evaluation sets on a seeded subset of this many samples: ``$HIL_EVAL_SAMPLES``
        (``hil run --eval-samples``), else the target's ``eval_samples``; None: the whole set."""
        value = os.environ.get(EVAL_SAMPLES_ENV, "").strip()
        if not value:
            return self.target.options.eval_samples
        if not value.isdigit() or int(value) < 1:
            raise ConfigError(f"${EVAL_SAMPLES_ENV}={value!r}: give a whole number of samples (at least 1)")
        return int(value)

    def evaluate(self, model: str) -> checks.EvaluationResult:
        """Score the device on the evaluation set (and keep score and confusion matrix in the metrics).

        On a seeded subset (:attr:`eval_samples`) that misses the manifest's bound, the whole set is
        scored before the result stands: a subset may let a model pass sooner, never fail it alone.
        """
        result = checks.evaluate(self.device(), self.zoo, model, self.eval_samples)
        if not result.ok and result.set_samples is not None:
            log.warning("%s: %s %.4f on %s misses its bound: scoring the whole set", model, result.metric.name,
                        result.score, result.scope)  # fmt: skip
            self.recorder.note("evaluation_subset", {"samples": result.samples, "score": result.score})
            result = checks.evaluate(self.device(), self.zoo, model)
        self.recorder.evaluation(result)
        return result

    def check_evaluation(self, model: str) -> checks.EvaluationResult:
        """Score the device on the evaluation set; fail if it misses the manifest's floor."""
        result = self.evaluate(model)
        checks.check_evaluation(result)
        return result

    def check_latency(
        self, model: str, limit_us: float | None = None, inferences: int = 20, statistic: str = "p95"
    ) -> checks.LatencyStats:
        """Time ``inferences`` golden inputs; fail if the statistic exceeds the limit (default: budget)."""
        self.last_emulated_cost = None
        limit_us, limit_name = self.latency_limit(model, limit_us)
        golden = self.zoo.golden(model)
        device = self.device()
        measured = [
            device.cost_of(lambda i=i: device.infer(model, golden.inputs[i % len(golden)])) for i in range(inferences)
        ]
        stats = checks.LatencyStats.of([result for result, _ in measured])
        self.recorder.model_fact(model, "latency_limit_us", limit_us)
        costs = [cost for _, cost in measured if cost is not None]
        self.last_emulated_cost = checks.EmulatedCostStats.of(costs, stats) if costs else None
        if self.last_emulated_cost:
            self.recorder.model_fact(model, "emulated_cost", self.last_emulated_cost.as_dict())
        checks.check_latency(model, stats, limit_us, statistic, limit_name)
        return stats

    def latency_limit(self, model: str, limit_us: float | None = None) -> tuple[float, str]:
        """The latency limit a check uses and its name: ``limit_us`` ("limit"), else the target's "budget"."""
        if limit_us is not None:
            return limit_us, "limit"
        budget = self.zoo.manifest(model).budget(self.target.name).latency_us
        if budget is None:
            raise ConfigError(f"{model} has no latency budget for {self.target.name}: give a limit")
        return budget, "budget"

    def check_arena(self, model: str, limit_bytes: int | None = None) -> int:
        """Fail if the arena the device reports in use for ``model`` exceeds the limit (default: budget)."""
        limit_name = "limit" if limit_bytes is not None else "budget"
        if limit_bytes is None:
            limit_bytes = self.zoo.manifest(model).budget(self.target.name).arena_bytes
        if limit_bytes is None:
            raise ConfigError(f"{model} has no arena budget for {self.target.name}: give a limit")
        used = self.device().model(model).arena_used_bytes
        self.recorder.model_fact(model, "arena_used_bytes", used)
        self.recorder.model_fact(model, "arena_limit_bytes", limit_bytes)
        checks.check_arena(model, used, limit_bytes, limit_name)
        return used

    def _streaming(self, model: str) -> Streaming:
        streaming = self.zoo.manifest(model).streaming
        if streaming is None:
            raise ConfigError(f"{model} is not a streaming model (its manifest has no streaming section)")
        return streaming

    def stream_stimulus(
        self, model: str, stimulus_path: Path, source: Source = "protocol"
    ) -> tuple[stimuli.Stimulus, list[stimuli.DetectedEvent]]:
        """Stream a stimulus recording through the device's windowing; return the events it raised.

        ``source="protocol"`` sends the samples with FEED (every target). ``source="sensor"`` plays
        the recording into the target's emulated accelerometer and lets the firmware sample it
        (sensor source 1): the reference twin and Renode targets with an ``accelerometer``; other
        targets raise ``SensorUnavailable`` (a skip).
        """
        if source not in SOURCES:
            raise ConfigError(f"unknown stimulus source {source!r}: use one of {', '.join(SOURCES)}")
        manifest = self.zoo.manifest(model)
        streaming = self._streaming(model)
        stimulus = stimuli.load_stimulus(stimulus_path)
        if abs(stimulus.sample_rate_hz - streaming.sample_rate_hz) > 0.01 * streaming.sample_rate_hz:
            rates = f"{stimulus.sample_rate_hz:.2f} Hz; {model} expects {streaming.sample_rate_hz:g} Hz"
            raise ConfigError(f"{stimulus_path} is sampled at {rates}")
        if stimulus.unit != streaming.unit or len(stimulus.channels) != len(streaming.channels):
            raise ConfigError(
                f"{stimulus_path} has {len(stimulus.channels)} channels in {stimulus.unit}; "
                f"{model} expects {list(streaming.channels)} in {streaming.unit}"
            )
        device = self.device()
        start = {
            "hop": streaming.hop,
            "threshold": streaming.threshold,
            "idle_class": streaming.idle_class,
            "refractory_samples": streaming.refractory_samples,
        }
        if source == "sensor":
            with device.phases.span(SENSOR, stimulus=stimulus.path.name, duration_s=stimulus.duration_s):
                playback = device.play_into_sensor(stimulus)
                device.start_stream(model, **start, source=msg.SOURCE_SENSOR)
                self._wait_played(device, playback)
            raw = []
        else:
            device.start_stream(model, **start)
            raw = device.feed(stimulus.samples)
        totals = device.stop_stream()
        raw += device.events()  # events raised before STREAM_STOP's reply arrive before it
        if source == "sensor" and totals.samples < len(stimulus.samples):
            raise CheckFailed(
                f"{self.target.name} read {totals.samples} of the {len(stimulus.samples)} samples of "
                f"{stimulus.path.name} from its sensor"
            )
        labels = manifest.labels or tuple(str(i) for i in range(max((e.class_index for e in raw), default=0) + 1))
        return stimulus, [
            stimuli.DetectedEvent(labels[e.class_index], stimulus.time_of(e.sample), e.sample, e.score) for e in raw
        ]

    def _wait_played(self, device: Device, playback: SensorPlayback) -> None:
        """Keep reading the console until the device has sampled the whole recording."""
        # Emulators may run slower than real time: allow the recording ten times over.
        limit_s = self.target.timeout_s + 10 * playback.stimulus.duration_s
        if playback.run_to_end(limit_s):  # an emulator ran it through at once
            device.link.poll()
            return
        deadline = time.monotonic() + limit_s
        while not playback.played():
            if time.monotonic() > deadline:
                raise DeviceTimeout(
                    f"{self.target.name} did not finish sampling {playback.stimulus.path.name} "
                    f"({playback.stimulus.duration_s:g} s) from its sensor within {limit_s:g} s"
                )
            device.link.poll()
            time.sleep(SENSOR_POLL_S)

    def check_stream(
        self, model: str, stimulus_path: Path, source: Source = "protocol", expect_none: bool = False
    ) -> stimuli.EventMatch:
        """Stream a stimulus and fail unless exactly its expected events come, each in its time window.

        The events are those of its ``.expected.csv``; a stimulus without one needs ``expect_none=True``
        (no event may come). An event may come up to one window length after the gesture ends (the
        window must cover it). ``source`` as in :meth:`stream_stimulus`.
        """
        expected = stimuli.expected_events(stimuli.load_stimulus(stimulus_path), expect_none)  # before streaming
        stimulus, detected = self.stream_stimulus(model, stimulus_path, source)
        streaming = self._streaming(model)
        match = stimuli.match_events(detected, expected, streaming.window / streaming.sample_rate_hz)
        fact = "events" if source == "protocol" else f"events_{source}"
        recorded = {"stimulus": stimulus.path.name, "stimulus_file": str(stimulus.path.resolve()), "source": source}
        self.recorder.model_fact(model, fact, match.as_dict() | recorded)
        stimuli.check_events(model, match)
        return match


def _file_name(test: str) -> str:
    """A test's name as a file name: safe characters, bounded length."""
    return re.sub(r"[^\w.-]+", "_", test).strip("_")[:100] or "test"
