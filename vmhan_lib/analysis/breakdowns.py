"""The paper's Figs. 3, 4 and 6 and per-relation breakdowns, computed from run records only.

Every function here reads the test predictions of complete runs (``test_predictions.jsonl``,
joined on the instance ``index`` with the MNRE test split) and returns a tidy DataFrame.

Interpretation choices (the paper does not define its groups):

- **Fig. 3, entities in several relation categories.** An entity (by surface name) is
  *multi-category* when it takes part, as head or tail, in pairs of more than one non-None
  relation across the train and test splits (:func:`vmhan_lib.data.mnre.entity_relation_categories`).
  A test instance is in the group ``several categories`` when its head or its tail is
  multi-category, else in ``one category`` (which includes entities only ever seen in ``None``
  pairs).
- **Fig. 4, entity pairs per sentence.** A test instance is in ``one pair`` when its sentence
  (same image and tokens, :func:`vmhan_lib.data.mnre.group_by_sentence`) carries a single labelled
  pair in the test split, else in ``several pairs``.
- Scores per group are the MNRE micro precision / recall / F1 over the non-None relations
  (:func:`vmhan_lib.metrics.score`) of each run, then mean ± sd (ddof=1; 0 for one seed) over seeds.
- **Hypergraph scope** (issue 23): :func:`scope_labelled` names each model with its
  ``hypergraph.scope`` (``VM-HAN (Ours) · sentence``), so the Fig. 4 groups compare both scopes side
  by side; :func:`candidate_comparison` and :func:`comparison_sentence` say whether one model beats
  others beyond the seeds' spread, overall (group ``all pairs``) and per group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from vmhan_lib.data.mnre import Instance, entity_relation_categories, group_by_sentence
from vmhan_lib.evaluate.significance import SINGLE_SEED_VERDICT, beyond_seed_spread
from vmhan_lib.metrics import confusion_matrix, per_relation_scores, score
from vmhan_lib.train.records import read_predictions

ONE_CATEGORY, SEVERAL_CATEGORIES = "one category", "several categories"
ONE_PAIR, SEVERAL_PAIRS = "one pair", "several pairs"
ALL_PAIRS = "all pairs"
PREDICTION_COLUMNS: tuple[str, ...] = ("variant", "seed", "index", "gold", "predicted", "confidence", "variance")


def available_variants(runs: pd.DataFrame, variants: Sequence[str]) -> list[str]:
    """The ``variants`` that have at least one complete run in ``runs``; prints a note for each
    one that has none (so an analysis skips a model instead of failing)."""
    present = set(runs["variant"]) if not runs.empty else set()
    for variant in variants:
        if variant not in present:
            print(f"note: no complete run of {variant!r}; it is left out of the analyses")
    return [v for v in variants if v in present]


def load_predictions(runs: pd.DataFrame, variants: Sequence[str]) -> pd.DataFrame:
    """One row per (variant, seed, test instance): gold, predicted, confidence (the largest class
    probability) and variance (NaN for non-variational models).

    Args:
        runs: :func:`vmhan_lib.analysis.tables.load_runs` (needs ``variant``, ``seed``, ``run_dir``).
        variants: the models to load, in order; those without runs are skipped with a note.
    """
    frames = []
    for variant in available_variants(runs, variants):
        for row in runs[runs["variant"] == variant].sort_values("seed").itertuples():
            predictions = read_predictions(Path(row.run_dir))
            frames.append(pd.DataFrame({
                "variant": variant, "seed": row.seed, "index": [p.index for p in predictions],
                "gold": [p.gold for p in predictions], "predicted": [p.predicted for p in predictions],
                "confidence": [max(p.probabilities) for p in predictions],
                "variance": [np.nan if p.variance is None else p.variance for p in predictions]}))
    if not frames:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def entity_category_groups(test: Sequence[Instance], reference: Sequence[Instance]) -> pd.Series:
    """Fig. 3 group of each test instance (index -> ``one category`` / ``several categories``).

    Args:
        test: the test instances to group.
        reference: the instances whose relations define each entity's categories (train + test).
    """
    categories = entity_relation_categories(reference)
    groups = {
        x.index: SEVERAL_CATEGORIES
        if max(len(categories.get(x.head.name, ())), len(categories.get(x.tail.name, ()))) > 1 else ONE_CATEGORY
        for x in test
    }
    return pd.Series(groups, name="group").rename_axis("index")


def pairs_per_sentence_groups(test: Sequence[Instance]) -> pd.Series:
    """Fig. 4 group of each test instance (index -> ``one pair`` / ``several pairs``)."""
    groups = {}
    for sentence in group_by_sentence(test):
        label = ONE_PAIR if sentence.n_pairs == 1 else SEVERAL_PAIRS
        for position in sentence.instance_indices:
            groups[test[position].index] = label
    return pd.Series(groups, name="group").rename_axis("index")


def scores_by_group(predictions: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    """Per (variant, seed, group): instances, gold non-None instances, precision, recall and F1 in percent.

    Predictions whose index has no group are an error (the groups must cover the test split).
    """
    grouped = predictions.assign(group=predictions["index"].map(groups))
    missing = grouped["group"].isna()
    if missing.any():
        example = grouped.loc[missing, "index"].iloc[0]
        raise ValueError(f"{int(missing.sum())} predictions have no group, e.g. index {example}")
    rows = []
    for (variant, seed, group), part in grouped.groupby(["variant", "seed", "group"], sort=False):
        scores = score(part["gold"].tolist(), part["predicted"].tolist())
        rows.append({"variant": variant, "seed": seed, "group": group, "n": scores.n,
                     "n_gold_positive": scores.n_gold_positive, **scores.percent()})
    return pd.DataFrame(rows, columns=["variant", "seed", "group", "n", "n_gold_positive",
                                       "accuracy", "precision", "recall", "f1"])


def summarize_groups(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd (ddof=1; 0 for one seed) of F1 per (variant, group) over seeds, with the group size."""
    grouped = per_seed.groupby(["variant", "group"], sort=False)
    summary = grouped.agg(n=("n", "first"), n_gold_positive=("n_gold_positive", "first"),
                          seeds=("seed", "count"), f1=("f1", "mean"), f1_std=("f1", "std"))
    summary["f1_std"] = summary["f1_std"].fillna(0.0)
    return summary.reset_index()


def efficiency_table(runs: pd.DataFrame, variants: Sequence[str]) -> pd.DataFrame:
    """Fig. 6: one row per run of ``variants`` with its stage-2 training time and test F1 (percent)."""
    kept = available_variants(runs, variants)
    table = runs[runs["variant"].isin(kept)][["variant", "seed", "train_wall_s", "f1"]]
    order = table["variant"].map(kept.index)
    return table.assign(order=order).sort_values(["order", "seed"]).drop(columns="order").reset_index(drop=True)


def per_relation_table(predictions: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, F1 (percent) and support of each non-None relation per variant, with the
    predictions of all seeds pooled; ``support`` is the gold count in the test split (one seed)."""
    rows = []
    for variant, part in predictions.groupby("variant", sort=False):
        n_seeds = part["seed"].nunique()
        for rel in per_relation_scores(part["gold"].tolist(), part["predicted"].tolist(), labels):
            rows.append({"variant": variant, "relation": rel.label, "precision": 100 * rel.precision,
                         "recall": 100 * rel.recall, "f1": 100 * rel.f1, "support": rel.support // n_seeds})
    return pd.DataFrame(rows, columns=["variant", "relation", "precision", "recall", "f1", "support"])


def confusion_table(predictions: pd.DataFrame, variant: str, labels: Sequence[str]) -> pd.DataFrame:
    """Counts of gold (rows) x predicted (columns) labels of ``variant``, seeds pooled."""
    part = predictions[predictions["variant"] == variant]
    matrix = confusion_matrix(part["gold"].tolist(), part["predicted"].tolist(), labels)
    return pd.DataFrame(matrix, index=pd.Index(labels, name="gold"), columns=pd.Index(labels, name="predicted"))


def visual_proportion_scores(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Fig. 5: one row per run of :func:`vmhan_lib.train.visual_proportion.run_visual_proportion`
    with its visual proportion (percent) and test accuracy, precision, recall, F1 (percent)."""
    rows = [{"visual %": round(100 * r["config"]["visual_proportion"]), "seed": r["seed"],
             **{m: 100 * r["test"][m] for m in ("accuracy", "precision", "recall", "f1")}} for r in records]
    return pd.DataFrame(rows).sort_values(["visual %", "seed"], ignore_index=True)


def describe_visual_proportion(scores: pd.DataFrame) -> str:
    """One sentence, from the numbers, on what the visual nodes are worth in Fig. 5: test F1 with no
    instance keeping them against all keeping them (mean ± sd over seeds), and whether the
    difference exceeds the larger of the two spreads."""
    by_share = scores.groupby("visual %")["f1"].agg(["mean", "std", "count"]).fillna(0.0)
    low, high = by_share.index.min(), by_share.index.max()
    if low == high:
        return f"Only one proportion ({low} %) has runs: no comparison is possible."
    none, full = by_share.loc[low], by_share.loc[high]
    difference, spread, beyond = beyond_seed_spread(full["mean"], full["std"], int(full["count"]),
                                                    none["mean"], none["std"], int(none["count"]))
    if beyond is None:
        verdict = SINGLE_SEED_VERDICT
    elif not beyond:
        verdict = "within the larger seed spread: the visual nodes add nothing measurable here"
    elif difference > 0:
        verdict = "more than the larger seed spread: the visual nodes help"
    else:
        verdict = "more than the larger seed spread: the visual nodes hurt"
    return (f"F1 with {high} % of instances keeping their visual nodes {full['mean']:.2f} ± {full['std']:.2f} "
            f"({int(full['count'])} seeds) against {low} %: {none['mean']:.2f} ± {none['std']:.2f} "
            f"({int(none['count'])} seeds); the difference {difference:+.2f} is {verdict}.")


def scope_labelled(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` (:func:`vmhan_lib.analysis.tables.load_runs`, one training mode and encoder) with each
    variant named with its hypergraph scope, e.g. ``VM-HAN (Ours) · sentence``."""
    return runs.assign(variant=runs["variant"] + " · " + runs["scope"])


def scores_by_groups(predictions: pd.DataFrame, test: Sequence[Instance]) -> pd.DataFrame:
    """:func:`scores_by_group` overall (group :data:`ALL_PAIRS`) and per Fig. 4 group, one table."""
    fig4 = pairs_per_sentence_groups(test)
    everything = pd.Series(ALL_PAIRS, index=fig4.index, name="group")
    return pd.concat([scores_by_group(predictions, everything), scores_by_group(predictions, fig4)],
                     ignore_index=True)


def candidate_comparison(summary: pd.DataFrame, candidate: str, references: Sequence[str]) -> pd.DataFrame:
    """``candidate`` against each of ``references`` in every group of ``summary``
    (:func:`summarize_groups`): F1 mean ± sd and seeds of each, the difference, the larger spread
    and whether the difference exceeds it (None while a side has one seed). Pairs of models without
    runs in a group give no row."""
    indexed = summary.set_index(["variant", "group"])
    rows = []
    for group in dict.fromkeys(summary["group"]):
        for reference in references:
            if (candidate, group) not in indexed.index or (reference, group) not in indexed.index:
                continue
            ours, base = indexed.loc[(candidate, group)], indexed.loc[(reference, group)]
            difference, spread, beyond = beyond_seed_spread(ours.f1, ours.f1_std, int(ours.seeds),
                                                            base.f1, base.f1_std, int(base.seeds))
            rows.append({"group": group, "n": int(ours.n), "candidate": candidate, "f1": ours.f1, "f1_std": ours.f1_std,
                         "seeds": int(ours.seeds), "reference": reference, "reference_f1": base.f1,
                         "reference_f1_std": base.f1_std, "reference_seeds": int(base.seeds),
                         "difference": difference, "spread": spread, "beyond_spread": beyond})
    return pd.DataFrame(rows)


def comparison_sentence(table: pd.DataFrame) -> str:
    """One sentence per group of :func:`candidate_comparison`: whether the candidate beats each
    reference by more than the seeds' spread, with the numbers."""
    if table.empty:
        return "No runs of the candidate and its references to compare yet."
    candidate = table["candidate"].iloc[0]
    parts = []
    for group, rows in table.groupby("group", sort=False):
        first = rows.iloc[0]
        against = "; ".join(f"{r.reference} {r.reference_f1:.2f} ± {r.reference_f1_std:.2f} ({r.reference_seeds}): "
                            f"{r.difference:+.2f}, {_verdict(r)}" for r in rows.itertuples())
        parts.append(f"On {group} (n={first.n}), {candidate} scores {first.f1:.2f} ± {first.f1_std:.2f} "
                     f"({first.seeds} seeds); against {against}.")
    return " ".join(parts)


def _verdict(row: Any) -> str:
    """How a :func:`candidate_comparison` row's difference stands against the seeds' spread, in words."""
    if row.beyond_spread is None:
        return SINGLE_SEED_VERDICT
    if not row.beyond_spread:
        return f"within the spread {row.spread:.2f}"
    return f"{'above' if row.difference > 0 else 'below'} it by more than the spread {row.spread:.2f}"
