"""The one configuration tree of a run, and one preset per profile (torch-free).

:class:`RunConfig` holds everything that makes a run: the data, the features (text encoder, caption
nodes, node selector, the paper's k, m, n), the model (widths, encoder, Eq. 12 loss weights,
hypergraph switches), stage-1 and stage-2 training, and the experiment (seeds, rows). Every run
record stores its whole tree (``to_dict``); :func:`run_config` builds the tree of a profile with
any field changed by its dotted name, from the command line (``--set train.epochs=20``) or a
notebook's ``overrides`` dict (see :mod:`vmhan_lib.config_tree`).

The paper's settings (section 5.1): AdamW, lr 2e-5, weight decay 0.01, dropout 0.6, batch 16. The
two-stage ``cpu`` profile fine-tunes the text encoder once (lr 5e-5, batch 32, 4 epochs;
docs/offline_adaptations.md#measured-probes), then trains every hypergraph model on its frozen
features at a larger rate (a fresh small network does not learn at 2e-5 in a few epochs); ``joint``
(the ``full`` preset) trains both end to end as the paper, the encoder at ``train.encoder_lr``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from vmhan_lib.config_tree import ConfigError, apply_overrides, from_dict, to_dict
from vmhan_lib.data.config import DataConfig
from vmhan_lib.data.mnre import require_data_dir
from vmhan_lib.features.config import PACKAGED_MPNET, FeatureConfig, TextEncoderConfig
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.variants import TABLE1_VARIANTS, TABLE2_VARIANTS, VARIANTS
from vmhan_lib.paths import PROFILES, resolve_profile

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
EXECUTORS: tuple[str, ...] = ("local", "ray")
"""Where a sweep's runs execute: ``local`` (one after the other in this process) or ``ray``."""
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp32")
"""``experiment.precision``: ``auto`` = bf16 autocast and TF32 on CUDA, fp32 elsewhere; ``bf16``; ``fp32``."""
EXECUTION_FIELDS: tuple[str, ...] = ("executor", "ray_address", "ray_timeout_s", "max_parallel", "max_retries",
                                     "stale_runs", "precision", "keep_states", "checkpoint_dir", "gpus_per_run")
"""The fields of :class:`ExperimentConfig` that say where, how and whether runs execute: out of records'
configurations and identities (a record's ``execution`` says how it ran)."""
TRAINING_MODES: tuple[str, ...] = ("two-stage", "out-of-fold", "joint")
"""How the text encoder is trained (``experiment.training``): ``two-stage`` = fine-tuned once with a
linear head (stage 1), then frozen under every hypergraph model (stage 2, cached features);
``out-of-fold`` = two-stage whose stage-2 *train* features come from k-fold cross-fitting (each
train instance encoded by a stage-1 encoder fine-tuned without its fold, ``experiment.folds``),
dev and test features from the stage-1 encoder of all train; ``joint`` = trained end to end with
each model under its Eq. 12 loss, as the paper (:mod:`vmhan_lib.train.joint_task`)."""
ENCODER_VARIANT = "Text-only (fine-tuned encoder)"
"""The run name of stage 1: the fine-tuned encoder with its linear head is itself a model."""


def check_training_modes(modes: Sequence[str]) -> None:
    """Raise :class:`ConfigError` naming the allowed values when ``modes`` is empty or holds an
    unknown training mode (notebooks check their parameters with it before any work)."""
    unknown = [mode for mode in modes if mode not in TRAINING_MODES]
    if unknown or not modes:
        raise ConfigError(f"unknown or no training mode(s) {unknown}; allowed: {', '.join(TRAINING_MODES)}")


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value}")


@dataclass(frozen=True)
class TrainConfig:
    """How the fit loop trains every hypergraph model and baseline (stage 2, or ``joint`` with the
    encoder); stage 1 shares the AdamW settings (:func:`stage1_train_config`).

    Attributes:
        epochs: passes over train (default 10); the checkpoint with the best dev F1 is kept.
        batch_size: instances per step (default 16, as the paper).
        lr: AdamW learning rate (default 1e-3 for the freshly initialised hypergraph part and classifier).
        weight_decay: AdamW weight decay (default 0.01, as the paper), stage 1 included.
        warmup_ratio: share of steps with linear warm-up, then linear decay (default 0.1), stage 1 included.
        max_grad_norm: gradient clipping (default 1.0), stage 1 included.
        cpu_threads: torch CPU threads of a stage-2 run (default 1): the hypergraph part works on
            small tensors, where thread synchronisation costs more than it saves (measured: 19 ms
            per VM-HAN step of 16 hypergraphs with 1 thread, 453 ms with 2 on a loaded 2-core
            machine); ``None`` keeps torch's setting. Stage 1 keeps torch's setting.
        encoder_lr: ``joint`` training only (``experiment.training``): the AdamW learning rate of the
            pretrained text encoder, trained together with the model (default 2e-5, the paper's);
            ``lr`` stays the rate of the freshly initialised part (one parameter group each).
    """

    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    cpu_threads: int | None = 1
    encoder_lr: float = 2e-5

    def __post_init__(self) -> None:
        _positive(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, encoder_lr=self.encoder_lr,
                  max_grad_norm=self.max_grad_norm)
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


@dataclass(frozen=True)
class EncoderTrainConfig:
    """Stage 1 (``two-stage`` training): fine-tune the entity-marker text encoder with a linear relation
    head (dropout :data:`STAGE1_HEAD_DROPOUT` on its input), with ``train``'s AdamW settings.

    Attributes:
        epochs: passes over train (default 4).
        batch_size: sentences per step (default 32).
        lr: AdamW learning rate of the encoder and its head (default 5e-5).
    """

    epochs: int = 4
    batch_size: int = 32
    lr: float = 5e-5

    def __post_init__(self) -> None:
        _positive(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr)


STAGE1_HEAD_DROPOUT = 0.1
"""Dropout on the input of stage 1's linear relation head."""


STALE_RUN_POLICIES: tuple[str, ...] = ("refuse", "retrain")


@dataclass(frozen=True)
class ExperimentConfig:
    """Which runs make the tables and figures of a profile.

    Attributes:
        variants: Table 1 / Table 2 rows to run (default: every row of both, Table 1 first).
        seeds: seeds of every row but the headline (default 0, 1, 2).
        headline_seeds: seeds of VM-HAN (Ours) (default 0-4).
        encoder_seed: the seed of the shared stage-1 encoder (default 0).
        visual_proportions: Fig. 5, shares of instances keeping their visual nodes (default 0-100 %
            in steps of 25 %).
        stale_runs: what to do with a finished run whose identity (configuration, data files,
            feature key) differs from the current one: ``refuse`` (default: stop and name what
            differs) or ``retrain`` (train it again, replacing its record; ``--retrain-stale``).
        executor: where the runs of a sweep execute: ``local`` (default: one after the other in
            this process) or ``ray`` (one Ray task per run, :mod:`vmhan_lib.train.ray_executor`).
        ray_address: the Ray cluster of ``executor=ray``: ``None`` (default) starts a Ray instance
            on this machine for the sweep; ``auto`` joins the cluster started by ``ray start`` on
            this machine; ``HOST:PORT`` joins that head node.
        ray_timeout_s: how long to wait for the Ray cluster at ``ray_address`` to answer before stopping
            with one line naming the address (default 30 s; Ray's own retries would take minutes).
        max_parallel: at most this many runs at once: with ``executor=local``, that many worker
            processes of this machine, one run each with ``train.cpu_threads`` threads (default
            ``None``: one run after the other in this process); with ``executor=ray``, runs in
            flight on the cluster (default ``None``: as many as its CPUs / GPUs allow).
        max_retries: how often a failed run (an exception, a killed worker) is retried before it is
            reported as failed (``executor=ray``; default 2); a retry resumes from the run's last
            saved epoch.
        training: one of :data:`TRAINING_MODES` (default ``two-stage``, the cheap one; ``full``
            uses ``joint``, the paper's).
        folds: ``training=out-of-fold`` only: k of the k-fold cross-fitting of stage 1 (default 5;
            folds grouped by sentence, :func:`vmhan_lib.data.splits.sentence_folds`, seeded with
            ``encoder_seed``).
        precision: one of :data:`PRECISIONS` (default ``auto``: bf16 autocast and TF32 on CUDA,
            fp32 on the CPU, so CPU runs are what they were).
        keep_states: keep each run's resumable state once its record is written (default ``False``:
            deleted then; the exported best model stays).
        checkpoint_dir: the folder of resumable states and exported models (default ``None``:
            ``results/checkpoints``), e.g. a scratch disk; the profile and inputs sub-folders go inside.
        gpus_per_run: ``executor=ray`` on GPUs: the share of a GPU each run asks for (default 1;
            0.25 puts four runs on one GPU).
    """

    variants: tuple[str, ...] = tuple(dict.fromkeys((*TABLE1_VARIANTS, *TABLE2_VARIANTS)))
    seeds: tuple[int, ...] = (0, 1, 2)
    headline_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    encoder_seed: int = 0
    visual_proportions: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    stale_runs: str = "refuse"
    executor: str = "local"
    ray_address: str | None = None
    ray_timeout_s: float = 30.0
    max_parallel: int | None = None
    max_retries: int = 2
    training: str = "two-stage"
    folds: int = 5
    precision: str = "auto"
    keep_states: bool = False
    checkpoint_dir: str | None = None
    gpus_per_run: float = 1.0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; allowed: {', '.join(PRECISIONS)}")
        if not (math.isfinite(self.gpus_per_run) and 0 < self.gpus_per_run <= 1 or
                self.gpus_per_run > 1 and float(self.gpus_per_run).is_integer()):
            raise ValueError(f"gpus_per_run must be in (0, 1] or a whole number, got {self.gpus_per_run}")
        if self.checkpoint_dir is not None and not self.checkpoint_dir.strip():
            raise ValueError("checkpoint_dir must be None or a folder, got an empty string")
        if self.stale_runs not in STALE_RUN_POLICIES:
            raise ValueError(f"unknown stale_runs {self.stale_runs!r}; allowed: {', '.join(STALE_RUN_POLICIES)}")
        if self.training not in TRAINING_MODES:
            raise ValueError(f"unknown training mode {self.training!r}; allowed: {', '.join(TRAINING_MODES)}")
        unknown = [name for name in self.variants if name not in VARIANTS]
        if unknown or not self.variants:
            raise ValueError(f"unknown or no variant(s) {unknown}; allowed: {', '.join(VARIANTS)}")
        if not self.seeds or not self.headline_seeds:
            raise ValueError("seeds and headline_seeds need at least one seed each")
        if min((*self.seeds, *self.headline_seeds, self.encoder_seed)) < 0:
            raise ValueError("seeds must be >= 0")
        if any(not 0.0 <= p <= 1.0 for p in self.visual_proportions):
            raise ValueError(f"visual_proportions must lie in [0, 1], got {self.visual_proportions}")
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown executor {self.executor!r}; allowed: {', '.join(EXECUTORS)}")
        if self.ray_address is not None and not self.ray_address.strip():
            raise ValueError("ray_address must be None, 'auto' or HOST:PORT, got an empty string")
        _positive(ray_timeout_s=self.ray_timeout_s)
        if self.max_parallel is not None and self.max_parallel < 1:
            raise ValueError(f"max_parallel must be None or an integer >= 1, got {self.max_parallel}")
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise ValueError(f"folds must be an integer >= 2, got {self.folds!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {self.max_retries}")

    def seeds_of(self, variant: str) -> tuple[int, ...]:
        return self.headline_seeds if variant == TABLE1_VARIANTS[0] else self.seeds


@dataclass(frozen=True)
class RunConfig:
    """The whole configuration of a run (see the module docstring).

    Attributes:
        profile: ``tiny``, ``cpu`` or ``full`` (decides the output folders).
        device: where every model runs, one of :data:`DEVICES`: ``auto`` (default: the GPU when
            present), ``cpu`` or ``cuda`` (frozen features, stage 1, stage 2, the analyses).
        eval_batch_size: instances per forward pass when evaluating (default 64).
        data: which data.
        features: how instances become node features (text encoder, captions, selector, k/m/n).
        model: the full model that every variant modifies (widths, encoder, loss weights).
        encoder_train: stage 1 of ``two-stage`` training, the shared text encoder.
        train: every hypergraph model and baseline (stage 2, or ``joint`` with the encoder).
        experiment: rows, seeds and Fig. 5 proportions.
    """

    profile: str = "cpu"
    device: str = "auto"
    eval_batch_size: int = 64
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    encoder_train: EncoderTrainConfig = field(default_factory=EncoderTrainConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; allowed: {', '.join(PROFILES)}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; allowed: {', '.join(DEVICES)}")
        _positive(eval_batch_size=self.eval_batch_size)
        if self.data.dataset == "more" and self.features.visual_source != "images":
            raise ValueError(f"data.dataset=more needs features.visual_source=images (MORE has no captions here), "
                             f"got {self.features.visual_source!r}")
        if self.model.hypergraph.scope == "sentence" and (self.data.dataset == "more" or
                                                          self.experiment.training == "joint"):
            raise ValueError("model.hypergraph.scope=sentence is for MNRE (MORE's tails are image objects) in "
                             "two-stage or out-of-fold training; joint training builds one hypergraph per pair")

    @property
    def setting(self) -> tuple[str, str, str]:
        """(training mode, text encoder, hypergraph scope): what every run record and table row says
        of how the text side was trained and what one hypergraph holds."""
        return self.experiment.training, self.features.text.model, self.model.hypergraph.scope

    def with_training(self, mode: str) -> "RunConfig":
        """This configuration in training mode ``mode`` (``experiment.training``), all else kept."""
        return replace(self, experiment=replace(self.experiment, training=mode))

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def to_record(self) -> dict[str, Any]:
        """The tree as a run record stores it: :meth:`to_dict` without :data:`EXECUTION_FIELDS`
        (where a run executed does not change what it computes; ``from_dict`` fills them back with
        their defaults)."""
        tree = self.to_dict()
        for name in EXECUTION_FIELDS:
            tree["experiment"].pop(name)
        return tree

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RunConfig":
        """The configuration of a tree written by :meth:`to_dict`, today or before (:func:`upgrade_tree`)."""
        return from_dict(cls, upgrade_tree(values))


def stage1_train_config(config: RunConfig) -> TrainConfig:
    """What the fit loop trains stage 1 with: ``encoder_train``'s epochs, batch size and learning
    rate, ``train``'s AdamW settings, torch's own thread count (stage 1 runs alone)."""
    stage1 = config.encoder_train
    return replace(config.train, epochs=stage1.epochs, batch_size=stage1.batch_size, lr=stage1.lr, cpu_threads=None)


MOVED_FIELDS: dict[str, str | None] = {
    "train.device": "device", "train.eval_batch_size": "eval_batch_size",
    "features.text.batch_size": "features.batch_size",
    "features.text_selector": "features.selectors.text", "features.visual_selector": "features.selectors.visual",
    "features.object_selector": "features.selectors.objects", "features.selector_model": "features.selectors.model",
    "features.selector_base_url": "features.selectors.base_url",
    **dict.fromkeys((
        "encoder_train.device", "encoder_train.eval_batch_size", "encoder_train.cpu_threads", "encoder_train.dropout",
        "encoder_train.weight_decay", "encoder_train.warmup_ratio", "encoder_train.max_grad_norm",
        "features.text.device", "features.captions.batch_size", "features.captions.device",
        "features.captions.max_phrase_words", "features.captions.max_caption_tokens", "features.images.device",
        "features.images.batch_size", "features.images.detector_seed", "features.selector_max_new_tokens",
        "features.use_cache", "features.show_progress", "model.variant",
        "features.images.max_candidates", "features.images.detector_image_size", "model.sample_in_training")),
}
"""The one translation of configuration trees written before 2026-12-03 (run records, checkpoints,
case-study bundles): each old field -> its new place, or ``None`` where it is gone (a duplicate of
another field, a constant now, or informational). ``features.selector`` was the selector of
the text and visual prompts: it becomes both ``features.selectors.text`` and ``.visual``."""


def upgrade_tree(tree: Mapping[str, Any]) -> dict[str, Any]:
    """An old configuration tree in today's fields (:data:`MOVED_FIELDS`); a current tree is returned as it is."""
    new = json.loads(json.dumps(tree))
    features = new.get("features", {})
    if "selector" in features:
        shared = features.pop("selector")
        features.setdefault("selectors", {}).update(text=shared, visual=shared)
    for old, place in MOVED_FIELDS.items():
        *parents, name = old.split(".")
        group = new
        for part in parents:
            group = group.get(part, {}) if isinstance(group, dict) else {}
        if not isinstance(group, dict) or name not in group:
            continue
        value = group.pop(name)
        if place is not None and value is not None:
            *to_parents, to_name = place.split(".")
            target = new
            for part in to_parents:
                target = target.setdefault(part, {})
            target[to_name] = value
    return new


def preset(profile: str | None = None) -> RunConfig:
    """The preset of a profile (``None``: ``$VMHAN_PROFILE``, else ``cpu``).

    - ``tiny``: the first 200 instances of each split, 1 + 2 epochs, batch 16, one seed;
    - ``cpu``: all of MNRE-2; stage 1 4 epochs (batch 32, lr 5e-5), stage 2 8 epochs at batch 32
      (not the paper's 16: 57 runs must fit a 2-core machine); 3 seeds, 5 for the headline;
    - ``full``: the paper's setting on a GPU: ``joint`` training (encoder and model end to end) of
      all-mpnet-base-v2 (the BERT-base-size encoder offline), AdamW with lr 2e-5 for the encoder and
      1e-3 for the fresh part, weight decay 0.01, dropout 0.6, batch 16, 10 epochs (stage 1, unused
      by ``joint``, keeps 10 epochs at lr 2e-5 for ``--set experiment.training=two-stage``).
    """
    name = resolve_profile(profile)
    if name == "tiny":
        return RunConfig(
            profile=name, data=DataConfig(max_instances=200),
            encoder_train=EncoderTrainConfig(epochs=1, batch_size=16), train=TrainConfig(epochs=2, batch_size=16),
            experiment=ExperimentConfig(seeds=(0,), headline_seeds=(0,)),
        )
    if name == "cpu":
        return RunConfig(profile=name, train=TrainConfig(epochs=8, batch_size=32))
    return RunConfig(
        profile=name, features=FeatureConfig(text=TextEncoderConfig(model=PACKAGED_MPNET)),
        encoder_train=EncoderTrainConfig(epochs=10, batch_size=16, lr=2e-5),
        train=TrainConfig(epochs=10, batch_size=16, encoder_lr=2e-5),
        experiment=ExperimentConfig(training="joint"),
    )


def run_config(profile: str | None = None, data_dir: str | None = None,
               overrides: Mapping[str, Any] | None = None, need_data: bool = False) -> RunConfig:
    """The preset of ``profile`` with its data directory (``None``: ``$VMHAN_DATA``, else
    ``data/mnre``) and ``overrides`` (dotted field -> value, typed or string) applied.

    Args:
        need_data: also check that the data directory exists (notebooks that read the data call
            this first, so a wrong directory fails before any work).

    Raises:
        ConfigError: an unknown profile or field, or a bad value (one line naming what is allowed).
        DataFormatError: ``need_data`` and the data directory does not exist.
    """
    try:
        config = preset(profile)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    if data_dir is not None and str(data_dir) != "":
        config = replace(config, data=replace(config.data, data_dir=str(data_dir)))
    config = apply_overrides(config, dict(overrides or {}))
    if need_data:
        require_data_dir(config.data.path)
    return config
