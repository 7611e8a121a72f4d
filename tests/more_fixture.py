"""A MORE-format directory written by the tests (tests only): the 39 sample MNRE images as MORE images.

Layout and line format are the MORE release's (:mod:`vmhan_lib.data.more`). Each image gets three
annotated objects at fixed boxes; each of its MNRE sentences gives one instance per object (head =
the MNRE head span, tail = the object), the relation decided by the object, so a model can learn it.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import torch

from vmhan_lib.data.config import DataConfig
from vmhan_lib.data.splits import load_split

MORE_RELATIONS = {"none": 0, "/per/loc/place_of_residence": 1, "/org/org/subsidiary": 2}
OBJECTS = {  # name -> (cx, cy, w, h) normalised, and the relation its instances carry
    "man": ((0.3, 0.5, 0.4, 0.8), "/per/loc/place_of_residence"),
    "logo": ((0.75, 0.25, 0.3, 0.3), "/org/org/subsidiary"),
    "crowd": ((0.5, 0.8, 0.9, 0.3), "none"),
}


def write_more_fixture(root: Path, mnre_dir: Path, images_per_split: dict[str, int] | None = None) -> Path:
    """Write a MORE directory under ``root`` from the sample images (train images give train and valid,
    test images give test) and the MNRE sentences of those images; returns ``root``."""
    counts = images_per_split or {"train": 8, "valid": 4, "test": 6}
    sample = mnre_dir / "images_sample"
    with (sample / "index.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    by_split = {s: [r["img_id"] for r in rows if r["mnre2_text_split"] == s] for s in ("train", "test")}
    chosen = {"train": by_split["train"][: counts["train"]],
              "valid": by_split["train"][counts["train"]: counts["train"] + counts["valid"]],
              "test": by_split["test"][: counts["test"]]}
    sentences = {}
    for split in ("train", "test"):
        for instance in load_split(DataConfig(data_dir=str(mnre_dir)), split):
            sentences.setdefault(instance.img_id, instance)
    (root / "txt").mkdir(parents=True, exist_ok=True)
    for split, img_ids in chosen.items():
        folder = root / "img_org" / split
        folder.mkdir(parents=True, exist_ok=True)
        lines, objects = [], {}
        for img_id in img_ids:
            shutil.copy(sample / img_id, folder / img_id)
            objects[img_id] = {name: list(box) for name, (box, _) in OBJECTS.items()}
            mnre = sentences[img_id]
            for name, (box, relation) in OBJECTS.items():
                lines.append(repr({"token": list(mnre.tokens), "h": {"name": mnre.head.name, "pos": [mnre.head.start, mnre.head.end]},
                                   "t": {"name": name, "box": list(box)}, "img_id": img_id, "relation": relation}))
        (root / "txt" / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        torch.save(objects, root / f"ent_{split}_dict.pth")
    (root / "rel2id.json").write_text(json.dumps(MORE_RELATIONS) + "\n", encoding="utf-8")
    return root
