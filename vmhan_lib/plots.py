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
    rows = [
        {"relation": label.strip("/"), "split": split, "instances": count}
        for split, split_stats in stats["splits"].items()
        for label, count in split_stats["relation_counts"].items()
    ]
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
    rows = [
        {"pairs": int(k), "split": split, "sentences": v}
        for split, split_stats in stats["splits"].items()
        for k, v in split_stats["pairs_per_sentence"].items()
    ]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    sns.barplot(data=pd.DataFrame(rows), x="pairs", y="sentences", hue="split", ax=ax)
    ax.set_yscale("log")
    ax.set_xlabel("entity pairs per sentence")
    ax.set_ylabel("sentences (log scale)")
    ax.set_title("MNRE-2: entity pairs per sentence")
    fig.tight_layout()
    return fig
