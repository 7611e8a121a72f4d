"""The instances a run reads of one split: dataset, image filter, instance limit (one place for all users).

:func:`load_split` is what the feature builder, stage 1 and the analyses call, so every layer
sees the same instances in the same order; :func:`image_file` is where an instance's image is.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

from vmhan_lib.data.config import DataConfig
from vmhan_lib.config_tree import ConfigError
from vmhan_lib.data.mnre import (DataFormatError, Instance, RelationVocab, group_by_sentence, load_mnre,
                                 load_relation_vocab, split_path)
from vmhan_lib.data.more import load_more, load_more_vocab, more_split_path

SPLIT_FOLDERS: dict[str, tuple[str, ...]] = {"train": ("train",), "val": ("val", "valid", "dev"), "test": ("test",)}
"""Sub-folders of the image folder searched per split (MNRE's ``img_org/train``, MORE's ``img_org/valid``)."""


def image_file(image_dir: str | Path, split: str, img_id: str) -> Path | None:
    """The image file of ``img_id``: ``image_dir/img_id`` or ``image_dir/<split folder>/img_id``; ``None`` if neither exists."""
    root = Path(image_dir)
    for candidate in (root / img_id, *(root / folder / img_id for folder in SPLIT_FOLDERS[split])):
        if candidate.is_file():
            return candidate
    return None


def load_vocab(config: DataConfig) -> RelationVocab:
    """The relation vocabulary of ``config.dataset``."""
    return (load_more_vocab if config.dataset == "more" else load_relation_vocab)(config.path)


def split_file(config: DataConfig, split: str) -> Path:
    """The text file of ``split`` (MNRE ``text/mnre_<split>.txt``, MORE ``txt/<split>.txt``)."""
    return (more_split_path if config.dataset == "more" else split_path)(config.path, split)


def load_split(config: DataConfig, split: str, vocab: RelationVocab | None = None) -> list[Instance]:
    """The instances of ``split`` a run uses: the dataset's file, ordered or filtered by
    ``config.image_instances`` against ``config.image_path``, cut to ``config.max_instances``.

    Raises:
        DataFormatError: a missing or malformed file; ``image_instances='only'`` leaving the split
            without instances (the message names the split and the image folder).
    """
    instances = (load_more if config.dataset == "more" else load_mnre)(config.path, split, vocab)
    if config.image_instances != "all":
        folder = config.image_path
        has_image = {img: image_file(folder, split, img) is not None for img in {i.img_id for i in instances}}
        with_image = [i for i in instances if has_image[i.img_id]]
        if config.image_instances == "only":
            if not with_image:
                raise DataFormatError(
                    f"no {split} instance has its image in {folder} (data.image_instances=only); "
                    "use data.image_instances=first or another data.image_dir")
            instances = with_image
        else:
            instances = with_image + [i for i in instances if not has_image[i.img_id]]
    return instances[: config.max_instances]


def sentence_folds(instances: Sequence[Instance], k: int, seed: int) -> list[list[int]]:
    """Positions of ``instances`` cut into ``k`` folds for cross-fitting, grouped by sentence.

    Every instance of one sentence (:attr:`Instance.sentence_key`: image and tokens; MNRE labels
    several entity pairs per sentence) lands in the same fold, so an encoder trained without a fold
    has never read its sentences. The sentences are shuffled with ``seed`` and each goes to the fold
    with the fewest instances so far (ties: the lowest fold), which keeps the folds' sizes within
    one sentence's instances of each other. Returns ``k`` sorted lists that together hold every
    position once.

    Raises:
        ConfigError: ``k < 2``, or fewer sentences than folds (a user's setting: one line, no traceback).
    """
    if k < 2:
        raise ConfigError(f"cross-fitting needs at least 2 folds, got {k}")
    groups = [list(group.instance_indices) for group in group_by_sentence(instances)]
    if len(groups) < k:
        raise ConfigError(f"experiment.folds={k}: {len(groups)} sentence(s) cannot fill {k} folds")
    order = random.Random(seed).sample(groups, len(groups))
    folds: list[list[int]] = [[] for _ in range(k)]
    for members in order:
        min(folds, key=len).extend(members)  # min returns the first of equal sizes: the lowest fold
    return [sorted(fold) for fold in folds]
