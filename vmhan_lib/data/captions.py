"""Captions of every MNRE-2 image by six vision-language models (the CAMIM release).

Files ``captions/{captioner}_{split}.txt`` hold one Python-literal dict per line,
``{'img_id': '...jpg', 'text': '...'}``. They are the only visual signal that covers all 9,201
images here, so the caption-based visual nodes (docs/offline_adaptations.md#visual-nodes-from-captions) are built from them.
Texts are whitespace-stripped (LLaVA-NeXT's start with a newline); BLIP leaves 35 images empty,
which stay as empty strings. Each split also carries one placeholder line for ``inf.png``,
which no instance refers to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from vmhan_lib.data.mnre import SPLITS, DataFormatError, Instance, parse_literal_dict, read_lines, require_data_dir

CAPTIONERS: tuple[str, ...] = ("blip", "instructblip", "llavanext", "qwen", "cogvlm", "minicpm")


def captions_path(data_dir: str | Path, captioner: str, split: str) -> Path:
    if captioner not in CAPTIONERS:
        raise ValueError(f"unknown captioner {captioner!r}; allowed: {', '.join(CAPTIONERS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    path = require_data_dir(data_dir) / "captions" / f"{captioner}_{split}.txt"
    if not path.is_file():
        raise DataFormatError(f"captions of {captioner} for {split} not found: {path.resolve()}")
    return path


def load_captions(data_dir: str | Path, captioner: str, split: str) -> dict[str, str]:
    """``img_id -> caption`` for one captioner and split, in file order."""
    path = captions_path(data_dir, captioner, split)
    captions: dict[str, str] = {}
    for line_no, line in read_lines(path):
        raw = parse_literal_dict(line, f"{path}:{line_no}")
        if not isinstance(raw.get("img_id"), str) or "text" not in raw or not isinstance(raw["text"], (str, type(None))):
            raise DataFormatError(f"{path}:{line_no}: expected {{'img_id': str, 'text': str}}")
        captions[raw["img_id"]] = str(raw["text"] or "").strip()
    return captions


def captions_for_instances(data_dir: str | Path, split: str, instances: Sequence[Instance],
                           captioners: Sequence[str] = CAPTIONERS) -> list[dict[str, str]]:
    """For each instance, ``{captioner: caption}`` of its image, joined on ``img_id``.

    Raises:
        DataFormatError: an instance's image has no caption in a captioner's file.
    """
    tables = {name: load_captions(data_dir, name, split) for name in captioners}
    joined: list[dict[str, str]] = []
    for instance in instances:
        row = {}
        for name, table in tables.items():
            if instance.img_id not in table:
                raise DataFormatError(f"{captions_path(data_dir, name, split)}: no caption for image "
                                      f"{instance.img_id!r} (instance {instance.index} of {split})")
            row[name] = table[instance.img_id]
        joined.append(row)
    return joined
