"""Trained models back from disk: where the best checkpoint is, loading it, training it when allowed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

import vmhan_lib.train.checkpoints as checkpoints
from tests.factories import TINY
from vmhan_lib.config_tree import to_dict
from vmhan_lib.model import build_model
from vmhan_lib.train.checkpoints import (
    MissingCheckpointError, best_checkpoint_path, checkpoint_features, checkpoint_inputs, ensure_best_checkpoint,
    load_best_checkpoint, model_from_checkpoint, run_config_of,
)
from tests.conftest import write_tiny_mnre
from vmhan_lib.config import preset, run_config
from vmhan_lib.io import key_digest
from vmhan_lib.train.runner import Job, RunPaths, job_identity, prepare_inputs


def test_best_checkpoint_round_trip(tmp_path: Path) -> None:
    config, paths = preset("tiny"), RunPaths(tmp_path / "runs", tmp_path / "ckpt")
    path = best_checkpoint_path(config, Job("VM-HAN (Ours)", 0), paths)
    assert path == tmp_path / "ckpt" / "tiny__vm-han-ours__seed0" / "best.pt"
    assert best_checkpoint_path(config, Job("VM-HAN (Ours)", 1, 0.25), paths).parent.parent.name == "visual_proportion"
    torch.manual_seed(3)
    trained = build_model(TINY)
    path.parent.mkdir(parents=True)
    torch.save({"digest": "x", "config": {"model": to_dict(TINY),
                                          "run": config.to_dict()}, "model": trained.state_dict()}, path)
    checkpoint = load_best_checkpoint(path)
    model, model_config = model_from_checkpoint(checkpoint)
    assert model_config == TINY and not model.training and run_config_of(checkpoint) == config
    for name, value in trained.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value)


def test_ensure_checkpoint_trains_only_when_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = run_config("tiny", str(write_tiny_mnre(tmp_path / "mnre")),
                        {"data.captioners": ["qwen"], "features.visual_selection_captioner": "qwen"})
    paths, job = RunPaths(tmp_path / "runs", tmp_path / "ckpt"), Job("VM-HAN (Ours)", 0)
    path = best_checkpoint_path(config, job, paths)
    calls: list[tuple[list[Job], bool]] = []
    path.parent.mkdir(parents=True)
    torch.save({"digest": "made from other inputs"}, path)

    def fake_run_jobs(run_config, jobs, need_models=False, paths=None, progress=True):
        calls.append((list(jobs), need_models))
        torch.save({"digest": key_digest(job_identity(run_config, jobs[0]))}, path)

    monkeypatch.setattr(checkpoints, "run_jobs", fake_run_jobs)
    with pytest.raises(MissingCheckpointError, match="no trained checkpoint for 'VM-HAN \\(Ours\\)' seed 0.*"
                                                     "python -m vmhan_lib train --profile tiny"):
        ensure_best_checkpoint(config, job, paths=paths)
    assert calls == []
    assert ensure_best_checkpoint(config, job, train_if_missing=True, paths=paths) == path
    assert ensure_best_checkpoint(config, job, train_if_missing=True, paths=paths) == path
    assert calls == [([job], True)]  # the runner retrains aside when a committed record exists


def test_checkpoint_inputs_are_the_nodes_of_the_features_a_checkpoint_names(tmp_path: Path) -> None:
    config = run_config("tiny", str(write_tiny_mnre(tmp_path / "mnre")), {
        "experiment.training": "joint", "data.captioners": ["qwen"], "features.visual_selection_captioner": "qwen",
        "features.cache_dir": str(tmp_path / "cache")})
    reference = prepare_inputs(config, RunPaths(tmp_path / "runs", tmp_path / "ckpt"), progress=False)  # joint: pretrained
    features = checkpoint_features({"config": {"features": reference.features}})
    assert features == replace(config.features, show_progress=False)
    inputs = checkpoint_inputs(config, features, ["val", "test"])
    assert list(inputs) == ["val", "test"]
    for split, part in inputs.items():
        expected = reference.data[split]
        assert (part.labels, part.indices) == (expected.labels, expected.indices)
        for ours, theirs in zip(part.nodes, expected.nodes, strict=True):
            assert ours.text_names == theirs.text_names and ours.visual_names == theirs.visual_names
            torch.testing.assert_close(ours.text_features, theirs.text_features)
            torch.testing.assert_close(ours.visual_features, theirs.visual_features)
