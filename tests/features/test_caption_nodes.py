"""Object-phrase chunker on a real caption, pair-relevance ranking, caption index."""

from __future__ import annotations

from pathlib import Path

import torch

from vmhan_lib.data import load_captions
from vmhan_lib.features.cache import FeatureCache
from vmhan_lib.features.caption_nodes import (
    build_caption_index, extract_object_phrases, pair_relevance, rank_objects,
)
from vmhan_lib.features.text_encoder import SentenceEmbedder

KNOWN_IMAGE = "twitter_19_31_23_49.jpg"  # val; LLaVA-NeXT: "A snowy parking lot with a white car parked. ..."


def test_objects_of_a_known_caption(mnre_dir: Path) -> None:
    caption = load_captions(mnre_dir, "llavanext", "val")[KNOWN_IMAGE]
    assert caption == "A snowy parking lot with a white car parked. The sky is clear and blue."
    assert extract_object_phrases(caption) == ["snowy parking lot", "white car", "sky"]
    blip = load_captions(mnre_dir, "blip", "val")[KNOWN_IMAGE]
    assert extract_object_phrases(blip) == ["car", "parking lot", "snow"]


def test_chunker_rules() -> None:
    assert extract_object_phrases("bayern munich's daniel müller celebrates scoring his side's second goal") == [
        "bayern munich", "daniel müller", "second goal"]
    assert extract_object_phrases("The image shows a man wearing sunglasses in the background.") == [
        "man", "sunglasses"]
    assert extract_object_phrases("a large old stone church tower", max_phrase_words=2) == ["church tower"]
    assert extract_object_phrases("") == []


def test_top_k_agrees_with_brute_force_cosine() -> None:
    generator = torch.Generator().manual_seed(0)
    objects = torch.randn(12, 16, generator=generator) * 3
    head, tail = torch.randn(16, generator=generator), torch.randn(16, generator=generator)
    brute = [
        (float(torch.dot(o, head) / (o.norm() * head.norm()) + torch.dot(o, tail) / (o.norm() * tail.norm())) / 2, i)
        for i, o in enumerate(objects)
    ]
    expected = [i for _, i in sorted(brute, key=lambda pair: -pair[0])[:3]]
    assert rank_objects(objects, head, tail, 3) == expected
    assert torch.allclose(pair_relevance(objects, head, tail), torch.tensor([s for s, _ in brute]), atol=1e-5)
    assert rank_objects(objects[:2], head, tail, 3) == sorted(range(2), key=lambda i: -brute[i][0])
    assert rank_objects(torch.zeros(0, 16), head, tail, 3) == []


def test_real_objects_ranked_for_a_pair() -> None:
    embedder = SentenceEmbedder("all-MiniLM-L6-v2")
    phrases = ["snowy parking lot", "white car", "sky"]
    objects = embedder.embed(phrases)
    names = embedder.embed(["Toyota", "Honda"])
    assert phrases[rank_objects(objects, names[0], names[1], 1)[0]] == "white car"


def test_caption_index(mnre_dir: Path, tmp_path: Path) -> None:
    cache = FeatureCache(root=tmp_path)
    index = build_caption_index(mnre_dir, "val", [KNOWN_IMAGE, KNOWN_IMAGE], ("llavanext",), cache=cache)
    assert index.img_ids == [KNOWN_IMAGE] and index.missing_reason == [""]
    assert index.object_phrases[0] == ["snowy parking lot", "white car", "sky"]
    assert index.object_embeddings[0].shape == (3, 384)
    caption = load_captions(mnre_dir, "llavanext", "val")[KNOWN_IMAGE]
    direct = SentenceEmbedder("all-MiniLM-L6-v2").embed([caption])[0]
    assert torch.allclose(index.image_embeddings[0], direct, atol=1e-5)
    assert abs(float(index.image_embeddings[0].norm()) - 1) < 1e-5
    both = build_caption_index(mnre_dir, "val", [KNOWN_IMAGE], ("llavanext", "blip"), cache=cache)
    assert both.object_phrases[0] == ["snowy parking lot", "white car", "sky", "car", "parking lot", "snow"]
