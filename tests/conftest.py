"""Shared fixtures: the real MNRE directory (skipped locally when absent, required in CI) and a
tiny MNRE-shaped fixture written by the tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vmhan_lib.paths import resolve_data_dir

LABELS = ["None", "/per/per/peer", "/per/org/member_of", "/misc/loc/held_on"]
TINY_LINES = {
    "train": [
        {"token": ["Alice", "met", "Bob", "at", "Acme", "."], "h": {"name": "Alice", "pos": [0, 1]},
         "t": {"name": "Bob", "pos": [2, 3]}, "img_id": "a.jpg", "relation": "/per/per/peer"},
        {"token": ["Alice", "met", "Bob", "at", "Acme", "."], "h": {"name": "Alice", "pos": [0, 1]},
         "t": {"name": "Acme", "pos": [4, 5]}, "img_id": "a.jpg", "relation": "/per/org/member_of"},
        {"token": ["Alice", "met", "Bob", "at", "Acme", "."], "h": {"name": "Bob", "pos": [2, 3]},
         "t": {"name": "Acme", "pos": [4, 5]}, "img_id": "a.jpg", "relation": "None"},
        {"token": ["Expo", "2020", "in", "Dubai"], "h": {"name": "Expo 2020", "pos": [0, 2]},
         "t": {"name": "Dubai", "pos": [3, 4]}, "img_id": "b.jpg", "relation": "/misc/loc/held_on"},
    ],
    "val": [
        {"token": ["Carol", "and", "Dan"], "h": {"name": "Carol", "pos": [0, 1]},
         "t": {"name": "Dan", "pos": [2, 3]}, "img_id": "c.jpg", "relation": "None"},
    ],
    "test": [
        {"token": ["Eve", "joins", "Initech"], "h": {"name": "Eve", "pos": [0, 1]},
         "t": {"name": "Initech", "pos": [2, 3]}, "img_id": "d.jpg", "relation": "/per/org/member_of"},
        {"token": ["Eve", "joins", "Initech"], "h": {"name": "Initech", "pos": [2, 3]},
         "t": {"name": "Eve", "pos": [0, 1]}, "img_id": "d.jpg", "relation": "None"},
    ],
}


def write_tiny_mnre(root: Path, val_name: str = "mnre_val.txt") -> Path:
    """Write an MNRE-shaped directory (Python-literal lines, as upstream) and return it."""
    text = root / "text"
    text.mkdir(parents=True)
    (text / "ours_rel2id.json").write_text(json.dumps({label: i for i, label in enumerate(LABELS)}))
    for split, rows in TINY_LINES.items():
        name = val_name if split == "val" else f"mnre_{split}.txt"
        (text / name).write_text("".join(repr(row) + "\n" for row in rows))
    captions = root / "captions"
    captions.mkdir()
    images = {"train": ["a.jpg", "b.jpg"], "val": ["c.jpg"], "test": ["d.jpg"]}
    for split, ids in images.items():
        lines = [repr({"img_id": i, "text": f"\nA photo of {i[0]} people."}) for i in ids]
        lines.append(repr({"img_id": "inf.png", "text": "placeholder"}))
        (captions / f"qwen_{split}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def tiny_mnre(tmp_path: Path) -> Path:
    return write_tiny_mnre(tmp_path / "mnre")


@pytest.fixture(scope="session")
def mnre_dir() -> Path:
    """The real MNRE-2 directory; tests needing it skip locally without it but fail in CI."""
    path = resolve_data_dir()
    if not (path / "text" / "mnre_train.txt").is_file():
        message = f"real MNRE data not found at {path} (set VMHAN_DATA)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
