"""A selector per prompt: the config group, the factory, and the object
prompt in build_split (with a stub chat backend: the real SmolLM2 costs about a second a call)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.features.node_selection.node_selection_fixtures import CountingBackend
from vmhan_lib.data.config import DataConfig
from vmhan_lib.features.build import build_split
from vmhan_lib.features.cache import FeatureCache
from vmhan_lib.features import node_selection
from vmhan_lib.features.config import PACKAGED_MPNET, CaptionNodeConfig, FeatureConfig, SelectorConfig
from vmhan_lib.features.node_selection import embedding
from vmhan_lib.features.node_selection import (
    AnswerCache,
    EmbeddingRankSelector,
    LLMNodeSelector,
    PromptSelectors,
    make_prompt_selectors,
)


def test_one_selector_group_names_the_selector_of_each_prompt() -> None:
    assert FeatureConfig().selectors.by_prompt == {"text": "embedding", "visual": "embedding", "objects": None}
    mixed = SelectorConfig(text="embedding", visual="smollm2", objects="smollm2")
    assert mixed.by_prompt == {"text": "embedding", "visual": "smollm2", "objects": "smollm2"}
    with pytest.raises(ValueError, match="unknown node selector objects='gpt'; allowed: embedding, smollm2, transformers, openai"):
        SelectorConfig(objects="gpt")
    with pytest.raises(ValueError, match="visual selector 'transformers' needs features.selectors.model"):
        SelectorConfig(visual="transformers")


def test_prompts_of_one_kind_share_one_selector() -> None:
    selectors = make_prompt_selectors(FeatureConfig())
    assert isinstance(selectors.text, EmbeddingRankSelector) and selectors.visual is selectors.text
    assert selectors.objects is None
    chat = make_prompt_selectors(FeatureConfig(selectors=SelectorConfig(text="embedding", visual="smollm2", objects="smollm2")))
    assert isinstance(chat.visual, LLMNodeSelector) and chat.objects is chat.visual and chat.text is not chat.visual
    assert chat.visual.name.startswith("llm:transformers:")


def test_embedding_selectors_embed_with_the_configured_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def stub_embedder(model: str, **settings) -> SimpleNamespace:  # records the model asked for, loads nothing
        asked.append(model)
        return SimpleNamespace(identity=f"sha-of-{model}")

    monkeypatch.setattr(node_selection, "SentenceEmbedder", stub_embedder)
    monkeypatch.setattr(embedding, "SentenceEmbedder", stub_embedder)
    features = FeatureConfig(captions=CaptionNodeConfig(embedder=PACKAGED_MPNET))
    ranker = make_prompt_selectors(features).text
    assert asked == [PACKAGED_MPNET] and ranker.name == f"embedding:sha-of-{PACKAGED_MPNET}:words3"
    fallback = make_prompt_selectors(replace(features, selectors=SelectorConfig(text="smollm2", visual="smollm2"))).text.fallback  # an LLM's fallback ranker
    assert fallback.name == f"embedding:{PACKAGED_MPNET}:words3" and asked == [PACKAGED_MPNET]  # loaded on first use
    assert fallback.embedder.identity == f"sha-of-{PACKAGED_MPNET}" and asked == [PACKAGED_MPNET] * 2


def _last_offered(prompt: str) -> str:
    """The stub's answer to the object prompt: the last object of the listing."""
    listing = prompt.split("Objects detected in the image:\n", 1)[1].split("\nSentence posted", 1)[0]
    return "1. " + listing.splitlines()[-1].split(". ", 1)[1]


def test_object_prompt_picks_among_caption_objects_and_is_cached(mnre_dir: Path, tmp_path: Path) -> None:
    data = DataConfig(data_dir=str(mnre_dir), max_instances=4)
    config = FeatureConfig(k_objects=1, selectors=SelectorConfig(objects="smollm2"))
    cache = FeatureCache(root=tmp_path / "features")
    backend = CountingBackend(_last_offered)
    chat = LLMNodeSelector(backend, AnswerCache(tmp_path / "llm"))
    built = build_split(data, "test", config, PromptSelectors(objects=chat), cache=cache)
    plain = build_split(data, "test", replace(config, selectors=SelectorConfig()), cache=cache)
    assert backend.calls == chat.stats.selections["objects"] == built.report.object_selections == 4
    assert chat.stats.total_fallbacks == 0
    for node, prompt in zip(built.nodes, backend.prompts):
        assert node.n_objects == 1 and node.visual_names[1] == _last_offered(prompt)[3:]
    assert [n.visual_names for n in plain.nodes] != [n.visual_names for n in built.nodes]  # the prompt chose otherwise

    again = CountingBackend(_last_offered)
    rerun = build_split(data, "test", config, PromptSelectors(objects=LLMNodeSelector(again, AnswerCache(tmp_path / "other"))),
                        cache=cache)
    assert again.calls == 0 and rerun.report.cache_misses == 0  # object selections and nodes from the cache
    build_split(replace(data, captioners=("qwen",)), "test", config,
                PromptSelectors(objects=LLMNodeSelector(again, AnswerCache(tmp_path / "other"))), cache=cache)
    assert again.calls == 4  # other captions, other candidates: asked again
