"""The data fingerprint of a run: the sha256 of every data file it reads.

A run counts as finished only while its stored fingerprint equals the current one
(:mod:`vmhan_lib.train.records`), so a run trained on a damaged or edited copy of the data is
never returned for the real data, whatever directory either copy sits in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from vmhan_lib.data.captions import captions_path
from vmhan_lib.data.config import DataConfig
from vmhan_lib.data.mnre import REL2ID_FILE, SPLITS, DataFormatError, require_data_dir
from vmhan_lib.data.more import REL2ID_FILE as MORE_REL2ID_FILE
from vmhan_lib.data.splits import split_file
from vmhan_lib.io import file_sha256


def data_fingerprint(data: DataConfig, captioners: Iterable[str] = ()) -> dict[str, str]:
    """``path relative to the data directory -> sha256`` of the relation vocabulary, the three
    split files and, for each of ``captioners``, its caption file of every split (MNRE; MORE has
    no captions here). Image files are not listed: the image features' cache key holds their
    sha256 (:mod:`vmhan_lib.features.image_nodes`).

    Raises:
        DataFormatError: the data directory or one of the files is missing.
    """
    root = require_data_dir(data.path)
    vocabulary = root / (MORE_REL2ID_FILE if data.dataset == "more" else f"text/{REL2ID_FILE}")
    if not vocabulary.is_file():
        raise DataFormatError(f"relation vocabulary not found: {vocabulary}")
    paths = [vocabulary, *(split_file(data, split) for split in SPLITS)]
    if data.dataset != "more":
        paths += [captions_path(root, name, split) for name in sorted(set(captioners)) for split in SPLITS]
    return {path.resolve().relative_to(root.resolve()).as_posix(): file_sha256(path) for path in paths}
