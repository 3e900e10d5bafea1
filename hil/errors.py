"""The one exception hierarchy of tinyml-hil.

Every message says what happened, what was expected and what to do about it.
The Robot library maps these classes to Robot's failure kinds in one place
(``hil.robot``); the pytest plugin turns ``BackendUnavailable`` (and so
``SensorUnavailable``) into a skip.
"""

from __future__ import annotations


class HilError(Exception):
    """Root of every error raised by tinyml-hil."""

    ROBOT_SUPPRESS_NAME = True


class ConfigError(HilError):
    """The user's request or configuration is wrong: unknown target, model, bad file."""


class BackendUnavailable(HilError):
    """A tool the backend needs is absent (Renode, QEMU, a Zephyr workspace, a board)."""


class SensorUnavailable(BackendUnavailable):
    """The target has no sensor the host can put samples into (a physical one, or none at all)."""


class DeviceTimeout(HilError):
    """The device did not answer in time."""


class DeviceLost(HilError):
    """The device went away: process exited, port closed or the device rebooted."""


class ProtocolError(HilError):
    """Bytes on the line broke the wire protocol, or the device replied with an error."""


class DeviceError(ProtocolError):
    """The device understood the request and refused it with an error reply."""

    def __init__(self, code: int, code_name: str, message: str, request: str) -> None:
        self.code = code
        self.code_name = code_name
        self.device_message = message
        super().__init__(f"device refused {request}: {code_name}: {message}")


class CheckFailed(HilError, AssertionError):
    """An assertion on inference, memory or timing did not hold."""


class BoardError(HilError):
    """A bench board could not be brought up (flash, power, console, boot): the rig failed, not a test.

    ``hil run`` reports such a run with its own exit code and marks its tests as errors.
    """

    def __init__(self, board: str, message: str, *, runner: str | None = None, tail: str = "") -> None:
        self.board = board
        self.runner = runner
        self.tail = tail
        detail = f"board {board}" + (f" ({runner})" if runner else "") + f": {message}"
        if tail:
            detail += "\n" + tail
        super().__init__(detail)


class BoardBusy(HilError):
    """Every board that could serve the target is held by another run (a lock or a labgrid place).

    Not a skip: a run that asked for a board and got none must not pass.
    """
