"""A test double for a flash tool: fails its first N calls, then succeeds.

    python flaky_flasher.py ATTEMPTS_FILE N IMAGE

Each call appends a line to ATTEMPTS_FILE; the call fails (exit 1, with a message on stderr)
while fewer than N lines were there before it. It flashes nothing: the board it stands in for
is the reference twin, which already runs its build.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    attempts, fail_first, image = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    before = attempts.read_text().count("\n") if attempts.exists() else 0
    with attempts.open("a") as f:
        f.write(f"{image}\n")
    if before < fail_first:
        print(f"stand-in flasher: failing on purpose (call {before + 1} of the first {fail_first})", file=sys.stderr)
        return 1
    print(f"stand-in flasher: 'flashed' {image.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
