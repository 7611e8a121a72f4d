"""The MORE loader on a fixture in the release's format: instances, the tail object, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.more_fixture import MORE_RELATIONS, OBJECTS, write_more_fixture
from vmhan_lib.data.config import DataConfig
from vmhan_lib.data.more import load_more, load_more_vocab, load_object_dict
from vmhan_lib.data.mnre import DataFormatError
from vmhan_lib.data.splits import load_split, load_vocab


@pytest.fixture(scope="module")
def more_dir(mnre_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_more_fixture(tmp_path_factory.mktemp("more"), mnre_dir, {"train": 3, "valid": 2, "test": 2})


def test_instances_tail_object_and_vocab(more_dir: Path) -> None:
    vocab = load_more_vocab(more_dir)
    assert vocab.labels == ("None", "/per/loc/place_of_residence", "/org/org/subsidiary")  # id 0 read as None
    instances = load_more(more_dir, "train")
    assert len(instances) == 3 * len(OBJECTS)
    first = instances[0]
    assert first.tail_object and first.tail.name == "man"
    assert first.tokens[first.tail.start:first.tail.end] == ("man",) and first.tail.end == len(first.tokens)
    assert first.image_objects == tuple((name, box) for name, (box, _) in OBJECTS.items())
    assert [i.relation for i in instances[:3]] == ["/per/loc/place_of_residence", "/org/org/subsidiary", "None"]
    data = DataConfig(data_dir=str(more_dir), dataset="more")
    assert load_split(data, "val") == load_more(more_dir, "val") and load_vocab(data) == vocab
    assert data.image_path == more_dir / "img_org"
    test_image = load_more(more_dir, "test")[0].img_id
    assert load_object_dict(more_dir, "test")[test_image]["logo"] == (0.75, 0.25, 0.3, 0.3)


def _rewrite_line(more_dir: Path, tmp_path: Path, edit) -> Path:
    """A copy of the fixture whose train line 2 is ``edit(dict)``."""
    import shutil

    copy = tmp_path / "more"
    shutil.copytree(more_dir, copy)
    path = copy / "txt" / "train.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    import ast

    lines[1] = edit(ast.literal_eval(lines[1]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return copy


@pytest.mark.parametrize("edit, message", [
    (lambda d: "{'token': [", "train.txt:2: not a Python-literal dict"),
    (lambda d: repr({**d, "t": {**d["t"], "box": [0.5, 0.5, 1.2, 0.3]}}), r"train.txt:2: t box \[0.5, 0.5, 1.2, 0.3\] is outside \[0, 1\]"),
    (lambda d: repr({**d, "t": {"name": "logo", "box": [0.1, 0.2]}}), "train.txt:2: t box must be four numbers"),
    (lambda d: repr({**d, "t": {**d["t"], "name": "dog"}}), "train.txt:2: tail 'dog' is not an object of image"),
    (lambda d: repr({**d, "relation": "/x/y"}), "train.txt:2: unknown relation label '/x/y'"),
    (lambda d: repr({**d, "h": {"name": "x", "pos": [0, 999]}}), r"train.txt:2: h span \[0, 999\) is outside"),
])
def test_bad_lines_name_file_and_line(more_dir: Path, tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        load_more(_rewrite_line(more_dir, tmp_path, edit), "train")


def test_bad_object_dictionary_and_missing_files(more_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "more"
    shutil.copytree(more_dir, copy)
    objects = torch.load(copy / "ent_train_dict.pth", weights_only=True)
    first = next(iter(objects))
    objects[first]["man"] = [0.5, -0.1, 0.2, 0.2]
    torch.save(objects, copy / "ent_train_dict.pth")
    with pytest.raises(DataFormatError, match=rf"ent_train_dict.pth: image '{first}': object 'man' box .* is outside \[0, 1\]"):
        load_more(copy, "train")
    (copy / "ent_train_dict.pth").unlink()
    with pytest.raises(DataFormatError, match="MORE object dictionary not found"):
        load_more(copy, "train")
    with pytest.raises(DataFormatError, match="MORE val split not found"):
        load_more(tmp_path, "val", load_more_vocab(more_dir))
    (copy / "rel2id.json").write_text(json.dumps({"a": 0, **{k: v for k, v in MORE_RELATIONS.items() if v}}) + "\n")
    with pytest.raises(DataFormatError, match="the relation with id 0 must be the negative one"):
        load_more_vocab(copy)
