"""Figures of the workbook. Each function reads result dictionaries and returns a matplotlib figure."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from vmhan_lib.io import atomic_write_bytes


def save_figure(fig: plt.Figure, path: str | Path, dpi: int = 150) -> Path:
    """Save ``fig`` as PNG atomically (a crash never leaves a half-written image)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def relation_distribution(stats: dict[str, Any], log_scale: bool = True) -> plt.Figure:
    """Horizontal bars: instances per relation label, one colour per split.

    Args:
        stats: the output of :func:`vmhan_lib.data.statistics.dataset_statistics`.
        log_scale: ``None`` dominates every split, so a log axis keeps rare relations visible.
    """
    rows = [{"relation": label.strip("/"), "split": split, "instances": count}
            for split, split_stats in stats["splits"].items()
            for label, count in split_stats["relation_counts"].items()]
    frame = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(8, 7))
    sns.barplot(data=frame, y="relation", x="instances", hue="split", ax=ax, orient="h")
    if log_scale:
        ax.set_xscale("log")
    ax.set_xlabel("instances" + (" (log scale)" if log_scale else ""))
    ax.set_ylabel("")
    ax.set_title("MNRE-2: relation distribution per split")
    fig.tight_layout()
    return fig


def pairs_per_sentence(stats: dict[str, Any]) -> plt.Figure:
    """Bars: how many sentences have 1, 2, ... labelled entity pairs, per split."""
    rows = [{"pairs": int(k), "split": split, "sentences": v} for split, split_stats in stats["splits"].items()
            for k, v in split_stats["pairs_per_sentence"].items()]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    sns.barplot(data=pd.DataFrame(rows), x="pairs", y="sentences", hue="split", ax=ax)
    ax.set_yscale("log")
    ax.set_xlabel("entity pairs per sentence")
    ax.set_ylabel("sentences (log scale)")
    ax.set_title("MNRE-2: entity pairs per sentence")
    fig.tight_layout()
    return fig


def training_curves(records: list[dict[str, Any]]) -> plt.Figure:
    """Dev F1 per epoch of every run (thin lines) and the mean per variant (thick), one panel per
    variant family; records are run records (``record.json``)."""
    rows = [{"variant": r["variant"], "seed": r["seed"], "epoch": e["epoch"], "dev F1 (%)": 100 * e["dev"]["f1"],
            "train loss": e["train_loss"]["total"]} for r in records for e in r["epochs"]]
    frame = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for ax, column in zip(axes, ("dev F1 (%)", "train loss")):
        sns.lineplot(data=frame, x="epoch", y=column, hue="variant", ax=ax, errorbar="sd", legend=ax is axes[1])
        ax.set_title(f"{column} per epoch (mean ± sd over seeds)")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def main_results(summary: pd.DataFrame, paper_f1: dict[str, float]) -> plt.Figure:
    """Test F1 of our models (mean ± sd over seeds, dots = seeds) beside the paper's number."""
    order = list(summary.index)
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(order) + 1.5))
    y = range(len(order))
    ax.barh(y, summary["f1"], xerr=summary["f1_std"], color="tab:blue", alpha=0.6, label="ours (mean ± sd)")
    for i, variant in enumerate(order):
        ax.scatter(summary.loc[variant, "f1_per_seed"], [i] * len(summary.loc[variant, "f1_per_seed"]),
                   color="tab:blue", s=12, zorder=3)
        if variant in paper_f1:
            ax.scatter([paper_f1[variant]], [i], marker="x", color="tab:red", s=60, zorder=4,
                       label="paper" if i == order.index(next(v for v in order if v in paper_f1)) else None)
    ax.set_yticks(list(y), order)
    ax.invert_yaxis()
    ax.set_xlabel("MNRE-2 test F1 (%)")
    ax.legend(loc="lower right")
    ax.set_title("Main results: our runs vs the paper's reported F1")
    fig.tight_layout()
    return fig


def ablation_deltas(table: pd.DataFrame) -> plt.Figure:
    """ΔF1 of each ablation against full VM-HAN with its 95 % bootstrap interval (blue: p < 0.05);
    the paper's ΔAvg as red crosses. ``table`` is :func:`vmhan_lib.analysis.tables.table2`."""
    rows = [row for row in table.to_dict("records") if isinstance(row.get("ΔF1 95% CI"), str)]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
    for i, row in enumerate(rows):
        low, high = (float(x) for x in row["ΔF1 95% CI"].strip("[]").split(","))
        colour = "tab:blue" if row["p (bootstrap)"] < 0.05 else "tab:gray"
        ax.plot([low, high], [i, i], color=colour, lw=2)
        ax.scatter([row["ΔF1"]], [i], color=colour, zorder=3)
        if not pd.isna(row.get("paper ΔAvg", float("nan"))):
            ax.scatter([row["paper ΔAvg"]], [i], marker="x", color="tab:red", zorder=4)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(rows)), [row["variant"] for row in rows])
    ax.invert_yaxis()
    ax.set_xlabel("Δ test F1 vs VM-HAN (points, 95 % CI; blue: p < 0.05); red x: paper's ΔAvg")
    ax.set_title("Ablations against full VM-HAN")
    fig.tight_layout()
    return fig


def controlled_signal(summary: pd.DataFrame, drops: pd.DataFrame, baseline: str = "Text-only") -> plt.Figure:
    """The controlled visual-signal study: test F1 (mean ± sd over seeds) against the strength s,
    one panel per arm, the baseline (which reads no visual node) as a band; last panel, the
    visual-shuffle drop against s (object arm dashed). One colour per model in every panel.
    ``summary`` / ``drops``: :func:`~vmhan_lib.analysis.controlled_signal.signal_summary` / ``shuffle_summary``."""
    arms = list(dict.fromkeys(summary.loc[summary["model"] != baseline, "arm"]))
    strengths = sorted(summary["s"].unique())
    models = list(dict.fromkeys([*summary["model"], *drops["model"]]))
    colour = dict(zip(models, sns.color_palette(n_colors=len(models))))
    fig, axes = plt.subplots(1, len(arms) + 1, figsize=(5 * (len(arms) + 1), 4))
    reference = summary[summary["model"] == baseline].iloc[0]
    for ax, arm in zip(axes, arms):
        ax.axhspan(reference.f1 - reference.f1_std, reference.f1 + reference.f1_std, color="grey", alpha=0.3,
                   label=f"{baseline} (± sd)")
        for model, rows in summary[(summary["arm"] == arm) & (summary["model"] != baseline)].groupby("model", sort=False):
            ax.errorbar([strengths.index(s) for s in rows["s"]], rows["f1"], yerr=rows["f1_std"], marker="o",
                        capsize=3, color=colour[model], label=model)
        ax.set_title(f"controlled visual signal: {arm} arm")
        ax.set_ylabel("test F1 (%), mean ± sd over seeds")
    for (model, arm), rows in drops.groupby(["model", "arm"], sort=False):
        axes[-1].errorbar([strengths.index(s) for s in rows["s"]], rows["drop"], yerr=rows["drop_std"], marker="o",
                          capsize=3, color=colour[model], linestyle="--" if arm == "object" else "-",
                          label=f"{model} ({arm})")
    axes[-1].axhline(0, color="black", linewidth=0.8)
    axes[-1].set_title("controlled visual signal: visual-shuffle drop")
    axes[-1].set_ylabel("F1 lost when visual nodes are shuffled (points)")
    for ax in axes:
        ax.set_xticks(range(len(strengths)), [f"{s:g}" for s in strengths])
        ax.set_xlabel("signal strength s (x mean visual norm)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
