"""The node-selection report: selectors side by side, their timing, cache hits and fallbacks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from vmhan_lib.analysis.selection_report import (
    TABLE_COLUMNS,
    TINY_MAX_EXAMPLES,
    SelectionExample,
    cached_call_seconds,
    compare_selectors,
    example_prompts,
    load_selection_examples,
    save_selection_table,
    selection_summary,
    selector_overlap,
    side_by_side,
    timing_figure,
)
from vmhan_lib.paths import resolve_data_dir
from vmhan_lib.data.mnre import Entity, Instance
from vmhan_lib.features.node_selection import AnswerCache, LLMNodeSelector, SelectionStats

CALL_SECONDS = 0.002


class CountingBackend:
    """A chat backend answering by prompt kind, counting its calls; ``objects_answer`` may be unusable."""

    name = "fake"
    model = "counting-1"
    settings = {"decoding": "greedy"}

    def __init__(self, objects_answer: str = "1. dog") -> None:
        self.objects_answer = objects_answer
        self.calls = 0

    def complete(self, prompt: str) -> str:
        self.calls += 1
        time.sleep(CALL_SECONDS)
        if prompt.startswith("Please identify and extract the top") and "from the image" not in prompt:
            return "1. wife\n2. Paris"
        if "from the image" in prompt:
            return "1. red car\n2. crowd"
        return self.objects_answer


class FixedSelector:
    """A selector without a model or cache: always the first items, counting its selections."""

    def __init__(self, name: str = "fixed") -> None:
        self.name = name
        self.stats = SelectionStats()

    def select_text_nodes(self, instance: Instance, m: int) -> list[str]:
        self.stats.selections["text"] += 1
        return ["visited"][:m]

    def select_visual_nodes(self, instance: Instance, caption: str, n: int) -> list[str]:
        self.stats.selections["visual"] += 1
        return ["crowd"][:n]

    def select_objects(self, instance: Instance, candidates: Sequence[str], k: int) -> list[str]:
        self.stats.selections["objects"] += 1
        return list(candidates[:k])


def _example(index: int) -> SelectionExample:
    tokens = tuple("Obama visited Paris with his wife".split()) + ("today",) * index  # one sentence per example
    instance = Instance(index, tokens, Entity("Obama", 0, 1), Entity("Paris", 2, 3), f"img{index}.jpg",
                        "/per/loc/place_of_residence")
    return SelectionExample(instance, "A red car near a crowd and a dog.", ("red car", "crowd", "dog"))


def _llm(tmp_path: Path, backend: CountingBackend) -> LLMNodeSelector:
    return LLMNodeSelector(backend, AnswerCache(tmp_path / "llm"), fallback=FixedSelector())


def test_table_has_one_row_per_selector_pass_example_and_counts_calls_and_hits(tmp_path: Path) -> None:
    backend = CountingBackend()
    examples = [_example(0), _example(1)]
    table = compare_selectors({"fixed": FixedSelector(), "llm": _llm(tmp_path, backend)}, examples, m=2, n=2, k=1)
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert len(table) == 2 * 2 * 2
    assert backend.calls == 3 * len(examples)  # the second pass asked the model nothing
    llm = table[table["selector"] == "llm"].set_index("pass")
    assert llm.loc[1, "model_calls"].tolist() == [3, 3] and llm.loc[1, "cache_hits"].tolist() == [0, 0]
    assert llm.loc[2, "model_calls"].tolist() == [0, 0] and llm.loc[2, "cache_hits"].tolist() == [3, 3]
    assert (llm.loc[1, "model_seconds"] >= 3 * CALL_SECONDS).all() and (llm.loc[2, "model_seconds"] == 0).all()
    assert (table["seconds"] > 0).all()
    first = llm.loc[1].iloc[0]
    assert first["text_nodes"] == ["wife"]
    assert first["visual_nodes"] == ["red car", "crowd"] and first["objects"] == ["dog"]
    assert first["fallbacks"] == 0 and first["fallback_kinds"] == ""
    fixed = table[table["selector"] == "fixed"]
    assert (fixed[["model_calls", "cache_hits", "fallbacks"]] == 0).all().all()
    assert fixed["objects"].iloc[0] == ["red car"]


def test_text_spans_exclude_the_entities(tmp_path: Path) -> None:
    table = compare_selectors({"llm": _llm(tmp_path, CountingBackend())}, [_example(0)], passes=1)
    assert table["text_nodes"].iloc[0] == ["wife"]  # "Paris" is the tail entity


def test_unusable_answers_are_counted_as_fallbacks(tmp_path: Path) -> None:
    backend = CountingBackend(objects_answer="I cannot see the image.")
    table = compare_selectors({"llm": _llm(tmp_path, backend)}, [_example(0), _example(1)], k=2)
    assert table["fallbacks"].tolist() == [1, 1, 1, 1]
    assert set(table["fallback_kinds"]) == {"objects"}
    assert table["objects"].iloc[0] == ["red car", "crowd"]  # from the fallback selector
    summary = selection_summary(table)
    assert summary["fallbacks"].tolist() == [2, 2]
    assert summary["fallback_rate"].tolist() == pytest.approx([2 / 6, 2 / 6])


def test_summary_reports_hit_rates_and_seconds_per_call(tmp_path: Path) -> None:
    table = compare_selectors({"fixed": FixedSelector(), "llm": _llm(tmp_path, CountingBackend())},
                              [_example(0), _example(1)])
    summary = selection_summary(table).set_index(["selector", "pass"])
    assert summary.loc[("llm", 1), "cache_hit_rate"] == 0.0
    assert summary.loc[("llm", 2), "cache_hit_rate"] == 1.0
    assert pd.isna(summary.loc[("fixed", 1), "cache_hit_rate"])
    assert summary.loc[("llm", 1), "model_calls"] == 6
    assert summary.loc[("llm", 1), "seconds_per_model_call"] >= CALL_SECONDS
    assert pd.isna(summary.loc[("llm", 2), "seconds_per_model_call"])
    assert (summary["seconds_per_selection"] > 0).all() and (summary["examples"] == 2).all()


def test_a_new_selector_on_the_same_cache_hits_everything(tmp_path: Path) -> None:
    compare_selectors({"llm": _llm(tmp_path, CountingBackend())}, [_example(0)], passes=1)
    backend = CountingBackend()
    table = compare_selectors({"llm": _llm(tmp_path, backend)}, [_example(0)], passes=1)
    assert backend.calls == 0 and table["cache_hits"].tolist() == [3]
    recorded = cached_call_seconds(tmp_path / "llm" / "answers.jsonl")
    assert recorded[["backend", "model", "answers"]].values.tolist() == [["fake", "counting-1", 3]]
    assert recorded["mean_seconds"].iloc[0] >= CALL_SECONDS


def test_cached_call_seconds_skips_torn_lines_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text('{"backend": "b", "model": "m", "seconds": 2.0}\n{"backend": "b", "model": "m", "seconds": 4.0}\n'
                    '{"backend": "b", "mod', encoding="utf-8")
    recorded = cached_call_seconds(path)
    assert recorded[["answers", "mean_seconds", "median_seconds"]].values.tolist() == [[2, 3.0, 3.0]]
    assert cached_call_seconds(tmp_path / "absent.jsonl").empty


def test_side_by_side_and_overlap(tmp_path: Path) -> None:
    table = compare_selectors({"a": FixedSelector(), "b": FixedSelector(), "llm": _llm(tmp_path, CountingBackend())},
                              [_example(0), _example(1)], k=2)
    wide = side_by_side(table)
    assert wide.shape == (2 * 3, 3) and list(wide.columns) == ["a", "b", "llm"]
    first = wide.loc[(0, "Obama", "Paris", "/per/loc/place_of_residence")]
    assert list(first.index) == ["text_nodes", "visual_nodes", "objects"]
    assert first.loc["objects", "llm"] == "dog" and first.loc["objects", "a"] == "red car | crowd"
    assert first.loc["visual_nodes", "llm"] == "red car | crowd"
    overlap = selector_overlap(table, reference="a").set_index("selector")
    assert overlap.loc["b", ["text_nodes", "visual_nodes", "objects"]].tolist() == [1.0, 1.0, 1.0]
    # llm: text {wife} vs {visited} = 0, visual {red car, crowd} vs {crowd} = 1/2, objects {dog} vs {red car, crowd} = 0
    assert overlap.loc["llm", ["text_nodes", "visual_nodes", "objects"]].tolist() == [0.0, 0.5, 0.0]
    with pytest.raises(ValueError, match="no selector 'zzz'"):
        selector_overlap(table, reference="zzz")


def test_saved_csv_and_figure(tmp_path: Path) -> None:
    table = compare_selectors({"fixed": FixedSelector(), "llm": _llm(tmp_path, CountingBackend())}, [_example(0)], k=2)
    path = save_selection_table(table, tmp_path / "out" / "examples.csv")
    saved = pd.read_csv(path)
    assert list(saved.columns) == list(TABLE_COLUMNS) and len(saved) == 4
    assert saved.loc[0, "objects"] == "red car | crowd"
    fig = timing_figure(selection_summary(table))
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert "hits 100%" in labels and "hits 0%" in labels
    plt.close(fig)


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError):
        compare_selectors({}, [_example(0)])
    with pytest.raises(ValueError):
        compare_selectors({"fixed": FixedSelector()}, [_example(0)], passes=0)
    with pytest.raises(ValueError, match="n_examples"):
        load_selection_examples("cpu", None, 0)


def test_example_prompts_are_the_three_papers_prompts() -> None:
    prompts = example_prompts(_example(0), m=4, n=5, k=2)
    assert [p.kind for p in prompts] == ["text", "visual", "objects"]
    assert [" top 4 " in prompts[0].instruction, " top 5 " in prompts[1].instruction,
            " top 2 " in prompts[2].instruction] == [True, True, True]
    assert all("(Obama, Paris)" in p.instruction for p in prompts)
    assert "1. red car\n2. crowd\n3. dog" in prompts[2].context


def test_examples_from_the_real_test_split() -> None:
    data_dir = resolve_data_dir()
    if not (data_dir / "text" / "mnre_test.txt").is_file():
        pytest.skip(f"MNRE data not found in {data_dir} (set VMHAN_DATA)")
    examples = load_selection_examples("cpu", data_dir, 3)
    assert len(examples) == 3 and len({e.instance.img_id for e in examples}) == 3
    assert all(e.instance.relation != "None" and e.caption and e.candidates for e in examples)
    tiny = load_selection_examples("tiny", data_dir, 3)
    assert [e.instance.index for e in tiny] == [e.instance.index for e in examples[:TINY_MAX_EXAMPLES]]
