"""The Renode backend, by concern: finding Renode (``install``), its monitor (``monitor``), the
script that builds a target's machine (``script``) and the backend itself (``backend``).

The names below are the package's interface; ``hil.options.BACKENDS`` names
``hil.backends.renode:RenodeBackend``. Our own peripheral models (C#, compiled by Renode when a
script includes them) are in ``models/``.
"""

from __future__ import annotations

from hil.backends.renode.backend import RenodeBackend
from hil.backends.renode.install import (
    RENODE_MIN_VERSION,
    RenodeInstallation,
    find_renode,
    parse_version,
    renode_run_installs,
    renode_tool,
    renode_version,
)
from hil.backends.renode.monitor import (
    EmulatorCounters,
    MonitorClient,
    counters_python,
    parse_counters,
    parse_number,
    parse_virtual_time,
)
from hil.backends.renode.script import (
    DWT_ADDRESS,
    KNOWN_BUSES,
    RENODE_MODELS,
    SENSOR_MODELS,
    Accelerometer,
    RenodeScript,
    SensorModel,
    accelerometer,
    build_script,
)

__all__ = [
    "DWT_ADDRESS",
    "KNOWN_BUSES",
    "RENODE_MIN_VERSION",
    "RENODE_MODELS",
    "SENSOR_MODELS",
    "Accelerometer",
    "EmulatorCounters",
    "MonitorClient",
    "RenodeBackend",
    "RenodeInstallation",
    "RenodeScript",
    "SensorModel",
    "accelerometer",
    "build_script",
    "counters_python",
    "find_renode",
    "parse_counters",
    "parse_number",
    "parse_version",
    "parse_virtual_time",
    "renode_run_installs",
    "renode_tool",
    "renode_version",
]
