"""The data fingerprint: one sha256 per data file a run reads, independent of where the copy sits."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from vmhan_lib.data.config import DataConfig
from vmhan_lib.data.fingerprint import data_fingerprint
from vmhan_lib.data.mnre import DataFormatError


def test_fingerprint_lists_every_file_read_with_its_sha256(tiny_mnre: Path, tmp_path: Path) -> None:
    fingerprint = data_fingerprint(DataConfig(str(tiny_mnre)), ["qwen"])
    assert list(fingerprint) == ["text/ours_rel2id.json", "text/mnre_train.txt", "text/mnre_val.txt",
                                 "text/mnre_test.txt", "captions/qwen_train.txt", "captions/qwen_val.txt",
                                 "captions/qwen_test.txt"]
    assert fingerprint["captions/qwen_test.txt"] == hashlib.sha256(
        (tiny_mnre / "captions" / "qwen_test.txt").read_bytes()).hexdigest()
    copy = shutil.copytree(tiny_mnre, tmp_path / "elsewhere")
    assert data_fingerprint(DataConfig(str(copy)), ["qwen"]) == fingerprint  # the place does not matter, the bytes do
    (copy / "captions" / "qwen_test.txt").write_text("{'img_id': 'd.jpg', 'text': 'other'}\n")
    changed = data_fingerprint(DataConfig(str(copy)), ["qwen"])
    assert [name for name in fingerprint if fingerprint[name] != changed[name]] == ["captions/qwen_test.txt"]
    assert list(data_fingerprint(DataConfig(str(tiny_mnre)))) == list(fingerprint)[:4]


def test_fingerprint_of_missing_data_says_what_is_missing(tiny_mnre: Path, tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="MNRE data directory not found"):
        data_fingerprint(DataConfig(str(tmp_path / "nowhere")))
    with pytest.raises(DataFormatError, match="captions of cogvlm for train not found"):
        data_fingerprint(DataConfig(str(tiny_mnre)), ["cogvlm"])
