"""Atomic files, damaged files set aside, and the provenance every result carries (config, git revision,
versions).

Every file the workbook writes goes through :func:`atomic_write_bytes` or :func:`atomic_torch_save`
(a temporary file, then a rename: a reader never sees half a file; a full disk or a missing permission is one
:class:`StorageError` naming the path). Every file it reads back with torch goes through
:func:`load_torch` (a damaged one, e.g. cut by a crash elsewhere, is one :class:`StorageError` naming
the path); what can be rebuilt (resumable states, cache entries) is renamed aside by
:func:`set_aside` and rebuilt."""

from __future__ import annotations

import json
import os
import pickle
import platform
import subprocess
import tempfile
import warnings
import zipfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch

from vmhan_lib.config_tree import ConfigError
from vmhan_lib.paths import REPO_ROOT

TRACKED_PACKAGES: tuple[str, ...] = (
    "torch", "torchvision", "transformers", "ultralytics", "numpy", "scikit-learn", "matplotlib",
)


class StorageError(ConfigError):
    """A file the workbook writes cannot be written (disk full, no permission), or one it wrote
    cannot be read back (damaged): the message names the file."""


def _atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """``write(file)`` into a temporary file beside ``path``, flushed to disk, renamed to ``path``.

    Raises:
        StorageError: the folder or the file cannot be written (nothing is left half-written).
    """
    target = Path(path)
    tmp_name = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(handle, "wb") as tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, target)
    except OSError as err:
        raise StorageError(f"cannot write {target}: {err.strerror or err}") from err
    finally:
        if tmp_name is not None and Path(tmp_name).exists():
            Path(tmp_name).unlink(missing_ok=True)
    return target


def atomic_write_bytes(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` via a temporary file and rename, so a reader never sees half.

    Raises:
        StorageError: the folder or the file cannot be written (nothing is left half-written).
    """
    return _atomic_write(path, lambda tmp: tmp.write(payload))


def load_torch(path: str | Path, what: str, map_location: Any = "cpu", weights_only: bool = False) -> Any:
    """:func:`torch.load` of a file the workbook wrote.

    Raises:
        StorageError: the file is damaged (truncated, overwritten): the message names it and ``what`` it is.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except FileNotFoundError:
        raise
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StorageError(f"{path}: the {what} cannot be read ({reason})") from err


def set_aside(path: str | Path, why: StorageError) -> Path:
    """Rename a damaged file that can be rebuilt to ``<name>.unreadable`` (kept for inspection) and
    say so in a warning; returns the new path."""
    aside = Path(path).with_name(Path(path).name + ".unreadable")
    os.replace(path, aside)
    warnings.warn(f"{why}; set aside as {aside.name}, rebuilding it", stacklevel=3)
    return aside


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """:func:`torch.save` straight into the temporary file of :func:`atomic_write_bytes` (temp file +
    rename; no copy of the whole file in memory, e.g. a 1.6 GiB resumable MPNet state).

    Raises:
        StorageError: the file cannot be written (torch's writer failing, e.g. on a full disk, included).
    """
    def write(tmp: BinaryIO) -> None:
        try:
            torch.save(obj, tmp)
        except RuntimeError as err:  # torch's zip writer reports a failed write as a RuntimeError
            raise OSError(str(err).strip().splitlines()[0] if str(err).strip() else "torch.save failed") from err

    return _atomic_write(path, write)


def git_revision(repo: Path = REPO_ROOT) -> str:
    """The current commit (with ``-dirty`` when the tree has changes), or ``unknown``."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev}-dirty" if dirty else rev


IMPORTED_REVISION = git_revision()
"""The commit checked out when this process imported ``vmhan_lib.io`` (every training path
imports it first), read once: a record written at the end of an hour-long run names the code that
made it, not a commit made meanwhile (a module first imported later in the run could still be newer)."""


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance(config: dict[str, Any]) -> dict[str, Any]:
    """What a result file stores about how it was made."""
    return {
        "config": config,
        "git_revision": IMPORTED_REVISION,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "packages": package_versions(),
    }
