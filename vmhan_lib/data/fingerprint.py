"""The data fingerprint of a run: the sha256 of every data file it reads, and which instances.

A run counts as finished only while its stored fingerprint equals the current one
(:mod:`vmhan_lib.train.records`), so a run trained on a damaged or edited copy of the data is
never returned for the real data, whatever directory either copy sits in. Hashes are cached by
path, size and modification time (:func:`vmhan_lib.identity.file_sha256`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from vmhan_lib.data.captions import captions_path
from vmhan_lib.data.config import DataConfig
from vmhan_lib.data.mnre import REL2ID_FILE, SPLITS, DataFormatError, require_data_dir
from vmhan_lib.data.more import REL2ID_FILE as MORE_REL2ID_FILE
from vmhan_lib.data.more import object_dict_path
from vmhan_lib.data.splits import image_file, load_split, split_file
from vmhan_lib.identity import digest, file_sha256, save_hashes

MISSING_IMAGE = "missing"
"""The fingerprint entry of an image a run looked for and did not find (it counts if it appears)."""


def data_fingerprint(data: DataConfig, captioners: Iterable[str] = (), images: bool = False) -> dict[str, str]:
    """``path relative to the data directory -> sha256`` of the relation vocabulary, the three
    split files, for each of ``captioners`` its caption file of every split (MNRE; MORE has no
    captions here), MORE's object dictionaries, and with ``images`` every image file the split's
    instances name (``images/<path in the image folder>``; :data:`MISSING_IMAGE` when absent).

    Raises:
        DataFormatError: the data directory or one of the files is missing.
    """
    root = require_data_dir(data.path)
    vocabulary = root / (MORE_REL2ID_FILE if data.dataset == "more" else f"text/{REL2ID_FILE}")
    if not vocabulary.is_file():
        raise DataFormatError(f"relation vocabulary not found: {vocabulary}")
    paths = [vocabulary, *(split_file(data, split) for split in SPLITS)]
    if data.dataset == "more":
        paths += [object_dict_path(root, split) for split in SPLITS]
    else:
        paths += [captions_path(root, name, split) for name in sorted(set(captioners)) for split in SPLITS]
    files = {path.resolve().relative_to(root.resolve()).as_posix(): file_sha256(path) for path in paths}
    if images:
        files.update(_image_fingerprint(data))
    save_hashes()
    return files


def _image_fingerprint(data: DataConfig) -> dict[str, str]:
    """``images/<name> -> sha256`` of the image of every instance a run uses, in every split."""
    folder = data.image_path
    found: dict[str, str] = {}
    for split in SPLITS:
        for img_id in dict.fromkeys(i.img_id for i in load_split(data, split)):
            path = image_file(folder, split, img_id)
            name = f"images/{Path(path).resolve().relative_to(folder.resolve()).as_posix() if path else img_id}"
            found[name] = MISSING_IMAGE if path is None else file_sha256(path)
    return found


def instances_fingerprint(data: DataConfig) -> dict[str, str]:
    """``split -> digest of the indices of its instances``: which instances a run uses where that
    depends on more than the hashed files and the settings (``data.image_instances`` ``first`` /
    ``only`` order or filter them by which images exist)."""
    return {split: digest([i.index for i in load_split(data, split)]) for split in SPLITS}
