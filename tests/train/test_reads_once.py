"""One command parses each data file once: the splits and the relation vocabulary are read by the
caller that needs them first and handed down, each captioner's file by the one step that reads it
(before: the first stays of ``config`` entered ``data/splits.py`` 7 times). Content hashes are another
read, once per machine (``identity.file_sha256`` caches them by path, size and mtime)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import shutil

import pytest

from tests.conftest import write_tiny_mnre
from vmhan_lib.config import run_config
from vmhan_lib.data import captions, mnre
from vmhan_lib.train.jobs import RunPaths
from vmhan_lib.train.stage1 import prepare_inputs


def test_preparing_the_inputs_parses_each_data_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_tiny_mnre(tmp_path / "mnre")
    for split in ("train", "val", "test"):  # a second captioner for the visual prompt, as cogvlm + llavanext
        shutil.copy(data / "captions" / f"qwen_{split}.txt", data / "captions" / f"llavanext_{split}.txt")
    config = run_config("tiny", str(data), {"experiment.training": "joint", "data.captioners": ["qwen"],
                                            "features.visual_selection_captioner": "llavanext",
                                            "features.cache_dir": str(tmp_path / "cache")})
    parsed: Counter[str] = Counter()
    real_read_lines, real_open = mnre.read_lines, Path.open

    def counting_read_lines(path: Path):
        parsed[str(Path(path).relative_to(data))] += 1
        return real_read_lines(path)

    def counting_open(self: Path, mode: str = "r", *args, **kwargs):
        if self.suffix == ".json" and self.resolve().is_relative_to(data.resolve()):
            parsed[str(self.relative_to(data))] += 1
        return real_open(self, mode, *args, **kwargs)

    for module in (mnre, captions):
        monkeypatch.setattr(module, "read_lines", counting_read_lines)
    monkeypatch.setattr(Path, "open", counting_open)
    prepare_inputs(config, RunPaths(tmp_path / "runs", tmp_path / "ckpt"), progress=False)
    files = {str(p.relative_to(data)) for p in data.rglob("*") if p.is_file()}
    assert set(parsed) == files and set(parsed.values()) == {1}, parsed
