"""What every keyword group shares: the session, and the one place our errors become Robot's."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from robot.api import Error, Failure, SkipExecution
from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError

from hil.errors import BackendUnavailable, BoardError, ConfigError, HilError
from hil.session import HilSession

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


class Keywords:
    """A group of keywords over the suite's session; :class:`hil.robot.HilLibrary` combines them."""

    _session: HilSession | None = None

    @property
    def session(self) -> HilSession:
        if self._session is None:
            raise Error("no device is open: call Open Device first (usually in Suite Setup)")
        return self._session
