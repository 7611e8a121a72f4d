"""Reading a drawn matplotlib figure back, for the plot tests."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.container import BarContainer


def bars(ax: plt.Axes) -> list[BarContainer]:
    """The bar groups of ``ax`` in drawing order (one per hue level / call to ``bar``)."""
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def labels(texts) -> list[str]:
    return [t.get_text() for t in texts]


def legend_labels(ax: plt.Axes) -> list[str]:
    return labels(ax.get_legend().get_texts())
