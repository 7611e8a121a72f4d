"""The fit gap of stage 2: how much better a dev-selected model scores on its own training
instances than on dev and test, with in-fold (``two-stage``) and out-of-fold stage-1 features.

In ``two-stage`` training the stage-2 train features come from an encoder fine-tuned on those same
instances: on train the text alone already separates the classes better than it will on dev, and
a model has little reason to read the visual nodes. ``out-of-fold`` features (cross-fitting,
:mod:`vmhan_lib.train.runner`) are meant to close that gap. Each run's best model is scored on
the very inputs it was trained and selected on (:func:`~vmhan_lib.train.stage1.prepare_inputs`:
the out-of-fold train features for ``out-of-fold`` runs), so the train column is the fit the model
saw. A ``joint`` run's text features changed with every step; it is scored on every split encoded
by its own exported, fine-tuned encoder (the features of its dev-selected evaluation), so its train
column is the fit of the dev-selected model. Rows are kept in ``results/fit_gap.csv``
(:func:`~vmhan_lib.analysis.run_analyses.per_run_rows`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from vmhan_lib.identity import CODE_VERSIONS
from vmhan_lib.analysis.run_analyses import Settings, per_run_rows
from vmhan_lib.config import RunConfig
from vmhan_lib.data.mnre import SPLITS
from vmhan_lib.data.splits import load_vocab
from vmhan_lib.train.checkpoints import (best_checkpoint_path, checkpoint_features, checkpoint_inputs,
                                         load_best_checkpoint, model_from_checkpoint)
from vmhan_lib.train.execution import run_device
from vmhan_lib.train.fit import scores_of
from vmhan_lib.train.hypergraph_task import predict_nodes
from vmhan_lib.train.jobs import Job, RunPaths
from vmhan_lib.train.stage1 import prepare_inputs, stage1_ready

FIT_GAP_FILE = "fit_gap.csv"
SPLIT_COLUMNS = {"train": "train", "val": "dev", "test": "test"}
"""Column prefix of each split's scores."""


def fit_gap_rows(config: RunConfig, jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """Accuracy and F1 (percent) on train, dev and test of each job's best model (checkpoint at
    hand), on the inputs it was trained on (``joint``: encoded by its own exported encoder), and the
    train-minus-dev gaps.

    Raises:
        ValueError: Fig. 5 runs (trained on a share of the visual nodes).
    """
    if any(job.visual_proportion is not None for job in jobs):
        raise ValueError("the fit gap covers table runs, not Fig. 5 runs (trained on part of the visual nodes)")
    joint = config.experiment.training == "joint"
    shared = None if joint else prepare_inputs(config, RunPaths.of(config), progress=False).data
    vocab = load_vocab(config.data)
    device = run_device(config)
    rows = []
    for job in jobs:
        path = best_checkpoint_path(config, job)
        checkpoint = load_best_checkpoint(path)
        model, model_config = model_from_checkpoint(checkpoint)
        model = model.to(device)
        data = checkpoint_inputs(config, checkpoint_features(checkpoint, path)) if shared is None else shared
        row: dict[str, Any] = {}
        for split in SPLITS:
            nodes, labels = data[split].nodes, data[split].labels
            scores = scores_of(vocab, labels, predict_nodes(model, nodes, model_config, config.eval_batch_size,
                                                            device).probabilities)
            row.update({f"{SPLIT_COLUMNS[split]}_{metric}": 100 * scores[metric] for metric in ("accuracy", "f1")})
        row["gap_accuracy"] = row["train_accuracy"] - row["dev_accuracy"]
        row["gap_f1"] = row["train_f1"] - row["dev_f1"]
        rows.append(row)
    return rows


def _ready(config: RunConfig) -> str | None:
    """Why :func:`fit_gap_rows` cannot run for ``config`` here, or None."""
    if not stage1_ready(config, RunPaths.of(config)):
        return "its stage-1 encoder(s) not at hand (the features it was trained on cannot be rebuilt without training)"
    return None


def fit_gap_results(settings: Settings, results_dir: Path) -> pd.DataFrame:
    """:func:`fit_gap_rows` of every run of ``settings`` where its model and stage-1 encoders are at
    hand, else its current row of ``results_dir/fit_gap.csv``; written back to that file."""
    return per_run_rows(settings, Path(results_dir) / FIT_GAP_FILE, fit_gap_rows, {"code": CODE_VERSIONS["fit-gap"]},
                        "fit gap", ready=_ready)


def fit_gap_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds (ddof=1; 0 for one seed) of each score, per training
    mode and variant."""
    if table.empty:
        return table
    scores = [c for c in table.columns if c.endswith(("_accuracy", "_f1"))]
    grouped = table.groupby(["training", "variant"], sort=False)
    summary = grouped[scores].mean().join(grouped[scores].std(ddof=1).fillna(0.0).add_suffix("_std"))
    summary["seeds"] = grouped["seed"].apply(lambda s: sorted(s.tolist()))
    return summary.reset_index()


def fit_gap_sentence(table: pd.DataFrame) -> str:
    """One sentence per (training mode, variant), computed from the numbers: the mean train and dev
    accuracy and F1 and their gap; then, when both modes are there, how much out-of-fold features
    change the F1 gap."""
    summary = fit_gap_summary(table)
    if summary.empty:
        return "No trained model at hand and no stored rows: the fit gap has nothing to score."
    lines = [
        f"{row.variant} ({row.training}, seeds {row.seeds}): train accuracy {row.train_accuracy:.2f} / F1 "
        f"{row.train_f1:.2f}, dev {row.dev_accuracy:.2f} / {row.dev_f1:.2f}, a train-dev F1 gap of "
        f"{row.gap_f1:.2f} ± {row.gap_f1_std:.2f} points (test F1 {row.test_f1:.2f} ± {row.test_f1_std:.2f})."
        for row in summary.itertuples()
    ]
    by_mode = {(r.training, r.variant): r for r in summary.itertuples()}
    for variant in dict.fromkeys(summary["variant"]):
        if ("two-stage", variant) in by_mode and ("out-of-fold", variant) in by_mode:
            before, after = by_mode[("two-stage", variant)], by_mode[("out-of-fold", variant)]
            lines.append(f"Out-of-fold features change {variant}'s train-dev F1 gap from {before.gap_f1:.2f} to "
                         f"{after.gap_f1:.2f} points and its test F1 from {before.test_f1:.2f} to {after.test_f1:.2f}.")
    return " ".join(lines)
