from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import pytest

import vmhan_lib.train.experiment as experiment
from vmhan_lib.model.variants import TABLE2_VARIANTS, VARIANTS
from vmhan_lib.train.experiment import TABLE1_VARIANTS, experiment_plan, run_experiments
from vmhan_lib.train.records import Prediction, RerunMismatchWarning, run_id, write_predictions, write_record


def test_plans_cover_both_tables_with_the_required_seeds() -> None:
    cpu = experiment_plan("cpu")
    assert set(TABLE1_VARIANTS) | set(TABLE2_VARIANTS) == set(cpu.variants) and set(cpu.variants) <= set(VARIANTS)
    assert len(cpu.seeds_of("VM-HAN (Ours)")) == 5 and len(cpu.seeds_of("repl. GAT")) == 3
    assert cpu.runs_dir.name == "runs" and cpu.runs_dir.parent.name == "results"
    tiny = experiment_plan("tiny")
    assert tiny.data.max_instances == 200 and tiny.runs_dir.parts[-3:] == ("results", "tiny", "runs")
    full = experiment_plan("full")
    assert full.encoder_train.lr == 2e-5 and full.encoder_train.batch_size == 16 and full.train.batch_size == 16


def test_complete_records_are_read_without_loading_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = replace(experiment_plan("tiny"), runs_dir=tmp_path, variants=("VM-HAN (Ours)", "repl. GCN"))
    for variant in plan.variants:
        run_dir = tmp_path / run_id("tiny", variant, 0)
        write_predictions(run_dir, [Prediction(0, "None", "None", (1.0,))])
        write_record(run_dir, {"variant": variant, "seed": 0, "complete": True})

    def must_not_load(*args, **kwargs):
        raise AssertionError("prepare_inputs called although every run is complete")

    monkeypatch.setattr(experiment, "prepare_inputs", must_not_load)
    records = run_experiments(plan, progress=False)
    assert [r["variant"] for r in records] == ["VM-HAN (Ours)", "repl. GCN"]


def test_retrained_checkpoint_is_compared_with_its_committed_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.train.test_loop import VOCAB, _split

    inputs = {"train": _split(64, 0), "val": _split(32, 1), "test": _split(32, 2)}
    monkeypatch.setattr(experiment, "prepare_inputs", lambda plan, progress=True: (inputs, {"features": {}}))
    monkeypatch.setattr(experiment, "load_relation_vocab", lambda path: VOCAB)
    monkeypatch.setattr(experiment, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    plan = replace(experiment_plan("tiny"), runs_dir=tmp_path / "runs", model_preset="tiny")
    committed = plan.runs_dir / run_id("tiny", "VM-HAN (Ours)", 0)
    wrong = {"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    write_predictions(committed, [Prediction(0, "None", "None", (1.0,))])
    write_record(committed, {"variant": "VM-HAN (Ours)", "seed": 0, "test": wrong, "complete": True})

    with pytest.warns(RerunMismatchWarning, match="committed record 0.00"):
        checkpoint_dir = experiment.retrain_checkpoint(plan, "VM-HAN (Ours)", 0, progress=False)
    assert (checkpoint_dir / "best.pt").is_file()
    assert experiment.read_record(committed)["test"] == wrong  # never touched

    rerun = experiment.read_record(checkpoint_dir / "rerun")
    write_record(committed, {"variant": "VM-HAN (Ours)", "seed": 0, "test": rerun["test"], "complete": True})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RerunMismatchWarning)
        experiment.retrain_checkpoint(plan, "VM-HAN (Ours)", 0, progress=False)
