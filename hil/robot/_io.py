"""Keywords that run inferences, convert numbers and talk on the console line."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from hil.errors import CheckFailed, ConfigError
from hil.results import InferenceResult
from hil.robot._base import Keywords, hil_keyword


class DeviceIoKeywords(Keywords):
    # --- inference ----------------------------------------------------------------------------

    @hil_keyword
    def run_inference(self, model: str, *values: int) -> InferenceResult:
        """Run one inference on already-quantized integer input ``values`` (the tensor flattened).

        Args:
            model: a model the device serves.
            values: every element of the input tensor, as the model's integers (see `Quantize`).

        Returns:
            the inference: ``output`` (the quantized output tensor), ``latency_us``, ``ticks``,
            ``arena_used_bytes``; `Dequantize` gives its real values.

        Example::

            ${result}=    Run Inference    sine    12
            Run Keyword And Expect Error    *wrong input size for sine*    Run Inference    sine    1    2
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
        """Quantize real-valued input ``values`` with the model's input scale and zero point, then infer.

        Args:
            model: a model the device serves.
            values: every element of the input tensor, in the model's real units.

        Returns:
            the inference, as `Run Inference` returns it.

        Example::

            ${result}=    Run Inference With Values    sine    1.5708
            Output Should Be Close To    ${result}    1.0    tolerance=0.1
        """
        return self.session.device().infer_values(model, [float(v) for v in values])

    @hil_keyword
    def output_should_be_close_to(self, result: InferenceResult, *expected: float, tolerance: float = 0.05) -> None:
        """Dequantize ``result`` and fail if any value is further than ``tolerance`` from ``expected``.

        Args:
            result: what `Run Inference` or `Run Inference With Values` returned.
            expected: every element of the output tensor, in real units.
            tolerance: the largest difference allowed, in real units.

        Example::

            ${result}=    Run Inference With Values    sine    1.5708
            Output Should Be Close To    ${result}    1.0    tolerance=0.1
        """
        spec = self.session.device().model(result.model).output
        actual = spec.dequantize(result.output).ravel()
        wanted = np.array(expected, dtype=np.float64)
        if actual.shape != wanted.shape or np.max(np.abs(actual - wanted)) > tolerance:
            raise CheckFailed(
                f"{result.model}: output {actual.round(4).tolist()} is not within {tolerance} of {wanted.tolist()}"
            )

    # --- numbers ------------------------------------------------------------------------------

    @hil_keyword
    def quantize(self, model: str, *values: float) -> list[int | float]:
        """Quantize real ``values`` with ``model``'s input scale and zero point, rounded as the firmware does.

        Args:
            model: a model the device serves.
            values: every element of the input tensor, in real units.

        Returns:
            the input tensor's elements, flattened, as the model's integers.

        Example::

            ${q}=    Quantize    sine    1.5708
            ${result}=    Run Inference    sine    @{q}
        """
        return self.session.device().quantize(model, list(values)).ravel().tolist()

    @hil_keyword
    def dequantize(self, result: InferenceResult) -> list[float]:
        """The real values of an inference's output, with its model's output scale and zero point.

        Args:
            result: what `Run Inference` or `Run Inference With Values` returned.

        Returns:
            the output tensor's elements, flattened, in real units.

        Example::

            ${result}=    Run Inference With Values    sine    1.5708
            ${y}=    Dequantize    ${result}
            Should Be True    0.9 < ${y}[0] < 1.1
        """
        return self.session.device().dequantize(result).ravel().tolist()

    # --- the line ------------------------------------------------------------------------------

    @hil_keyword
    def send_raw_bytes(self, hex_bytes: str) -> None:
        """Write raw bytes (hex, spaces allowed) to the device's console, e.g. to test resynchronisation.

        Example::

            Send Raw Bytes    00 ff a5 5a 03 07
            Output Should Match Golden    sine
        """
        try:
            data = bytes.fromhex(hex_bytes)
        except ValueError as err:
            raise ConfigError(f"not hex bytes: {hex_bytes!r}") from err
        self.session.device().link.write_raw(data)

    @hil_keyword
    def wait_for_line_on_uart(self, pattern: str, timeout: timedelta = timedelta(seconds=10)) -> str:
        """Wait until the device prints a console line matching the regular expression ``pattern``.

        Named like Renode's keyword so suites read the same on every target.

        Args:
            pattern: a Python regular expression, searched in each line.
            timeout: how long to wait, e.g. ``10s`` or ``1 minute``.

        Returns:
            the matching line.

        Example::

            Reset Device
            Wait For Line On Uart    HIL BOOT    timeout=5s
        """
        match = self.session.device().link.expect_line(pattern, timeout.total_seconds())
        return match.string

    @hil_keyword
    def console_should_not_contain(self, pattern: str) -> None:
        """Fail if any kept console line matches ``pattern`` (e.g. a fault or assert message).

        Example::

            Console Should Not Contain    (?i)fault|assert
        """
        import re

        device = self.session.device()
        device.link.poll()
        hits = [line for line in device.console_tail(1000) if re.search(pattern, line)]
        if hits:
            raise CheckFailed(f"console printed {len(hits)} line(s) matching {pattern!r}: {hits[:3]}")
