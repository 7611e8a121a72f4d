"""Frozen text features: entity start-marker states, batched by length in any order."""

from __future__ import annotations

from pathlib import Path

import torch

from vmhan_lib.data import load_mnre
from vmhan_lib.data.markers import EntityMarkerTokenizer
from vmhan_lib.features.config import TextEncoderConfig
from vmhan_lib.features.text_encoder import compute_frozen_text_features, load_frozen_backbone


def test_frozen_features_match_batched_order(mnre_dir: Path) -> None:
    instances = load_mnre(mnre_dir, "test")[:6]
    features = compute_frozen_text_features(instances, TextEncoderConfig(), show_progress=False, batch_size=4)
    single = compute_frozen_text_features(instances[3:4], TextEncoderConfig(), show_progress=False, batch_size=1)
    assert features.entities.shape == (6, 2, 384)
    assert torch.allclose(features.entities[3], single.entities[0], atol=1e-4)


def test_frozen_features_are_the_states_at_the_marker_inputs(mnre_dir: Path) -> None:
    instances, phrases = load_mnre(mnre_dir, "val")[:2], [["ceasefire agreed"], ["absent words"]]
    features = compute_frozen_text_features(instances, TextEncoderConfig(), phrases, show_progress=False)
    tokenizer, backbone, _ = load_frozen_backbone("all-MiniLM-L6-v2")
    batch = EntityMarkerTokenizer(tokenizer, 128)(instances, phrases)
    with torch.inference_mode():
        hidden = backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    for row in range(2):
        torch.testing.assert_close(features.entities[row], hidden[row, batch.entity_positions[row]], atol=1e-4, rtol=0)
    start, end = batch.phrase_spans[0, 0].tolist()
    torch.testing.assert_close(features.phrases[0][0], hidden[0, start:end].mean(0), atol=1e-4, rtol=0)
    assert features.phrase_found == [[True], [False]] and features.phrases[1].shape == (0, 384)


def test_an_embedder_on_another_device_never_moves_the_cached_module_of_another() -> None:
    """Issue 26: the caption embedder (on the run's device) and the embedding selector shared one cached
    MiniLM module that ``.to()`` moved in place; ``meta`` stands in for the GPU."""
    from vmhan_lib.features.text_encoder import SentenceEmbedder

    on_cpu = SentenceEmbedder("all-MiniLM-L6-v2", device="cpu")
    before = on_cpu.embed(["a cat on a mat"])
    on_meta = SentenceEmbedder("all-MiniLM-L6-v2", device="meta")
    assert next(on_meta.backbone.parameters()).device.type == "meta"
    assert next(on_cpu.backbone.parameters()).device.type == "cpu"
    assert next(load_frozen_backbone("all-MiniLM-L6-v2")[1].parameters()).device.type == "cpu"
    torch.testing.assert_close(on_cpu.embed(["a cat on a mat"]), before)
