"""Where things live: the repository, the data directory, the profiles and their output folders.

Profiles (chosen by parameter, else the ``VMHAN_PROFILE`` environment variable, else ``cpu``):

- ``tiny``: a few hundred instances per split, for tests and nbval (minutes on 2 cores);
- ``cpu``: the whole of MNRE-2 sized for the team's 2-core machines;
- ``full``: the paper's setting, for users with a GPU.

The data directory is resolved the same way everywhere: an explicit argument, else the
``VMHAN_DATA`` environment variable, else ``data/mnre`` inside the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ENV = "VMHAN_DATA"
PROFILE_ENV = "VMHAN_PROFILE"
DEFAULT_DATA_DIR = REPO_ROOT / "data" / "mnre"
RESULTS_DIR = REPO_ROOT / "results"
FIGURES_DIR = REPO_ROOT / "figures"
CHECKPOINT_DIR = RESULTS_DIR / "checkpoints"
"""Resumable training states and best models, per profile (not committed: too large)."""
PROFILES: tuple[str, ...] = ("tiny", "cpu", "full")


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The MNRE data directory: ``data_dir`` if given, else ``$VMHAN_DATA``, else ``data/mnre``."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser().resolve()
    from_env = os.environ.get(DATA_ENV, "")
    if from_env:
        return Path(from_env).expanduser().resolve()
    return DEFAULT_DATA_DIR


def resolve_profile(profile: str | None = None) -> str:
    """The run profile: ``profile`` if given, else ``$VMHAN_PROFILE``, else ``cpu``."""
    chosen = profile or os.environ.get(PROFILE_ENV, "") or "cpu"
    if chosen not in PROFILES:
        raise ValueError(f"unknown profile {chosen!r}; allowed: {', '.join(PROFILES)}")
    return chosen


def output_dirs(profile: str) -> tuple[Path, Path]:
    """``(results_dir, figures_dir)`` of a profile; ``tiny`` writes apart so tests never touch the
    committed results."""
    if resolve_profile(profile) == "tiny":
        return RESULTS_DIR / "tiny", FIGURES_DIR / "tiny"
    return RESULTS_DIR, FIGURES_DIR


def runs_dir(profile: str) -> Path:
    """Where the run records of a profile go: ``results/runs`` (``results/tiny/runs`` for ``tiny``)."""
    return output_dirs(profile)[0] / "runs"
