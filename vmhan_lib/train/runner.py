"""The one job runner: a set of (variant, seed) runs of a profile, trained or reused.

Two stages, chosen so that the ``cpu`` profile runs every row of both tables on a 2-core machine:

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

One policy for every run, stage 1 included (:func:`ensure_run`): a complete run is never
retrained; a complete run whose model is needed but missing (a fresh clone carries the committed
records, not the checkpoints) is trained again aside, into ``<checkpoint>/rerun``, and its test
scores are compared with the committed record's (a warning names both when they differ). When
every job is complete (and its model at hand where needed) nothing is loaded, not even stage 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from vmhan_lib.config_tree import ConfigError
from vmhan_lib.data.mnre import SPLITS, RelationVocab
from vmhan_lib.data.splits import load_split, load_vocab
from vmhan_lib.features.build import build_split
from vmhan_lib.features.node_selection import make_prompt_selectors
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.variants import FULL_MODEL, VARIANTS, variant_config
from vmhan_lib.paths import CHECKPOINT_DIR, runs_dir
from vmhan_lib.config import ENCODER_VARIANT, RunConfig
from vmhan_lib.train.encoder_task import EncoderTask, encoder_ready, exported_encoder_dir
from vmhan_lib.train.fit import fit, resolve_device
from vmhan_lib.train.hypergraph_task import BEST_FILE, HypergraphTask, SplitNodes
from vmhan_lib.train.records import is_complete, read_record, run_id, warn_if_rerun_differs
from vmhan_lib.train.visual_proportion import with_visual_proportion

RERUN_DIR = "rerun"
MORE_RUNS_FOLDER = "more"
"""The sub-folder of runs and checkpoints on MORE (read by :mod:`vmhan_lib.analysis.tables`)."""
VISUAL_PROPORTION_FOLDER = "visual_proportion"


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
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown variant {self.variant!r}; allowed: {'; '.join(VARIANTS)}")
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

    def run_dir(self, profile: str, job: Job) -> Path:
        folder = self.runs if job.visual_proportion is None else self.runs.parent / VISUAL_PROPORTION_FOLDER
        return folder / run_id(profile, job.name, job.seed)

    def checkpoint_dir(self, profile: str, job: Job) -> Path:
        folder = self.checkpoints if job.visual_proportion is None else self.checkpoints / VISUAL_PROPORTION_FOLDER
        return folder / run_id(profile, job.name, job.seed)

    def encoder_run_dir(self, config: RunConfig) -> Path:
        return self.runs / run_id(config.profile, ENCODER_VARIANT, config.experiment.encoder_seed)

    @property
    def encoder_checkpoint_dir(self) -> Path:
        return self.checkpoints / "encoder"


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


def ensure_run(run_dir: Path, checkpoint_dir: Path, model_ready: bool, need_model: bool,
               train: Callable[[Path], dict[str, Any]], what: str) -> dict[str, Any]:
    """The record of a run: read when complete (and its model at hand when ``need_model``), else
    trained by ``train(record_dir)``. A complete run whose model is missing but needed trains
    again with its record in ``checkpoint_dir/rerun``, never over the committed one, and is
    compared with it (:func:`~vmhan_lib.train.records.warn_if_rerun_differs`, ``what`` says what
    depends on the retrained model)."""
    if is_complete(run_dir):
        if need_model and not model_ready:
            warn_if_rerun_differs(run_dir, train(checkpoint_dir / RERUN_DIR), what)
        return read_record(run_dir)
    return train(run_dir)


@dataclass
class PreparedInputs:
    """Stage 2's inputs: the node features of every split, the features config that made them
    (text encoder = the fine-tuned one), the build report of each split, the base model sized to
    the features, and the relation vocabulary."""

    data: dict[str, SplitNodes]
    features: dict[str, Any]
    build: dict[str, dict[str, Any]]
    model: ModelConfig
    vocab: RelationVocab


def prepare_inputs(config: RunConfig, paths: RunPaths, progress: bool = True) -> PreparedInputs:
    """Stage 1 (trained once, or reused) and the node features of every split."""
    vocab = load_vocab(config.data)
    splits = {s: load_split(config.data, s, vocab) for s in SPLITS}
    checkpoint_dir = paths.encoder_checkpoint_dir
    identity = {"variant": ENCODER_VARIANT, "seed": config.experiment.encoder_seed, "data": asdict(config.data),
                "text_encoder": asdict(config.features.text), "encoder_train": asdict(config.encoder_train)}

    def train_encoder(record_dir: Path) -> dict[str, Any]:
        task = EncoderTask(splits, vocab, config.features.text, config.encoder_train.batch_size,
                           config.encoder_train.eval_batch_size, config.encoder_train.dropout,
                           resolve_device(config.encoder_train.device))
        return fit(name=ENCODER_VARIANT, task=task, train_config=config.encoder_train, vocab=vocab,
                   seed=config.experiment.encoder_seed, run_dir=record_dir, checkpoint_dir=checkpoint_dir,
                   config_record={**identity, "run": config.to_dict()}, identity=identity, progress=progress)

    ensure_run(paths.encoder_run_dir(config), checkpoint_dir, encoder_ready(checkpoint_dir), True, train_encoder,
               "the features of stage 2 come from the retrained encoder")
    features = replace(config.features, text=replace(config.features.text, model=str(exported_encoder_dir(checkpoint_dir))))
    selector = make_prompt_selectors(features)
    inputs, build = {}, {}
    for split in SPLITS:
        built = build_split(config.data, split, features, selector)
        inputs[split] = SplitNodes(nodes=built.nodes, labels=vocab.ids([x.relation for x in splits[split]]),
                                   indices=[x.index for x in splits[split]])
        build[split] = built.report.to_dict()
    train_nodes = inputs["train"].nodes
    text_dim = train_nodes[0].text_features.shape[1]
    visual_dim = next((n.visual_features.shape[1] for n in train_nodes if n.visual_features.shape[0]), text_dim)
    return PreparedInputs(inputs, asdict(features), build, config.model.sized(text_dim, visual_dim, len(vocab)), vocab)


def run_jobs(config: RunConfig, jobs: Sequence[Job], *, need_models: bool = False, paths: RunPaths | None = None,
             progress: bool = True) -> list[dict[str, Any]]:
    """Run (or reuse) every job of ``jobs``; returns their records in order.

    Args:
        need_models: also make sure each job's best model is at hand (the case studies explain it);
            a complete run without it is trained again aside (see :func:`ensure_run`).
    """
    paths = paths or RunPaths.of(config)
    profile = config.profile
    run_dirs = [paths.run_dir(profile, job) for job in jobs]
    ready = [(paths.checkpoint_dir(profile, job) / BEST_FILE).is_file() for job in jobs]
    if all(is_complete(d) and (r or not need_models) for d, r in zip(run_dirs, ready)):
        return [read_record(d) for d in run_dirs]
    inputs = prepare_inputs(config, paths, progress)
    vocab = inputs.vocab
    device = resolve_device(config.train.device)
    records = []
    for job, run_dir, model_ready in tqdm(list(zip(jobs, run_dirs, ready)), desc=f"{profile} runs", disable=not progress):
        model = variant_config(job.variant, inputs.model)
        data = inputs.data if job.visual_proportion is None else with_visual_proportion(
            inputs.data, job.visual_proportion, job.seed)
        checkpoint_dir = paths.checkpoint_dir(profile, job)
        identity = {"variant": job.name, "seed": job.seed, "model": asdict(model), "train": asdict(config.train),
                    "data": asdict(config.data), "features": inputs.features}
        if job.visual_proportion is not None:
            identity["visual_proportion"] = job.visual_proportion

        def train(record_dir: Path, job: Job = job, model: ModelConfig = model, data: dict = data,
                  checkpoint_dir: Path = checkpoint_dir, identity: dict = identity) -> dict[str, Any]:
            task = HypergraphTask(model, data, config.train.batch_size, config.train.eval_batch_size, device)
            return fit(name=job.name, task=task, train_config=config.train, vocab=vocab, seed=job.seed,
                       run_dir=record_dir, checkpoint_dir=checkpoint_dir,
                       config_record={**identity, "run": config.to_dict()}, identity=identity,
                       extra_record={"build": inputs.build}, progress=progress)

        records.append(ensure_run(run_dir, checkpoint_dir, model_ready, need_models, train,
                                  "the case studies explain the retrained model"))
    return records

