"""Build the keyword reference: Robot's libdoc over :class:`hil.robot.HilLibrary`, as HTML.

    python -m hil.docs [OUT_DIR]      (``make docs``: build/docs/keywords.html)

The reference is built, not committed, so it cannot go stale; the tests build it too. The
keyword docstrings are reStructuredText, which libdoc renders with docutils (the dev extra).
"""

from __future__ import annotations

import sys
from pathlib import Path

LIBRARY = "hil.robot.HilLibrary"
KEYWORDS_HTML = "keywords.html"
DEFAULT_OUT = Path("build") / "docs"


def build_keyword_reference(out_dir: Path) -> Path:
    """Write ``keywords.html`` into ``out_dir``; return its path."""
    from robot.libdoc import libdoc

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / KEYWORDS_HTML
    code = libdoc(LIBRARY, str(path), name="tinyml-hil keywords", format="HTML", quiet=True)
    if code != 0 or not path.is_file():
        raise SystemExit(f"libdoc could not build the keyword reference (exit {code}): is docutils installed?")
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = build_keyword_reference(Path(args[0]) if args else DEFAULT_OUT)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
