"""Fixtures of the emulated bench (defined in fixtures.py, which tests import their helpers from)."""

from fixtures import emulated_board

__all__ = ["emulated_board"]
