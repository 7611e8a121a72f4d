"""Trained models back from disk: the dev-selected checkpoint of a run, and the run config that made it.

A stage-2 run's checkpoint folder holds ``best.pt`` = ``{"digest", "config", "model"}``, where
``config`` is the run's configuration record (``run``: the whole :class:`RunConfig` tree,
``model``: the variant's sized model config, ``features``: the features it was trained on). A
``joint`` run's folder also holds ``encoder/``, its fine-tuned encoder, which its ``features`` name.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from vmhan_lib.config_tree import from_dict
from vmhan_lib.data.mnre import SPLITS
from vmhan_lib.data.splits import load_split, load_vocab
from vmhan_lib.features.build import build_split, feature_cache
from vmhan_lib.features.config import FeatureConfig
from vmhan_lib.features.node_selection import make_prompt_selectors
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.vmhan import VMHAN, build_model
from vmhan_lib.config import RunConfig, upgrade_tree
from vmhan_lib.identity import digest
from vmhan_lib.io import load_torch
from vmhan_lib.train.encoder_task import exported_encoder_dir
from vmhan_lib.train.execution import run_device
from vmhan_lib.train.hypergraph_task import BEST_FILE, SplitNodes, best_model_ready
from vmhan_lib.train.jobs import Job, RunPaths, job_identity, run_prefix
from vmhan_lib.train.runner import run_jobs
from vmhan_lib.train.visual_signal import with_visual_signal


class MissingCheckpointError(FileNotFoundError):
    """No trained model for the requested (profile, variant, seed); the message says what to run."""


def best_checkpoint_path(config: RunConfig, job: Job, paths: RunPaths | None = None) -> Path:
    """Where the fit loop exports the dev-selected model of a job."""
    return (paths or RunPaths.of(config)).checkpoint_dir(run_prefix(config), job) / BEST_FILE


def ensure_best_checkpoint(config: RunConfig, job: Job, train_if_missing: bool = False,
                           paths: RunPaths | None = None, progress: bool = True) -> Path:
    """The best checkpoint of ``job`` as the current configuration and data make it; when missing
    (or made from other inputs) and ``train_if_missing``, train it first with
    :func:`~vmhan_lib.train.runner.run_jobs` (a committed record alone trains again aside).

    Raises:
        MissingCheckpointError: still missing (not allowed to train).
    """
    path = best_checkpoint_path(config, job, paths)
    made_by = digest(job_identity(config, job, paths=paths))
    if not best_model_ready(path.parent, made_by) and train_if_missing:
        run_jobs(config, [job], need_models=True, paths=paths, progress=progress)
    if not best_model_ready(path.parent, made_by):
        raise MissingCheckpointError(
            f"no trained checkpoint for {job.name!r} seed {job.seed} in profile {config.profile!r} ({path}); "
            f"train it with `python -m vmhan_lib train --profile {config.profile} --variants {job.variant!r}` "
            "(a committed run record alone is not enough: pass train_if_missing=True to retrain it aside)")
    return path


def load_best_checkpoint(path: Path) -> dict[str, Any]:
    """The stored ``{"digest", "config", "model"}`` of a best checkpoint.

    Raises:
        MissingCheckpointError: no such file, or one written before the configuration tree (its
            config has no ``run``): delete it and train again.
        StorageError: a damaged file (named).
    """
    if not Path(path).is_file():
        raise MissingCheckpointError(f"no checkpoint at {path}")
    checkpoint = load_torch(path, "best checkpoint")
    if "run" not in checkpoint.get("config", {}):
        raise MissingCheckpointError(f"{path} was written by an older version of the workbook (no run configuration "
                                     "stored); delete it and train again")
    return checkpoint


def model_from_checkpoint(checkpoint: dict[str, Any]) -> tuple[VMHAN, ModelConfig]:
    """The model stored in a loaded checkpoint, in evaluation mode, and its config."""
    config = from_dict(ModelConfig, upgrade_tree({"model": checkpoint["config"]["model"]})["model"])
    model = build_model(config)
    model.load_state_dict(checkpoint["model"])
    return model.eval(), config


def run_config_of(checkpoint: dict[str, Any]) -> RunConfig:
    """The whole run configuration a checkpoint was trained with."""
    return RunConfig.from_dict(checkpoint["config"]["run"])


def checkpoint_features(checkpoint: dict[str, Any], path: Path) -> FeatureConfig:
    """The feature settings of the checkpoint loaded from ``path``, those it was trained on: for a
    ``two-stage`` run the stage-1 encoder, for a ``joint`` run its own exported, fine-tuned encoder
    (whose frozen states are the live features of its evaluation; taken from beside ``path`` when the
    folder it names has moved with the checkout).

    Raises:
        MissingCheckpointError: the text encoder it names is a folder that is not there.
    """
    features = from_dict(FeatureConfig, upgrade_tree({"features": checkpoint["config"]["features"]})["features"])
    named = Path(features.text.model)
    if named.is_absolute() and not named.is_dir():
        beside = exported_encoder_dir(Path(path).parent)
        if run_config_of(checkpoint).experiment.training != "joint" or not beside.is_dir():
            raise MissingCheckpointError(
                f"{path}: the text encoder it was trained on, {named}, is not there (a checkpoint from another "
                "checkout?); train the run here")
        features = replace(features, text=replace(features.text, model=str(beside)))
    return features


def checkpoint_inputs(config: RunConfig, features: FeatureConfig, splits: Sequence[str] = SPLITS
                      ) -> dict[str, SplitNodes]:
    """The inputs of ``splits`` of ``config``'s data built with ``features`` (e.g.
    :func:`checkpoint_features`): every instance's nodes from that one encoder, so not the
    out-of-fold train features (:func:`~vmhan_lib.train.stage1.prepare_inputs` builds those)."""
    vocab = load_vocab(config.data)
    device = str(run_device(config))
    selector, cache = make_prompt_selectors(features, device=device), feature_cache(features, device)
    inputs = {}
    for split in splits:
        instances = load_split(config.data, split, vocab)
        inputs[split] = SplitNodes.of(build_split(config.data, split, features, selector, cache, instances).nodes,
                                      instances, vocab)
    return inputs


def checkpointed_test_splits(config: RunConfig, jobs: Sequence[Job]) -> Iterator[tuple[Job, VMHAN, ModelConfig, SplitNodes]]:
    """Per job of ``config`` (its best checkpoint at hand): the job, its dev-selected model and that
    model's config, and the test split built with the features the checkpoint was trained on (once
    per distinct feature setting), with the job's controlled visual signal added as in its training
    (:mod:`vmhan_lib.train.visual_signal`; whose unit comes from train, built then too)."""
    splits = ["train", "test"] if any(job.signal is not None for job in jobs) else ["test"]
    built: dict[str, dict[str, SplitNodes]] = {}
    for job in jobs:
        path = best_checkpoint_path(config, job)
        checkpoint = load_best_checkpoint(path)
        model, model_config = model_from_checkpoint(checkpoint)
        features = checkpoint_features(checkpoint, path)
        if repr(features) not in built:
            built[repr(features)] = checkpoint_inputs(config, features, splits)
        inputs = built[repr(features)] if job.signal is None else with_visual_signal(built[repr(features)], job.signal, job.seed)
        yield job, model, model_config, inputs["test"]
