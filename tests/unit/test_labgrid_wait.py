"""Following a labgrid reservation when ``labgrid-client wait`` says nothing before the deadline."""

from __future__ import annotations

import sys
import time

import pytest

from hil.errors import BoardError
from hil.lab.labgrid_place import LabgridPlace, labgrid_unavailable_reason

pytestmark = pytest.mark.skipif(bool(labgrid_unavailable_reason()), reason=str(labgrid_unavailable_reason()))


class ScriptedClient(LabgridPlace):
    """Test double: a "labgrid-client" that is a Python one-liner instead of labgrid's client."""

    def __init__(self, script: str) -> None:
        super().__init__("hil-twin", "127.0.0.1:1")
        self.script = script

    def _argv(self, _args: list[str]) -> list[str]:
        return [sys.executable, "-c", self.script]


def test_a_wait_that_runs_out_before_the_first_state_is_still_waiting() -> None:
    # A short --wait can end while the client is still starting up (about a second on a loaded machine).
    place = ScriptedClient("import time; time.sleep(30)")
    started = time.monotonic()
    assert place._follow_wait("TOKEN", started + 0.3) == "waiting"
    assert time.monotonic() - started < 5  # the silent client was stopped at the deadline


def test_the_last_state_printed_counts() -> None:
    place = ScriptedClient("print('state: waiting'); print('state: allocated')")
    assert place._follow_wait("TOKEN", time.monotonic() + 10) == "allocated"


def test_a_client_that_ends_without_a_state_is_an_error_naming_its_last_words() -> None:
    place = ScriptedClient("import sys; sys.exit('no such reservation')")
    with pytest.raises(BoardError, match="labgrid-client wait TOKEN failed: no such reservation"):
        place._follow_wait("TOKEN", time.monotonic() + 10)
