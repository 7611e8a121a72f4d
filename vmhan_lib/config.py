"""Typed configuration: where the data lives, which profile runs, and the named presets.

Profiles (chosen by parameter, else the ``VMHAN_PROFILE`` environment variable, else ``cpu``):

- ``tiny``: a few hundred instances per split, for tests and nbval (minutes on 2 cores);
- ``cpu``: the whole of MNRE-2 sized for the team's 2-core machines;
- ``full``: the paper's setting, for users with a GPU.

The data directory is resolved the same way everywhere: an explicit argument, else the
``VMHAN_DATA`` environment variable, else ``data/mnre`` inside the repository.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ENV = "VMHAN_DATA"
PROFILE_ENV = "VMHAN_PROFILE"
DEFAULT_DATA_DIR = REPO_ROOT / "data" / "mnre"
RESULTS_DIR = REPO_ROOT / "results"
FIGURES_DIR = REPO_ROOT / "figures"
PROFILES: tuple[str, ...] = ("tiny", "cpu", "full")


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The MNRE data directory: ``data_dir`` if given, else ``$VMHAN_DATA``, else ``data/mnre``."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser().resolve()
    from_env = os.environ.get(DATA_ENV, "")
    if from_env:
        return Path(from_env).expanduser().resolve()
    return DEFAULT_DATA_DIR


def output_dirs(profile: str) -> tuple[Path, Path]:
    """``(results_dir, figures_dir)`` of a profile; ``tiny`` writes apart so tests never touch the
    committed results."""
    if resolve_profile(profile) == "tiny":
        return RESULTS_DIR / "tiny", FIGURES_DIR / "tiny"
    return RESULTS_DIR, FIGURES_DIR


def resolve_profile(profile: str | None = None) -> str:
    """The run profile: ``profile`` if given, else ``$VMHAN_PROFILE``, else ``cpu``."""
    chosen = profile or os.environ.get(PROFILE_ENV, "") or "cpu"
    if chosen not in PROFILES:
        raise ValueError(f"unknown profile {chosen!r}; allowed: {', '.join(PROFILES)}")
    return chosen


@dataclass(frozen=True)
class DataConfig:
    """What data a run reads.

    Attributes:
        data_dir: MNRE directory (``text/``, ``captions/``, ``aux/``, ``images_sample/``);
            ``None`` means :func:`resolve_data_dir`.
        max_instances: keep only the first N instances of each split (``None`` = all); the
            ``tiny`` profile uses it so tests stay fast.
        captioners: the captioners whose texts build the caption-based visual nodes. Default
            ``cogvlm``: the best dev F1 of the six in ``results/captioner_choice.json`` (made by
            ``python -m vmhan_lib.features.caption_nodes``), though all six lie within each
            other's bootstrap intervals and within noise of text only.
    """

    data_dir: str | None = None
    max_instances: int | None = None
    captioners: tuple[str, ...] = ("cogvlm",)

    @property
    def path(self) -> Path:
        return resolve_data_dir(self.data_dir)


@dataclass(frozen=True)
class ExperimentConfig:
    """Top-level configuration; every result file stores ``to_dict()`` of the config that made it."""

    profile: str = "cpu"
    seed: int = 13
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_data_dir(self, data_dir: str | Path | None) -> "ExperimentConfig":
        return replace(self, data=replace(self.data, data_dir=None if data_dir is None else str(data_dir)))


def preset(profile: str | None = None) -> ExperimentConfig:
    """The named preset for ``profile`` (see module docstring)."""
    name = resolve_profile(profile)
    if name == "tiny":
        return ExperimentConfig(profile=name, data=DataConfig(max_instances=200))
    return ExperimentConfig(profile=name)
