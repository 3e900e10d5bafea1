"""Robot Framework keyword library for tinyml-hil: ``Library    hil.robot.HilLibrary``.

The keywords live in groups (``_checks``, ``_io``) that :class:`HilLibrary` combines; its
docstrings are the keyword reference ``make docs`` builds with Robot's libdoc.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robot.api import SkipExecution, logger
from robot.api.deco import library
from robot.libraries.BuiltIn import BuiltIn

from hil import __version__
from hil.errors import BackendUnavailable, HilError
from hil.results import DeviceInfo, MemoryReport
from hil.robot._base import _variable, hil_keyword
from hil.robot._checks import CheckKeywords
from hil.robot._io import DeviceIoKeywords
from hil.session import HilSession


@library(scope="GLOBAL", version=__version__, doc_format="reST")
class HilLibrary(CheckKeywords, DeviceIoKeywords):
    """Keywords to test TinyML firmware through the tinyml-hil wire protocol.

    The same keywords run on every target: the reference twin, Renode, QEMU, native_sim and
    boards on the bench. A suite opens the device once and closes it at the end::

        *** Settings ***
        Library           hil.robot.HilLibrary
        Suite Setup       Open Device
        Suite Teardown    Close Device

        *** Test Cases ***
        Inference Matches Golden Vectors
            Output Should Match Golden    sine
        Sine Of Half Pi Is One
            ${result}=    Run Inference With Values    sine    1.5708
            Output Should Be Close To    ${result}    1.0    tolerance=0.1
        Latency Stays Within Budget
            Latency Should Be Below    sine

    **Target.** `Open Device` takes a target name, else the ``${HIL_TARGET}`` variable
    (``robot --variable HIL_TARGET:renode:nrf52840dk``), else ``$HIL_TARGET``, else the
    configuration's default (``reference``, the twin). ``hil run`` sets it for you.

    **One device for consecutive suites.** Where the backend resets the whole machine between
    tests (Renode), `Close Device` keeps the device running and the next suite's `Open Device` of
    the same target takes it over after a machine reset, instead of starting a new emulator: each
    suite still starts from a freshly reset device. The device stops when the run ends. Elsewhere
    (the twin, QEMU, native_sim, boards) `Close Device` stops it, as it always did.

    **Results.** Each test leaves a record in ``${HIL_RESULTS}/metrics/robot.jsonl`` (default:
    Robot's output directory), merged into ``metrics.json`` by ``hil run``.

    **Failures.** A wrong answer, a missed budget, a timeout or a device that went away fails the
    test; the next test restarts the device. Asking for something that does not exist (an unknown
    model, input of the wrong size) is an error. A target that lacks what a test needs (Renode not
    installed, no sensor to play into) skips the test with the reason.

    **Models and numbers.** Models, golden vectors, evaluation sets and budgets come from the
    model zoo (``models/<name>/manifest.json``). Inputs are quantized integers unless a keyword
    says values: `Quantize` and `Dequantize` convert with the model's scale and zero point.
    Latency is measured by the device (ticks of its clock); budgets are per target. An accuracy
    has a *floor* it must reach, an error (``mae``) a *ceiling* it must not exceed. The tensor
    arena has a *size* (what the device reserves) and a *use* (what TFLM placed in it); arena
    budgets limit the use.
    """

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self) -> None:
        self.ROBOT_LIBRARY_LISTENER = self
        self._session: HilSession | None = None
        self._opened_by: str | None = None  # the suite whose Open Device made the session current
        self._opened_key: tuple[object, ...] = ()  # what it asked for: target, config, results folder
        self._kept: tuple[tuple[object, ...], HilSession] | None = None  # closed by a suite, running on

    def end_suite(self, data: Any, result: Any) -> None:  # noqa: ARG002 - listener signature
        if self._session is not None and result.longname == self._opened_by:
            self.close_device()  # a suite that opened the device and did not close it

    def close(self) -> None:
        """Listener: the run is over; stop every device still running."""
        for session in (self._session, self._kept[1] if self._kept else None):
            if session is not None:
                session.close()
        self._session, self._kept = None, None

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

    @hil_keyword
    def open_device(self, target: str | None = None, config: Path | None = None) -> DeviceInfo:
        """Start the target's device and handshake with it.

        A target whose tools are missing skips the tests with the reason.

        Args:
            target: target name such as ``reference`` or ``renode:nrf52840dk``; default
                ``${HIL_TARGET}``, ``$HIL_TARGET``, then the configuration's default.
            config: a ``hil.toml``; default ``$HIL_CONFIG`` or ``./hil.toml``.

        Returns:
            the device's ``INFO``: ``firmware_version``, ``board``, ``runtime``, ``build_id``,
            ``clock_hz``, ``max_payload_bytes``.

        Example::

            Suite Setup    Open Device
            ${info}=    Open Device    renode:nrf52840dk
            Should Be Equal    ${info.board}    nrf52840dk
        """
        target = target or _variable("HIL_TARGET")
        out_dir = _variable("HIL_RESULTS") or _variable("OUTPUT DIR")
        if self._session is not None:
            self.close_device()
        self._opened_key = (target, config, out_dir)
        kept = self._take_kept(self._opened_key)
        self._session = kept or HilSession("robot", target, config, Path(out_dir) if out_dir else None)
        self._opened_by = _variable("SUITE NAME")
        device = self._session.device()
        info = device.info
        logger.info(
            f"{self._session.target.name}: firmware {info.firmware_version} (build {info.build_id}), "
            f"board {info.board}, {info.runtime}"
        )
        identity = self._session.identity()
        for name, value in identity.items():
            BuiltIn().set_suite_metadata(name, value, top=True)
        # in a Suite Setup these tag every test of the suite, so Robot's report filters by them
        tags = ("target", "backend", "board_id", "firmware_build_id")
        BuiltIn().set_tags(*(f"{key.removeprefix('firmware_')}:{identity[key]}" for key in tags if identity.get(key)))
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

        Args:
            alias: the name Renode's keywords are imported under.

        Example::

            Import Renode Keywords
            Renode.Execute Command    sysbus.cpu PC
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

    def _take_kept(self, key: tuple[object, ...]) -> HilSession | None:
        """The device an earlier suite closed, if it is the one asked for and resets to a clean state."""
        kept, self._kept = self._kept, None
        if kept is None:
            return None
        kept_key, session = kept
        device = session.device_if_open
        if kept_key == key and device is not None and not device.lost_reason():
            try:
                if device.reset_machine():
                    return session
            except HilError as err:
                logger.warn(f"could not reset {session.target.name} for this suite, starting it afresh: {err}")
        session.close()
        return None

    @hil_keyword
    def close_device(self) -> None:
        """Stop the device and everything its backend started. Safe to call twice.

        Where the backend resets the machine between tests (Renode), the device keeps running for
        the next suite's `Open Device` of the same target, which resets it first; it stops when the
        run ends.

        Example::

            Suite Teardown    Close Device
        """
        session, self._session = self._session, None
        if session is None:
            return
        device = session.device_if_open
        if device is not None and not device.lost_reason() and device.backend.machine_reset() is not None:
            self._kept = (self._opened_key, session)
            return
        session.close()

    @hil_keyword
    def reset_device(self) -> DeviceInfo:
        """Reboot the device through the protocol and wait until it answers again.

        Returns:
            the device's ``INFO`` after the reboot.

        Example::

            Reset Device
            Output Should Match Golden    sine
        """
        return self.session.device().reset()

    @hil_keyword
    def device_should_serve_model(self, model: str) -> None:
        """Fail unless the device reports ``model`` among the models it serves.

        Example::

            Device Should Serve Model    sine
        """
        self.session.device().model(model)

    @hil_keyword
    def skip_unless_device_serves(self, model: str) -> None:
        """Skip the test, with the reason, if the device does not serve ``model`` (small boards embed fewer).

        Example::

            Skip Unless Device Serves    kws
        """
        device = self.session.device()
        if model not in device.models:
            served = ", ".join(device.models)
            raise SkipExecution(f"{self.session.target.name} does not serve {model}: it serves {served}")

    @hil_keyword
    def get_memory_report(self) -> MemoryReport:
        """Stack and heap use as the device measures them (``None`` fields where it cannot, e.g. the twin).

        Returns:
            ``stack_size_bytes``, ``stack_used_bytes``, ``heap_size_bytes``, ``heap_used_bytes``.

        Example::

            ${memory}=    Get Memory Report
            Log    ${memory.stack_used_bytes}
        """
        report = self.session.device().memory()
        self.session.recorder.note("memory", {k: getattr(report, k) for k in report.__slots__})
        return report
