"""Per-run analysis rows kept across machines: computed where the model is, else the stored row of
the same run and settings; stale rows dropped and named; rows of other runs kept in the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import vmhan_lib.analysis.run_analyses as ra
from vmhan_lib.config import run_config
from vmhan_lib.train.jobs import Job


def _settings(data_dir: Path, lr: float = 1e-3):
    config = run_config("tiny", str(data_dir), {"train.lr": lr, "data.captioners": ["qwen"],
                                                "features.visual_selection_captioner": "qwen"})
    return ra.training_settings(config, ["two-stage", "out-of-fold"], lambda c: [Job("GCN", 0), Job("GAT", 0)])


def test_rows_are_computed_reused_or_dropped_by_run_identity(tiny_mnre: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    path = tmp_path / "analysis.csv"
    at_hand = {"on": True, "only": ""}
    monkeypatch.setattr(ra, "best_model_ready", lambda folder, digest: at_hand["on"] and at_hand["only"] in folder.name)
    calls = []

    def compute(config, jobs):
        calls.append((config.experiment.training, [j.name for j in jobs]))
        return [{"score": 10.0 * len(calls) + i} for i, _ in enumerate(jobs)]

    settings = _settings(tiny_mnre)
    first = ra.per_run_rows(settings, path, compute, {"permutations": 5}, "demo")
    assert calls == [("two-stage", ["GCN", "GAT"]), ("out-of-fold", ["GCN", "GAT"])]
    assert first["score"].tolist() == [10.0, 11.0, 20.0, 21.0] and first["permutations"].tolist() == [5] * 4
    assert first["training"].tolist() == ["two-stage"] * 2 + ["out-of-fold"] * 2
    assert first["run_digest"].nunique() == 4 and list(first.columns[:6]) == list(ra.RUN_COLUMNS)

    at_hand["on"] = False  # a fresh clone: the stored rows of the same runs and settings
    again = ra.per_run_rows(settings, path, compute, {"permutations": 5}, "demo")
    assert len(calls) == 2 and again["score"].tolist() == first["score"].tolist()
    assert "read from" in capsys.readouterr().out
    other_settings = ra.per_run_rows(settings, path, compute, {"permutations": 3}, "demo")
    assert other_settings.empty and "GCN seed 0 (two-stage) left out: no checkpoint at hand; its stored row is of " \
                                   "another run or other settings" in capsys.readouterr().out

    changed = _settings(tiny_mnre, lr=2e-3)  # the runs were trained again with another lr: old rows do not count
    assert ra.per_run_rows(changed, path, compute, {"permutations": 5}, "demo").empty
    at_hand["on"] = True
    only_two_stage = changed[:1]
    recomputed = ra.per_run_rows(only_two_stage, path, compute, {"permutations": 5}, "demo")
    assert recomputed["score"].tolist() == [30.0, 31.0]
    stored = pd.read_csv(path)  # the out-of-fold rows, not analysed now, are kept in the file
    assert stored["training"].tolist() == ["two-stage", "two-stage", "out-of-fold", "out-of-fold"]
    assert stored["score"].tolist() == [30.0, 31.0, 20.0, 21.0]

    at_hand["only"] = "gcn"  # one model at hand, analysed with other settings: every stored row stays in the file
    three = ra.per_run_rows(only_two_stage, path, compute, {"permutations": 3}, "demo")
    assert three["variant"].tolist() == ["GCN"] and three["permutations"].tolist() == [3]
    kept = pd.read_csv(path)
    assert len(kept) == 5 and sorted(kept["permutations"]) == [3, 5, 5, 5, 5]
    assert ra.per_run_rows(only_two_stage, path, compute, {"permutations": 5}, "demo")["score"].tolist() == [50.0, 31.0]


def test_a_setting_that_cannot_be_computed_reads_its_rows_and_says_why(tiny_mnre: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(ra, "best_model_ready", lambda folder, digest: True)
    table = ra.per_run_rows(_settings(tiny_mnre)[:1], tmp_path / "a.csv", lambda c, jobs: pytest.fail("computed"), {},
                            "demo", ready=lambda config: "its encoder is not here")
    assert table.empty and "GAT seed 0 (two-stage) left out: its encoder is not here" in capsys.readouterr().out


def test_rows_of_another_code_version_leave_the_file_when_it_is_written(tiny_mnre: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "analysis.csv"
    ready = {"on": True}
    monkeypatch.setattr(ra, "best_model_ready", lambda folder, digest: ready["on"])
    settings = _settings(tiny_mnre)[:1]
    ra.per_run_rows(settings, path, lambda c, jobs: [{"score": 1.0} for _ in jobs], {"code": "v1"}, "demo")
    ready["on"] = False
    assert ra.per_run_rows(settings, path, lambda c, jobs: [], {"code": "v2"}, "demo").empty  # v1 rows do not count
    ready["on"] = True
    ra.per_run_rows(settings, path, lambda c, jobs: [{"score": 2.0} for _ in jobs], {"code": "v2"}, "demo")
    stored = pd.read_csv(path)
    assert stored["code"].tolist() == ["v2", "v2"] and stored["score"].tolist() == [2.0, 2.0]
