"""The fit gap: each run's best model scored on the inputs it was trained on; its dev and test
columns agree with the fit loop's own record (joint runs: tests/train/test_joint_task.py); the
sentence follows the numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from vmhan_lib.analysis import fit_gap as fg
from vmhan_lib.analysis.run_analyses import training_settings
from vmhan_lib.config import run_config
from vmhan_lib.train.jobs import Job, RunPaths
from vmhan_lib.train.runner import run_jobs

SETTINGS = {"data.max_instances": 24, "encoder_train.epochs": 1, "train.epochs": 2, "train.lr": 1e-2, "device": "cpu"}


def test_fit_gap_rows_score_the_training_inputs_and_agree_with_the_records(
        mnre_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = run_config("tiny", str(mnre_dir), {**SETTINGS, "features.cache_dir": str(tmp_path / "cache")})
    paths = RunPaths(tmp_path / "runs", tmp_path / "ckpt")
    monkeypatch.setattr(RunPaths, "of", classmethod(lambda cls, c: paths))
    jobs = [Job("VM-HAN (Ours)", 0), Job("Text-only", 0)]
    records = run_jobs(config, jobs, need_models=True, paths=paths, progress=False)
    settings = training_settings(config, ["two-stage", "joint"], lambda c: jobs)
    table = fg.fit_gap_results(settings, tmp_path)
    assert table["variant"].tolist() == ["VM-HAN (Ours)", "Text-only"]  # joint: no runs recorded
    for row, record in zip(table.itertuples(), records):
        assert row.dev_f1 == pytest.approx(100 * record["dev"]["f1"]) and row.test_f1 == pytest.approx(100 * record["test"]["f1"])
        assert row.test_accuracy == pytest.approx(100 * record["test"]["accuracy"])
        assert 0 <= row.train_accuracy <= 100 and row.gap_accuracy == pytest.approx(row.train_accuracy - row.dev_accuracy)
    assert (tmp_path / fg.FIT_GAP_FILE).is_file()


def test_summary_and_sentence_follow_the_numbers() -> None:
    base = {"encoder": "all-MiniLM-L6-v2", "visual_source": "captions", "run_digest": "x", "train_accuracy": 90.0,
            "dev_accuracy": 75.0, "test_accuracy": 75.0, "test_f1": 62.0, "gap_accuracy": 15.0}
    rows = [{**base, "variant": "VM-HAN (Ours)", "seed": s, "training": "two-stage", "train_f1": 80.0 + s,
             "dev_f1": 59.0, "gap_f1": 21.0 + s} for s in (0, 1)]
    rows += [{**base, "variant": "VM-HAN (Ours)", "seed": 0, "training": "out-of-fold", "train_f1": 62.0,
              "dev_f1": 60.0, "gap_f1": 2.0, "test_f1": 63.5}]
    summary = fg.fit_gap_summary(pd.DataFrame(rows))
    first = summary.iloc[0]
    assert (first.training, first.train_f1, first.gap_f1, first.seeds) == ("two-stage", 80.5, 21.5, [0, 1])
    assert first.gap_f1_std == pytest.approx(0.7071, abs=1e-4) and summary.iloc[1].gap_f1_std == 0.0
    sentence = fg.fit_gap_sentence(pd.DataFrame(rows))
    assert "a train-dev F1 gap of 21.50 ± 0.71 points" in sentence
    assert "change VM-HAN (Ours)'s train-dev F1 gap from 21.50 to 2.00 points and its test F1 from 62.00 to 63.50" in sentence
    assert "nothing to score" in fg.fit_gap_sentence(pd.DataFrame())
