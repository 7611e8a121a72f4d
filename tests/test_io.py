from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import pytest

import vmhan_lib
from vmhan_lib.io import atomic_write_json, atomic_write_text, git_revision, provenance

REPO = Path(vmhan_lib.__file__).resolve().parent.parent
"""The checkout the tests run in (CI clones the repository, so it is always a git work tree)."""


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=30)
    return done.stdout.strip()


@pytest.fixture
def no_git_around(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path``, with git told not to look for a repository above it nor to use another one."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "r.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]


def test_failed_write_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "r.txt"
    atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object.__new__(type("X", (), {"__str__": None}))})
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.txt"]


def test_provenance_has_versions_and_config() -> None:
    head = _git("rev-parse", "HEAD", cwd=REPO)
    record = provenance({"seed": 3})
    assert record["config"] == {"seed": 3}
    assert record["packages"]["torch"] != "not installed"
    revision = record["git_revision"]
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", revision), revision
    assert revision.removesuffix("-dirty") == head


def test_provenance_names_the_revision_the_process_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    import vmhan_lib.io as io

    monkeypatch.setattr(io, "git_revision", lambda repo=REPO: "f" * 40)  # a commit made while a run trains
    assert provenance({})["git_revision"] == io.IMPORTED_REVISION != "f" * 40


def test_git_revision_outside_a_repository_is_unknown(no_git_around: Path) -> None:
    assert git_revision(no_git_around) == "unknown"


def test_git_revision_is_the_commit_and_dirty_once_a_tracked_file_changes(no_git_around: Path) -> None:
    repo = no_git_around
    _git("init", "-q", cwd=repo)
    (repo / "a.txt").write_text("one")
    _git("add", "a.txt", cwd=repo)
    _git("-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false",
         "commit", "-q", "-m", "one", cwd=repo)
    commit = _git("rev-parse", "HEAD", cwd=repo)
    assert git_revision(repo) == commit
    (repo / "untracked.txt").write_text("not part of the tree")
    assert git_revision(repo) == commit
    (repo / "a.txt").write_text("two")
    assert git_revision(repo) == f"{commit}-dirty"


def test_a_torch_state_is_written_straight_to_its_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 26: a 1.6 GiB MPNet state was first built in memory, then copied to disk; now torch.save
    writes into the temporary file that is renamed into place (no second copy in memory)."""
    import torch

    from vmhan_lib.io import atomic_torch_save

    targets, save = [], torch.save

    def watched(obj, f, *args, **kwargs):
        targets.append(f)
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", watched)
    atomic_torch_save({"w": torch.arange(6)}, tmp_path / "state.pt")
    [target] = targets
    assert isinstance(target, io.BufferedWriter) and target.closed  # a file on disk, not an in-memory buffer
    assert torch.equal(torch.load(tmp_path / "state.pt")["w"], torch.arange(6))
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]
