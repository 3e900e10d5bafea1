"""Robot Framework keyword library for tinyml-hil: ``Library    hil.robot.HilLibrary``."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from robot.api import Error, Failure, SkipExecution, logger
from robot.api.deco import keyword, library
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError

from hil import __version__, checks
from hil.errors import BackendUnavailable, BoardError, CheckFailed, ConfigError, HilError
from hil.results import DeviceInfo, InferenceResult, MemoryReport
from hil.session import HilSession, Source
from hil.stimuli import DetectedEvent, EventMatch

F = TypeVar("F", bound=Callable[..., Any])


def _robot_error(err: HilError) -> Exception:
    """The one place where our errors become Robot's failure kinds."""
    if isinstance(err, BackendUnavailable):
        return SkipExecution(str(err))
    if isinstance(err, ConfigError):
        return Error(str(err))  # the suite asked for something that does not exist
    # Wrong answers, timeouts and a lost device fail this test only: the next test restarts the device.
    return Failure(str(err))


def hil_keyword(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HilError as err:
            if isinstance(err, BoardError):
                _tag_board_error()
            raise _robot_error(err) from err

    return keyword(wrapper)  # type: ignore[return-value]


def _tag_board_error() -> None:
    """Tag the test (or, from a suite setup, every test of the suite) as failed by the rig, not the device."""
    with contextlib.suppress(RobotNotRunningError):
        BuiltIn().set_tags("board-error")


def _variable(name: str) -> Any:
    try:
        return BuiltIn().get_variable_value("${" + name + "}")
    except RobotNotRunningError:
        return None


def _confusion_html(result: checks.EvaluationResult) -> str:
    labels = result.labels or tuple(str(i) for i in range(len(result.confusion)))
    head = "".join(f"<th>{label}</th>" for label in labels)
    rows = "".join(
        f"<tr><th>{label}</th>" + "".join(f"<td>{int(n)}</td>" for n in row) + "</tr>"
        for label, row in zip(labels, result.confusion, strict=True)
    )
    return f"<table border=1><tr><th>true \\ predicted</th>{head}</tr>{rows}</table>"


@library(scope="SUITE", version=__version__, doc_format="reST")
class HilLibrary:
    """Keywords to test TinyML firmware through the tinyml-hil wire protocol.

    The same keywords run on every target: the reference twin, Renode, QEMU, native_sim and
    boards. The target comes from ``Open Device``'s argument, else the ``${HIL_TARGET}``
    variable, else ``$HIL_TARGET``, else the configured default (``reference``).

    Example::

        *** Settings ***
        Library           hil.robot.HilLibrary
        Suite Setup       Open Device
        Suite Teardown    Close Device

        *** Test Cases ***
        Inference Matches Golden Vectors
            Output Should Match Golden    sine
    """

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self) -> None:
        self.ROBOT_LIBRARY_LISTENER = self
        self._session: HilSession | None = None

    # --- listener: one metrics record per test ----------------------------------------------

    def start_test(self, data: Any, result: Any) -> None:  # noqa: ARG002 - listener signature
        if self._session:
            try:
                self._session.start_test(result.parent.longname, result.name)
            except HilError as err:  # the test's first keyword restarts the device and reports it
                logger.warn(f"could not reset {self._session.target.name} before the test: {err}")

    def end_test(self, data: Any, result: Any) -> None:  # noqa: ARG002 - listener signature
        if self._session:
            if result.status == "FAIL" and (snapshot := self._session.snapshot_after_failure(result.longname)):
                logger.warn(f"emulation saved as {result.name} failed it: {snapshot}")
            self._session.end_test(result.status, result.message)

    # --- session ------------------------------------------------------------------------------

    @property
    def session(self) -> HilSession:
        if self._session is None:
            raise Error("no device is open: call Open Device first (usually in Suite Setup)")
        return self._session

    @hil_keyword
    def open_device(self, target: str | None = None, config: Path | None = None) -> DeviceInfo:
        """Start the target's device and handshake with it; returns its ``DeviceInfo``.

        Args:
            target: target name such as ``reference`` or ``renode:nrf52840dk``.
            config: a ``hil.toml``; default ``$HIL_CONFIG`` or ``./hil.toml``.

        A target whose tools are missing skips the test with the reason.
        """
        target = target or _variable("HIL_TARGET")
        out_dir = _variable("HIL_RESULTS") or _variable("OUTPUT DIR")
        self._session = HilSession("robot", target, config, Path(out_dir) if out_dir else None)
        device = self._session.device()
        info = device.info
        logger.info(
            f"{self._session.target.name}: firmware {info.firmware_version} (build {info.build_id}), "
            f"board {info.board}, {info.runtime}"
        )
        for name, value in self._session.identity().items():
            BuiltIn().set_suite_metadata(name, value, top=True)
        facts = device.facts()
        if url := facts.get("renode_robot_server"):
            BuiltIn().set_suite_variable("${RENODE_ROBOT_SERVER}", url)
            BuiltIn().set_suite_variable("${RENODE_MACHINE}", facts["renode_machine"])
        return info

    @hil_keyword
    def import_renode_keywords(self, alias: str = "Renode") -> None:
        """Make Renode's own keywords (``Renode.Execute Command``, ...) usable in this suite.

        Imports Robot's ``Remote`` library on the robot server of the Renode running this device
        (``${RENODE_ROBOT_SERVER}``, set by `Open Device`). Needs a Renode target started with
        ``robot_server = true`` (or ``$HIL_RENODE_ROBOT=1``); elsewhere the test is skipped.
        Keywords that reset or end the emulation would pull the device away: don't use them.
        """
        facts = self.session.device().facts()
        url = facts.get("renode_robot_server")
        if not url:
            raise BackendUnavailable(
                f"{self.session.target.name} has no Renode robot server: Renode's keywords need a Renode target "
                "with robot_server = true in hil.toml (or HIL_RENODE_ROBOT=1)"
            )
        BuiltIn().import_library("Remote", url, "AS", alias)
        # The robot server has its own monitor, with no machine selected: select ours.
        BuiltIn().run_keyword(f"{alias}.Execute Command", f'mach set "{facts["renode_machine"]}"')

    @hil_keyword
    def close_device(self) -> None:
        """Stop the device and everything its backend started. Safe to call twice."""
        if self._session:
            self._session.close()
            self._session = None

    @hil_keyword
    def reset_device(self) -> DeviceInfo:
        """Reboot the device through the protocol and wait until it answers again."""
        return self.session.device().reset()

    @hil_keyword
    def device_should_serve_model(self, model: str) -> None:
        """Fail unless the device reports ``model`` among the models it serves."""
        self.session.device().model(model)

    @hil_keyword
    def skip_unless_device_serves(self, model: str) -> None:
        """Skip the test, with the reason, if the device does not serve ``model`` (small boards embed fewer)."""
        device = self.session.device()
        if model not in device.models:
            served = ", ".join(device.models)
            raise SkipExecution(f"{self.session.target.name} does not serve {model}: it serves {served}")

    @hil_keyword
    def get_memory_report(self) -> MemoryReport:
        """Stack and heap use as the device measures them (``None`` fields where it cannot)."""
        report = self.session.device().memory()
        self.session.recorder.note("memory", {k: getattr(report, k) for k in report.__slots__})
        return report

    # --- inference ----------------------------------------------------------------------------

    @hil_keyword
    def run_inference(self, model: str, *values: int) -> InferenceResult:
        """Run one inference on already-quantized integer input ``values`` (flattened).

        Example: ``${r}=    Run Inference    sine    12``
        """
        device = self.session.device()
        spec = device.model(model).input
        if len(values) != int(np.prod(spec.shape)):
            raise ConfigError(
                f"wrong input size for {model}: got {len(values)} values, the model takes {spec.describe()}"
            )
        return device.infer(model, np.array(values, dtype=spec.numpy_dtype).reshape(spec.shape))

    @hil_keyword
    def run_inference_with_values(self, model: str, *values: float) -> InferenceResult:
        """Quantize real-valued input ``values`` with the model's input parameters, then infer."""
        return self.session.device().infer_values(model, [float(v) for v in values])

    @hil_keyword
    def output_should_be_close_to(self, result: InferenceResult, *expected: float, tolerance: float = 0.05) -> None:
        """Dequantize ``result`` and fail if any value is further than ``tolerance`` from ``expected``."""
        spec = self.session.device().model(result.model).output
        actual = spec.dequantize(result.output).ravel()
        wanted = np.array(expected, dtype=np.float64)
        if actual.shape != wanted.shape or np.max(np.abs(actual - wanted)) > tolerance:
            raise CheckFailed(
                f"{result.model}: output {actual.round(4).tolist()} is not within {tolerance} of {wanted.tolist()}"
            )

    @hil_keyword
    def output_should_match_golden(self, model: str, tolerance: int | None = None) -> checks.GoldenComparison:
        """Run every golden vector of ``model`` and compare outputs with TFLM's, element by element.

        ``tolerance`` is in output quantization steps; default the manifest's (0: bit-exact).
        """
        comparison = self.session.check_golden(model, tolerance)
        logger.info(f"{model}: all {comparison.vectors} golden vectors match")
        return comparison

    @hil_keyword
    def evaluation_score_should_meet_floor(self, model: str) -> checks.EvaluationResult:
        """Score the device on the model's evaluation set; fail if it misses the manifest's floor."""
        result = self.session.evaluate(model)
        logger.info(f"{model}: {result.metric.name} = {result.score:.4f} (floor {result.metric.threshold})")
        if result.confusion is not None:
            logger.info(_confusion_html(result), html=True)
        checks.check_evaluation(result)
        return result

    @hil_keyword
    def stream_stimulus(self, model: str, stimulus: Path, source: Source = "protocol") -> list[DetectedEvent]:
        """Stream a stimulus CSV through the device's windowing; return the events it raised.

        ``source=protocol`` sends the samples over the wire; ``source=sensor`` plays them into the
        target's emulated accelerometer, which the firmware samples itself (skipped where the target
        has none, e.g. a board's physical sensor or QEMU).
        """
        _, events = self.session.stream_stimulus(model, stimulus, source)
        for event in events:
            logger.info(f"{event.time_s:7.2f} s  {event.label}  score {event.score:.3f}")
        return events

    @hil_keyword
    def stimulus_should_raise_expected_events(
        self, model: str, stimulus: Path, source: Source = "protocol"
    ) -> EventMatch:
        """Stream ``stimulus`` and fail unless exactly the events in its ``.expected.csv`` come, in their windows.

        ``source`` as in `Stream Stimulus`. Example:
        ``Stimulus Should Raise Expected Events    gesture    models/gesture/stimuli/sequence.csv    source=sensor``
        """
        match = self.session.check_stream(model, stimulus, source)
        for expected, detected in match.matched:
            performed = f"performed {expected.start_s:g}-{expected.end_s:g} s"
            logger.info(f"{expected.label}: {performed}, detected {detected.time_s:.2f} s")
        return match

    @hil_keyword
    def latency_should_be_below(
        self, model: str, limit_us: float | None = None, inferences: int = 20, statistic: str = "p95"
    ) -> checks.LatencyStats:
        """Run ``inferences`` golden inputs and fail if the ``statistic`` latency exceeds ``limit_us``.

        The limit defaults to the model's latency budget for this target in its manifest.
        """
        try:
            stats = self.session.check_latency(model, limit_us, inferences, statistic)
        finally:  # the emulator's counts are worth seeing most when the budget was missed
            if cost := self.session.last_emulated_cost:
                logger.info(
                    f"{model} in the emulator: median {cost.instructions:,.0f} instructions and "
                    f"{cost.virtual_us:.1f} µs of virtual time per inference (device ticks: {cost.device_us:.1f} µs)"
                )
        logger.info(
            f"{model}: latency median {stats.median_us:.1f} µs, p95 {stats.p95_us:.1f} µs, max {stats.max_us:.1f} µs"
        )
        return stats

    @hil_keyword
    def arena_usage_should_be_below(self, model: str, limit_bytes: int | None = None) -> int:
        """Fail if the device's tensor arena use for ``model`` exceeds ``limit_bytes`` (default: budget)."""
        return self.session.check_arena(model, limit_bytes)

    # --- the line ------------------------------------------------------------------------------

    @hil_keyword
    def send_raw_bytes(self, hex_bytes: str) -> None:
        """Write raw bytes (hex, spaces allowed) to the device's console, e.g. to test resynchronisation."""
        try:
            data = bytes.fromhex(hex_bytes)
        except ValueError as err:
            raise ConfigError(f"not hex bytes: {hex_bytes!r}") from err
        self.session.device().link.write_raw(data)

    @hil_keyword
    def wait_for_line_on_uart(self, pattern: str, timeout: timedelta = timedelta(seconds=10)) -> str:
        """Wait until the device prints a console line matching the regular expression ``pattern``.

        Named like Renode's keyword so suites read the same on every target.
        """
        match = self.session.device().link.expect_line(pattern, timeout.total_seconds())
        return match.string

    @hil_keyword
    def console_should_not_contain(self, pattern: str) -> None:
        """Fail if any kept console line matches ``pattern`` (e.g. a fault or assert message)."""
        import re

        device = self.session.device()
        device.link.poll()
        hits = [line for line in device.console_tail(1000) if re.search(pattern, line)]
        if hits:
            raise CheckFailed(f"console printed {len(hits)} line(s) matching {pattern!r}: {hits[:3]}")
