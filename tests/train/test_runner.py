"""The one job runner: which jobs a profile has, reuse of complete runs, the rerun policy, Fig. 5 runs."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import vmhan_lib.train.jobs as jobs
import vmhan_lib.train.runner as runner
from vmhan_lib.identity import StaleRunsError
from tests.factories import TINY, random_split
from vmhan_lib.config_tree import ConfigError
from vmhan_lib.data.mnre import RelationVocab
from vmhan_lib.model.variants import TABLE1_VARIANTS, TABLE2_VARIANTS
from vmhan_lib.config import RunConfig, TrainConfig, preset, run_config
from vmhan_lib.train.records import Prediction, RerunMismatchWarning, read_predictions, read_record, write_run
from vmhan_lib.train.jobs import Job, RunPaths, proportion_jobs, table_jobs
from vmhan_lib.train.stage1 import PreparedInputs
from vmhan_lib.train.runner import run_jobs

VOCAB = RelationVocab(("None", "a", "b", "c"))


def test_table_jobs_cover_both_tables_with_the_required_seeds() -> None:
    jobs = table_jobs(preset("cpu"))
    assert {j.variant for j in jobs} == set(TABLE1_VARIANTS) | set(TABLE2_VARIANTS)
    assert [j.seed for j in jobs if j.variant == "VM-HAN (Ours)"] == [0, 1, 2, 3, 4]
    assert [j.seed for j in jobs if j.variant == "repl. GAT"] == [0, 1, 2] and len(jobs) == 5 + 17 * 3
    assert [j.name for j in proportion_jobs(preset("tiny"), [0.25])] == ["VM-HAN (Ours) @ visual 25%"]
    with pytest.raises(ConfigError, match=r"unknown or no variant\(s\) \['VM-HAN'\]; allowed: VM-HAN \(Ours\)"):
        table_jobs(preset("tiny"), ["VM-HAN"])
    with pytest.raises(ConfigError, match="seed must be an integer >= 0, got -1"):
        Job("GCN", -1)


def _paths(tmp_path: Path) -> RunPaths:
    return RunPaths(tmp_path / "runs", tmp_path / "ckpt")


def _commit(run_dir: Path, config: RunConfig, job: Job, test: dict | None = None) -> None:
    """A finished record of ``job`` as ``config`` makes it (its identity included)."""
    write_run(run_dir, {"variant": job.name, "seed": job.seed, "test": test or {}, "complete": True,
                        "identity": jobs.job_identity(config, job)}, [Prediction(0, "None", "None", (1.0,))])


def test_complete_records_are_read_without_loading_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = run_config("tiny", overrides={"experiment.variants": "VM-HAN (Ours),repl. GCN"})
    paths = _paths(tmp_path)
    for job in table_jobs(config):
        _commit(paths.run_dir("tiny", job), config, job)

    def must_not_load(*args, **kwargs):
        raise AssertionError("prepare_inputs called although every run is complete")

    monkeypatch.setattr(runner, "prepare_inputs", must_not_load)
    records = run_jobs(config, table_jobs(config), paths=paths, progress=False)
    assert [r["variant"] for r in records] == ["VM-HAN (Ours)", "repl. GCN"]


@pytest.fixture
def fake_inputs(monkeypatch: pytest.MonkeyPatch) -> dict:
    data = {"train": random_split(64, 0), "val": random_split(32, 1), "test": random_split(32, 2)}
    loads = {"n": 0}

    def prepare(config, paths, progress=True):
        loads["n"] += 1
        return PreparedInputs(data, {"text": {"model": "encoder"}}, {"test": {"n_instances": 32}}, TINY, VOCAB)

    monkeypatch.setattr(runner, "prepare_inputs", prepare)
    return {"data": data, "loads": loads}


def test_a_needed_model_of_a_committed_run_is_retrained_aside_and_compared(tmp_path: Path, fake_inputs) -> None:
    config = replace(preset("tiny"), device="cpu", train=TrainConfig(epochs=1, batch_size=16, lr=1e-2))
    paths, job = _paths(tmp_path), Job("VM-HAN (Ours)", 0)
    committed = paths.run_dir("tiny", job)
    wrong = {"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    _commit(committed, config, job, wrong)
    assert run_jobs(config, [job], paths=paths, progress=False)[0]["test"] == wrong  # not needed: not trained
    assert fake_inputs["loads"]["n"] == 0

    with pytest.warns(RerunMismatchWarning, match="committed record 0.00"):
        records = run_jobs(config, [job], need_models=True, paths=paths, progress=False)
    checkpoint_dir = paths.checkpoint_dir("tiny", job)
    assert (checkpoint_dir / "best.pt").is_file() and records[0]["test"] == wrong
    assert read_record(committed)["test"] == wrong  # never touched
    rerun = read_record(checkpoint_dir / "rerun")
    assert rerun["build"] == {"test": {"n_instances": 32}} and RunConfig.from_dict(rerun["config"]["run"]) == config
    assert rerun["variant"] == "VM-HAN (Ours)" and set(rerun["config"]) == {"variant", "seed", "model", "features", "run"}

    _commit(committed, config, job, rerun["test"])
    (checkpoint_dir / "best.pt").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RerunMismatchWarning)  # same seed, same machine: same scores
        run_jobs(config, [job], need_models=True, paths=paths, progress=False)


def test_fig5_runs_train_once_then_are_reused_without_loading(tmp_path: Path, fake_inputs) -> None:
    config = replace(preset("tiny"), device="cpu", train=TrainConfig(epochs=1, batch_size=16, lr=1e-2))
    config = replace(config, experiment=replace(config.experiment, seeds=(0, 1)))
    paths = _paths(tmp_path)
    records = run_jobs(config, proportion_jobs(config, (0.0, 1.0)), paths=paths, progress=False)
    assert fake_inputs["loads"]["n"] == 1
    assert [(r["variant"], r["seed"]) for r in records] == [
        ("VM-HAN (Ours) @ visual 0%", 0), ("VM-HAN (Ours) @ visual 0%", 1),
        ("VM-HAN (Ours) @ visual 100%", 0), ("VM-HAN (Ours) @ visual 100%", 1)]
    assert [r["config"]["visual_proportion"] for r in records] == [0.0, 0.0, 1.0, 1.0]
    run_dir = tmp_path / "visual_proportion" / "tiny__vm-han-ours-visual-0__seed0"
    assert [p.index for p in read_predictions(run_dir)] == fake_inputs["data"]["test"].indices
    assert (tmp_path / "ckpt" / "visual_proportion" / run_dir.name / "best.pt").is_file()
    again = run_jobs(config, proportion_jobs(config, (0.0, 1.0)), paths=paths, progress=False)
    assert fake_inputs["loads"]["n"] == 1 and [r["test"] for r in again] == [r["test"] for r in records]
    assert np.isfinite([r["test"]["f1"] for r in again]).all()
    without = [p.probabilities for p in read_predictions(run_dir)]
    with_visual = [p.probabilities for p in read_predictions(tmp_path / "visual_proportion" / "tiny__vm-han-ours-visual-100__seed0")]
    assert without != with_visual  # without visual nodes the model sees other inputs


def test_a_finished_run_from_other_data_or_settings_is_refused_then_retrained(tmp_path: Path, fake_inputs) -> None:
    from tests.conftest import write_tiny_mnre

    full, damaged = write_tiny_mnre(tmp_path / "full"), write_tiny_mnre(tmp_path / "damaged")
    captions = damaged / "captions" / "qwen_test.txt"
    captions.write_text(captions.read_text().splitlines(keepends=True)[-1])  # caption lines removed
    settings = {"data.captioners": ["qwen"], "features.visual_selection_captioner": "qwen",
                "train.epochs": 1, "train.lr": 1e-2, "device": "cpu"}
    paths, job = _paths(tmp_path), Job("GCN", 0)
    run_jobs(run_config("tiny", str(damaged), settings), [job], paths=paths, progress=False)
    assert fake_inputs["loads"]["n"] == 1

    on_full = run_config("tiny", str(full), settings)
    with pytest.raises(StaleRunsError, match=r"tiny__gcn__seed0 \(data file captions/qwen_test.txt changed\)"
                                                    r".*--retrain-stale"):
        run_jobs(on_full, [job], paths=paths, progress=False)
    with pytest.raises(StaleRunsError, match=r"train.lr: 0.01 -> 0.02"):
        run_jobs(run_config("tiny", str(damaged), {**settings, "train.lr": 2e-2}), [job], paths=paths, progress=False)
    assert fake_inputs["loads"]["n"] == 1  # refused before anything was loaded

    run_jobs(run_config("tiny", str(full), {**settings, "experiment.stale_runs": "retrain"}), [job], paths=paths,
             progress=False)
    assert fake_inputs["loads"]["n"] == 2
    stored = read_record(paths.run_dir("tiny", job))
    assert stored["identity"] == json.loads(json.dumps(jobs.job_identity(on_full, job)))
    assert run_jobs(on_full, [job], paths=paths, progress=False)[0] == stored  # now current: reused
    assert fake_inputs["loads"]["n"] == 2


def test_runs_on_other_inputs_get_their_own_folders() -> None:
    from vmhan_lib.paths import runs_dir

    assert RunPaths.of(preset("tiny")).runs == runs_dir("tiny")  # captions: the committed results' folder
    images = run_config("tiny", overrides={"features.visual_source": "images"})
    more = run_config("tiny", overrides={"data.dataset": "more", "features.visual_source": "images"})
    assert RunPaths.of(images).runs == runs_dir("tiny") / "images" and RunPaths.of(images).checkpoints.name == "images"
    assert RunPaths.of(more).runs == runs_dir("tiny") / "more"


def test_parallel_local_workers_give_the_serial_runs_records(tmp_path: Path, fake_inputs) -> None:
    config = replace(preset("tiny"), device="cpu", train=TrainConfig(epochs=1, batch_size=16, lr=1e-2))
    jobs_ = [Job("VM-HAN (Ours)", 0), Job("repl. GCN", 0), Job("Text-only", 1)]
    serial = run_jobs(config, jobs_, paths=_paths(tmp_path / "serial"), progress=False)
    parallel = replace(config, experiment=replace(config.experiment, max_parallel=2))
    records = run_jobs(parallel, jobs_, paths=_paths(tmp_path / "parallel"), progress=False)
    assert fake_inputs["loads"]["n"] == 2  # once per sweep, handed to each worker at its start
    here = f":{os.getpid()}"
    assert all(not r["execution"]["worker"].endswith(here) for r in records)  # trained in the workers
    assert all(r["execution"]["worker"].endswith(here) for r in serial) and records[0]["execution"]["threads"] == 1
    assert [(r["variant"], r["seed"], r["test"]) for r in records] == [(r["variant"], r["seed"], r["test"]) for r in serial]
    for job in jobs_:
        ours, theirs = (read_predictions(_paths(tmp_path / kind).run_dir("tiny", job)) for kind in ("parallel", "serial"))
        assert [p.probabilities for p in ours] == [p.probabilities for p in theirs]
    again = run_jobs(parallel, jobs_, paths=_paths(tmp_path / "parallel"), progress=False)  # reused, in order
    assert fake_inputs["loads"]["n"] == 2 and [r["test"] for r in again] == [r["test"] for r in records]


def test_parallel_workers_take_inputs_with_more_tensors_than_open_files_allowed(tmp_path: Path, fake_inputs) -> None:
    """The `cpu` inputs hold tens of thousands of tensors; handed to a worker one shared-memory file
    descriptor each, they failed with "Too many open files" (measured: 19,988 with a limit of 20,000)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    many = {split: random_split(600, seed) for seed, split in enumerate(("train", "val", "test"))}  # 4 tensors each
    fake_inputs["data"].update(many)
    config = replace(preset("tiny"), device="cpu", train=TrainConfig(epochs=1, batch_size=64, lr=1e-2),
                     experiment=replace(preset("tiny").experiment, max_parallel=2))
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(512, hard), hard))
    try:
        records = run_jobs(config, [Job("Text-only", 0), Job("Text-only", 1)], paths=_paths(tmp_path), progress=False)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert [r["test"]["n"] for r in records] == [600, 600]
