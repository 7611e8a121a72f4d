"""Stage 1 and the inputs of stage 2: the shared text encoder(s) trained or reused, and the node
features of every split built with them.

``experiment.training`` picks how the text encoder is trained. ``joint`` (the paper's, the ``full``
preset): stage 1 is skipped and every job trains the pretrained encoder together with its model
under Eq. 12 (:mod:`vmhan_lib.train.joint_task`), the text node features computed by the live
encoder for every batch. ``two-stage`` (the default), chosen so that the ``cpu`` profile runs every
row of both tables on a 2-core machine:

1. the entity-marker text encoder is fine-tuned **once** (seed ``experiment.encoder_seed``) with a
   linear head (:mod:`vmhan_lib.train.encoder_task`); that model is our fine-tuned text-only row;
2. every job trains its hypergraph part and classifier on the **frozen** features of that encoder
   (head/tail start markers, text-LLM spans) and on the visual nodes
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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from vmhan_lib.config import ENCODER_VARIANT, STAGE1_HEAD_DROPOUT, RunConfig, stage1_train_config
from vmhan_lib.config_tree import ConfigError
from vmhan_lib.data.mnre import SPLITS, Instance, RelationVocab
from vmhan_lib.data.splits import load_split, load_vocab, sentence_folds
from vmhan_lib.features.build import build_split, describe_fallbacks, feature_cache, with_fold_text_features
from vmhan_lib.features.node_selection import make_prompt_selectors
from vmhan_lib.identity import digest, refuse_stale
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.train.encoder_task import EncoderTask, encoder_ready, exported_encoder_dir
from vmhan_lib.train.execution import Execution, run_device
from vmhan_lib.train.fit import fit
from vmhan_lib.train.hypergraph_task import SplitNodes
from vmhan_lib.train.jobs import RunPaths, Stage1Run, ensure_run, setting_record, stage1_runs
from vmhan_lib.train.records import run_differences

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
    device = str(run_device(config))
    selector = make_prompt_selectors(features, device=device)
    cache = feature_cache(features, device, progress)
    inputs, build = {}, {}
    for split in SPLITS:
        built = build_split(config.data, split, features, selector, cache, splits[split],
                            text_placeholders=config.experiment.training == "joint")  # joint: the live encoder's
        if split == "train" and folds:
            fold_encoders = [replace(config.features.text, model=str(folder)) for folder in encoders[1:]]
            built = with_fold_text_features(built, config.data, "train", folds, fold_encoders, features, selector, cache,
                                            splits["train"])
        inputs[split] = SplitNodes.of(built.nodes, splits[split], vocab)
        build[split] = built.report.to_dict()
    for line in describe_fallbacks(build):  # never silent: also in every run record ("build") and the table notes
        print(f"features fallback, {line}")
    train_nodes = inputs["train"].nodes
    text_dim = train_nodes[0].text_features.shape[1]
    visual_dim = next((n.visual_features.shape[1] for n in train_nodes if n.visual_features.shape[0]), text_dim)
    return PreparedInputs(inputs, asdict(features), build, config.model.sized(text_dim, visual_dim, len(vocab)), vocab,
                          splits)


def stage1_ready(config: RunConfig, paths: RunPaths) -> bool:
    """Whether every stage-1 run of ``config`` (:func:`stage1_runs`) is finished with its current
    identity and its encoder exported here by that run, so :func:`prepare_inputs` trains nothing."""
    return all(run_differences(run.run_dir, run.identity) == [] and
               encoder_ready(run.checkpoint_dir, digest(run.identity)) for run in stage1_runs(config, paths))


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
    refuse_stale([(run.run_dir.name, run_differences(run.run_dir, run.identity)) for run in runs],
                 config.experiment.stale_runs == "retrain")  # every stage-1 run at once, before any is trained
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
                           config.eval_batch_size, STAGE1_HEAD_DROPOUT, run_device(config))
        return fit(name=run.name, task=task, train_config=stage1_train_config(config), vocab=vocab,
                   seed=config.experiment.encoder_seed, run_dir=record_dir, checkpoint_dir=run.checkpoint_dir,
                   config_record={**run.identity, "run": config.to_record()}, identity=run.identity,
                   extra_record={"identity": run.identity, **setting_record(config)}, progress=progress,
                   execution=Execution.of(config))

    return ensure_run(run.run_dir, run.checkpoint_dir, run.identity,
                      encoder_ready(run.checkpoint_dir, digest(run.identity)), need_model, train_encoder,
                      "the features of stage 2 come from the retrained encoder")
