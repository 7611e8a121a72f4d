"""The one job runner: a set of (variant, seed) runs of a profile, trained or reused.

``experiment.training`` picks how the text encoder is trained. ``joint`` (the paper's, the ``full``
preset): stage 1 is skipped and every job trains the pretrained encoder together with its model
under Eq. 12 (:mod:`vmhan_lib.train.joint_task`), the text node features computed by the live
encoder for every batch. ``two-stage`` (the default), chosen so that the ``cpu`` profile runs every
row of both tables on a 2-core machine:

1. the entity-marker text encoder is fine-tuned **once** (seed ``experiment.encoder_seed``) with a
   linear head (:mod:`vmhan_lib.train.encoder_task`); that model is our fine-tuned text-only row;
2. every job (a Table 1 / Table 2 variant, a Fig. 5 proportion, the case studies' model) trains
   its hypergraph part and classifier on the **frozen** features of that encoder (head/tail start
   markers, text-LLM spans) and on the caption-based visual nodes
   (:mod:`vmhan_lib.train.hypergraph_task`).

Sharing the encoder is sound for comparing the variants with each other (they differ only above
the encoder, which is exactly what Table 2 ablates) and with the text-only row of stage 2 (same
features, no visual nodes, no hypergraph). It is not the paper's end-to-end fine-tuning; the
seed spread therefore covers the hypergraph part only.

In two-stage training the stage-2 *train* features come from an encoder fine-tuned on those same
instances, so on train the text alone separates the classes better than it will on dev and test.
``out-of-fold`` (k-fold cross-fitting, ``experiment.folds``) removes that: train is cut into k
folds grouped by sentence, k more stage-1 encoders are fine-tuned, each without one fold
(:func:`stage1_runs`, records in ``runs/folds/``), and each train instance's text nodes come
from the encoder that never saw it (:func:`~vmhan_lib.features.build.with_fold_text_features`);
dev and test features come from the stage-1 encoder of all train, shared with ``two-stage``.

Every run has an identity (:func:`encoder_identity`, :func:`job_identity`): its settings, the
data fingerprint (sha256 of every data file it reads) and the feature key. A finished run counts
only while its stored identity equals the current one; one that differs is refused with a message
naming what differs (:class:`StaleRunsError`), or trained again with ``experiment.stale_runs =
"retrain"`` (``--retrain-stale``). The identity's digest also keys the resumable state and the
exported model, so neither is ever taken from other inputs.

One policy for every run, stage 1 included (:func:`ensure_run`): a complete run is never
retrained; a complete run whose model is needed but missing (a fresh clone carries the committed
records, not the checkpoints) is trained again aside, into ``<checkpoint>/rerun``, and its test
scores are compared with the committed record's (a warning names both when they differ). When
every job is complete (and its model at hand where needed) nothing is loaded, not even stage 1.

Where the runs execute is ``experiment.executor``: ``local`` (one after the other in this process)
or ``ray`` (one Ray task per run, :mod:`vmhan_lib.train.ray_executor`); both train a run with
:func:`train_job`, so a record does not depend on where it was made.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from vmhan_lib.config_tree import ConfigError
from vmhan_lib.data.fingerprint import data_fingerprint
from vmhan_lib.data.mnre import SPLITS, Instance, RelationVocab
from vmhan_lib.data.splits import load_split, load_vocab, sentence_folds
from vmhan_lib.features.build import build_split, describe_fallbacks, feature_key, with_fold_text_features
from vmhan_lib.features.node_selection import make_prompt_selectors
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.variants import FULL_MODEL, check_variants, variant_config
from vmhan_lib.paths import CHECKPOINT_DIR, runs_dir
from vmhan_lib.config import ENCODER_VARIANT, RunConfig
from vmhan_lib.train.encoder_task import EncoderTask, encoder_ready, exported_encoder_dir
from vmhan_lib.io import key_digest
from vmhan_lib.train.fit import FitTask, fit, resolve_device
from vmhan_lib.train.hypergraph_task import HypergraphTask, SplitNodes, best_model_ready
from vmhan_lib.train.joint_task import JointTask
from vmhan_lib.train.records import DEFAULT_SETTING, read_record, run_differences, run_id, warn_if_rerun_differs
from vmhan_lib.train.visual_proportion import with_visual_proportion

RERUN_DIR = "rerun"
FOLDS_FOLDER = "folds"
"""The sub-folder of a profile's runs holding the ``out-of-fold`` fold encoders' records."""
FOLD_ASSIGNMENT = "sentence-grouped-1"
"""Names the fold assignment (:func:`~vmhan_lib.data.splits.sentence_folds`); change it when the assignment changes."""
MORE_RUNS_FOLDER = "more"
"""The sub-folder of runs and checkpoints on MORE (read by :mod:`vmhan_lib.analysis.tables`)."""
VISUAL_PROPORTION_FOLDER = "visual_proportion"


def setting_tag(config: RunConfig) -> str | None:
    """``<training>-<encoder>`` (e.g. ``joint-all-mpnet-base-v2``; a path's last folder names a local
    encoder), or None for :data:`~vmhan_lib.train.records.DEFAULT_SETTING` (the committed runs' ids)."""
    training, model = config.setting
    if config.setting == DEFAULT_SETTING:
        return None
    encoder = re.sub(r"[^a-z0-9]+", "-", Path(model).name.lower()).strip("-")
    return f"{training}-{encoder}"


def run_prefix(config: RunConfig) -> str:
    """The start of the run ids of ``config``: the profile, then its :func:`setting_tag` if any,
    so runs of other training modes or encoders never share an id (``full__joint-all-mpnet-base-v2``)."""
    tag = setting_tag(config)
    return config.profile if tag is None else f"{config.profile}__{tag}"


def setting_record(config: RunConfig) -> dict[str, str]:
    """The fields every run record carries to say how its text side was trained."""
    training, encoder = config.setting
    return {"training": training, "text_encoder": encoder}


@dataclass(frozen=True)
class Job:
    """One stage-2 run.

    Attributes:
        variant: the Table 1 / Table 2 row (a name of :data:`vmhan_lib.model.variants.VARIANTS`).
        seed: its seed.
        visual_proportion: Fig. 5 only: the share of instances keeping their visual nodes; such runs
            are named ``"<variant> @ visual 25%"`` and kept apart from the tables' runs.
    """

    variant: str
    seed: int
    visual_proportion: float | None = None

    def __post_init__(self) -> None:
        check_variants([self.variant])
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.visual_proportion is not None and not 0.0 <= self.visual_proportion <= 1.0:
            raise ConfigError(f"visual_proportion must lie in [0, 1], got {self.visual_proportion}")

    @property
    def name(self) -> str:
        if self.visual_proportion is None:
            return self.variant
        return f"{self.variant} @ visual {round(100 * self.visual_proportion)}%"


@dataclass(frozen=True)
class RunPaths:
    """Where a profile's records and checkpoints go (tests point them elsewhere).

    Attributes:
        runs: run records of the tables (``results/runs``; ``results/tiny/runs`` for ``tiny``);
            Fig. 5 records go to ``visual_proportion/`` beside it.
        checkpoints: resumable states and best models, one folder per run.
    """

    runs: Path
    checkpoints: Path

    @classmethod
    def of(cls, config: RunConfig) -> "RunPaths":
        """The profile's folders, in the sub-folder of the run's inputs (:func:`inputs_folder`), so
        that runs on other inputs never reuse (or overwrite) each other's records."""
        folder = inputs_folder(config)
        return cls(runs_dir(config.profile) / folder, CHECKPOINT_DIR / config.profile / folder)

    def run_dir(self, prefix: str, job: Job) -> Path:
        """The record folder of ``job``; ``prefix`` = :func:`run_prefix` of the run's config."""
        folder = self.runs if job.visual_proportion is None else self.runs.parent / VISUAL_PROPORTION_FOLDER
        return folder / run_id(prefix, job.name, job.seed)

    def checkpoint_dir(self, prefix: str, job: Job) -> Path:
        folder = self.checkpoints if job.visual_proportion is None else self.checkpoints / VISUAL_PROPORTION_FOLDER
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
        return self.runs / FOLDS_FOLDER / run_id(run_prefix(config), fold_encoder_name(config, fold),
                                                 config.experiment.encoder_seed)

    def fold_encoder_checkpoint_dir(self, config: RunConfig, fold: int) -> Path:
        """Beside stage 1's folder: ``encoder__fold-<f>-of-<k>``."""
        stage1 = self.encoder_checkpoint_dir(config)
        return stage1.with_name(f"{stage1.name}__fold-{fold + 1}-of-{config.experiment.folds}")


def stage1_config(config: RunConfig) -> RunConfig:
    """The configuration of the stage-1 encoder of all train that ``config``'s dev and test features
    come from: ``out-of-fold`` runs share the ``two-stage`` run's (the same encoder, trained once)."""
    if config.experiment.training != "out-of-fold":
        return config
    return config.with_training("two-stage")


def fold_encoder_name(config: RunConfig, fold: int) -> str:
    """The run name of the stage-1 encoder trained without ``fold`` (0-based), e.g.
    ``Text-only (fine-tuned encoder) fold 1 of 5``."""
    return f"{ENCODER_VARIANT} fold {fold + 1} of {config.experiment.folds}"


def inputs_folder(config: RunConfig) -> str:
    """The runs' sub-folder of the paper's inputs a run reads: ``""`` for MNRE with caption-based
    visual nodes (the committed results), ``images`` / ``both`` for MNRE with those visual sources,
    ``more`` for MORE (read by Table 1's MORE columns)."""
    if config.data.dataset == "more":
        return MORE_RUNS_FOLDER
    return "" if config.features.visual_source == "captions" else config.features.visual_source


def table_jobs(config: RunConfig, variants: Sequence[str] | None = None) -> list[Job]:
    """Every (variant, seed) of the tables (``variants`` default: ``experiment.variants``)."""
    chosen = config.experiment.variants if variants is None else tuple(variants)
    return [Job(v, s) for v in dict.fromkeys(chosen) for s in config.experiment.seeds_of(v)]


def proportion_jobs(config: RunConfig, proportions: Sequence[float] | None = None) -> list[Job]:
    """Fig. 5: VM-HAN for every proportion (default ``experiment.visual_proportions``) and seed."""
    chosen = config.experiment.visual_proportions if proportions is None else tuple(proportions)
    return [Job(FULL_MODEL, s, float(p)) for p in chosen for s in config.experiment.seeds]


class StaleRunsError(ConfigError):
    """Finished runs whose stored identity differs from the current one (``stale_runs=refuse``)."""


def refuse_stale(runs: Sequence[tuple[Path, list[str] | None]], policy: str) -> None:
    """Raise :class:`StaleRunsError` naming every finished run of ``runs`` (``(run_dir,``
    :func:`~vmhan_lib.train.records.run_differences` ``of its current identity)``) that differs
    and what differs, unless ``policy`` is ``retrain`` (then :func:`ensure_run` trains them again)."""
    stale = [(run_dir, differences) for run_dir, differences in runs if differences]
    if not stale or policy == "retrain":
        return
    named = "; ".join(f"{run_dir.name} ({', '.join(d[:3])}{', ...' if len(d) > 3 else ''})" for run_dir, d in stale[:4])
    more = f"; and {len(stale) - 4} more" if len(stale) > 4 else ""
    raise StaleRunsError(
        f"{len(stale)} finished run(s) were made from other inputs than the current ones: {named}{more}. "
        "Rerun with --retrain-stale (or --set experiment.stale_runs=retrain) to train them again, replacing their records")


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


def _data_identity(config: RunConfig, captioners: Sequence[str]) -> dict[str, Any]:
    """The data settings that change a result, and the data fingerprint. Settings that keep their
    default meaning are left out (so identities stay those of runs recorded before the settings
    existed): the dataset when MNRE, the instance filter when all, the image folder when no
    image is read."""
    data = config.data
    identity: dict[str, Any] = {"max_instances": data.max_instances, "captioners": list(data.captioners),
                                "files": data_fingerprint(data, captioners)}
    if data.dataset != "mnre":
        identity["dataset"] = data.dataset
    if data.image_instances != "all":
        identity["image_instances"] = data.image_instances
    if data.image_instances != "all" or config.features.visual_source != "captions":
        identity["image_dir"] = data.image_dir  # the images themselves are hashed in the image features' cache key
    return identity


def encoder_identity(config: RunConfig) -> dict[str, Any]:
    """What makes the stage-1 encoder: its seed and settings and the text files it reads."""
    return {"variant": ENCODER_VARIANT, "seed": config.experiment.encoder_seed, "data": _data_identity(config, ()),
            "text_encoder": asdict(config.features.text), "encoder_train": asdict(config.encoder_train)}


def fold_encoder_identities(config: RunConfig) -> list[dict[str, Any]]:
    """What makes each stage-1 encoder trained without one fold: the encoder's identity, the fold and
    k. The folds are a function of the train instances, k and the encoder seed
    (:func:`~vmhan_lib.data.splits.sentence_folds`, named by :data:`FOLD_ASSIGNMENT`); the instances
    are those of the fingerprinted train file, except with ``data.image_instances`` ``first`` /
    ``only``, where they depend on which image files exist: then the held-out instances themselves
    enter the identity."""
    base = encoder_identity(config)
    identities = [{**base, "fold": fold + 1, "folds": config.experiment.folds, "fold_assignment": FOLD_ASSIGNMENT}
                  for fold in range(config.experiment.folds)]
    if config.data.image_instances != "all":
        train = load_split(config.data, "train")
        for identity, fold in zip(identities, sentence_folds(train, config.experiment.folds,
                                                             config.experiment.encoder_seed)):
            identity["held_out"] = key_digest({"indices": [train[p].index for p in fold]})
    return identities


def stage1_digest(config: RunConfig) -> str:
    """The stage-2 features' text encoder, as a job's identity names it: the digest of the stage-1
    run, and for ``out-of-fold`` also those of the fold encoders that encoded train."""
    full = f"stage-1 run {key_digest(encoder_identity(config))}"
    if config.experiment.training != "out-of-fold":
        return full
    folds = ", ".join(key_digest(identity) for identity in fold_encoder_identities(config))
    return f"{full}; train out-of-fold from stage-1 runs {folds}"


def job_identity(config: RunConfig, job: Job) -> dict[str, Any]:
    """What makes a stage-2 run: the variant's model and training settings, the data it reads
    (captions of ``data.captioners`` and the selection captioner included) and the feature key,
    whose text encoder is the digest of the stage-1 run (``two-stage``) or trained with the run
    (``joint``)."""
    captioners = {*config.data.captioners, config.features.visual_selection_captioner}
    joint = config.experiment.training == "joint"
    text_encoder = "trained with the run" if joint else stage1_digest(config)
    identity = {"variant": job.name, "seed": job.seed, "model": asdict(variant_config(job.variant, config.model)),
                "train": train_identity(config), "data": _data_identity(config, sorted(captioners)),
                "features": feature_key(config.features, text_encoder)}
    if job.visual_proportion is not None:
        identity["visual_proportion"] = job.visual_proportion
    if config.experiment.training != "two-stage":
        identity["training"] = config.experiment.training
    return identity


@dataclass
class PreparedInputs:
    """The jobs' inputs: the node features of every split, the features config that made them
    (text encoder = the fine-tuned one in ``two-stage``, the pretrained one in ``joint``), the build
    report of each split, the base model sized to the features, the relation vocabulary, and the
    MNRE instances of every split (``joint`` tokenises them)."""

    data: dict[str, SplitNodes]
    features: dict[str, Any]
    build: dict[str, dict[str, Any]]
    model: ModelConfig
    vocab: RelationVocab
    instances: dict[str, list[Instance]] = field(default_factory=dict)


def prepare_inputs(config: RunConfig, paths: RunPaths, progress: bool = True) -> PreparedInputs:
    """The node features of every split: built with the stage-1 encoder (trained once, or reused)
    in ``two-stage`` training, with the pretrained encoder in ``joint`` (no stage 1)."""
    vocab = load_vocab(config.data)
    splits = {s: load_split(config.data, s, vocab) for s in SPLITS}
    encoders, _, folds = _stage1_encoders(config, paths, splits, vocab, progress, need_models=True)
    features = config.features if not encoders else replace(
        config.features, text=replace(config.features.text, model=str(encoders[0])))
    selector = make_prompt_selectors(features)
    inputs, build = {}, {}
    for split in SPLITS:
        built = build_split(config.data, split, features, selector)
        if split == "train" and folds:
            fold_encoders = [replace(config.features.text, model=str(folder)) for folder in encoders[1:]]
            built = with_fold_text_features(built, config.data, "train", folds, fold_encoders, features, selector)
        inputs[split] = SplitNodes.of(built.nodes, splits[split], vocab)
        build[split] = built.report.to_dict()
    for line in describe_fallbacks(build):  # never silent: also in every run record ("build") and the table notes
        print(f"features fallback, {line}")
    train_nodes = inputs["train"].nodes
    text_dim = train_nodes[0].text_features.shape[1]
    visual_dim = next((n.visual_features.shape[1] for n in train_nodes if n.visual_features.shape[0]), text_dim)
    return PreparedInputs(inputs, asdict(features), build, config.model.sized(text_dim, visual_dim, len(vocab)), vocab,
                          splits)


@dataclass(frozen=True)
class Stage1Run:
    """One stage-1 encoder run a configuration's features come from.

    Attributes:
        config: the configuration it trains with (:func:`stage1_config` for the encoder of all train).
        name: its run name (:data:`~vmhan_lib.config.ENCODER_VARIANT`, or :func:`fold_encoder_name`).
        identity: :func:`encoder_identity` or :func:`fold_encoder_identities`.
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
    runs = [Stage1Run(stage1, ENCODER_VARIANT, encoder_identity(stage1), paths.encoder_run_dir(stage1),
                      paths.encoder_checkpoint_dir(stage1))]
    if config.experiment.training == "out-of-fold":
        runs += [Stage1Run(config, fold_encoder_name(config, fold), identity, paths.fold_encoder_run_dir(config, fold),
                           paths.fold_encoder_checkpoint_dir(config, fold), fold)
                 for fold, identity in enumerate(fold_encoder_identities(config))]
    return runs


def stage1_ready(config: RunConfig, paths: RunPaths) -> bool:
    """Whether every stage-1 run of ``config`` (:func:`stage1_runs`) is finished with its current
    identity and its encoder exported here by that run, so :func:`prepare_inputs` trains nothing."""
    return all(run_differences(run.run_dir, run.identity) == [] and
               encoder_ready(run.checkpoint_dir, key_digest(run.identity)) for run in stage1_runs(config, paths))


def train_stage1(config: RunConfig, paths: RunPaths | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Train only the stage-1 runs of ``config`` (:func:`stage1_runs`), no stage-2 job and no node
    features: ``train --variants "Text-only (fine-tuned encoder)"``, e.g. to choose an encoder's stage-1
    schedule on dev before its stage-2 rows. A finished run is read, not retrained, even without its
    exported encoder (a fresh clone's committed record: stage 2 retrains it aside when it needs it).
    Returns their records, the encoder of all train first.

    Raises:
        ConfigError: ``joint`` training, which has no stage 1.
    """
    if config.experiment.training == "joint":
        raise ConfigError(f"{ENCODER_VARIANT!r} is the stage-1 encoder of two-stage and out-of-fold training; "
                          "joint training has none (set experiment.training=two-stage or out-of-fold)")
    paths = paths or RunPaths.of(config)
    vocab = load_vocab(config.data)
    splits = {s: load_split(config.data, s, vocab) for s in SPLITS}
    return _stage1_encoders(config, paths, splits, vocab, progress, need_models=False)[1]


def _stage1_encoders(config: RunConfig, paths: RunPaths, splits: dict[str, list[Instance]], vocab: RelationVocab,
                     progress: bool, need_models: bool) -> tuple[list[Path], list[dict[str, Any]], list[list[int]]]:
    """Every stage-1 run of ``config`` trained or reused (stale ones refused first, all at once; with
    ``need_models`` a finished run without its exported encoder trains again aside, :func:`ensure_run`):
    the exported encoders' folders and the runs' records (:func:`stage1_runs`'s order), and the train
    folds (``out-of-fold``)."""
    runs = stage1_runs(config, paths)
    refuse_stale([(run.run_dir, run_differences(run.run_dir, run.identity)) for run in runs],
                 config.experiment.stale_runs)  # every stage-1 run at once, before any is trained
    folds = sentence_folds(splits["train"], config.experiment.folds, config.experiment.encoder_seed) \
        if config.experiment.training == "out-of-fold" else []
    records = [_train_encoder(run, splits, vocab, [] if run.fold is None else folds[run.fold], progress, need_models)
               for run in tqdm(runs, desc="stage 1", disable=not progress or len(runs) < 2)]
    return [exported_encoder_dir(run.checkpoint_dir) for run in runs], records, folds


def _train_encoder(run: Stage1Run, splits: dict[str, list[Instance]], vocab: RelationVocab, held_out: Sequence[int],
                   progress: bool, need_model: bool) -> dict[str, Any]:
    """One stage-1 run, fine-tuned on train without the positions ``held_out`` (trained, or reused by
    :func:`ensure_run`; :func:`_stage1_encoders` has refused stale runs): its record."""
    config, left_out = run.config, set(held_out)
    run_splits = {**splits, "train": [x for p, x in enumerate(splits["train"]) if p not in left_out]}

    def train_encoder(record_dir: Path) -> dict[str, Any]:
        task = EncoderTask(run_splits, vocab, config.features.text, config.encoder_train.batch_size,
                           config.encoder_train.eval_batch_size, config.encoder_train.dropout,
                           resolve_device(config.encoder_train.device))
        return fit(name=run.name, task=task, train_config=config.encoder_train, vocab=vocab,
                   seed=config.experiment.encoder_seed, run_dir=record_dir, checkpoint_dir=run.checkpoint_dir,
                   config_record={**run.identity, "run": config.to_record()}, identity=run.identity,
                   extra_record={"identity": run.identity, **setting_record(config)}, progress=progress)

    return ensure_run(run.run_dir, run.checkpoint_dir, run.identity,
                      encoder_ready(run.checkpoint_dir, key_digest(run.identity)), need_model, train_encoder,
                      "the features of stage 2 come from the retrained encoder")


def make_task(config: RunConfig, model: ModelConfig, data: dict[str, SplitNodes], inputs: PreparedInputs,
              device: torch.device) -> FitTask:
    """The fit task of one job in ``config``'s training mode."""
    train = config.train
    if config.experiment.training == "joint":
        return JointTask(model, data, inputs.instances, config.features.text, train.batch_size, train.eval_batch_size,
                         train.encoder_lr, device)
    return HypergraphTask(model, data, train.batch_size, train.eval_batch_size, device)


def train_identity(config: RunConfig) -> dict[str, Any]:
    """``config.train`` as it enters a job's identity: in ``two-stage`` without ``encoder_lr``, which
    it does not read (so the identities, and the resumable states, of earlier runs stay valid)."""
    values = asdict(config.train)
    if config.experiment.training != "joint":
        del values["encoder_lr"]
    return values


def train_job(config: RunConfig, job: Job, inputs: PreparedInputs, paths: RunPaths, *, need_model: bool = False,
              progress: bool = True) -> dict[str, Any]:
    """Train (or reuse, see :func:`ensure_run`) one job on prepared inputs; returns its record.

    The per-job code of every executor: the local one calls it in turn, the Ray executor calls it
    inside one Ray task per job (:mod:`vmhan_lib.train.ray_executor`), so a run's record is the
    same wherever it ran.
    """
    prefix = run_prefix(config)
    run_dir, checkpoint_dir = paths.run_dir(prefix, job), paths.checkpoint_dir(prefix, job)
    identity = job_identity(config, job)
    model_ready = need_model and best_model_ready(checkpoint_dir, key_digest(identity))
    device = resolve_device(config.train.device)
    model = variant_config(job.variant, inputs.model)
    data = inputs.data if job.visual_proportion is None else with_visual_proportion(
        inputs.data, job.visual_proportion, job.seed)
    config_record = {"variant": job.name, "seed": job.seed, "model": asdict(model), "train": asdict(config.train),
                     "data": asdict(config.data), "features": inputs.features, "run": config.to_record()}
    if job.visual_proportion is not None:
        config_record["visual_proportion"] = job.visual_proportion

    def train(record_dir: Path) -> dict[str, Any]:
        return fit(name=job.name, task=make_task(config, model, data, inputs, device), train_config=config.train,
                   vocab=inputs.vocab, seed=job.seed, run_dir=record_dir, checkpoint_dir=checkpoint_dir,
                   config_record=config_record, identity=identity,
                   extra_record={"identity": identity, "build": inputs.build, **setting_record(config)},
                   progress=progress)

    return ensure_run(run_dir, checkpoint_dir, identity, model_ready, need_model, train,
                      "the case studies explain the retrained model")


def run_jobs(config: RunConfig, jobs: Sequence[Job], *, need_models: bool = False, paths: RunPaths | None = None,
             progress: bool = True) -> list[dict[str, Any]]:
    """Run (or reuse) every job of ``jobs``; returns their records in order.

    Where the runs execute is ``config.experiment.executor``: ``local`` trains them one after the
    other in this process; ``ray`` runs each as one Ray task
    (:func:`vmhan_lib.train.ray_executor.run_on_ray`, which raises
    :class:`~vmhan_lib.train.ray_executor.SweepFailed` naming the runs that failed after the others
    completed). Either way every run goes through :func:`train_job`.

    Args:
        need_models: also make sure each job's best model is at hand (the case studies explain it);
            a complete run without it is trained again aside (see :func:`ensure_run`).
    """
    paths = paths or RunPaths.of(config)
    prefix = run_prefix(config)
    run_dirs = [paths.run_dir(prefix, job) for job in jobs]
    identities = [job_identity(config, job) for job in jobs]
    differences = [run_differences(run_dir, identity) for run_dir, identity in zip(run_dirs, identities)]
    refuse_stale(list(zip(run_dirs, differences)), config.experiment.stale_runs)
    # work to do: no finished run of its identity, or its model needed and not at hand
    pending = [d != [] or (need_models and not best_model_ready(paths.checkpoint_dir(prefix, job), key_digest(i)))
               for job, i, d in zip(jobs, identities, differences)]
    if not any(pending):
        return [read_record(run_dir) for run_dir in run_dirs]
    if config.experiment.executor == "ray":
        from vmhan_lib.train.ray_executor import run_on_ray

        trained = run_on_ray(config, [job for job, todo in zip(jobs, pending) if todo], prepare=prepare_inputs,
                             train=train_job, paths=paths, need_models=need_models, progress=progress)
        return [trained[job] if todo else read_record(run_dir) for job, run_dir, todo in zip(jobs, run_dirs, pending)]
    inputs = prepare_inputs(config, paths, progress)
    return [train_job(config, job, inputs, paths, need_model=need_models, progress=progress)
            for job in tqdm(jobs, desc=f"{config.profile} runs", disable=not progress)]
