"""The embedding ranker: candidate chunks of the sentence, and real selections with all-MiniLM-L6-v2."""

from __future__ import annotations

import pytest
from node_selection_fixtures import make_instance

from vmhan_lib.features.node_selection.embedding import EmbeddingRankSelector, content_chunks


def test_content_chunks_skip_entities_stopwords_and_urls() -> None:
    tokens = "RT @cnn : Obama and his wife visited Paris http://t.co/x".split()
    spans = content_chunks(tokens, blocked=[(3, 4)])
    assert [" ".join(tokens[s:e]) for s, e in spans] == ["@cnn", "wife visited Paris"]


@pytest.fixture(scope="module")
def ranker() -> EmbeddingRankSelector:
    return EmbeddingRankSelector()


def test_embedding_ranker_selects_spans_phrases_and_objects(ranker: EmbeddingRankSelector) -> None:
    instance = make_instance("RT @cnnsport : Tennis star Rafael Nadal gets engaged to girlfriend of 14 years , Mery Perello",
                             ("Rafael Nadal", 5, 7), ("Mery Perello", 15, 17))
    text_nodes = ranker.select_text_nodes(instance, 3)
    assert len(text_nodes) == 3 and all(span in instance.text for span in text_nodes)
    assert not any(name in span for span in text_nodes for name in ("Rafael", "Nadal", "Mery", "Perello"))
    visual = ranker.select_visual_nodes(instance, "A tennis player kisses a woman in a white dress near a court.", 2)
    assert len(visual) == 2 and all(phrase.lower() in "a tennis player kisses a woman in a white dress near a court."
                                    for phrase in visual)
    assert ranker.select_objects(instance, ["toilet", "tennis racket", "fire hydrant"], 1) == ["tennis racket"]
    assert ranker.select_visual_nodes(instance, "", 2) == [] and ranker.select_objects(instance, [], 2) == []
    assert ranker.stats.selections == {"text": 1, "visual": 2, "objects": 2}
