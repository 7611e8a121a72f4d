"""The controlled visual-signal study's tables: scores per arm, summary, the smallest strength
beating Text-only, the paragraph, and V-HAN's attention on the signal node."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from tests.factories import TINY, random_split
from vmhan_lib.analysis import controlled_signal as cs
from vmhan_lib.hypergraph.batch import collate_hypergraphs
from vmhan_lib.model.vmhan import build_model


def _record(model: str, arm: str, s: float, seed: int, f1: float) -> dict:
    return {"variant": f"{model} @ controlled signal {arm} s={s:g}", "seed": seed,
            "config": {"visual_signal": {"arm": arm, "strength": s, "train_instances": 100}, "run": {"train": {"epochs": 4}}},
            "test": {"accuracy": f1, "precision": f1, "recall": f1, "f1": f1}}


RECORDS = [_record("Text-only", "image", 0.0, seed, f1) for seed, f1 in ((0, 0.60), (1, 0.62))] + [
    _record("VM-HAN (Ours)", "image", s, seed, f1) for s, seed, f1 in
    ((0.0, 0, 0.60), (0.0, 1, 0.61), (0.1, 0, 0.62), (0.1, 1, 0.625), (0.3, 0, 0.70), (0.3, 1, 0.72))] + [
    _record("VM-HAN (Ours)", "object", 0.3, seed, f1) for seed, f1 in ((0, 0.64), (1, 0.66))]


def test_scores_put_the_s0_runs_in_both_arms_and_summarise_per_strength() -> None:
    scores = cs.signal_scores(RECORDS)
    ours = scores[scores["model"] == "VM-HAN (Ours)"]
    assert sorted(set(zip(ours["arm"], ours["s"]))) == [("image", 0.0), ("image", 0.1), ("image", 0.3),
                                                         ("object", 0.0), ("object", 0.3)]
    assert set(scores.loc[scores["model"] == "Text-only", "arm"]) == {"image"}  # no object-arm runs of its own
    summary = cs.signal_summary(scores)
    row = summary[(summary["model"] == "VM-HAN (Ours)") & (summary["arm"] == "image") & (summary["s"] == 0.3)].iloc[0]
    assert row.f1 == pytest.approx(71.0) and row.f1_std == pytest.approx(pd.Series([70.0, 72.0]).std()) and row.seeds == 2


def test_the_smallest_beating_strength_needs_more_than_the_spread() -> None:
    beating = cs.smallest_beating_strength(cs.signal_summary(cs.signal_scores(RECORDS))).set_index(["model", "arm"])
    # Text-only 61 ± 1.41; s = 0.1: 62.25 ± 0.35, +1.25 within the spread; s = 0.3: 71 ± 1.41, beyond it
    assert beating.loc[("VM-HAN (Ours)", "image"), "smallest_s"] == 0.3
    assert beating.loc[("VM-HAN (Ours)", "object"), "smallest_s"] == 0.3  # 65 ± 1.41 vs 61 ± 1.41


def test_the_paragraph_is_computed_from_the_numbers() -> None:
    summary = cs.signal_summary(cs.signal_scores(RECORDS))
    drops = pd.DataFrame({"model": ["VM-HAN (Ours)"] * 3, "arm": ["image"] * 3, "s": [0.0, 0.1, 0.3],
                          "drop": [0.0, 1.0, 6.0], "drop_std": [0.0, 0.2, 0.5]})
    text = cs.signal_paragraph(summary, cs.smallest_beating_strength(summary), drops)
    assert "Text-only scores 61.00 ± 1.41 F1" in text and "VM-HAN (Ours) (image arm) first beats it beyond the seed spread at s = 0.3" in text
    assert "0.00 at s = 0, 1.00 at s = 0.1, 6.00 at s = 0.3; it grows with s" in text
    flat = cs.signal_paragraph(summary, cs.smallest_beating_strength(summary), drops.assign(drop=[0.0, 0.05, 0.0]))
    assert "it does not grow with s beyond the spread" in flat


def test_attention_on_the_signal_node_is_relative_to_a_uniform_share() -> None:
    torch.manual_seed(0)
    model = build_model(TINY).eval()
    nodes = random_split(5, 0, n_visual=4).nodes
    result = cs.attention_on_signal(model, TINY, nodes, [0, None, 1, 0, 2], batch_size=2)
    # independent reference: explicit loops over instances, heads and hyperedges
    signal, others = [], []
    for i, row in enumerate([0, None, 1, 0, 2]):
        if row is None:
            continue
        batch = collate_hypergraphs([nodes[i]], TINY.hypergraph)
        with torch.no_grad():
            weights = model(batch, return_attention=True).attention[-1].edge_from_nodes[0]  # [K, E, N]
        n_text = batch.text_features.shape[1]
        for slot in range(n_text, batch.node_mask.shape[1]):
            for edge in range(weights.shape[1]):
                size = float(batch.incidence[0, :, edge].sum())
                if batch.incidence[0, slot, edge] > 0:
                    ratio = float(weights[:, edge, slot].mean()) * size
                    (signal if slot == n_text + row else others).append(ratio)
    assert result["attention_signal"] == pytest.approx(sum(signal) / len(signal), rel=1e-5)
    assert result["attention_other_visual"] == pytest.approx(sum(others) / len(others), rel=1e-5)
    assert math.isnan(cs.attention_on_signal(model, TINY, nodes, [None] * 5)["attention_signal"])


def test_the_figure_has_one_panel_per_arm_and_one_for_the_shuffle_drop() -> None:
    from vmhan_lib.plots import controlled_signal

    summary = cs.signal_summary(cs.signal_scores(RECORDS))
    drops = pd.DataFrame({"model": ["VM-HAN (Ours)"] * 2, "arm": ["image"] * 2, "s": [0.0, 0.3], "drop": [0.0, 4.0],
                          "drop_std": [0.0, 0.5]})
    figure = controlled_signal(summary, drops)
    assert [ax.get_title() for ax in figure.axes] == ["controlled visual signal: image arm",
                                                      "controlled visual signal: object arm",
                                                      "controlled visual signal: visual-shuffle drop"]
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["0", "0.1", "0.3"]
