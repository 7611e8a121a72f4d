from __future__ import annotations

from pathlib import Path

import pytest

from vmhan_lib.data.captions import CAPTIONERS, captions_for_instances, load_captions
from vmhan_lib.data.mnre import DataFormatError, load_mnre


def test_captions_are_stripped_and_joined(tiny_mnre: Path) -> None:
    captions = load_captions(tiny_mnre, "qwen", "train")
    assert captions["a.jpg"] == "A photo of a people."
    rows = captions_for_instances(tiny_mnre, "train", load_mnre(tiny_mnre, "train"), ["qwen"])
    assert [r["qwen"] for r in rows] == ["A photo of a people."] * 3 + ["A photo of b people."]


def test_missing_caption_is_named(tiny_mnre: Path) -> None:
    path = tiny_mnre / "captions" / "qwen_test.txt"
    path.write_text(repr({"img_id": "other.jpg", "text": "x"}) + "\n")
    with pytest.raises(DataFormatError, match="no caption for image 'd.jpg'"):
        captions_for_instances(tiny_mnre, "test", load_mnre(tiny_mnre, "test"), ["qwen"])


def test_unknown_captioner_lists_allowed(tiny_mnre: Path) -> None:
    with pytest.raises(ValueError, match="allowed: blip, instructblip"):
        load_captions(tiny_mnre, "gpt4v", "train")


def test_malformed_caption_line_names_file_and_line(tiny_mnre: Path) -> None:
    path = tiny_mnre / "captions" / "qwen_val.txt"
    path.write_text(path.read_text() + "{'img_id': 'broken'\n")
    with pytest.raises(DataFormatError, match=r"qwen_val.txt:3"):
        load_captions(tiny_mnre, "qwen", "val")


def test_non_utf8_caption_byte_names_file_and_line(tiny_mnre: Path) -> None:
    path = tiny_mnre / "captions" / "qwen_val.txt"
    path.write_bytes(path.read_bytes() + b"{'img_id': 'x.jpg', 'text': 'caf\xe9'}\n")
    with pytest.raises(DataFormatError, match=r"qwen_val.txt:3: not UTF-8"):
        load_captions(tiny_mnre, "qwen", "val")


@pytest.mark.real_data
def test_real_captions_cover_every_image(mnre_dir: Path) -> None:
    for split in ("train", "val", "test"):
        instances = load_mnre(mnre_dir, split)
        images = {x.img_id for x in instances}
        for captioner in CAPTIONERS:
            table = load_captions(mnre_dir, captioner, split)
            assert images <= set(table), (captioner, split)
            assert len(table) == len(images) + 1  # + the inf.png placeholder
    llava = load_captions(mnre_dir, "llavanext", "test")
    assert not any(text.startswith("\n") for text in llava.values())
    empty_blip = sum(1 for s in ("train", "val", "test") for t in load_captions(mnre_dir, "blip", s).values() if not t)
    assert empty_blip == 35
