"""tinyml-hil: hardware-in-the-loop tests for TinyML firmware on emulators, boards and a reference twin."""

from importlib.metadata import version

__version__ = version("tinyml-hil")
