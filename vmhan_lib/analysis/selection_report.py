"""Node selectors side by side (paper section 4.1): the same instances through several selectors.

:func:`load_selection_examples` picks a handful of test instances with their LLaVA-NeXT caption and
the object phrases it names (the candidate objects); :func:`compare_selectors` runs every selector
on each, once per pass (a second pass shows the answer cache at work), one tidy row per (selector,
pass, example); the other functions summarise (:func:`selection_summary`), lay out
(:func:`side_by_side`), compare (:func:`selector_overlap`), cost (:func:`cached_call_seconds`) and
draw (:func:`timing_figure`) those rows.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from vmhan_lib.paths import resolve_data_dir, resolve_profile
from vmhan_lib.data.captions import load_captions
from vmhan_lib.data.mnre import NEGATIVE_LABEL, Instance, load_mnre
from vmhan_lib.features.caption_nodes import extract_object_phrases
from vmhan_lib.features.node_selection import NodeSelector
from vmhan_lib.features.node_selection.prompts import NodePrompt, object_prompt, text_node_prompt, visual_node_prompt
from vmhan_lib.io import atomic_write_text

EXAMPLES_FILE = "node_selection_examples.csv"
SUMMARY_FILE = "node_selection_summary.csv"
TIMING_FIGURE = "node_selection_timing.png"
TINY_MAX_EXAMPLES = 1
"""The tiny profile (nbval) shows at most this many examples: an uncached SmolLM2 call costs
seconds to tens of seconds on the shared 2-core machines."""
NODE_KINDS: tuple[str, ...] = ("text_nodes", "visual_nodes", "objects")
LIST_SEPARATOR = " | "
TABLE_COLUMNS: tuple[str, ...] = (
    "selector", "pass", "instance", "img_id", "head", "tail", "relation", "sentence", *NODE_KINDS,
    "seconds", "model_calls", "model_seconds", "cache_hits", "backend_errors", "fallbacks", "fallback_kinds",
)


@dataclass(frozen=True)
class SelectionExample:
    """One instance with what the visual selectors read.

    Attributes:
        instance: the MNRE instance (sentence and entity pair).
        caption: the image's caption (LLaVA-NeXT by default), standing in for the image.
        candidates: object phrases named by the caption: the detected objects of the object prompt.
    """

    instance: Instance
    caption: str
    candidates: tuple[str, ...]


def load_selection_examples(profile: str | None, data_dir: str | Path | None, n_examples: int, split: str = "test",
                            captioner: str = "llavanext", max_phrase_words: int = 3) -> list[SelectionExample]:
    """The first ``n_examples`` instances of ``split`` with a relation other than None, one per
    image, whose caption names at least one object (at most :data:`TINY_MAX_EXAMPLES` for the tiny
    profile). The tiny examples are the first of the others, so they share their cached answers.

    Raises:
        ValueError: ``n_examples`` < 1.
    """
    if n_examples < 1:
        raise ValueError(f"n_examples must be >= 1, got {n_examples}")
    if resolve_profile(profile) == "tiny":
        n_examples = min(n_examples, TINY_MAX_EXAMPLES)
    path = resolve_data_dir(data_dir)
    captions = load_captions(path, captioner, split)
    examples: list[SelectionExample] = []
    seen_images: set[str] = set()
    for instance in load_mnre(path, split):
        caption = captions.get(instance.img_id, "")
        if instance.relation == NEGATIVE_LABEL or instance.img_id in seen_images or not caption:
            continue
        candidates = tuple(extract_object_phrases(caption, max_phrase_words))
        if not candidates:
            continue
        seen_images.add(instance.img_id)
        examples.append(SelectionExample(instance, caption, candidates))
        if len(examples) == n_examples:
            break
    return examples


def example_prompts(example: SelectionExample, m: int, n: int, k: int) -> list[NodePrompt]:
    """The three prompts (text nodes, visual nodes, objects) an LLM selector sends for ``example``."""
    return [text_node_prompt(example.instance, m), visual_node_prompt(example.instance, example.caption, n),
            object_prompt(example.instance, example.candidates, k)]


def _counters(selector: NodeSelector) -> dict[str, float]:
    """The selector's running counters, under their :data:`TABLE_COLUMNS` names."""
    stats = selector.stats
    return {"model_calls": stats.backend_calls, "model_seconds": sum(stats.backend_seconds),
            "cache_hits": stats.cache_hits, "backend_errors": stats.backend_errors, "fallbacks": stats.total_fallbacks}


def compare_selectors(selectors: Mapping[str, NodeSelector], examples: Sequence[SelectionExample], m: int = 3,
                      n: int = 3, k: int = 3, passes: int = 2) -> pd.DataFrame:
    """Every selector on every example, ``passes`` times; one row per (selector, pass, example).

    Columns (:data:`TABLE_COLUMNS`): the selector's label, the pass (1, 2, ...), the instance
    (index, image, head, tail, gold relation, sentence), the selections (lists), ``seconds`` = wall
    time of the three selections, and what the selector's stats counted meanwhile: ``model_calls``
    and their ``model_seconds``, ``cache_hits``, ``backend_errors``, ``fallbacks`` and the kinds
    that fell back. Model loading happens on a selector's first call, so it lands in the first
    row of that selector.

    Raises:
        ValueError: no selectors, no examples, or ``passes`` < 1.
    """
    if not selectors or not examples or passes < 1:
        raise ValueError("compare_selectors needs at least one selector, one example and one pass")
    rows = []
    for label, selector in selectors.items():
        for pass_number in range(1, passes + 1):
            for example in examples:
                instance = example.instance
                before, fallbacks_before = _counters(selector), dict(selector.stats.fallbacks)
                started = time.perf_counter()
                chosen = (selector.select_text_nodes(instance, m),
                          selector.select_visual_nodes(instance, example.caption, n),
                          selector.select_objects(instance, example.candidates, k))
                seconds = time.perf_counter() - started
                fell_back = [kind for kind, count in selector.stats.fallbacks.items()
                             if count > fallbacks_before.get(kind, 0)]
                rows.append({
                    "selector": label, "pass": pass_number, "instance": instance.index, "img_id": instance.img_id,
                    "head": instance.head.name, "tail": instance.tail.name, "relation": instance.relation,
                    "sentence": instance.text, **{kind: list(nodes) for kind, nodes in zip(NODE_KINDS, chosen)},
                    "seconds": seconds, **{key: value - before[key] for key, value in _counters(selector).items()},
                    "fallback_kinds": ",".join(sorted(fell_back)),
                })
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def selection_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per (selector, pass): examples, seconds per selection (mean and median over examples, three
    selections each), model calls and seconds per call, cache hits and hit rate (NaN when the
    selector made no cache lookup, e.g. the embedding ranker), backend errors and fallbacks."""
    grouped = table.groupby(["selector", "pass"], sort=False)
    summary = grouped.agg(
        examples=("instance", "size"), seconds_total=("seconds", "sum"), median_example_seconds=("seconds", "median"),
        model_calls=("model_calls", "sum"), model_seconds=("model_seconds", "sum"), cache_hits=("cache_hits", "sum"),
        backend_errors=("backend_errors", "sum"), fallbacks=("fallbacks", "sum"),
    ).reset_index()
    selections = summary["examples"] * len(NODE_KINDS)
    lookups = summary["model_calls"] + summary["cache_hits"] + summary["backend_errors"]
    summary["seconds_per_selection"] = summary["seconds_total"] / selections
    summary["median_seconds_per_selection"] = summary.pop("median_example_seconds") / len(NODE_KINDS)
    summary["seconds_per_model_call"] = (summary["model_seconds"] / summary["model_calls"]).where(
        summary["model_calls"] > 0)
    summary["cache_hit_rate"] = (summary["cache_hits"] / lookups).where(lookups > 0)
    summary["fallback_rate"] = summary["fallbacks"] / selections
    return summary[["selector", "pass", "examples", "seconds_per_selection", "median_seconds_per_selection",
                    "model_calls", "seconds_per_model_call", "cache_hits", "cache_hit_rate", "backend_errors",
                    "fallbacks", "fallback_rate"]]


def side_by_side(table: pd.DataFrame, pass_number: int = 1) -> pd.DataFrame:
    """One row per (example, node kind), one column per selector, the selections joined by ``|``."""
    chosen = table[table["pass"] == pass_number]
    long = chosen.melt(id_vars=["selector", "instance", "head", "tail", "relation"], value_vars=list(NODE_KINDS),
                       var_name="kind", value_name="nodes")
    long["nodes"] = long["nodes"].map(LIST_SEPARATOR.join)
    wide = long.pivot(index=["instance", "head", "tail", "relation", "kind"], columns="selector", values="nodes")
    wide = wide.reindex(index=list(NODE_KINDS), level="kind")
    wide.columns.name = None
    return wide[list(pd.unique(chosen["selector"]))]


def _jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    left, right = {s.lower() for s in a}, {s.lower() for s in b}
    return len(left & right) / len(left | right) if left | right else 1.0


def selector_overlap(table: pd.DataFrame, reference: str, pass_number: int = 1) -> pd.DataFrame:
    """Mean Jaccard overlap (case-insensitive) of each selector's selections with ``reference``'s on
    the same examples, per node kind; one row per selector other than the reference.

    Raises:
        ValueError: ``reference`` is not a selector of ``table``.
    """
    chosen = table[table["pass"] == pass_number].set_index("instance")
    if reference not in set(chosen["selector"]):
        raise ValueError(f"no selector {reference!r} in the table; have {sorted(set(chosen['selector']))}")
    base = chosen[chosen["selector"] == reference]
    rows = []
    for label, group in chosen[chosen["selector"] != reference].groupby("selector", sort=False):
        row: dict[str, object] = {"selector": label, "reference": reference}
        for kind in NODE_KINDS:
            row[kind] = sum(_jaccard(group.at[i, kind], base.at[i, kind]) for i in group.index) / len(group)
        rows.append(row)
    return pd.DataFrame(rows, columns=["selector", "reference", *NODE_KINDS])


def cached_call_seconds(cache_file: str | Path) -> pd.DataFrame:
    """What the model calls recorded in an answer cache (``answers.jsonl``) cost, per backend and
    model: answers, mean and median seconds per call, so a rerun whose answers are all cached still
    reports the time per model call. Empty when the file does not exist; torn lines are skipped (as
    :class:`~vmhan_lib.features.node_selection.AnswerCache` does)."""
    records = []
    path = Path(cache_file)
    if path.is_file():
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                    records.append({"backend": record["backend"], "model": record["model"],
                                    "seconds": float(record["seconds"])})
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
    frame = pd.DataFrame(records, columns=["backend", "model", "seconds"])
    return frame.groupby(["backend", "model"]).agg(
        answers=("seconds", "size"), mean_seconds=("seconds", "mean"), median_seconds=("seconds", "median"),
    ).reset_index()


def save_selection_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``table`` as CSV atomically, list cells joined by ``|``."""
    flat = table.copy()
    for kind in NODE_KINDS:
        if kind in flat:
            flat[kind] = flat[kind].map(LIST_SEPARATOR.join)
    return atomic_write_text(path, flat.to_csv(index=False, float_format="%.6g"))


def timing_figure(summary: pd.DataFrame) -> plt.Figure:
    """Bars: mean seconds per selection per selector and pass (log scale), each bar labelled with
    its cache hit rate where the selector has a cache."""
    frame = summary.assign(pass_label=summary["pass"].map(lambda p: f"pass {p}"))
    order = list(pd.unique(frame["selector"]))
    hue_order = [f"pass {p}" for p in sorted(pd.unique(frame["pass"]))]
    rates = {(row.selector, row.pass_label): row.cache_hit_rate for row in frame.itertuples()}
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.barplot(data=frame, x="selector", y="seconds_per_selection", hue="pass_label", order=order,
                hue_order=hue_order, ax=ax)
    ax.set_yscale("log")
    ax.set_ylabel("seconds per selection (log)")
    ax.set_xlabel("")
    ax.set_title("Node selection: cost per selection (text, visual or objects)")
    for container, pass_label in zip(ax.containers, hue_order):
        labels = [f"hits {rates[(s, pass_label)]:.0%}" if pd.notna(rates.get((s, pass_label), float("nan"))) else ""
                  for s in order]
        ax.bar_label(container, labels=labels, fontsize=8)
    ax.legend(title="")
    fig.tight_layout()
    return fig
