"""Figures of the analyses (the paper's Figs. 3-6, per-relation scores, confusion, uncertainty).

Each function takes the DataFrame of one function of :mod:`vmhan_lib.analysis.breakdowns` or
:mod:`vmhan_lib.analysis.uncertainty` and returns a matplotlib figure; save it with
:func:`vmhan_lib.plots.save_figure`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def group_f1(summary: pd.DataFrame, title: str) -> plt.Figure:
    """Grouped bars: test F1 (mean ± sd over seeds) per group and model; the tick labels give each
    group's instances and gold non-None instances. ``summary`` is
    :func:`~vmhan_lib.analysis.breakdowns.summarize_groups`."""
    groups = list(dict.fromkeys(summary["group"]))
    variants = list(dict.fromkeys(summary["variant"]))
    width = 0.8 / max(1, len(variants))
    fig, ax = plt.subplots(figsize=(1.2 + 1.3 * len(variants) * len(groups) / 2, 4))
    for i, variant in enumerate(variants):
        rows = summary[summary["variant"] == variant].set_index("group").reindex(groups)
        x = np.arange(len(groups)) + (i - (len(variants) - 1) / 2) * width
        ax.bar(x, rows["f1"], width, yerr=rows["f1_std"], capsize=3, label=variant)
    sizes = summary.drop_duplicates("group").set_index("group")
    ax.set_xticks(range(len(groups)), [f"{g}\n(n={sizes.loc[g, 'n']}, non-None {sizes.loc[g, 'n_gold_positive']})"
                                       for g in groups])
    ax.set_ylim(0, max(1.0, 1.1 * float((summary["f1"] + summary["f1_std"]).max())))
    ax.set_ylabel("test F1 (%), mean ± sd over seeds")
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def visual_proportion(scores: pd.DataFrame) -> plt.Figure:
    """Fig. 5: accuracy, precision, recall and F1 against the proportion of instances with visual
    nodes (mean ± sd over seeds; dots = seeds). ``scores`` is
    :func:`~vmhan_lib.analysis.breakdowns.visual_proportion_scores`."""
    long = scores.melt(id_vars=["visual %", "seed"], value_vars=["accuracy", "precision", "recall", "f1"],
                       var_name="metric", value_name="percent")
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.lineplot(data=long, x="visual %", y="percent", hue="metric", marker="o", errorbar="sd", ax=ax)
    sns.scatterplot(data=long, x="visual %", y="percent", hue="metric", s=12, alpha=0.5, legend=False, ax=ax)
    ax.set_xticks(sorted(scores["visual %"].unique()))
    ax.set_xlabel("instances keeping their visual nodes (%), train and test")
    ax.set_ylabel("test score (%)")
    ax.set_title("VM-HAN with different proportions of visual information")
    fig.tight_layout()
    return fig


def efficiency(table: pd.DataFrame) -> plt.Figure:
    """Fig. 6: stage-2 training time against test F1, one small point per run and a large marker
    at each model's mean. ``table`` is :func:`~vmhan_lib.analysis.breakdowns.efficiency_table`."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    palette = dict(zip(dict.fromkeys(table["variant"]), sns.color_palette(n_colors=table["variant"].nunique())))
    for variant, runs in table.groupby("variant", sort=False):
        ax.scatter(runs["train_wall_s"], runs["f1"], color=palette[variant], s=15, alpha=0.6)
        ax.scatter(runs["train_wall_s"].mean(), runs["f1"].mean(), color=palette[variant], s=120, marker="D",
                   edgecolor="black", label=variant)
    ax.set_xlabel("training time per run (s, stage 2 on the recorded device)")
    ax.set_ylabel("test F1 (%)")
    ax.set_title("Performance and efficiency (points: runs; diamonds: means)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def per_relation(table: pd.DataFrame) -> plt.Figure:
    """Per-relation precision, recall and F1 of each model (seeds pooled), relations ordered by
    support, which the labels show. ``table`` is :func:`~vmhan_lib.analysis.breakdowns.per_relation_table`."""
    support = table.drop_duplicates("relation").set_index("relation")["support"].sort_values(ascending=False)
    labels = [f"{r.strip('/')} ({support[r]})" for r in support.index]
    fig, axes = plt.subplots(1, 3, figsize=(14, 0.3 * len(support) + 1.8), sharey=True)
    for ax, metric in zip(axes, ("precision", "recall", "f1")):
        sns.barplot(data=table, y="relation", x=metric, hue="variant", order=list(support.index), ax=ax,
                    orient="h", legend=ax is axes[-1])
        ax.set_xlabel(f"{metric} (%)")
        ax.set_ylabel("")
    axes[0].set_yticks(range(len(labels)), labels, fontsize=8)
    axes[-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.suptitle("Per-relation scores on MNRE-2 test (seeds pooled; support in brackets)")
    fig.tight_layout()
    return fig


def confusion(counts: pd.DataFrame, title: str) -> plt.Figure:
    """Row-normalised confusion heatmap (each gold row sums to 1; empty rows stay 0) with short
    label names. ``counts`` is :func:`~vmhan_lib.analysis.breakdowns.confusion_table`."""
    totals = counts.sum(axis=1).to_numpy()[:, None]
    normalised = np.divide(counts.to_numpy(), totals, out=np.zeros(counts.shape), where=totals > 0)
    names = [str(label).strip("/") for label in counts.index]
    fig, ax = plt.subplots(figsize=(11, 9.5))
    sns.heatmap(normalised, vmin=0, vmax=1, cmap="Blues", square=True, ax=ax,
                xticklabels=names, yticklabels=[f"{n} ({int(t)})" for n, t in zip(names, totals[:, 0])],
                cbar_kws={"label": "share of the gold row"})
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold (count, seeds pooled)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def variance_vs_error(bins: pd.DataFrame, aurocs: pd.DataFrame) -> plt.Figure:
    """Error rate per variance quantile bin (counts on the bars) with the AUROC of the variance and
    of 1 - confidence as error detectors in the title (mean over seeds)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(bins["bin"], 100 * bins["error_rate"], color="tab:purple", alpha=0.7)
    for row in bins.itertuples():
        ax.text(row.bin, 100 * row.error_rate, f"{row.errors}/{row.n}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(bins["bin"])
    ax.set_xlabel("predicted-variance quantile bin within each run (1 = lowest)")
    ax.set_ylabel("error rate (%)")
    ax.set_title(f"Does the variance flag errors?  AUROC variance {aurocs['auroc_variance'].mean():.3f}, "
                 f"1 - confidence {aurocs['auroc_1_minus_confidence'].mean():.3f}", fontsize=10)
    fig.tight_layout()
    return fig


def calibration(reliability: pd.DataFrame, ece: float) -> plt.Figure:
    """Reliability diagram: accuracy per confidence bin against the diagonal, with the bin counts
    as a second panel. ``reliability`` is :func:`~vmhan_lib.analysis.uncertainty.reliability_table`."""
    centres = (reliability["bin_low"] + reliability["bin_high"]) / 2
    width = float((reliability["bin_high"] - reliability["bin_low"]).iloc[0])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.bar(centres, reliability["accuracy"].fillna(0), width * 0.9, color="tab:blue", alpha=0.7, label="accuracy")
    top.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--", label="perfect calibration")
    top.scatter(centres, reliability["mean_confidence"], color="tab:red", s=12, zorder=3, label="mean confidence")
    top.set_ylabel("accuracy")
    top.set_title(f"Reliability of max-probability confidence (ECE {100 * ece:.2f} %)")
    top.legend(fontsize=8, loc="upper left")
    bottom.bar(centres, reliability["n"], width * 0.9, color="tab:gray")
    bottom.set_ylabel("instances")
    bottom.set_xlabel("confidence (largest class probability)")
    fig.tight_layout()
    return fig
