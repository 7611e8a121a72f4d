"""Trained models back from disk: where the best checkpoint is, loading it, training it when allowed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

import vmhan_lib.train.checkpoints as checkpoints
from tests.factories import TINY
from vmhan_lib.config_tree import to_dict
from vmhan_lib.model.vmhan import build_model
from vmhan_lib.train.checkpoints import (
    MissingCheckpointError, best_checkpoint_path, checkpoint_features, checkpoint_inputs, ensure_best_checkpoint,
    load_best_checkpoint, model_from_checkpoint, run_config_of,
)
from tests.conftest import write_tiny_mnre
from vmhan_lib.config import preset, run_config
from vmhan_lib.identity import digest
from vmhan_lib.train.jobs import Job, RunPaths, job_identity


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
        torch.save({"digest": digest(job_identity(run_config, jobs[0]))}, path)

    monkeypatch.setattr(checkpoints, "run_jobs", fake_run_jobs)
    with pytest.raises(MissingCheckpointError, match="no trained checkpoint for 'VM-HAN \\(Ours\\)' seed 0.*"
                                                     "python -m vmhan_lib train --profile tiny"):
        ensure_best_checkpoint(config, job, paths=paths)
    assert calls == []
    assert ensure_best_checkpoint(config, job, train_if_missing=True, paths=paths) == path
    assert ensure_best_checkpoint(config, job, train_if_missing=True, paths=paths) == path
    assert calls == [([job], True)]  # the runner retrains aside when a committed record exists


def test_checkpoint_features_follow_a_joint_encoder_that_moved_with_the_checkout(tmp_path: Path) -> None:
    config = preset("tiny").with_training("joint")
    moved = {"run": config.to_dict(), "features": {**to_dict(config.features),
                                                   "text": {**to_dict(config.features.text), "model": "/elsewhere/encoder"}}}
    path = tmp_path / "run" / "best.pt"
    with pytest.raises(MissingCheckpointError, match="the text encoder it was trained on, /elsewhere/encoder, is not there"):
        checkpoint_features({"config": moved}, path)
    (tmp_path / "run" / "encoder").mkdir(parents=True)
    assert checkpoint_features({"config": moved}, path).text.model == str(tmp_path / "run" / "encoder")
    two_stage = {**moved, "run": preset("tiny").to_dict()}  # a stage-1 encoder is not beside the checkpoint
    with pytest.raises(MissingCheckpointError, match="another checkout"):
        checkpoint_features({"config": two_stage}, path)
    named = checkpoint_features({"config": {**moved, "features": to_dict(config.features)}}, path)
    assert named == config.features  # a packaged encoder's short name is kept


def test_checkpoint_inputs_are_built_with_the_given_features_not_the_configs(tmp_path: Path) -> None:
    config = run_config("tiny", str(write_tiny_mnre(tmp_path / "mnre")), {
        "experiment.training": "joint", "data.captioners": ["qwen"], "features.visual_selection_captioner": "qwen",
        "features.cache_dir": str(tmp_path / "cache")})
    reference = checkpoint_inputs(config, config.features)  # the configuration's own (pretrained) features
    fewer = replace(config.features, m_text_nodes=1)
    inputs = checkpoint_inputs(config, fewer)
    assert list(inputs) == ["train", "val", "test"]
    assert max(len(n.text_names) for n in reference["train"].nodes) > 3  # head, tail and 2+ text-LLM nodes
    for split, part in inputs.items():
        expected = reference[split]
        assert (part.labels, part.indices) == (expected.labels, expected.indices)
        for ours, theirs in zip(part.nodes, expected.nodes, strict=True):
            assert ours.text_names == theirs.text_names[:3]  # the features' one text-LLM node, not the config's 3
            torch.testing.assert_close(ours.text_features, theirs.text_features[:3])
            torch.testing.assert_close(ours.visual_features, theirs.visual_features)
