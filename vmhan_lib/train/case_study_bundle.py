"""Case-study bundles: a trained model and the test instances it is explored on, back from disk.

A case-study bundle holds what the attention explorer (``vmhan_lib.analysis.case_study``) needs to
start without the data pipeline: a run's dev-selected model and the node features of its first
:data:`BUNDLE_INSTANCES` test instances (a few MB; the ``cpu`` headline run's is committed).
:meth:`CaseStudyData.from_run` starts from the bundle of a run when it was made for the current
settings and data, and checks it against the run record's test predictions; otherwise, saying why,
from the checkpoint that the fit loop selected on dev (:mod:`vmhan_lib.train.checkpoints`, trained
first when asked), with the node features rebuilt from the configuration stored in it. It sits
beside the checkpoints because it is another way back from disk to a trained model.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Self, Sequence

import torch

from vmhan_lib.config import RunConfig
from vmhan_lib.data.captions import CAPTIONERS, load_captions
from vmhan_lib.data.config import DataConfig
from vmhan_lib.data.mnre import DataFormatError, Instance
from vmhan_lib.data.splits import load_split, load_vocab
from vmhan_lib.features.build import build_split, feature_cache
from vmhan_lib.features.node_selection import make_prompt_selectors
from vmhan_lib.features.nodes import InstanceNodes, pack_nodes, unpack_nodes
from vmhan_lib.identity import digest
from vmhan_lib.io import StorageError, atomic_torch_save, load_torch
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.vmhan import VMHAN
from vmhan_lib.paths import output_dirs
from vmhan_lib.train.checkpoints import (checkpoint_features, ensure_best_checkpoint, load_best_checkpoint,
                                         model_from_checkpoint, run_config_of)
from vmhan_lib.train.hypergraph_task import predict_nodes
from vmhan_lib.train.records import Prediction, read_predictions, run_id
from vmhan_lib.train.jobs import Job, RunPaths, job_identity, run_prefix

SAMPLE_IMAGES_DIR = "images_sample"
BUNDLE_FORMAT = "case-study-bundle-1"
BUNDLE_INSTANCES = 100
"""Test instances a case-study bundle holds (the notebook explores the first 36 by default)."""
BUNDLE_FOLDER = "case_study"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PREDICTION_BATCH_SIZE = 64


class BundleMismatchWarning(UserWarning):
    """The model of a case-study bundle does not predict what its run record says."""


def sample_image_paths(data_dir: Path) -> dict[str, Path]:
    """``img_id -> file`` of the real images shipped in ``<data_dir>/images_sample`` (empty if none)."""
    folder = Path(data_dir) / SAMPLE_IMAGES_DIR
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


class CaseStudyData:
    """A trained model, the test instances it is explored on, and its predictions of them.

    Args:
        model: a trained model (evaluation mode is set here).
        config: its configuration (its hypergraph config collates the instances).
        instances: the explored test instances, file order.
        nodes: their node features, aligned with ``instances``.
        relation_labels: class labels in id order.
        captions: ``{captioner: {img_id: caption}}``.
        image_paths: ``{img_id: image file}`` for the images at hand.

    The model predicts every instance once, here (``probabilities``, ``[n, R]``).
    """

    def __init__(self, model: VMHAN, config: ModelConfig, instances: Sequence[Instance],
                 nodes: Sequence[InstanceNodes], relation_labels: Sequence[str],
                 captions: dict[str, dict[str, str]], image_paths: dict[str, Path]) -> None:
        if len(instances) != len(nodes):
            raise ValueError(f"{len(instances)} instances but {len(nodes)} node sets")
        if not instances:
            raise ValueError("nothing to explore: no test instances")
        self.model = model.eval()
        self.config = config
        self.instances = list(instances)
        self.nodes = list(nodes)
        self.relation_labels = tuple(relation_labels)
        self.captions = captions
        self.image_paths = image_paths
        self.probabilities = predict_nodes(self.model, self.nodes, self.config, PREDICTION_BATCH_SIZE,
                                           torch.device("cpu")).probabilities

    @classmethod
    def from_checkpoint(cls, path: Path, max_test_instances: int | None = None, data_dir: str | None = None,
                        progress: bool = False) -> Self:
        """Load a best checkpoint and the first ``max_test_instances`` test instances (``None``: as
        many as the run saw), with the node features the model was trained on (the features,
        captioners and node selector stored in the checkpoint; ``data_dir`` overrides where the
        data are, for a checkpoint made on another machine).

        The node features come from the feature cache when that subset was built before; otherwise
        the node selector runs on every instance (about a second each on 2 CPU cores).
        """
        checkpoint = load_best_checkpoint(path)
        model, config = model_from_checkpoint(checkpoint)
        trained = run_config_of(checkpoint)
        data = replace(trained.data, max_instances=_smallest(trained.data.max_instances, max_test_instances),
                       data_dir=data_dir if data_dir is not None else trained.data.data_dir)
        features = checkpoint_features(checkpoint, path)
        built = build_split(data, "test", features, make_prompt_selectors(features), feature_cache(features, progress=progress))
        instances, labels, captions, images = _test_split(data)
        return cls(model, config, instances, built.nodes, labels, captions, images)

    @classmethod
    def from_bundle(cls, bundle: dict[str, Any], max_test_instances: int | None, data_dir: str | Path) -> Self:
        """The model and node features of a loaded bundle (:func:`load_bundle`) over its first
        ``max_test_instances`` instances (``None``: all it holds); sentences and captions are read
        from ``data_dir``.

        Raises:
            DataFormatError: the test split in ``data_dir`` is not the one the bundle was made from.
        """
        model, config = model_from_checkpoint(bundle)
        count = _smallest(len(bundle["test_indices"]), max_test_instances)
        data = replace(run_config_of(bundle).data, data_dir=str(data_dir), max_instances=count)
        instances, labels, captions, images = _test_split(data)
        if [_instance_key(i) for i in instances] != bundle["test_instances"][:count]:
            raise DataFormatError(f"the test split in {data_dir} is not the one the case-study bundle of "
                                  f"{bundle['run_id']} was made from")
        return cls(model, config, instances, unpack_nodes(bundle["nodes"])[:count], labels, captions, images)

    @classmethod
    def from_run(cls, config: RunConfig, job: Job, max_test_instances: int | None, train_if_missing: bool = False,
                 progress: bool = True) -> Self:
        """The model and test instances of ``job``: from its case-study bundle when one was made for
        this run's identity and holds ``max_test_instances`` instances (seconds), checked against
        the run record's test predictions (a :class:`BundleMismatchWarning` when they differ);
        otherwise, said so, from its checkpoint (:func:`~vmhan_lib.train.checkpoints.ensure_best_checkpoint`,
        trained first when missing and ``train_if_missing``), with the node features rebuilt."""
        path = bundle_path(config, job)
        bundle, reason = _current_bundle(path, config, job, max_test_instances)
        if bundle is None:
            print(f"{reason}: loading the checkpoint and rebuilding the node features instead")
            checkpoint = ensure_best_checkpoint(config, job, train_if_missing=train_if_missing, progress=progress)
            return cls.from_checkpoint(checkpoint, max_test_instances, data_dir=str(config.data.path), progress=progress)
        loaded = cls.from_bundle(bundle, max_test_instances, config.data.path)
        loaded._check_against_record(path, RunPaths.of(config).run_dir(run_prefix(config), job))
        return loaded

    def save_bundle(self, path: Path, checkpoint: dict[str, Any], run_name: str, identity_digest: str) -> Path:
        """Write what the explorer needs to start without the data pipeline, atomically: the
        checkpoint's configuration and model, the node features of the explored test instances
        and their test-file indices; ``run_name`` and ``identity_digest`` name the run it explains.
        A few MB for the default :data:`BUNDLE_INSTANCES` (the committed ``cpu`` headline run's)."""
        return atomic_torch_save({
            "format": BUNDLE_FORMAT, "run_id": run_name, "identity_digest": identity_digest,
            "config": checkpoint["config"], "model": self.model.state_dict(),
            "test_indices": [instance.index for instance in self.instances],
            "test_instances": [_instance_key(instance) for instance in self.instances], "nodes": pack_nodes(self.nodes),
        }, Path(path))

    def agreement_with(self, predictions: Sequence[Prediction]) -> tuple[int, float]:
        """How many explored instances the model predicts as ``predictions`` (a run record's test
        predictions, by test index) do, and the largest difference of a class probability."""
        by_index = {p.index: p for p in predictions}
        same, largest = 0, 0.0
        for position, instance in enumerate(self.instances):
            recorded = by_index[instance.index]
            same += self.predicted(position) == recorded.predicted
            largest = max(largest, float((self.probabilities[position] - torch.tensor(recorded.probabilities)).abs().max()))
        return same, largest

    def _check_against_record(self, path: Path, run_dir: Path) -> None:
        """Say how far the model of the bundle at ``path`` agrees with the test predictions of its
        run record in ``run_dir``, warning when it predicts any instance otherwise."""
        same, largest = self.agreement_with(read_predictions(run_dir))
        if same != len(self):
            warnings.warn(BundleMismatchWarning(
                f"the model of {path.name} predicts {len(self) - same} of {len(self)} explored test instances "
                f"otherwise than its run record {run_dir} (largest probability difference {largest:.5f})"),
                stacklevel=4)  # the code that asked for the explorer, past from_run and load_explorer
        print(f"model and node features from the case-study bundle {path}; its predictions of the {len(self)} "
              f"explored test instances agree with the run record in {same} (largest probability difference {largest:.1e})")

    def __len__(self) -> int:
        return len(self.instances)

    def predicted(self, position: int) -> str:
        return self.relation_labels[int(self.probabilities[position].argmax())]


def bundle_path(config: RunConfig, job: Job) -> Path:
    """Where the case-study bundle of ``job`` lives: ``results/case_study/<run id>.pt``
    (``results/tiny/case_study/`` for ``tiny``); the ``cpu`` headline run's is committed."""
    return output_dirs(config.profile)[0] / BUNDLE_FOLDER / f"{_run_name(config, job)}.pt"


def load_bundle(path: Path) -> dict[str, Any]:
    """A case-study bundle written by :meth:`CaseStudyData.save_bundle`."""
    bundle = load_torch(path, "case-study bundle")
    if bundle.get("format") != BUNDLE_FORMAT:
        raise DataFormatError(f"{path}: not a case-study bundle of format {BUNDLE_FORMAT}")
    return bundle


def write_bundle(config: RunConfig, job: Job, checkpoint_path: Path, count: int = BUNDLE_INSTANCES,
                 progress: bool = True) -> Path:
    """Load a trained checkpoint with its first ``count`` test instances and save their bundle at
    :func:`bundle_path`."""
    loaded = CaseStudyData.from_checkpoint(checkpoint_path, count, data_dir=str(config.data.path), progress=progress)
    return loaded.save_bundle(bundle_path(config, job), load_best_checkpoint(checkpoint_path),
                              _run_name(config, job), digest(job_identity(config, job)))


def _current_bundle(path: Path, config: RunConfig, job: Job,
                    max_test_instances: int | None) -> tuple[dict[str, Any] | None, str]:
    """The bundle at ``path`` when it was made for ``job``'s identity under ``config`` and holds
    ``max_test_instances`` instances, else ``None`` and why not."""
    if not path.is_file():
        return None, f"no case-study bundle at {path}"
    try:
        bundle = load_bundle(path)
    except StorageError as err:  # a damaged bundle: the checkpoint route, said loudly
        warnings.warn(BundleMismatchWarning(f"{err}; taking the checkpoint route instead"), stacklevel=4)
        return None, str(err)
    held = len(bundle["test_indices"])
    if bundle["identity_digest"] != digest(job_identity(config, job)):
        return None, f"{path} was made for other settings or data than the current ones"
    if max_test_instances is None or max_test_instances > held:
        return None, f"{path} holds the first {held} test instances, {max_test_instances or 'all'} asked"
    return bundle, ""


def _test_split(data: DataConfig) -> tuple[list[Instance], tuple[str, ...], dict[str, dict[str, str]], dict[str, Path]]:
    """The test instances of ``data`` with what a case shows besides them: the relation labels,
    every captioner's captions and the sample images."""
    vocab = load_vocab(data)
    instances = load_split(data, "test", vocab)
    captions = {name: load_captions(data.path, name, "test") for name in CAPTIONERS}
    return instances, vocab.labels, captions, sample_image_paths(data.path)


def _smallest(*limits: int | None) -> int | None:
    """The smallest of the instance limits given (``None``: no limit)."""
    given = [limit for limit in limits if limit is not None]
    return min(given) if given else None


def _run_name(config: RunConfig, job: Job) -> str:
    """The run id of ``job`` under ``config`` (names its bundle file and is stored in it)."""
    return run_id(run_prefix(config), job.name, job.seed)


def _instance_key(instance: Instance) -> str:
    """A short digest of a test instance's sentence, pair and label (a bundle checks its data by it)."""
    return digest([instance.index, instance.tokens, instance.head.span, instance.tail.span, instance.relation])[:16]
