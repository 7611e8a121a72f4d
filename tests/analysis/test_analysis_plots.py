"""The analysis figures (Figs. 5-6, groups, per relation, confusion, uncertainty) show what their
input says: one bar / line / point per entry, labels in the input's order, spreads as given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer
from matplotlib.collections import PathCollection, QuadMesh

from tests.figure_reading import bars, labels, legend_labels
from vmhan_lib.analysis import analysis_plots


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def points(collection) -> list[tuple[float, float]]:
    return [tuple(float(v) for v in xy) for xy in np.asarray(collection.get_offsets())]


def centres_x(group: BarContainer) -> list[float]:
    return [round(p.get_x() + p.get_width() / 2, 6) for p in group]


def test_group_f1_one_bar_per_variant_and_group_with_the_sd_as_error_bar() -> None:
    summary = pd.DataFrame({
        "variant": ["A", "A", "B", "B"], "group": ["one", "several", "one", "several"], "n": [10, 5, 10, 5],
        "n_gold_positive": [4, 2, 4, 2], "seeds": [2] * 4, "f1": [50.0, 40.0, 30.0, 20.0], "f1_std": [1.0, 2.0, 3.0, 0.0],
    })
    fig = analysis_plots.group_f1(summary, "Entities in one vs several relation categories")
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert labels(ax.get_xticklabels()) == ["one\n(n=10, non-None 4)", "several\n(n=5, non-None 2)"]
    assert legend_labels(ax) == ["A", "B"]
    a, b = bars(ax)
    assert [p.get_height() for p in a] == [50.0, 40.0] and [p.get_height() for p in b] == [30.0, 20.0]
    assert centres_x(a) == [-0.2, 0.8] and centres_x(b) == [0.2, 1.2]  # side by side around each group
    for group, std in ((a, [1.0, 2.0]), (b, [3.0, 0.0])):
        segments = group.errorbar.lines[2][0].get_segments()
        assert [float(s[1, 1] - s[0, 1]) / 2 for s in segments] == std
        assert [float(s[0, 0]) for s in segments] == centres_x(group)
    assert ax.get_ylim() == pytest.approx((0.0, 1.1 * 51.0))
    assert ax.get_ylabel() == "test F1 (%), mean ± sd over seeds"
    assert ax.get_title() == "Entities in one vs several relation categories"


def test_visual_proportion_one_line_per_metric_through_the_seed_means() -> None:
    offsets = {"accuracy": 50.0, "precision": 40.0, "recall": 30.0, "f1": 20.0}
    scores = pd.DataFrame([{"visual %": v, "seed": s, **{m: base + v / 10 + s * s for m, base in offsets.items()}}
                           for v in (0, 50, 100) for s in (0, 1, 2)])
    fig = analysis_plots.visual_proportion(scores)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    lines = [line for line in ax.lines if len(line.get_xdata())]
    assert len(lines) == 4 and legend_labels(ax) == list(offsets)
    for line, base in zip(lines, offsets.values()):
        assert list(line.get_xdata()) == [0, 50, 100] and line.get_marker() == "o"
        np.testing.assert_allclose(line.get_ydata(), base + np.array([0, 5, 10]) + 5 / 3)  # mean (not median) of 0, 1, 4
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(dots) == 1 and len(dots[0].get_offsets()) == 3 * 3 * 4  # every (proportion, seed, metric)
    assert list(ax.get_xticks()) == [0, 50, 100]
    assert ax.get_xlabel() == "instances keeping their visual nodes (%), train and test"
    assert ax.get_ylabel() == "test score (%)"
    assert ax.get_title() == "VM-HAN with different proportions of visual information"


def test_efficiency_a_point_per_run_and_a_diamond_at_each_mean() -> None:
    table = pd.DataFrame({"variant": ["B", "B", "A"], "seed": [0, 1, 0], "train_wall_s": [10.0, 20.0, 5.0],
                          "f1": [50.0, 60.0, 40.0]})
    fig = analysis_plots.efficiency(table)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    runs_b, mean_b, runs_a, mean_a = ax.collections
    assert points(runs_b) == [(10.0, 50.0), (20.0, 60.0)] and points(mean_b) == [(15.0, 55.0)]
    assert points(runs_a) == [(5.0, 40.0)] and points(mean_a) == [(5.0, 40.0)]
    assert [c.get_sizes()[0] for c in ax.collections] == [15, 120, 15, 120]
    assert legend_labels(ax) == ["B", "A"]  # the table's order
    colour = {name: c.get_facecolor()[0][:3].tolist() for name, c in (("B", mean_b), ("A", mean_a))}
    assert runs_b.get_facecolor()[0][:3].tolist() == colour["B"] != colour["A"]
    assert ax.get_xlabel() == "training time per run (s, stage 2 on the recorded device)"
    assert ax.get_ylabel() == "test F1 (%)"
    assert ax.get_title() == "Performance and efficiency (points: runs; diamonds: means)"


def test_per_relation_three_panels_relations_ordered_by_support() -> None:
    rows = []
    for variant, base in (("A", 60.0), ("B", 40.0)):
        for relation, support, score in (("/per/per/peer", 3, base), ("/org/loc/in", 9, base + 10)):
            rows.append({"variant": variant, "relation": relation, "precision": score, "recall": score - 5,
                         "f1": score - 10, "support": support})
    fig = analysis_plots.per_relation(pd.DataFrame(rows))
    assert len(fig.axes) == 3
    assert [ax.get_xlabel() for ax in fig.axes] == ["precision (%)", "recall (%)", "f1 (%)"]
    assert labels(fig.axes[0].get_yticklabels()) == ["org/loc/in (9)", "per/per/peer (3)"]  # most support first
    for ax, shift in zip(fig.axes, (0, -5, -10)):
        a, b = bars(ax)  # bars follow the tick order, not the table's
        assert [p.get_width() for p in a] == [70 + shift, 60 + shift]
        assert [p.get_width() for p in b] == [50 + shift, 40 + shift]
    assert [ax.get_legend() is None for ax in fig.axes] == [True, True, False]
    assert legend_labels(fig.axes[-1]) == ["A", "B"]
    assert fig.get_suptitle() == "Per-relation scores on MNRE-2 test (seeds pooled; support in brackets)"


def test_confusion_heatmap_is_the_row_normalised_matrix() -> None:
    names = ["None", "/per/per/peer", "/org/loc/in"]
    counts = pd.DataFrame([[6, 2, 0], [1, 1, 2], [0, 0, 0]], index=pd.Index(names, name="gold"),
                          columns=pd.Index(names, name="predicted"))
    fig = analysis_plots.confusion(counts, "VM-HAN (Ours): row-normalised confusion")
    assert len(fig.axes) == 2  # the heatmap and its colour bar
    ax, colourbar = fig.axes
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    # rows = gold, columns = predicted; each non-empty row sums to 1, the empty one stays 0
    np.testing.assert_allclose(mesh.get_array().reshape(3, 3), [[0.75, 0.25, 0], [0.25, 0.25, 0.5], [0, 0, 0]])
    assert mesh.get_clim() == (0, 1)
    assert labels(ax.get_xticklabels()) == ["None", "per/per/peer", "org/loc/in"]
    assert labels(ax.get_yticklabels()) == ["None (8)", "per/per/peer (4)", "org/loc/in (0)"]  # gold rows
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "gold (count, seeds pooled)")
    assert ax.get_title() == "VM-HAN (Ours): row-normalised confusion"
    assert colourbar.get_ylabel() == "share of the gold row"


def test_variance_vs_error_bar_per_bin_with_counts_and_aurocs_in_the_title() -> None:
    bins = pd.DataFrame({"bin": [1, 2, 3], "n": [4, 4, 2], "errors": [1, 0, 2], "error_rate": [0.25, 0.0, 1.0]})
    aurocs = pd.DataFrame({"auroc_variance": [0.7, 0.8], "auroc_1_minus_confidence": [0.6, 0.5]})
    fig = analysis_plots.variance_vs_error(bins, aurocs)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    (group,) = bars(ax)
    assert centres_x(group) == [1, 2, 3] and [p.get_height() for p in group] == [25.0, 0.0, 100.0]
    assert [(t.get_text(), tuple(t.get_position())) for t in ax.texts] == [
        ("1/4", (1, 25.0)), ("0/4", (2, 0.0)), ("2/2", (3, 100.0))]  # errors / instances on each bar
    assert labels(ax.get_xticklabels()) == ["1", "2", "3"]
    assert ax.get_title() == "Does the variance flag errors?  AUROC variance 0.750, 1 - confidence 0.550"
    assert ax.get_xlabel() == "predicted-variance quantile bin within each run (1 = lowest)"
    assert ax.get_ylabel() == "error rate (%)"


def test_calibration_accuracy_bars_diagonal_confidence_points_and_counts() -> None:
    reliability = pd.DataFrame({"bin_low": [0.0, 0.5], "bin_high": [0.5, 1.0], "n": [0, 3],
                                "mean_confidence": [np.nan, 0.8], "accuracy": [np.nan, 2 / 3]})
    fig = analysis_plots.calibration(reliability, 0.1234)
    assert len(fig.axes) == 2
    top, bottom = fig.axes
    (accuracy,) = bars(top)
    assert centres_x(accuracy) == [0.25, 0.75]
    assert [p.get_width() for p in accuracy] == pytest.approx([0.45, 0.45])
    assert [p.get_height() for p in accuracy] == pytest.approx([0.0, 2 / 3])  # empty bin drawn at 0
    (diagonal,) = top.lines
    assert list(diagonal.get_xdata()) == [0, 1] and list(diagonal.get_ydata()) == [0, 1]
    (confidence,) = top.collections
    offsets = np.ma.getdata(confidence.get_offsets())
    assert offsets.shape == (2, 2) and tuple(offsets[1]) == (0.75, 0.8)
    assert sorted(legend_labels(top)) == ["accuracy", "mean confidence", "perfect calibration"]
    assert top.get_title() == "Reliability of max-probability confidence (ECE 12.34 %)"
    assert top.get_ylabel() == "accuracy"
    (count,) = bars(bottom)
    assert centres_x(count) == [0.25, 0.75] and [p.get_height() for p in count] == [0, 3]
    assert (bottom.get_xlabel(), bottom.get_ylabel()) == ("confidence (largest class probability)", "instances")
