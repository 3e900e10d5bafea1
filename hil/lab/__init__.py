"""The lab bench, in labgrid's shape.

* resources — :mod:`hil.lab.inventory`: the lab file (Zephyr twister's hardware map plus our own
  keys): where each board is (console, probe, labgrid place) and how it is flashed and powered.
* drivers — :mod:`hil.lab.flashers` (west runner, the runner's own tool, a GDB server, a user
  command), :mod:`hil.lab.power` (commands or a labgrid place), :mod:`hil.lab.labgrid_place`.
* strategy — :mod:`hil.lab.strategy`: off → flashed → booted → ready, with retries, identity
  checks and quarantine.
* state — :mod:`hil.lab.state`: per-board locks the OS releases when their holder dies, and the
  quarantine record, in the lab's state directory.

:mod:`hil.backends.board` is a thin backend over this package.
"""
