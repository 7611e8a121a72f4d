"""The rows of each visual source, on hand-made indexes (no model): which objects, in which order,
in which column block, and why an instance has no visual rows."""

from __future__ import annotations

import torch

from vmhan_lib.data.mnre import Entity, Instance
from vmhan_lib.features.caption_nodes import CaptionIndex
from vmhan_lib.features.image_nodes import ImageIndex
from vmhan_lib.features.visual_nodes import VisualMaterial, visual_rows

IMAGE_DIM, SENTENCE_DIM = 2, 3


def _instance(tail: str = "Bob", img_id: str = "a.jpg", more: bool = False) -> Instance:
    objects = (("dog", (0.5, 0.5, 1.0, 1.0)), (tail, (0.2, 0.2, 0.1, 0.1))) if more else None
    return Instance(0, ("Alice", "met", tail), Entity("Alice", 0, 1), Entity(tail, 2, 3), img_id, "None", objects)


def _images() -> ImageIndex:
    """``a.jpg``: detections dog, cat, dog (most confident first); ``b.jpg``: unreadable."""
    return ImageIndex(
        img_ids=["a.jpg", "b.jpg"], dim=IMAGE_DIM, image_features=torch.tensor([[1.0, 2.0], [0.0, 0.0]]),
        missing_reason=["", "unreadable image"], errors=["", "b.jpg: broken"],
        object_names=[["dog", "cat", "dog"], []],
        object_features=[torch.tensor([[3.0, 3.0], [4.0, 4.0], [5.0, 5.0]]), torch.zeros((0, IMAGE_DIM))],
        confidences=[torch.tensor([0.9, 0.8, 0.7]), torch.zeros(0)])


def _captions() -> CaptionIndex:
    """``a.jpg``: a caption naming a car (close to Alice and Bob) and a tree; ``b.jpg``: no caption."""
    return CaptionIndex(
        img_ids=["a.jpg", "b.jpg"], image_embeddings=torch.tensor([[9.0, 9.0, 9.0], [0.0, 0.0, 0.0]]),
        missing_reason=["", "no caption line"], object_phrases=[["a tree", "a car"], []],
        object_embeddings=[torch.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]), torch.zeros((0, SENTENCE_DIM))])


def _material(source: str, k: int, object_selection: dict[str, list[list[str]]] | None = None) -> VisualMaterial:
    return VisualMaterial(
        source=source, captions=_captions() if source != "images" else None,
        images=_images() if source != "captions" else None, sentence_dim=SENTENCE_DIM, k=k,
        names={"Alice": 0, "Bob": 1}, name_embeddings=torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
        phrases={"a red car": 0}, phrase_embeddings=torch.tensor([[7.0, 7.0, 7.0]]), object_selection=object_selection)


def test_both_stacks_image_then_caption_objects_in_their_blocks_then_llm_rows() -> None:
    features, names = visual_rows(_material("both", k=1), _instance(), 0, ["a red car"])
    assert names == ["dog", "a car"]  # the most confident detection, the caption object nearest the pair
    assert torch.equal(features, torch.tensor([
        [1.0, 2.0, 9.0, 9.0, 9.0],  # image features | caption embedding
        [3.0, 3.0, 0.0, 0.0, 0.0],  # detected dog, image block
        [0.0, 0.0, 1.0, 1.0, 0.0],  # caption's car, sentence block
        [0.0, 0.0, 7.0, 7.0, 7.0],  # visual-LLM phrase, sentence block
    ]))


def test_captions_alone_have_the_sentence_block_only_and_follow_the_object_prompts_order() -> None:
    material = _material("captions", k=2, object_selection={"captions": [["a car", "a boat", "a tree"]]})
    features, names = visual_rows(material, _instance(), 0, [])
    assert names == ["a car", "a tree"]
    assert torch.equal(features, torch.tensor([[9.0, 9.0, 9.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))


def test_images_pad_the_sentence_block_and_match_the_prompts_names_to_detections() -> None:
    material = _material("images", k=2, object_selection={"images": [["dog", "dog"]]})
    features, names = visual_rows(material, _instance(), 0, [])
    assert names == ["dog", "dog"]  # each name takes the most confident unused box of its class
    assert torch.equal(features[:, :IMAGE_DIM], torch.tensor([[1.0, 2.0], [3.0, 3.0], [5.0, 5.0]]))
    assert float(features[:, IMAGE_DIM:].abs().sum()) == 0 and features.shape[1] == IMAGE_DIM + SENTENCE_DIM


def test_more_keeps_the_tails_object_first_then_k_others() -> None:
    features, names = visual_rows(_material("images", k=1), _instance(tail="cat", more=True), 0, [])
    assert names == ["cat", "dog"]
    assert torch.equal(features[1:, :IMAGE_DIM], torch.tensor([[4.0, 4.0], [3.0, 3.0]]))


def test_missing_names_the_image_reason_first_and_the_image_error() -> None:
    both = _material("both", k=1)
    assert both.missing(_instance()) == ("", "")
    assert both.missing(_instance(img_id="b.jpg")) == ("unreadable image", "b.jpg: broken")
    assert _material("captions", k=1).missing(_instance(img_id="b.jpg")) == ("no caption line", "")
    assert both.width == IMAGE_DIM + SENTENCE_DIM and _material("captions", k=1).width == SENTENCE_DIM
