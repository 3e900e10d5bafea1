"""Keywords that check what the device does against golden outputs, evaluation sets and budgets."""

from __future__ import annotations

from pathlib import Path

from robot.api import logger

from hil import checks
from hil.robot._base import Keywords, hil_keyword
from hil.session import Source
from hil.stimuli import DetectedEvent, EventMatch


def _confusion_html(result: checks.EvaluationResult) -> str:
    labels = result.labels or tuple(str(i) for i in range(len(result.confusion)))
    head = "".join(f"<th>{label}</th>" for label in labels)
    rows = "".join(
        f"<tr><th>{label}</th>" + "".join(f"<td>{int(n)}</td>" for n in row) + "</tr>"
        for label, row in zip(labels, result.confusion, strict=True)
    )
    return f"<table border=1><tr><th>true \\ predicted</th>{head}</tr>{rows}</table>"


class CheckKeywords(Keywords):
    @hil_keyword
    def output_should_match_golden(self, model: str, tolerance: int | None = None) -> checks.GoldenComparison:
        """Run every golden vector of ``model`` and compare outputs with TFLM's, element by element.

        Golden vectors are the inputs and outputs in the model's ``golden.npz``, made with TFLM's runtime.

        Args:
            model: a model the device serves.
            tolerance: the largest difference allowed, in output quantization steps; default the
                manifest's (0: bit-exact).

        Returns:
            the comparison: ``vectors``, ``mismatched`` (their indices), ``max_abs_diff``, ``tolerance``.

        Example::

            Output Should Match Golden    sine
            Output Should Match Golden    kws    tolerance=1
        """
        comparison = self.session.check_golden(model, tolerance)
        logger.info(f"{model}: all {comparison.vectors} golden vectors match")
        return comparison

    @hil_keyword
    def evaluation_score_should_meet_floor(self, model: str) -> checks.EvaluationResult:
        """Score the device on the model's evaluation set; fail if the accuracy is below the manifest's floor.

        The metric is the manifest's: ``accuracy`` (top-1) or ``threshold_accuracy`` (the first
        output above the manifest's ``decision_threshold`` means class 1). For an error metric
        (``mae``) the bound is a ceiling: use `Evaluation Error Should Not Exceed Ceiling`.
        Classifiers log their confusion matrix.

        Returns:
            ``metric``, ``score``, ``samples``, ``labels``, ``confusion``.

        Example::

            Evaluation Score Should Meet Floor    kws
        """
        return self._check_evaluation(model)

    @hil_keyword
    def evaluation_error_should_not_exceed_ceiling(self, model: str) -> checks.EvaluationResult:
        """Score the device on the model's evaluation set; fail if the error exceeds the manifest's ceiling.

        For regression models whose metric is an error (``mae``: mean absolute error of the first
        output against real targets). Accuracy metrics have a floor: `Evaluation Score Should Meet Floor`.

        Returns:
            ``metric``, ``score``, ``samples``.

        Example::

            Evaluation Error Should Not Exceed Ceiling    sine
        """
        return self._check_evaluation(model)

    def _check_evaluation(self, model: str) -> checks.EvaluationResult:
        result = self.session.evaluate(model)
        metric = result.metric
        room = checks.headroom(result.score, metric.threshold, floor=metric.higher_is_better)
        logger.info(
            f"{model}: {metric.name} {result.score:.4f}, {checks.bound_name(metric)} {metric.threshold:g} ({room}) "
            f"on {result.scope}"
        )
        if result.confusion is not None:
            logger.info(_confusion_html(result), html=True)
        checks.check_evaluation(result)
        return result

    @hil_keyword
    def stream_stimulus(self, model: str, stimulus: Path, source: Source = "protocol") -> list[DetectedEvent]:
        """Stream a stimulus CSV through the device's windowing; return the events it raised.

        Args:
            model: a streaming model (its manifest has a ``streaming`` section).
            stimulus: a recording, e.g. ``models/gesture/stimuli/sequence.csv``.
            source: ``protocol`` sends the samples over the wire; ``sensor`` plays them into the
                target's emulated accelerometer, which the firmware samples itself (skipped where
                the target has none, e.g. a board's physical sensor or QEMU).

        Returns:
            the events, each with ``label``, ``time_s``, ``sample`` and ``score``.

        Example::

            ${events}=    Stream Stimulus    gesture    ${CURDIR}/../models/gesture/stimuli/idle_only.csv
            Should Be Empty    ${events}
        """
        _, events = self.session.stream_stimulus(model, stimulus, source)
        for event in events:
            logger.info(f"{event.time_s:7.2f} s  {event.label}  score {event.score:.3f}")
        return events

    @hil_keyword
    def stimulus_should_raise_expected_events(
        self, model: str, stimulus: Path, source: Source = "protocol", expect_none: bool = False
    ) -> EventMatch:
        """Stream ``stimulus`` and fail unless exactly the events in its ``.expected.csv`` come, in their windows.

        An event may come up to one window after its gesture ends. ``source`` as in `Stream Stimulus`.
        A stimulus without an ``.expected.csv`` is an error unless ``expect_none=True`` (then no
        event may come); an expected file with only its header also means none.

        Returns:
            ``matched`` (expected, detected) pairs, ``missed`` and ``unexpected`` events.

        Example::

            *** Variables ***
            ${STIMULI}    ${CURDIR}/../models/gesture/stimuli

            *** Test Cases ***
            Gesture Sequence Raises Each Gesture Once
                Stimulus Should Raise Expected Events    gesture    ${STIMULI}/sequence.csv    source=sensor
        """
        match = self.session.check_stream(model, stimulus, source, expect_none)
        for expected, detected in match.matched:
            performed = f"performed {expected.start_s:g}-{expected.end_s:g} s"
            logger.info(f"{expected.label}: {performed}, detected {detected.time_s:.2f} s")
        return match

    @hil_keyword
    def latency_should_be_below(
        self, model: str, limit_us: float | None = None, inferences: int = 20, statistic: str = "p95"
    ) -> checks.LatencyStats:
        """Run ``inferences`` golden inputs and fail if the ``statistic`` latency exceeds ``limit_us``.

        Latency is what the device measures (ticks of its clock: cycles on firmware, thread CPU time
        on the twin), not host time.

        Args:
            model: a model the device serves.
            limit_us: the limit in µs; default the model's latency budget for this target in its manifest.
            inferences: how many golden inputs to time.
            statistic: ``median``, ``p95`` or ``max``.

        Returns:
            ``count``, ``median_us``, ``p95_us``, ``max_us``.

        Example::

            Latency Should Be Below    sine
            Latency Should Be Below    kws    limit_us=40000    statistic=max
        """
        limit, limit_name = self.session.latency_limit(model, limit_us)
        try:
            stats = self.session.check_latency(model, limit_us, inferences, statistic)
        finally:  # the emulator's counts are worth seeing most when the budget was missed
            if cost := self.session.last_emulated_cost:
                logger.info(
                    f"{model} in the emulator: median {cost.instructions:,.0f} instructions and "
                    f"{cost.virtual_us:.1f} µs of virtual time per inference (device ticks: {cost.device_us:.1f} µs)"
                )
        measured = stats.value(statistic)
        logger.info(
            f"{model}: {statistic} latency {checks.duration(measured)}, {limit_name} {checks.duration(limit)} "
            f"({checks.headroom(measured, limit)}); median {checks.duration(stats.median_us)}, "
            f"max {checks.duration(stats.max_us)} over {stats.count} inferences"
        )
        return stats

    @hil_keyword
    def arena_usage_should_be_below(self, model: str, limit_bytes: int | None = None) -> int:
        """Fail if the tensor arena the device reports in use for ``model`` exceeds ``limit_bytes``.

        Args:
            model: a model the device serves.
            limit_bytes: the limit; default the model's arena budget for this target in its manifest.

        Returns:
            the arena used, in bytes.

        Example::

            Arena Usage Should Be Below    sine
            Arena Usage Should Be Below    sine    limit_bytes=2048
        """
        used = self.session.check_arena(model, limit_bytes)
        logger.info(
            f"{model}: arena used {used} B (arena size {self.session.device().model(model).arena_size_bytes} B)"
        )
        return used
