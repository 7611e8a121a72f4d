"""build_split on real instances: shapes, missing captions, selectors, and the cache."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vmhan_lib.data.config import DataConfig
from vmhan_lib.data import Instance, load_captions, load_mnre
from vmhan_lib.features.node_selection import SelectionStats
from vmhan_lib.features.build import IMAGE_NODE_NAME, BuildReport, build_split, describe_fallbacks
from vmhan_lib.features.cache import FeatureCache
from vmhan_lib.features.config import FeatureConfig

N = 12
QUIET = FeatureConfig()


def _stages(file_names: list[str]) -> list[str]:
    """Stage of each cache file name ``{stage}-{split}-{digest}.pt``."""
    return [name.rsplit("-", 2)[0] for name in file_names]


def test_shapes_of_real_instances(mnre_dir: Path, cache: FeatureCache) -> None:
    data = DataConfig(data_dir=str(mnre_dir), max_instances=N)
    nodes = build_split(data, "test", QUIET, cache=cache).nodes
    instances = load_mnre(mnre_dir, "test")[:N]
    assert len(nodes) == N
    for node, instance in zip(nodes, instances):
        assert node.text_features.shape == (2, 384)
        assert node.text_names == [instance.head.name, instance.tail.name]
        assert node.has_image and node.visual_names[0] == IMAGE_NODE_NAME
        assert node.visual_features.shape == (1 + node.n_objects, 384) and 1 <= node.n_objects <= 3
        assert abs(float(node.visual_features[0].norm()) - 1) < 1e-4


def test_rerun_is_a_cache_hit_and_keys_follow_k_and_captioner(mnre_dir: Path, cache: FeatureCache) -> None:
    data = DataConfig(data_dir=str(mnre_dir), max_instances=N)
    first = build_split(data, "test", QUIET, cache=cache)
    assert first.report.cache_misses == 4  # nodes, text, caption images, caption objects
    computed = list(cache.computed)
    second = build_split(data, "test", QUIET, cache=cache)
    assert second.report.cache_misses == 0 and second.report.cache_hits == 1 and cache.computed == computed
    assert all(torch.equal(a.visual_features, b.visual_features) for a, b in zip(first.nodes, second.nodes))

    fewer_objects = replace(QUIET, k_objects=1)
    third = build_split(data, "test", fewer_objects, cache=cache)
    assert _stages(cache.computed[len(computed):]) == ["nodes"]  # text and caption stages reused
    assert all(n.n_objects <= 1 for n in third.nodes)

    other_captioner = replace(data, captioners=("qwen",))
    build_split(other_captioner, "test", QUIET, cache=cache)
    assert sorted(_stages(cache.computed[len(computed) + 1:])) == ["caption-images", "caption-objects", "nodes"]


def test_text_placeholders_build_the_same_nodes_without_an_encoder_pass(mnre_dir: Path, cache: FeatureCache) -> None:
    """Joint training (issue 26): the text rows are zeros of the encoder's width, everything else (text
    names, visual rows, the report) as the real build; no frozen text features are computed, and the
    entry never answers for a real build."""
    data = DataConfig(data_dir=str(mnre_dir), max_instances=N)
    placeholders = build_split(data, "val", QUIET, cache=cache, text_placeholders=True)
    assert "text" not in _stages(cache.computed)
    real = build_split(data, "val", QUIET, cache=cache)
    assert sorted(_stages(cache.computed)).count("nodes") == 2 and "text" in _stages(cache.computed)
    assert placeholders.report.n_truncated == real.report.n_truncated
    for fake, node in zip(placeholders.nodes, real.nodes, strict=True):
        assert fake.text_names == node.text_names and fake.text_features.shape == node.text_features.shape
        assert not fake.text_features.any() and node.text_features.any()
        assert torch.equal(fake.visual_features, node.visual_features) and fake.visual_names == node.visual_names


@pytest.fixture
def data_with_missing_captions(mnre_dir: Path, tmp_path: Path) -> Path:
    """A data dir whose LLaVA-NeXT test captions lack the first image's line and blank the second's."""
    instances = load_mnre(mnre_dir, "test")
    first, second = instances[0].img_id, next(i.img_id for i in instances if i.img_id != instances[0].img_id)
    root = tmp_path / "mnre"
    shutil.copytree(mnre_dir / "text", root / "text")
    (root / "captions").mkdir()
    captions = load_captions(mnre_dir, "llavanext", "test")
    lines = [repr({"img_id": img, "text": "" if img == second else text})
             for img, text in captions.items() if img != first]
    (root / "captions" / "llavanext_test.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_instances_without_caption(data_with_missing_captions: Path, cache: FeatureCache) -> None:
    data = DataConfig(data_dir=str(data_with_missing_captions), max_instances=N, captioners=("llavanext",))
    built = build_split(data, "test", QUIET, cache=cache)
    without = [n for n in built.nodes if not n.has_image]
    assert sum(built.report.without_image.values()) == len(without) > 0
    assert set(built.report.without_image) == {"no caption line", "empty caption"}
    assert all(n.visual_features.shape == (0, 384) and n.visual_names == [] for n in without)
    counts = built.report.without_image
    assert built.report.fallbacks() == {f"without visual nodes ({reason})": counts[reason] for reason in sorted(counts)}
    assert describe_fallbacks({"test": built.report.to_dict()}) == [
        f"test: {counts['empty caption']} of {N} instances without visual nodes (empty caption); "
        f"{counts['no caption line']} of {N} instances without visual nodes (no caption line)"]


def test_llm_fallbacks_are_reported_on_the_build_and_on_its_cached_rerun(mnre_dir: Path, cache: FeatureCache) -> None:
    class FallingBack(FakeSelector):
        """Counts a fallback for every second text selection, as the LLM selector does for unusable answers."""

        name = "falling-back-fake"

        def __init__(self) -> None:
            self.stats = SelectionStats()

        def select_text_nodes(self, instance: Instance, m: int) -> list[str]:
            if instance.index % 2:
                self.stats.fallbacks["text"] += 1
            return super().select_text_nodes(instance, m)

    data = DataConfig(data_dir=str(mnre_dir), max_instances=4)
    config = replace(QUIET, m_text_nodes=1, n_visual_nodes=0)
    first = build_split(data, "test", config, selector=FallingBack(), cache=cache)
    again = build_split(data, "test", config, selector=FallingBack(), cache=cache)
    assert first.report.selection_fallbacks == again.report.selection_fallbacks == {"text": 2}
    assert again.report.fallbacks()["LLM text answers unusable (embedding ranker instead)"] == 2
    assert describe_fallbacks({"val": BuildReport("val", 3).to_dict()}) == []  # nothing to say


class FakeSelector:
    """Text nodes: the last word and a phrase not in the sentence; visual nodes: caption words."""

    def select_text_nodes(self, instance: Instance, m: int) -> list[str]:
        return [instance.tokens[-1], "zzz not in sentence"][:m]

    def select_visual_nodes(self, instance: Instance, caption: str, n: int) -> list[str]:
        return caption.split()[:n]


def test_selector_nodes(mnre_dir: Path, cache: FeatureCache) -> None:
    data = DataConfig(data_dir=str(mnre_dir), max_instances=4)
    config = replace(QUIET, m_text_nodes=2, n_visual_nodes=2)
    built = build_split(data, "test", config, selector=FakeSelector(), cache=cache)
    instances = load_mnre(mnre_dir, "test")[:4]
    assert built.report.text_nodes_not_found == 4
    for node, instance in zip(built.nodes, instances):
        assert node.text_names == [instance.head.name, instance.tail.name, instance.tokens[-1]]
        assert node.text_features.shape == (3, 384) and node.n_text_llm == 1
        assert node.n_visual_llm == 2 and node.visual_features.shape[0] == 1 + node.n_objects + 2
    plain = build_split(data, "test", config, cache=cache)
    assert plain.report.cache_misses == 2 and all(n.n_text_llm == 0 for n in plain.nodes)  # nodes + text: selections are keys


class CountingSelector(FakeSelector):
    name = "counting-fake"

    def __init__(self) -> None:
        self.calls = 0

    def select_text_nodes(self, instance: Instance, m: int) -> list[str]:
        self.calls += 1
        return super().select_text_nodes(instance, m)


def test_selections_are_cached_so_a_rerun_asks_the_selector_nothing(mnre_dir: Path, cache: FeatureCache) -> None:
    data = DataConfig(data_dir=str(mnre_dir), max_instances=4)
    config = replace(QUIET, m_text_nodes=1, n_visual_nodes=1)
    first, second = CountingSelector(), CountingSelector()
    built = build_split(data, "test", config, selector=first, cache=cache)
    again = build_split(data, "test", config, selector=second, cache=cache)
    assert first.calls == 4 and second.calls == 0
    assert [n.text_names for n in again.nodes] == [n.text_names for n in built.nodes]
    build_split(data, "test", replace(config, m_text_nodes=2), selector=second, cache=cache)
    assert second.calls == 4  # m is part of the key


def test_fold_text_features_replace_the_text_side_only(mnre_dir: Path, cache: FeatureCache) -> None:
    from vmhan_lib.features.build import with_fold_text_features

    data = DataConfig(data_dir=str(mnre_dir), max_instances=6)
    config = replace(QUIET, m_text_nodes=2, n_visual_nodes=2)
    built = build_split(data, "test", config, selector=FakeSelector(), cache=cache)
    folds = [[0, 2, 5], [1, 3, 4]]
    same = with_fold_text_features(built, data, "test", folds, [config.text, config.text], config, FakeSelector(), cache)
    for a, b in zip(same.nodes, built.nodes):  # the same encoder per fold: the same nodes (one pass per fold)
        assert a.text_names == b.text_names and torch.allclose(a.text_features, b.text_features, atol=1e-5)
        assert a.text_features.shape == (3, 384) and torch.equal(a.visual_features, b.visual_features)
    with pytest.raises(ValueError, match="need 2 folds that together hold each of the 6 positions of test once"):
        with_fold_text_features(built, data, "test", [[0, 1], [2, 3]], [config.text, config.text], config,
                                FakeSelector(), cache)
    with pytest.raises(ValueError, match="need 1 folds"):  # two folds, one encoder
        with_fold_text_features(built, data, "test", folds, [config.text], config, FakeSelector(), cache)
