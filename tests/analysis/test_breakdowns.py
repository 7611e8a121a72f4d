from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import f1_score, precision_recall_fscore_support

from vmhan_lib.analysis import analysis_plots, breakdowns as bd
from vmhan_lib.analysis.tables import load_runs
from vmhan_lib.data.mnre import Entity, Instance
from vmhan_lib.metrics import score
from vmhan_lib.train.records import Prediction, run_id, write_run

matplotlib.use("Agg")
LABELS = ["None", "a", "b", "c"]


def _instance(index: int, sentence: str, head: str, tail: str, relation: str) -> Instance:
    tokens = ("w0", "and", "w2", sentence)  # same sentence -> same tokens, whatever the pair
    return Instance(index, tokens, Entity(head, 0, 1), Entity(tail, 2, 3), f"{sentence}.jpg", relation)


def _fake_run(runs_dir: Path, variant: str, seed: int, gold: list[str], pred: list[str], wall: float) -> None:
    run_dir = runs_dir / run_id("cpu", variant, seed)
    scores = score(gold, pred).as_dict()
    write_run(run_dir, {"run_id": run_dir.name, "variant": variant, "seed": seed, "dev": scores, "test": scores,
                        "train_wall_s": wall, "best_epoch": 1, "n_parameters": 10, "device": "cpu", "complete": True},
              [Prediction(i, g, p, (0.1, 0.2, 0.3, 0.4), 0.5 if "VM" in variant else None)
               for i, (g, p) in enumerate(zip(gold, pred))])


@pytest.fixture
def runs(tmp_path: Path) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    gold = list(rng.choice(LABELS, size=120, p=[0.5, 0.2, 0.2, 0.1]))
    for seed in range(3):
        for variant, accuracy in (("VM-HAN (Ours)", 0.8), ("Text-only", 0.6)):
            pred = [g if rng.random() < accuracy else str(rng.choice(LABELS)) for g in gold]
            _fake_run(tmp_path, variant, seed, gold, pred, wall=10.0 * (seed + 1))
    _fake_run(tmp_path, "GCN", 0, gold, ["None"] * len(gold), wall=5.0)  # predicts only None: F1 = 0
    return load_runs(tmp_path)


def test_entity_category_groups_follow_the_definition() -> None:
    train = [_instance(100, "s1", "Ann", "Bob", "a"), _instance(101, "s2", "Ann", "Cid", "b"),
             _instance(102, "s3", "Dan", "Eve", "a"), _instance(103, "s4", "Dan", "Fay", "a")]
    test = [_instance(0, "t1", "Ann", "Gus", "None"),   # Ann: {a, b} -> several
            _instance(1, "t2", "Dan", "Hal", "c"),      # Dan: {a} + {c} from test -> several
            _instance(2, "t3", "Eve", "Ivy", "a"),      # Eve: {a}; Ivy: {a} -> one
            _instance(3, "t4", "Jo", "Kim", "None")]    # never in a relation -> one
    groups = bd.entity_category_groups(test, train + test)
    assert groups.to_dict() == {0: bd.SEVERAL_CATEGORIES, 1: bd.SEVERAL_CATEGORIES, 2: bd.ONE_CATEGORY,
                                3: bd.ONE_CATEGORY}


def test_pairs_per_sentence_groups() -> None:
    test = [_instance(5, "s1", "A", "B", "a"), _instance(6, "s1", "A", "C", "None"), _instance(7, "s2", "D", "E", "b")]
    assert bd.pairs_per_sentence_groups(test).to_dict() == {5: bd.SEVERAL_PAIRS, 6: bd.SEVERAL_PAIRS, 7: bd.ONE_PAIR}


def test_scores_by_group_match_sklearn_and_summary_matches_numpy(runs) -> None:
    predictions = bd.load_predictions(runs, ["VM-HAN (Ours)", "Text-only", "GCN"])
    groups = pd.Series({i: ("x" if i % 3 else "y") for i in range(120)})
    per_seed = bd.scores_by_group(predictions, groups)
    row = per_seed[(per_seed.variant == "Text-only") & (per_seed.seed == 1) & (per_seed.group == "y")].iloc[0]
    part = predictions[(predictions.variant == "Text-only") & (predictions.seed == 1) & (predictions["index"] % 3 == 0)]
    expected = f1_score(part.gold, part.predicted, labels=LABELS[1:], average="micro")
    assert row.f1 == pytest.approx(100 * expected) and row.n == 40
    assert per_seed[per_seed.variant == "GCN"]["f1"].eq(0).all()
    summary = bd.summarize_groups(per_seed).set_index(["variant", "group"])
    f1s = per_seed[(per_seed.variant == "VM-HAN (Ours)") & (per_seed.group == "x")]["f1"].to_numpy()
    assert summary.loc[("VM-HAN (Ours)", "x"), "f1"] == pytest.approx(f1s.mean())
    assert summary.loc[("VM-HAN (Ours)", "x"), "f1_std"] == pytest.approx(f1s.std(ddof=1))
    assert summary.loc[("GCN", "x"), "f1_std"] == 0 and summary.loc[("GCN", "x"), "seeds"] == 1
    with pytest.raises(ValueError, match="no group"):
        bd.scores_by_group(predictions, groups.drop(7))
    assert analysis_plots.group_f1(bd.summarize_groups(per_seed), "t").axes


def test_missing_models_are_skipped_with_a_note(runs, capsys) -> None:
    predictions = bd.load_predictions(runs, ["HGNN", "VM-HAN (Ours)"])
    assert "no complete run of 'HGNN'" in capsys.readouterr().out
    assert set(predictions.variant) == {"VM-HAN (Ours)"} and len(predictions) == 3 * 120
    assert predictions.confidence.eq(0.4).all() and predictions.variance.eq(0.5).all()
    assert bd.load_predictions(runs, ["HGNN"]).empty


def test_per_relation_and_confusion_pool_seeds_as_sklearn(runs) -> None:
    predictions = bd.load_predictions(runs, ["VM-HAN (Ours)", "Text-only"])
    table = bd.per_relation_table(predictions, LABELS[1:]).set_index(["variant", "relation"])
    pooled = predictions[predictions.variant == "Text-only"]
    p, r, f, support = precision_recall_fscore_support(pooled.gold, pooled.predicted, labels=LABELS[1:], zero_division=0)
    assert table.loc["Text-only"]["precision"].to_numpy() == pytest.approx(100 * p)
    assert table.loc["Text-only"]["recall"].to_numpy() == pytest.approx(100 * r)
    assert table.loc["Text-only"]["f1"].to_numpy() == pytest.approx(100 * f)
    assert (table.loc["Text-only"]["support"].to_numpy() * 3 == support).all()
    counts = bd.confusion_table(predictions, "VM-HAN (Ours)", LABELS)
    ours = predictions[predictions.variant == "VM-HAN (Ours)"]
    assert (counts.to_numpy() == sk_confusion(ours.gold, ours.predicted, labels=LABELS)).all()
    assert analysis_plots.per_relation(bd.per_relation_table(predictions, LABELS[1:])).axes
    assert analysis_plots.confusion(counts, "t").axes


def test_efficiency_table_keeps_the_requested_order(runs) -> None:
    table = bd.efficiency_table(runs, ["Text-only", "VM-HAN (Ours)", "GAT"])
    assert table.variant.tolist() == ["Text-only"] * 3 + ["VM-HAN (Ours)"] * 3
    assert table.train_wall_s.tolist() == [10.0, 20.0, 30.0] * 2
    assert analysis_plots.efficiency(table).axes


def test_visual_proportion_scores_from_records() -> None:
    records = [{"seed": s, "config": {"visual_proportion": p},
                "test": {"accuracy": 0.5, "precision": 0.25, "recall": 0.5, "f1": p / 2}}
               for p in (1.0, 0.25) for s in (1, 0)]
    scores = bd.visual_proportion_scores(records)
    assert scores[["visual %", "seed"]].values.tolist() == [[25, 0], [25, 1], [100, 0], [100, 1]]
    assert scores.f1.tolist() == [12.5, 12.5, 50.0, 50.0]
    assert analysis_plots.visual_proportion(scores).axes


def test_describe_visual_proportion_compares_none_with_all_against_the_spread() -> None:
    def scores(f1_none: list[float], f1_all: list[float]) -> pd.DataFrame:
        return pd.DataFrame([{"visual %": share, "seed": s, "f1": f}
                             for share, values in ((0, f1_none), (50, [0.0]), (100, f1_all)) for s, f in enumerate(values)])

    none, full = np.array([62.6, 62.7, 62.9]), np.array([62.2, 61.9, 61.8])
    hurt = bd.describe_visual_proportion(scores(list(none), list(full)))
    assert (f"{full.mean():.2f} ± {full.std(ddof=1):.2f} (3 seeds) against 0 %: "
            f"{none.mean():.2f} ± {none.std(ddof=1):.2f} (3 seeds)") in hurt
    assert f"difference {full.mean() - none.mean():+.2f}" in hurt and "hurt" in hurt
    assert "help" in bd.describe_visual_proportion(scores([60.0, 60.2], [62.0, 62.2]))
    assert "nothing measurable" in bd.describe_visual_proportion(scores([61.0, 63.0], [62.0, 62.5]))
    assert "no comparison" in bd.describe_visual_proportion(scores([], [1.0]).query("`visual %` == 100"))
    assert "one seed on a side" in bd.describe_visual_proportion(scores([60.0], [70.0, 70.2]))


def test_scopes_are_told_apart_and_the_candidate_is_compared_overall_and_per_group(runs) -> None:
    scoped = bd.scope_labelled(runs)
    assert set(scoped.variant) == {"VM-HAN (Ours) · pair", "Text-only · pair", "GCN · pair"}
    test = [_instance(i, f"s{i // 2 if i < 80 else i}", "A", "B", "None") for i in range(120)]  # 40 two-pair sentences
    per_seed = bd.scores_by_groups(bd.load_predictions(scoped, ["VM-HAN (Ours) · pair", "Text-only · pair", "GCN · pair"]),
                                   test)
    summary = bd.summarize_groups(per_seed)
    assert set(summary.group) == {bd.ALL_PAIRS, bd.ONE_PAIR, bd.SEVERAL_PAIRS}
    n = summary.drop_duplicates("group").set_index("group")["n"]
    assert (n[bd.ALL_PAIRS], n[bd.SEVERAL_PAIRS], n[bd.ONE_PAIR]) == (120, 80, 40)
    table = bd.candidate_comparison(summary, "VM-HAN (Ours) · pair", ["Text-only · pair", "GCN · pair", "HGNN · pair"])
    assert len(table) == 6  # 3 groups x 2 references with runs (HGNN has none)
    row = table[(table.group == bd.ALL_PAIRS) & (table.reference == "Text-only · pair")].iloc[0]
    ours = summary.set_index(["variant", "group"]).loc[("VM-HAN (Ours) · pair", bd.ALL_PAIRS)]
    assert row.f1 == pytest.approx(ours.f1) and row.difference == pytest.approx(ours.f1 - row.reference_f1)
    assert row.beyond_spread and row.difference > 0  # accuracy 0.8 against 0.6 over 120 instances
    assert table[table.reference == "GCN · pair"]["beyond_spread"].isna().all()  # one GCN seed
    sentence = bd.comparison_sentence(table)
    assert sentence.startswith(f"On all pairs (n=120), VM-HAN (Ours) · pair scores {ours.f1:.2f}")
    assert "above it by more than the spread" in sentence and "one seed on a side" in sentence
    assert bd.comparison_sentence(table.iloc[:0]).startswith("No runs")
