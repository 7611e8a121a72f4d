"""The trainable entity-marker encoder over the marker inputs of data.markers."""

from __future__ import annotations

from pathlib import Path

import torch

from vmhan_lib.data import load_mnre
from vmhan_lib.data.markers import EntityMarkerTokenizer
from vmhan_lib.weights import resolve_text_model
from vmhan_lib.model.text_encoder import EncoderClassifier, EntityMarkerEncoder
from transformers import AutoTokenizer


def test_encoder_reads_start_markers_and_is_trainable(mnre_dir: Path) -> None:
    marker_tokenizer = EntityMarkerTokenizer(AutoTokenizer.from_pretrained(resolve_text_model("all-MiniLM-L6-v2").source), 128)
    instances = load_mnre(mnre_dir, "val")[:3]
    batch = marker_tokenizer(instances, [["ceasefire agreed"], [], ["nowhere"]])
    encoder = EntityMarkerEncoder.from_pretrained("all-MiniLM-L6-v2")
    entities = encoder(batch.input_ids, batch.attention_mask, batch.entity_positions)
    assert entities.shape == (3, 2, 384)
    hidden = encoder.states(batch.input_ids, batch.attention_mask)
    assert torch.allclose(entities[1, 1], hidden[1, batch.entity_positions[1, 1]])
    output = encoder.encode(batch)
    assert output.phrases.shape == (3, 1, 384) and output.phrase_mask.tolist() == [[True], [False], [False]]
    start, end = batch.phrase_spans[0, 0].tolist()
    assert torch.allclose(output.phrases[0, 0], hidden[0, start:end].mean(0), atol=1e-5)
    entities.sum().backward()
    assert encoder.backbone.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_classifier_reads_the_concatenated_pair_states() -> None:
    encoder = EntityMarkerEncoder.from_pretrained("all-MiniLM-L6-v2")
    classifier = EncoderClassifier(encoder, num_relations=5, dropout=0.0).eval()
    ids = torch.tensor([[101, 1030, 2009, 1030, 1001, 2010, 1001, 102]])
    mask, positions = torch.ones_like(ids), torch.tensor([[1, 4]])
    with torch.no_grad():
        pair = encoder(ids, mask, positions)  # [1, 2, 384]
        expected = classifier.head(pair.flatten(1))
        torch.testing.assert_close(classifier(ids, mask, positions), expected)
    assert classifier.head.in_features == 2 * 384 and expected.shape == (1, 5)
