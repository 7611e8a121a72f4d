"""The runs of a profile: which (variant, seed) jobs there are, where their records and checkpoints
live, what makes each of them (its identity), and the one reuse policy.

A job is one stage-2 run (a Table 1 / Table 2 row, a Fig. 5 proportion, the case studies' model);
the stage-1 encoders of ``two-stage`` and ``out-of-fold`` training are runs too
(:mod:`vmhan_lib.train.stage1`). Every run has an identity (:func:`encoder_identity`,
:func:`job_identity`): its settings, the data fingerprint (sha256 of every data file it reads,
every image included where images are read, :func:`~vmhan_lib.data.fingerprint.data_fingerprint`),
which instances where that depends on the image folder, the digests of the runs its features come
from, and the code versions of :data:`vmhan_lib.identity.CODE_VERSIONS`. A finished run counts only
while its stored identity equals the current one; one that differs is refused with a message naming
what differs (:func:`vmhan_lib.identity.refuse_stale`), or trained again with
``experiment.stale_runs = "retrain"`` (``--retrain-stale``). The identity's digest also keys the
resumable state and the exported model, so neither is ever taken from other inputs.

One policy for every run, stage 1 included (:func:`ensure_run`): a complete run is never
retrained; a complete run whose model is needed but missing (a fresh clone carries the committed
records, not the checkpoints) is trained again aside, into ``<checkpoint>/rerun``, and its test
scores are compared with the committed record's (a warning names both when they differ).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from vmhan_lib.config import ENCODER_VARIANT, STAGE1_HEAD_DROPOUT, RunConfig, stage1_train_config
from vmhan_lib.config_tree import ConfigError
from vmhan_lib.data.fingerprint import data_fingerprint, instances_fingerprint
from vmhan_lib.data.splits import load_split, sentence_folds
from vmhan_lib.features.build import feature_key
from vmhan_lib.identity import CODE_VERSIONS, digest, without_ignored_values
from vmhan_lib.model.variants import FULL_MODEL, check_variants, variant_config
from vmhan_lib.paths import CHECKPOINT_DIR, runs_dir
from vmhan_lib.train.records import (DEFAULT_SETTING, current_identity, read_record, run_differences, run_id,
                                     warn_if_rerun_differs)
from vmhan_lib.train.visual_signal import VisualSignal

RERUN_DIR = "rerun"
FOLDS_FOLDER = "folds"
"""The sub-folder of a profile's runs holding the ``out-of-fold`` fold encoders' records."""
MORE_RUNS_FOLDER = "more"
"""The sub-folder of runs and checkpoints on MORE (read by :mod:`vmhan_lib.analysis.tables`)."""
VISUAL_PROPORTION_FOLDER = "visual_proportion"
SIGNAL_FOLDER = "controlled_signal"
"""Beside a profile's runs (``results/controlled_signal``): the controlled visual-signal study's runs."""


def setting_tag(config: RunConfig) -> str | None:
    """``<training>-<encoder>`` (e.g. ``joint-all-mpnet-base-v2``; a path's last folder names a local
    encoder), then ``-sentence`` in sentence scope (``two-stage-all-minilm-l6-v2-sentence``), or None
    for :data:`~vmhan_lib.train.records.DEFAULT_SETTING` (the committed runs' ids)."""
    training, model, scope = config.setting
    if config.setting == DEFAULT_SETTING:
        return None
    encoder = re.sub(r"[^a-z0-9]+", "-", Path(model).name.lower()).strip("-")
    return f"{training}-{encoder}" + ("" if scope == DEFAULT_SETTING[2] else f"-{scope}")


def run_prefix(config: RunConfig) -> str:
    """The start of the run ids of ``config``: the profile, then its :func:`setting_tag` if any,
    so runs of other training modes, encoders or scopes never share an id (``full__joint-all-mpnet-base-v2``)."""
    tag = setting_tag(config)
    return config.profile if tag is None else f"{config.profile}__{tag}"


def setting_record(config: RunConfig) -> dict[str, str]:
    """The fields every run record carries to say how its text side was trained (and, in sentence
    scope only, ``scope``: records without it are of pair scope)."""
    training, encoder, scope = config.setting
    record = {"training": training, "text_encoder": encoder}
    return record if scope == DEFAULT_SETTING[2] else {**record, "scope": scope}


@dataclass(frozen=True)
class Job:
    """One stage-2 run.

    Attributes:
        variant: the Table 1 / Table 2 row (a name of :data:`vmhan_lib.model.variants.VARIANTS`).
        seed: its seed.
        visual_proportion: Fig. 5 only: the share of instances keeping their visual nodes; such runs
            are named ``"<variant> @ visual 25%"`` and kept apart from the tables' runs.
        signal: the controlled visual-signal study only (:mod:`vmhan_lib.train.visual_signal`); such
            runs are named ``"<variant> @ controlled signal image s=0.1"`` and kept apart too.
    """

    variant: str
    seed: int
    visual_proportion: float | None = None
    signal: VisualSignal | None = None

    def __post_init__(self) -> None:
        check_variants([self.variant])
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.visual_proportion is not None and not 0.0 <= self.visual_proportion <= 1.0:
            raise ConfigError(f"visual_proportion must lie in [0, 1], got {self.visual_proportion}")
        if self.visual_proportion is not None and self.signal is not None:
            raise ConfigError("a run has a visual proportion (Fig. 5) or a controlled visual signal, not both")

    @property
    def name(self) -> str:
        if self.signal is not None:
            return f"{self.variant} @ controlled signal {self.signal.label}"
        if self.visual_proportion is None:
            return self.variant
        return f"{self.variant} @ visual {round(100 * self.visual_proportion)}%"

    @property
    def folder(self) -> str | None:
        """The folder beside the tables' runs that holds this run (``None``: with the tables' runs)."""
        if self.signal is not None:
            return SIGNAL_FOLDER
        return None if self.visual_proportion is None else VISUAL_PROPORTION_FOLDER


@dataclass(frozen=True)
class RunPaths:
    """Where a profile's records and checkpoints go (tests point them elsewhere).

    Attributes:
        runs: run records of the tables (``results/runs``; ``results/tiny/runs`` for ``tiny``);
            Fig. 5 records go to ``visual_proportion/`` beside it, the controlled visual-signal
            study's to ``controlled_signal/`` (:attr:`Job.folder`).
        checkpoints: resumable states and best models, one folder per run.
    """

    runs: Path
    checkpoints: Path

    @classmethod
    def of(cls, config: RunConfig) -> "RunPaths":
        """The profile's folders, in the sub-folder of the run's inputs (:func:`inputs_folder`), so
        that runs on other inputs never reuse (or overwrite) each other's records; the checkpoints
        under ``experiment.checkpoint_dir`` when set."""
        folder, chosen = inputs_folder(config), config.experiment.checkpoint_dir
        checkpoints = CHECKPOINT_DIR if chosen is None else Path(chosen).expanduser()
        return cls(runs_dir(config.profile) / folder, checkpoints / config.profile / folder)

    def run_dir(self, prefix: str, job: Job) -> Path:
        """The record folder of ``job``; ``prefix`` = :func:`run_prefix` of the run's config."""
        folder = self.runs if job.folder is None else self.runs.parent / job.folder
        return folder / run_id(prefix, job.name, job.seed)

    def checkpoint_dir(self, prefix: str, job: Job) -> Path:
        folder = self.checkpoints if job.folder is None else self.checkpoints / job.folder
        return folder / run_id(prefix, job.name, job.seed)

    def encoder_run_dir(self, config: RunConfig) -> Path:
        """Stage 1's record (of the encoder of all train, :func:`stage1_config`)."""
        stage1 = stage1_config(config)
        return self.runs / run_id(run_prefix(stage1), ENCODER_VARIANT, stage1.experiment.encoder_seed)

    def encoder_checkpoint_dir(self, config: RunConfig) -> Path:
        """Stage 1's folder, one per encoder (``encoder``, or ``encoder__two-stage-<encoder>``)."""
        tag = setting_tag(stage1_config(config))
        return self.checkpoints / ("encoder" if tag is None else f"encoder__{tag}")

    def fold_encoder_run_dir(self, config: RunConfig, fold: int) -> Path:
        """The record of the stage-1 encoder trained without ``fold`` (``out-of-fold``), in ``folds/``."""
        return self.runs / FOLDS_FOLDER / run_id(run_prefix(pair_scoped(config)), fold_encoder_name(config, fold),
                                                 config.experiment.encoder_seed)

    def fold_encoder_checkpoint_dir(self, config: RunConfig, fold: int) -> Path:
        """Beside stage 1's folder: ``encoder__fold-<f>-of-<k>``."""
        stage1 = self.encoder_checkpoint_dir(config)
        return stage1.with_name(f"{stage1.name}__fold-{fold + 1}-of-{config.experiment.folds}")


def stage1_config(config: RunConfig) -> RunConfig:
    """The configuration of the stage-1 encoder of all train that ``config``'s dev and test features
    come from: ``out-of-fold`` runs share the ``two-stage`` run's (the same encoder, trained once),
    and every hypergraph scope the pair scope's (stage 1 builds no hypergraph)."""
    stage1 = pair_scoped(config)
    return stage1 if config.experiment.training != "out-of-fold" else stage1.with_training("two-stage")


def pair_scoped(config: RunConfig) -> RunConfig:
    """``config`` in hypergraph scope ``pair``: what its stage-1 runs see (they build no hypergraph)."""
    return replace(config, model=config.model.with_hypergraph(scope=DEFAULT_SETTING[2]))


def fold_encoder_name(config: RunConfig, fold: int) -> str:
    """The run name of the stage-1 encoder trained without ``fold`` (0-based), e.g.
    ``Text-only (fine-tuned encoder) fold 1 of 5``."""
    return f"{ENCODER_VARIANT} fold {fold + 1} of {config.experiment.folds}"


def inputs_folder(config: RunConfig) -> str:
    """The runs' sub-folder of the paper's inputs a run reads: ``""`` for MNRE with caption-based
    visual nodes (the committed results), ``images`` / ``both`` for MNRE with those visual sources,
    ``more`` for MORE (read by Table 1's MORE columns); outside ``tiny``, runs on the first N
    instances of each split (``data.max_instances``) go to ``first-<N>`` (after the source's folder),
    so that they never meet the records of the whole data (e.g. the controlled visual-signal study's
    own stage-1 encoder, :mod:`vmhan_lib.train.signal_study`)."""
    if config.data.dataset == "more":
        return MORE_RUNS_FOLDER
    folder = "" if config.features.visual_source == "captions" else config.features.visual_source
    if config.profile != "tiny" and config.data.max_instances is not None:
        folder = f"{folder}-first-{config.data.max_instances}".lstrip("-")
    return folder


def table_jobs(config: RunConfig, variants: Sequence[str] | None = None) -> list[Job]:
    """Every (variant, seed) of the tables (``variants`` default: ``experiment.variants``)."""
    chosen = config.experiment.variants if variants is None else tuple(variants)
    return [Job(v, s) for v in dict.fromkeys(chosen) for s in config.experiment.seeds_of(v)]


def proportion_jobs(config: RunConfig, proportions: Sequence[float] | None = None) -> list[Job]:
    """Fig. 5: VM-HAN for every proportion (default ``experiment.visual_proportions``) and seed."""
    chosen = config.experiment.visual_proportions if proportions is None else tuple(proportions)
    return [Job(FULL_MODEL, s, float(p)) for p in chosen for s in config.experiment.seeds]


def ensure_run(run_dir: Path, checkpoint_dir: Path, identity: dict[str, Any], model_ready: bool, need_model: bool,
               train: Callable[[Path], dict[str, Any]], what: str) -> dict[str, Any]:
    """The record of a run: read when finished with this ``identity`` (and its model at hand when
    ``need_model``), else trained by ``train(record_dir)`` (missing, or stale: :func:`refuse_stale`
    has let it through). A finished run whose model is missing but needed trains again with its
    record in ``checkpoint_dir/rerun``, never over the committed one, and is compared with it
    (:func:`~vmhan_lib.train.records.warn_if_rerun_differs`, ``what`` says what depends on the
    retrained model)."""
    if run_differences(run_dir, identity) == []:
        if need_model and not model_ready:
            warn_if_rerun_differs(run_dir, train(checkpoint_dir / RERUN_DIR), what)
        return read_record(run_dir)
    return train(run_dir)


def data_identity(config: RunConfig, captioners: Sequence[str], images: bool) -> dict[str, Any]:
    """The data settings that change a result and the data fingerprint: every file read (with
    ``images``, every image of the runs' instances: a damaged image restored makes the run stale),
    and which instances where the image folder decides it (``data.image_instances`` ``first`` /
    ``only``). The dataset is named when not MNRE (identities of MNRE runs stay those recorded
    before MORE existed)."""
    data = config.data
    identity: dict[str, Any] = {"max_instances": data.max_instances, "captioners": list(data.captioners),
                                "files": data_fingerprint(data, captioners, images=images)}
    if data.dataset != "mnre":
        identity["dataset"] = data.dataset
    if data.image_instances != "all":
        identity["image_instances"] = data.image_instances
        identity["instances"] = instances_fingerprint(data)
    return identity


def stage2_data_identity(config: RunConfig) -> dict[str, Any]:
    """The :func:`data_identity` of a stage-2 run: the captions of ``data.captioners`` and of the
    selection captioner, the images where stage 2 reads them. The same for every job of ``config``."""
    captioners = {*config.data.captioners, config.features.visual_selection_captioner}
    return data_identity(config, sorted(captioners), reads_images(config))


def reads_images(config: RunConfig) -> bool:
    """Whether stage 2 reads the images (``features.visual_source`` ``images`` / ``both``, or MORE)."""
    return config.features.visual_source != "captions" or config.data.dataset == "more"


def encoder_settings(config: RunConfig) -> dict[str, Any]:
    """The settings part of :func:`encoder_identity`: the text encoder and what it trains with."""
    train = stage1_train_config(config)
    settings = {"epochs": train.epochs, "batch_size": train.batch_size, "lr": train.lr,
                "weight_decay": train.weight_decay, "warmup_ratio": train.warmup_ratio,
                "max_grad_norm": train.max_grad_norm, "dropout": STAGE1_HEAD_DROPOUT}
    return {"text_encoder": asdict(config.features.text), "encoder_train": settings}


def encoder_identity(config: RunConfig) -> dict[str, Any]:
    """What makes the stage-1 encoder: its seed, the text files it reads, and the settings it trains
    with (:func:`encoder_settings`: :func:`~vmhan_lib.config.stage1_train_config`, its head's dropout included)."""
    return {"variant": ENCODER_VARIANT, "seed": config.experiment.encoder_seed,
            "data": data_identity(config, (), images=False), **encoder_settings(config)}


def fold_encoder_identities(config: RunConfig) -> list[dict[str, Any]]:
    """What makes each stage-1 encoder trained without one fold: the encoder's identity, the fold and
    k. The folds are a function of the train instances, k and the encoder seed
    (:func:`~vmhan_lib.data.splits.sentence_folds`, named by ``CODE_VERSIONS["fold-assignment"]``); the instances
    are those of the fingerprinted train file, except with ``data.image_instances`` ``first`` /
    ``only``, where they depend on which image files exist: then the held-out instances themselves
    enter the identity."""
    base = encoder_identity(config)
    assignment = CODE_VERSIONS["fold-assignment"]
    identities = [{**base, "fold": fold + 1, "folds": config.experiment.folds, "fold_assignment": assignment}
                  for fold in range(config.experiment.folds)]
    if config.data.image_instances != "all":
        train = load_split(config.data, "train")
        for identity, fold in zip(identities, sentence_folds(train, config.experiment.folds,
                                                             config.experiment.encoder_seed)):
            identity["held_out"] = digest({"indices": [train[p].index for p in fold]})
    return identities


def stage1_digest(config: RunConfig, paths: RunPaths) -> str:
    """The stage-2 features' text encoder, as a job's identity names it: the digest of the stage-1
    run, and for ``out-of-fold`` also those of the fold encoders that encoded train."""
    runs = stage1_runs(config, paths)
    full = f"stage-1 run {digest(runs[0].identity)}"
    if config.experiment.training != "out-of-fold":
        return full
    return f"{full}; train out-of-fold from stage-1 runs {', '.join(digest(run.identity) for run in runs[1:])}"


@dataclass(frozen=True)
class Stage1Run:
    """One stage-1 encoder run a configuration's features come from.

    Attributes:
        config: the configuration it trains with (:func:`stage1_config` for the encoder of all train).
        name: its run name (:data:`~vmhan_lib.config.ENCODER_VARIANT`, or :func:`fold_encoder_name`).
        identity: :func:`encoder_identity` or :func:`fold_encoder_identities`, as its record stores
            it while current (:func:`~vmhan_lib.train.records.current_identity`).
        run_dir, checkpoint_dir: its record and its resumable state and exported encoder.
        fold: the fold it is trained without (0-based), ``None`` for the encoder of all train.
    """

    config: RunConfig
    name: str
    identity: dict[str, Any]
    run_dir: Path
    checkpoint_dir: Path
    fold: int | None = None


def stage1_runs(config: RunConfig, paths: RunPaths) -> list[Stage1Run]:
    """The stage-1 runs of ``config``: none for ``joint``; the encoder of all train; for
    ``out-of-fold`` then one per fold."""
    if config.experiment.training == "joint":
        return []
    stage1 = stage1_config(config)
    run_dir = paths.encoder_run_dir(stage1)
    runs = [Stage1Run(stage1, ENCODER_VARIANT, current_identity(run_dir, encoder_identity(stage1)), run_dir,
                      paths.encoder_checkpoint_dir(stage1))]
    if config.experiment.training == "out-of-fold":
        fold_config = pair_scoped(config)
        for fold, identity in enumerate(fold_encoder_identities(config)):
            run_dir = paths.fold_encoder_run_dir(config, fold)
            runs.append(Stage1Run(fold_config, fold_encoder_name(config, fold), current_identity(run_dir, identity), run_dir,
                                  paths.fold_encoder_checkpoint_dir(config, fold), fold))
    return runs


def job_identity(config: RunConfig, job: Job, data: dict[str, Any] | None = None,
                 paths: RunPaths | None = None) -> dict[str, Any]:
    """What makes a stage-2 run: the variant's model and training settings, the data it reads
    (captions of ``data.captioners`` and the selection captioner included; ``data`` = the
    :func:`data_identity` of ``config`` when already computed for another job) and the feature key,
    whose text encoder is the digest of the stage-1 run (``two-stage``) or trained with the run
    (``joint``). As its record (under ``paths``, default the profile's) stores it while that is
    current (:func:`~vmhan_lib.train.records.current_identity`)."""
    paths = paths or RunPaths.of(config)
    joint = config.experiment.training == "joint"
    text_encoder = "trained with the run" if joint else stage1_digest(config, paths)
    data = data or stage2_data_identity(config)
    identity = {"variant": job.name, "seed": job.seed, "model": asdict(variant_config(job.variant, config.model)),
                "train": train_identity(config), "data": data, "features": feature_key(config.features, text_encoder)}
    if job.visual_proportion is not None:
        identity["visual_proportion"] = job.visual_proportion
    if job.signal is not None:
        identity["visual_signal"] = {**asdict(job.signal), "code": CODE_VERSIONS["visual-signal"]}
    if config.experiment.training != "two-stage":
        identity["training"] = config.experiment.training
    return current_identity(paths.run_dir(run_prefix(config), job), without_ignored_values(identity))


def train_identity(config: RunConfig) -> dict[str, Any]:
    """``config.train`` as it enters a job's identity: in ``two-stage`` without ``encoder_lr``, which
    it does not read (so the identities, and the resumable states, of earlier runs stay valid)."""
    values = asdict(config.train)
    if config.experiment.training != "joint":
        del values["encoder_lr"]
    return values
