"""Which data a run reads (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vmhan_lib.data.captions import CAPTIONERS
from vmhan_lib.paths import resolve_data_dir

DATASETS: tuple[str, ...] = ("mnre", "more")
"""``mnre``: MNRE-2 (:mod:`vmhan_lib.data.mnre`); ``more``: the MORE release (:mod:`vmhan_lib.data.more`)."""
IMAGE_INSTANCE_ORDERS: tuple[str, ...] = ("all", "first", "only")
"""Which instances a split keeps, with respect to the image folder (see :attr:`DataConfig.image_instances`)."""
DEFAULT_IMAGE_DIRS: dict[str, str] = {"mnre": "images_sample", "more": "img_org"}
"""The image folder of each dataset when ``image_dir`` is not set, relative to the data directory."""


@dataclass(frozen=True)
class DataConfig:
    """What data a run reads.

    Attributes:
        data_dir: the dataset directory (MNRE: ``text/``, ``captions/``, ``aux/``, ``images_sample/``;
            MORE: ``txt/``, ``ent_*_dict.pth``, ``rel2id.json``, ``img_org/``); ``None`` means
            :func:`vmhan_lib.paths.resolve_data_dir`.
        dataset: ``mnre`` (default) or ``more`` (:data:`DATASETS`).
        max_instances: keep only the first N instances of each split (``None`` = all); the
            ``tiny`` profile uses it so tests stay fast.
        captioners: the captioners whose texts build the caption-based visual nodes. Default
            ``cogvlm``: the best dev F1 of the six in ``results/captioner_choice.json`` (made by
            ``python -m vmhan_lib.analysis.captioner_choice``), though all six lie within each
            other's bootstrap intervals and within noise of text only.
        image_dir: the image folder (absolute, or relative to the data directory); an image is
            ``<image_dir>/<img_id>`` or ``<image_dir>/<split>/<img_id>`` (``val`` also as ``valid``/``dev``).
            ``None`` (default): ``images_sample`` for MNRE (the 39 real images here), ``img_org`` for MORE.
        image_instances: ``all`` (default: every instance, in file order), ``first`` (instances whose
            image is in the image folder first, the rest after them, each in file order, then
            ``max_instances`` applies) or ``only`` (only those; a split left empty is an error).
            ``first`` lets a small run cover the 39 sample images; the rest still count as
            "image file not found" when the visual source reads images.
    """

    data_dir: str | None = None
    dataset: str = "mnre"
    max_instances: int | None = None
    captioners: tuple[str, ...] = ("cogvlm",)
    image_dir: str | None = None
    image_instances: str = "all"

    def __post_init__(self) -> None:
        if self.max_instances is not None and self.max_instances < 1:
            raise ValueError(f"max_instances must be >= 1 or None, got {self.max_instances}")
        unknown = [name for name in self.captioners if name not in CAPTIONERS]
        if unknown or not self.captioners:
            raise ValueError(f"unknown or no captioner(s) {unknown}; allowed: {', '.join(CAPTIONERS)}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; allowed: {', '.join(DATASETS)}")
        if self.image_instances not in IMAGE_INSTANCE_ORDERS:
            raise ValueError(f"unknown image_instances {self.image_instances!r}; allowed: {', '.join(IMAGE_INSTANCE_ORDERS)}")

    @property
    def path(self) -> Path:
        return resolve_data_dir(self.data_dir)

    @property
    def image_path(self) -> Path:
        """The image folder (see :attr:`image_dir`)."""
        folder = Path(self.image_dir or DEFAULT_IMAGE_DIRS[self.dataset]).expanduser()
        return folder if folder.is_absolute() else self.path / folder
