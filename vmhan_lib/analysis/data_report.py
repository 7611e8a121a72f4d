"""The data-statistics step: MNRE-2 (or MORE, ``data.dataset``) numbers to ``results/`` and their figures to ``figures/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from vmhan_lib.data.config import DataConfig

from vmhan_lib.paths import FIGURES_DIR, RESULTS_DIR
from vmhan_lib.data.statistics import dataset_statistics
from vmhan_lib.io import atomic_write_json, provenance
from vmhan_lib.plots import pairs_per_sentence, relation_distribution, save_figure

STATISTICS_FILE = "data_statistics.json"
RELATION_FIGURE = "data_relation_distribution.png"
PAIRS_FIGURE = "data_pairs_per_sentence.png"


def write_data_report(
    data: DataConfig, results_dir: str | Path = RESULTS_DIR, figures_dir: str | Path = FIGURES_DIR
) -> dict[str, Any]:
    """Compute the statistics of every split, save them as JSON with provenance, draw the figures.

    Returns the saved record (``statistics`` plus ``config``, git revision, versions).
    """
    named = {} if data.dataset == "mnre" else {"dataset": data.dataset}  # MNRE's record as before MORE
    record = provenance({"data": {"data_dir": str(data.path), **named}})
    record["statistics"] = dataset_statistics(data.path, data.dataset)
    atomic_write_json(Path(results_dir) / STATISTICS_FILE, record)
    for name, draw in ((RELATION_FIGURE, relation_distribution), (PAIRS_FIGURE, pairs_per_sentence)):
        fig = draw(record["statistics"])
        save_figure(fig, Path(figures_dir) / name)
        plt.close(fig)
    return record
