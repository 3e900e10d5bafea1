"""Finding Renode: $RENODE (a file or a folder), PATH, renode-run's install, the version it reports.

A stand-in ``renode`` script (a test double) answers ``--version`` only.
"""

from __future__ import annotations

import json
from pathlib import Path

from hil.backends import renode as rb

# --- finding Renode -----------------------------------------------------------------------------------


def _fake_renode(folder: Path, version: str = "1.14.0.25149") -> Path:
    """A stand-in `renode` that only answers --version (as `Renode, version X (hash)`)."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "renode"
    exe.write_text(f"#!/bin/sh\necho 'Renode, version {version} (81da46c1-202308081346)'\n")
    exe.chmod(0o755)
    return exe


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    empty = tmp_path / "empty-path"
    empty.mkdir(exist_ok=True)
    return {"PATH": str(empty), "HOME": str(tmp_path / "home"), **extra}


def test_missing_renode_message_names_renode_and_how_to_install(tmp_path: Path) -> None:
    found = rb.find_renode(_env(tmp_path))
    assert not found.usable
    message = found.why_not()
    assert message.startswith("renode not found")
    for needed in ("Renode >= 1.14.0", "github.com/renode/renode/releases", "renode-run download", "$RENODE", "PATH"):
        assert needed in message


def test_bad_renode_variable_is_named_in_the_message(tmp_path: Path) -> None:
    message = rb.find_renode(_env(tmp_path, RENODE="/nonexistent/renode")).why_not()
    assert "renode not found ($RENODE=/nonexistent/renode is not an executable" in message


def test_renode_variable_may_name_the_folder(tmp_path: Path) -> None:
    exe = _fake_renode(tmp_path / "r")
    found = rb.find_renode(_env(tmp_path, RENODE=str(tmp_path / "r")))
    assert (found.path, found.version, found.found_by, found.usable) == (exe, "1.14.0", "$RENODE", True)


def test_renode_on_path_is_found(tmp_path: Path) -> None:
    _fake_renode(tmp_path / "bin")
    found = rb.find_renode({"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path)})
    assert found.usable
    assert found.found_by == "PATH"


def test_renode_older_than_1_14_is_refused_with_the_reason(tmp_path: Path) -> None:
    _fake_renode(tmp_path / "bin", "1.13.3.1234")
    found = rb.find_renode({"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path)})
    assert not found.usable
    assert "version 1.13.3 is older than 1.14.0" in found.why_not()


def test_renode_run_install_is_found_from_its_json_config(tmp_path: Path) -> None:
    home = tmp_path / "home"
    install = home / ".config/renode/renode-run.download/dotnet-portable/renode-1.16.1+20260216git1234abcd"
    exe = _fake_renode(install, "1.16.1.0")
    config = home / ".config/renode/renode-run.json"
    config.write_text(json.dumps({"version": "2.0", "default": {"dotnet-portable": str(install)}}))
    found = rb.find_renode(_env(tmp_path))
    assert (found.path, found.version) == (exe, "1.16.1")
    assert found.found_by == f"renode-run ({config})"


def test_renode_run_legacy_path_file_is_honoured(tmp_path: Path) -> None:
    exe = _fake_renode(tmp_path / "opt/renode_1.14.0_portable")
    legacy = tmp_path / "home/.config/renode/renode-run.path"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(str(exe.parent))
    assert rb.find_renode(_env(tmp_path)).path == exe
