"""pytest plugin (entry point ``pytest11: hil``): fixtures ``dut``, ``hil``, ``hil_session``, ``hil_zoo``.

    pytest tests/hil --hil-target renode:nrf52840dk

Tests that use ``dut`` (or ``hil``) get the open device of the chosen target; the device is
started once per session and restarted if a test lost it. A target whose tools are missing
skips those tests with the reason. Each such test leaves one metrics record. Options, fixtures
and environment variables, each with a worked example: docs/pytest.md.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hil.device import Device
from hil.errors import BackendUnavailable
from hil.models import ModelZoo
from hil.session import HilSession

_SESSION_KEY = pytest.StashKey[HilSession]()
_STATUS = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "tinyml-hil")
    group.addoption(
        "--hil-target", help="target to test, e.g. reference or renode:nrf52840dk (default: $HIL_TARGET, then config)"
    )
    group.addoption("--hil-config", type=Path, help="hil.toml to use (default: $HIL_CONFIG or ./hil.toml)")
    group.addoption(
        "--hil-out", type=Path, help="results directory for metrics and artifacts (default: $HIL_RESULTS, results/)"
    )


def _session(config: pytest.Config) -> HilSession:
    if _SESSION_KEY not in config.stash:
        config.stash[_SESSION_KEY] = HilSession(
            "pytest",
            config.getoption("--hil-target"),
            config.getoption("--hil-config"),
            config.getoption("--hil-out"),
        )
    return config.stash[_SESSION_KEY]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish() -> None:
    """Under ``hil run``, a Ctrl-C after the last test has nothing left to stop: let the reports be written.

    pytest turns a SIGINT during the session into a clean stop, but one that arrives while it
    finishes ends in a traceback; ``hil run`` ends the process itself if it takes too long.
    """
    if os.environ.get("HIL_RUN_ID"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SESSION_KEY in config.stash:
        config.stash[_SESSION_KEY].close()


@pytest.fixture(scope="session")
def hil_session(request: pytest.FixtureRequest) -> HilSession:
    """The run's session: config, model zoo, target and metrics recorder; the device starts on first use."""
    return _session(request.config)


@pytest.fixture(scope="session")
def hil_zoo(hil_session: HilSession) -> ModelZoo:
    """The model zoo of this run: manifests (budgets, labels), golden vectors and evaluation sets."""
    return hil_session.zoo


@pytest.fixture(scope="session", autouse=True)
def _hil_junit_properties(
    request: pytest.FixtureRequest, record_testsuite_property: Callable[[str, object], None]
) -> Iterator[None]:
    """Target, board, firmware build and model hashes as JUnit properties of the test suite."""
    yield
    session = request.config.stash.get(_SESSION_KEY, None)
    if session is not None and session.device_if_open is not None:
        for name, value in session.identity().items():
            record_testsuite_property(name, value)


@pytest.fixture
def dut(hil_session: HilSession) -> Iterator[Device]:
    """The device under test, open and answering."""
    try:
        yield hil_session.device()
    except BackendUnavailable as err:
        pytest.skip(f"{hil_session.target.name}: {err}")


@pytest.fixture
def hil(dut: Device, hil_session: HilSession) -> HilSession:  # noqa: ARG001 - requires the device to be up
    """The session with the device up: ``hil.check_golden("sine")`` and the other recorded checks."""
    return hil_session


def _uses_dut(item: pytest.Item) -> bool:
    return "dut" in getattr(item, "fixturenames", ())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _uses_dut(item):
        _session(item.config).start_test(item.module.__name__ if hasattr(item, "module") else "", item.name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test that needs what the target lacks (e.g. a sensor to play into) is skipped with the reason."""
    try:
        return (yield)
    except BackendUnavailable as err:
        if not _uses_dut(item):
            raise
        pytest.skip(f"{_session(item.config).target.name}: {err}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    report = yield
    failed_on_device = _uses_dut(item) and report.failed and report.when == "call"
    if failed_on_device and (snapshot := _session(item.config).snapshot_after_failure(item.nodeid)):
        report.sections.append(("emulator snapshot", f"emulation saved as the test failed: {snapshot}"))
    if _uses_dut(item) and (report.when == "call" or report.outcome != "passed"):
        message = (
            str(report.longrepr.reprcrash.message) if report.failed and hasattr(report.longrepr, "reprcrash") else ""
        )
        if report.skipped and isinstance(report.longrepr, tuple):
            message = report.longrepr[2]
        _session(item.config).end_test(_STATUS[report.outcome], message)
    return report
