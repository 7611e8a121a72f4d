"""The data fingerprint of a run: the sha256 of every data file it reads.

A run counts as finished only while its stored fingerprint equals the current one
(:mod:`vmhan_lib.train.records`), so a run trained on a damaged or edited copy of the data is
never returned for the real data, whatever directory either copy sits in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from vmhan_lib.data.captions import captions_path
from vmhan_lib.data.mnre import REL2ID_FILE, SPLITS, DataFormatError, require_data_dir, split_path
from vmhan_lib.io import file_sha256


def data_fingerprint(data_dir: str | Path, captioners: Iterable[str] = ()) -> dict[str, str]:
    """``path relative to data_dir -> sha256`` of the relation vocabulary, the three split files
    and, for each of ``captioners``, its caption file of every split.

    Raises:
        DataFormatError: the data directory or one of the files is missing.
    """
    root = require_data_dir(data_dir)
    if not (root / "text" / REL2ID_FILE).is_file():
        raise DataFormatError(f"relation vocabulary not found: {root / 'text' / REL2ID_FILE}")
    paths = [root / "text" / REL2ID_FILE, *(split_path(root, split) for split in SPLITS)]
    paths += [captions_path(root, name, split) for name in sorted(set(captioners)) for split in SPLITS]
    return {path.relative_to(root).as_posix(): file_sha256(path) for path in paths}
