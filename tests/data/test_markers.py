"""Entity markers, marker positions, truncation that keeps both entities, phrase spans, span read-outs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from vmhan_lib.data import load_mnre
from vmhan_lib.data.markers import EntityMarkerTokenizer, span_means
from vmhan_lib.weights import resolve_text_model


@pytest.fixture(scope="module")
def minilm_tokenizer() -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(resolve_text_model("all-MiniLM-L6-v2").source)


@pytest.fixture(scope="module")
def marker_tokenizer(minilm_tokenizer: PreTrainedTokenizerBase) -> EntityMarkerTokenizer:
    return EntityMarkerTokenizer(minilm_tokenizer, max_length=128)


def _tokens(marker_tokenizer: EntityMarkerTokenizer, ids) -> list[str]:
    return marker_tokenizer.tokenizer.convert_ids_to_tokens(list(ids))


def test_markers_surround_the_entities(marker_tokenizer: EntityMarkerTokenizer, mnre_dir: Path) -> None:
    instance = load_mnre(mnre_dir, "val")[0]  # RT @AFP : # BREAKING UN says ... in Libya 's Tripoli
    assert (instance.head.name, instance.tail.name) == ("UN", "Libya")
    encoded = marker_tokenizer.encode_instance(instance)
    tokens = _tokens(marker_tokenizer, encoded.input_ids)
    assert tokens[encoded.head_position:encoded.head_position + 5] == ["@", "*", "un", "*", "@"]
    assert tokens[encoded.tail_position:encoded.tail_position + 5] == ["#", "^", "libya", "^", "#"]
    # the tweet's own "@" and "#" come earlier and are not taken for markers
    assert tokens[2] == "@" and tokens.index("#") < encoded.head_position
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and not encoded.truncated


def test_nested_entities_are_marked(marker_tokenizer: EntityMarkerTokenizer) -> None:
    encoded = marker_tokenizer.encode(["new", "york", "city", "marathon"], head=(0, 3), tail=(0, 2))
    tokens = _tokens(marker_tokenizer, encoded.input_ids)
    assert tokens[1:-1] == ["@", "*", "#", "^", "new", "york", "^", "#", "city", "*", "@", "marathon"]
    assert (tokens[encoded.head_position], tokens[encoded.tail_position]) == ("@", "#")


def test_truncation_keeps_both_entities(minilm_tokenizer: PreTrainedTokenizerBase) -> None:
    tokenizer = EntityMarkerTokenizer(minilm_tokenizer, max_length=32)
    words = [f"w{i}" for i in range(200)]
    words[5], words[180] = "alice", "paris"
    encoded = tokenizer.encode(words, head=(5, 6), tail=(180, 181), phrases=["w179", "w100"])
    tokens = _tokens(tokenizer, encoded.input_ids)
    assert encoded.truncated and len(encoded.input_ids) == 32
    assert tokens[encoded.head_position:encoded.head_position + 5] == ["@", "*", "alice", "*", "@"]
    assert tokens[encoded.tail_position:encoded.tail_position + 5] == ["#", "^", "paris", "^", "#"]
    near, far = encoded.phrase_spans
    assert near is not None and far is None  # context next to an entity is kept, far context is cut


def test_long_entity_keeps_its_markers(minilm_tokenizer: PreTrainedTokenizerBase) -> None:
    tokenizer = EntityMarkerTokenizer(minilm_tokenizer, max_length=20)
    words = ["x"] * 3 + ["long"] * 40 + ["y", "tail", "z"]
    encoded = tokenizer.encode(words, head=(3, 43), tail=(44, 45))
    tokens = _tokens(tokenizer, encoded.input_ids)
    assert len(tokens) == 20
    assert tokens[encoded.head_position:encoded.head_position + 2] == ["@", "*"]
    after_head = tokens.index("y")
    assert tokens[after_head - 2:after_head] == ["*", "@"] and tokens.count("@") == 2
    assert tokens[encoded.tail_position:encoded.tail_position + 5] == ["#", "^", "tail", "^", "#"]


def test_phrase_spans(marker_tokenizer: EntityMarkerTokenizer, mnre_dir: Path) -> None:
    instance = load_mnre(mnre_dir, "val")[0]
    encoded = marker_tokenizer.encode_instance(instance, ["ceasefire agreed", "UN says", "Tripoli", "absent words"])
    tokens = _tokens(marker_tokenizer, encoded.input_ids)
    spans = encoded.phrase_spans
    assert tokens[slice(*spans[0])] == ["ceasefire", "agreed"]
    assert tokens[slice(*spans[1])] == ["un", "*", "@", "says"]  # a span across a marker keeps it
    assert tokens[slice(*spans[2])] == ["tripoli"]
    assert spans[3] is None


def test_span_means_matches_loop() -> None:
    hidden = torch.randn(2, 6, 4)
    spans = torch.tensor([[[1, 3], [0, 0]], [[2, 6], [4, 5]]])
    mask = torch.tensor([[True, False], [True, True]])
    pooled = span_means(hidden, spans, mask)
    assert torch.allclose(pooled[0, 0], hidden[0, 1:3].mean(0))
    assert torch.allclose(pooled[1, 0], hidden[1, 2:6].mean(0)) and torch.allclose(pooled[1, 1], hidden[1, 4])
    assert torch.equal(pooled[0, 1], torch.zeros(4))
