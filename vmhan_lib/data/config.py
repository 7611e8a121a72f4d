"""Which data a run reads (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vmhan_lib.data.captions import CAPTIONERS
from vmhan_lib.paths import resolve_data_dir


@dataclass(frozen=True)
class DataConfig:
    """What data a run reads.

    Attributes:
        data_dir: MNRE directory (``text/``, ``captions/``, ``aux/``, ``images_sample/``);
            ``None`` means :func:`vmhan_lib.paths.resolve_data_dir`.
        max_instances: keep only the first N instances of each split (``None`` = all); the
            ``tiny`` profile uses it so tests stay fast.
        captioners: the captioners whose texts build the caption-based visual nodes. Default
            ``cogvlm``: the best dev F1 of the six in ``results/captioner_choice.json`` (made by
            ``python -m vmhan_lib.analysis.captioner_choice``), though all six lie within each
            other's bootstrap intervals and within noise of text only.
    """

    data_dir: str | None = None
    max_instances: int | None = None
    captioners: tuple[str, ...] = ("cogvlm",)

    def __post_init__(self) -> None:
        if self.max_instances is not None and self.max_instances < 1:
            raise ValueError(f"must be >= 1 or None, got {self.max_instances}")
        unknown = [name for name in self.captioners if name not in CAPTIONERS]
        if unknown or not self.captioners:
            raise ValueError(f"unknown or no captioner(s) {unknown}; allowed: {', '.join(CAPTIONERS)}")

    @property
    def path(self) -> Path:
        return resolve_data_dir(self.data_dir)
