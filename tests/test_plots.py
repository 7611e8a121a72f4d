"""The workbook figures show what their input says: one bar / line / point per entry, the right
labels in the right order, error bars equal to the spread given; save_figure writes a PNG."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from tests.figure_reading import bars, labels, legend_labels
from vmhan_lib import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BLUE, GRAY, RED = to_rgba("tab:blue"), to_rgba("tab:gray"), to_rgba("tab:red")

# Two splits of a dataset_statistics() output; the test split has no sentence with 2 pairs, and the
# train counts are out of order (the bars must follow the number of pairs).
STATS = {"splits": {
    "train": {"relation_counts": {"None": 100, "/per/per/peer": 10, "/org/loc/in": 0},
              "pairs_per_sentence": {"2": 7, "1": 50, "3": 1}},
    "test": {"relation_counts": {"None": 30, "/per/per/peer": 3, "/org/loc/in": 2},
             "pairs_per_sentence": {"1": 20, "3": 2}},
}}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def data_lines(ax: plt.Axes) -> list:
    """Lines that carry data (seaborn adds empty lines as legend handles)."""
    return [line for line in ax.lines if len(line.get_xdata())]


def points(collection) -> list[tuple[float, float]]:
    return [tuple(float(v) for v in xy) for xy in np.asarray(collection.get_offsets())]


def test_save_figure_writes_a_png_atomically_at_the_dpi_asked(tmp_path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    target = tmp_path / "new" / "dir" / "fig.png"
    assert plots.save_figure(fig, target, dpi=50) == target
    low = target.read_bytes()
    assert low.startswith(PNG_SIGNATURE) and low[12:16] == b"IHDR"
    assert [p.name for p in target.parent.iterdir()] == ["fig.png"]  # no temporary file left
    plots.save_figure(fig, target, dpi=100)
    high = target.read_bytes()
    assert high.startswith(PNG_SIGNATURE)
    size = {name: (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))
            for name, data in (("low", low), ("high", high))}
    assert size["high"][0] == pytest.approx(2 * size["low"][0], abs=3)
    assert size["high"][1] == pytest.approx(2 * size["low"][1], abs=3)
    # the figure stays open: the notebooks save a figure, then show it inline
    assert plt.fignum_exists(fig.number)
    plt.close(fig)
    assert not plt.fignum_exists(fig.number)


@pytest.mark.parametrize("log_scale", [True, False])
def test_relation_distribution_one_bar_per_relation_and_split(log_scale: bool) -> None:
    fig = plots.relation_distribution(STATS, log_scale=log_scale)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert labels(ax.get_yticklabels()) == ["None", "per/per/peer", "org/loc/in"]  # leading "/" stripped
    assert legend_labels(ax) == ["train", "test"]
    groups = bars(ax)
    assert [[p.get_width() for p in group] for group in groups] == [[100, 10, 0], [30, 3, 2]]  # horizontal bars
    for group in groups:
        assert [round(p.get_y() + p.get_height() / 2) for p in group] == [0, 1, 2]  # on their relation's row
    assert ax.get_xscale() == ("log" if log_scale else "linear")
    assert ax.get_xlabel() == ("instances (log scale)" if log_scale else "instances") and ax.get_ylabel() == ""
    assert ax.get_title() == "MNRE-2: relation distribution per split"


def test_pairs_per_sentence_one_bar_per_count_present_in_each_split() -> None:
    fig = plots.pairs_per_sentence(STATS)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert labels(ax.get_xticklabels()) == ["1", "2", "3"]
    assert legend_labels(ax) == ["train", "test"]
    train, test = bars(ax)
    assert [p.get_height() for p in train] == [50, 7, 1] and [p.get_height() for p in test] == [20, 2]
    assert [round(p.get_x() + p.get_width() / 2) for p in train] == [0, 1, 2]
    assert [round(p.get_x() + p.get_width() / 2) for p in test] == [0, 2]  # the test split has no 2-pair sentence
    assert ax.get_yscale() == "log"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("entity pairs per sentence", "sentences (log scale)")
    assert ax.get_title() == "MNRE-2: entity pairs per sentence"


def _record(variant: str, seed: int, dev_f1: list[float], loss: list[float]) -> dict:
    epochs = [{"epoch": i + 1, "dev": {"f1": f1}, "train_loss": {"total": total}}
              for i, (f1, total) in enumerate(zip(dev_f1, loss))]
    return {"variant": variant, "seed": seed, "epochs": epochs}


def test_training_curves_one_mean_line_per_variant_and_a_sd_band() -> None:
    records = [_record("A", 0, [0.1, 0.2, 0.3], [3.0, 2.0, 1.0]), _record("A", 1, [0.3, 0.4, 0.5], [5.0, 4.0, 3.0]),
               _record("B", 0, [0.5, 0.5, 0.6], [1.0, 1.0, 1.0])]
    fig = plots.training_curves(records)
    assert len(fig.axes) == 2
    dev, loss = fig.axes
    assert dev.get_title() == "dev F1 (%) per epoch (mean ± sd over seeds)"
    assert loss.get_title() == "train loss per epoch (mean ± sd over seeds)"
    assert [ax.get_xlabel() for ax in fig.axes] == ["epoch", "epoch"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["dev F1 (%)", "train loss"]
    expected = {dev: ([20.0, 30.0, 40.0], [50.0, 50.0, 60.0]), loss: ([4.0, 3.0, 2.0], [1.0, 1.0, 1.0])}
    for ax, (mean_a, mean_b) in expected.items():
        lines = data_lines(ax)
        assert len(lines) == 2
        assert [list(line.get_xdata()) for line in lines] == [[1, 2, 3], [1, 2, 3]]
        np.testing.assert_allclose(lines[0].get_ydata(), mean_a)  # dev F1 in percent, mean over seeds
        np.testing.assert_allclose(lines[1].get_ydata(), mean_b)
    band = dev.collections[0].get_paths()[0].vertices[:, 1]  # A: mean ± sd (ddof=1) of 10/30, 20/40, 30/50
    assert (band.min(), band.max()) == pytest.approx((20 - np.sqrt(200), 40 + np.sqrt(200)))
    assert dev.get_legend() is None and legend_labels(loss) == ["A", "B"]


def test_main_results_bars_error_bars_seeds_and_paper_crosses() -> None:
    order = ["VM-HAN (Ours)", "GCN", "Text-only"]
    summary = pd.DataFrame({"f1": [60.0, 50.0, 40.0], "f1_std": [1.0, 2.0, 0.5],
                            "f1_per_seed": [[59.0, 61.0], [48.0, 52.0], [40.0]]}, index=order)
    fig = plots.main_results(summary, {"VM-HAN (Ours)": 65.0, "Text-only": 45.0, "MORE": 80.0})
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert labels(ax.get_yticklabels()) == order and ax.yaxis_inverted()  # first variant on top
    (group,) = bars(ax)
    assert [p.get_width() for p in group] == [60.0, 50.0, 40.0]
    assert [p.get_y() + p.get_height() / 2 for p in group] == [0, 1, 2]
    segments = group.errorbar.lines[2][0].get_segments()  # horizontal error bars
    assert [(float(s[0, 0]), float(s[1, 0]), float(s[0, 1])) for s in segments] == [
        (59.0, 61.0, 0.0), (48.0, 52.0, 1.0), (39.5, 40.5, 2.0)]
    scatters = [c for c in ax.collections if len(c.get_offsets()) and c is not group.errorbar.lines[2][0]]
    seeds = [points(c) for c in scatters if tuple(c.get_facecolor()[0]) == BLUE]
    assert seeds == [[(59.0, 0.0), (61.0, 0.0)], [(48.0, 1.0), (52.0, 1.0)], [(40.0, 2.0)]]
    paper = [points(c) for c in scatters if tuple(c.get_facecolor()[0]) == RED]
    assert paper == [[(65.0, 0.0)], [(45.0, 2.0)]]  # none for GCN; MORE is not among our rows
    assert sorted(legend_labels(ax)) == ["ours (mean ± sd)", "paper"]
    assert ax.get_xlabel() == "MNRE-2 test F1 (%)"
    assert ax.get_title() == "Main results: our runs vs the paper's reported F1"


def test_ablation_deltas_one_interval_per_ablation_coloured_by_significance() -> None:
    table = pd.DataFrame([
        {"variant": "VM-HAN (Ours)", "ΔF1": 0.0, "ΔF1 95% CI": np.nan, "p (bootstrap)": np.nan, "paper ΔAvg": np.nan},
        {"variant": "w/o KL Loss", "ΔF1": -2.0, "ΔF1 95% CI": "[-3.50, -0.50]", "p (bootstrap)": 0.01,
         "paper ΔAvg": -1.2},
        {"variant": "repl. GCN", "ΔF1": 0.5, "ΔF1 95% CI": "[-1.00, 2.00]", "p (bootstrap)": 0.4, "paper ΔAvg": np.nan},
    ])
    fig = plots.ablation_deltas(table)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert labels(ax.get_yticklabels()) == ["w/o KL Loss", "repl. GCN"] and ax.yaxis_inverted()  # full model: no row
    intervals = [(list(map(float, line.get_xdata())), list(map(float, line.get_ydata())), to_rgba(line.get_color()))
                 for line in ax.lines if to_rgba(line.get_color()) != to_rgba("black")]
    assert intervals == [([-3.5, -0.5], [0.0, 0.0], BLUE), ([-1.0, 2.0], [1.0, 1.0], GRAY)]
    zero = [line for line in ax.lines if to_rgba(line.get_color()) == to_rgba("black")]
    assert len(zero) == 1 and list(zero[0].get_xdata()) == [0, 0]
    marks = [(points(c)[0], tuple(c.get_facecolor()[0])) for c in ax.collections]
    assert marks == [((-2.0, 0.0), BLUE), ((-1.2, 0.0), RED), ((0.5, 1.0), GRAY)]  # ΔF1, paper ΔAvg, ΔF1
    assert ax.get_xlabel() == "Δ test F1 vs VM-HAN (points, 95 % CI; blue: p < 0.05); red x: paper's ΔAvg"
    assert ax.get_title() == "Ablations against full VM-HAN"
