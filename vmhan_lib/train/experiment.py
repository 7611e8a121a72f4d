"""The experiments behind the paper's Tables 1 and 2, for one profile.

Two stages, chosen so that the ``cpu`` profile runs every row of both tables on a 2-core machine:

1. the entity-marker text encoder is fine-tuned **once** (seed :data:`ENCODER_SEED`) with a
   linear head; that model is our fine-tuned text-only baseline;
2. every Table 1 / Table 2 variant, for every seed, trains its hypergraph part and classifier on
   the **frozen** features of that encoder (head/tail start markers, text-LLM spans) and on the
   caption-based visual nodes.

Sharing the encoder is sound for comparing the variants with each other (they differ only above
the encoder, which is exactly what Table 2 ablates) and with the text-only row of stage 2 (same
features, no visual nodes, no hypergraph). It is not the paper's end-to-end fine-tuning; the
seed spread therefore covers the hypergraph part only. The ``full`` profile keeps the same
stages with the paper's learning rate and batch size; see the README for running it on a GPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from vmhan_lib.config import RESULTS_DIR, REPO_ROOT, DataConfig, preset
from vmhan_lib.data.mnre import SPLITS, load_mnre, load_relation_vocab
from vmhan_lib.features.build import build_split
from vmhan_lib.features.config import FeatureConfig, TextEncoderConfig
from vmhan_lib.features.llm_selection import make_node_selector
from vmhan_lib.model.config import ModelConfig, model_preset
from vmhan_lib.model.variants import TABLE2_VARIANTS, variant_config
from vmhan_lib.train.config import EncoderTrainConfig, TrainConfig, train_presets
from vmhan_lib.train.encoder import finetune_text_encoder
from vmhan_lib.train.loop import SplitNodes, train_run
from vmhan_lib.train.records import is_complete, read_record, run_id, warn_if_rerun_differs

ENCODER_SEED = 0
TABLE1_VARIANTS: tuple[str, ...] = ("VM-HAN (Ours)", "Text-only", "GCN", "GAT", "HGNN")
CHECKPOINT_DIR = REPO_ROOT / "results" / "checkpoints"


@dataclass(frozen=True)
class ExperimentPlan:
    """What one profile runs.

    Attributes:
        profile: ``tiny``, ``cpu`` or ``full``.
        data: which data (``tiny`` keeps the first instances of each split).
        features: text encoder, caption nodes, m / n LLM nodes.
        selector: node selector kind for the LLM nodes (``embedding`` = no generation, the fast
            default; ``smollm2``, ``transformers``, ``openai``: see :func:`make_node_selector`).
        encoder_train: stage-1 settings.
        train: stage-2 settings.
        model_preset: base model preset the variants modify.
        seeds: seeds of every row; the headline row uses ``headline_seeds``.
        headline_seeds: seeds of VM-HAN (Ours).
        variants: rows to run, Table 1 then Table 2 (duplicates run once).
        runs_dir: where run records go (``results/runs``; ``results/tiny/runs`` for ``tiny``).
    """

    profile: str
    data: DataConfig
    features: FeatureConfig
    selector: str
    encoder_train: EncoderTrainConfig
    train: TrainConfig
    model_preset: str
    seeds: tuple[int, ...]
    headline_seeds: tuple[int, ...]
    variants: tuple[str, ...]
    runs_dir: Path

    def seeds_of(self, variant: str) -> tuple[int, ...]:
        return self.headline_seeds if variant == TABLE1_VARIANTS[0] else self.seeds

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def experiment_plan(profile: str | None = None, data_dir: str | None = None) -> ExperimentPlan:
    """The plan of a profile (see the module docstring)."""
    base = preset(profile).with_data_dir(data_dir)
    encoder_train, train = train_presets(base.profile)
    variants = tuple(dict.fromkeys((*TABLE1_VARIANTS, *TABLE2_VARIANTS)))
    tiny = base.profile == "tiny"
    return ExperimentPlan(
        profile=base.profile,
        data=base.data,
        features=FeatureConfig(),
        selector="embedding",
        encoder_train=encoder_train,
        train=train,
        model_preset="default",
        seeds=(0,) if tiny else (0, 1, 2),
        headline_seeds=(0,) if tiny else (0, 1, 2, 3, 4),
        variants=variants,
        runs_dir=(RESULTS_DIR / "tiny" / "runs") if tiny else (RESULTS_DIR / "runs"),
    )


def prepare_inputs(plan: ExperimentPlan, progress: bool = True) -> tuple[dict[str, SplitNodes], dict[str, Any]]:
    """Stage 1 and the node features of every split. Returns the model inputs and a report."""
    data_dir = plan.data.path
    vocab = load_relation_vocab(data_dir)
    splits = {s: load_mnre(data_dir, s, vocab)[: plan.data.max_instances] for s in SPLITS}
    encoder_run = plan.runs_dir / run_id(plan.profile, "Text-only (fine-tuned encoder)", ENCODER_SEED)
    encoder_dir, encoder_record = finetune_text_encoder(
        splits=splits, vocab=vocab, text_config=plan.features.text, train_config=plan.encoder_train,
        seed=ENCODER_SEED, output_dir=CHECKPOINT_DIR / plan.profile / "encoder", run_dir=encoder_run,
        device_name=plan.train.device, extra_config={"data": asdict(plan.data)}, progress=progress,
    )
    features = replace(plan.features, text=replace(plan.features.text, model=str(encoder_dir)))
    selector = make_node_selector(plan.selector)
    inputs, reports = {}, {}
    for split in SPLITS:
        built = build_split(plan.data, split, features, selector)
        inputs[split] = SplitNodes(
            nodes=built.nodes,
            labels=vocab.ids([x.relation for x in splits[split]]),
            indices=[x.index for x in splits[split]],
        )
        reports[split] = built.report.to_dict()
    return inputs, {"encoder": encoder_record["test"], "build": reports, "features": asdict(features)}


def base_model_config(plan: ExperimentPlan, inputs: dict[str, SplitNodes], num_relations: int) -> ModelConfig:
    """The plan's model preset sized to the features (text and visual widths) and the labels."""
    train_nodes = inputs["train"].nodes
    text_dim = train_nodes[0].text_features.shape[1]
    visual_dim = next((n.visual_features.shape[1] for n in train_nodes if n.visual_features.shape[0]), text_dim)
    return replace(model_preset(plan.model_preset), d_text=text_dim, d_visual=visual_dim, num_relations=num_relations)


def run_experiments(
    plan: ExperimentPlan, variants: Sequence[str] | None = None, progress: bool = True
) -> list[dict[str, Any]]:
    """Run (or reuse, when complete) every (variant, seed) of the plan; returns their records.

    When every run is already complete (e.g. the committed records of a fresh clone) nothing is
    loaded or trained, not even the shared encoder.
    """
    jobs = [(v, s) for v in (variants or plan.variants) for s in plan.seeds_of(v)]
    run_dirs = {job: plan.runs_dir / run_id(plan.profile, *job) for job in jobs}
    if all(is_complete(d) for d in run_dirs.values()):
        return [read_record(run_dirs[job]) for job in jobs]
    inputs, report = prepare_inputs(plan, progress)
    vocab = load_relation_vocab(plan.data.path)
    base = base_model_config(plan, inputs, len(vocab))
    records = []
    for variant, seed in tqdm(jobs, desc=f"{plan.profile} runs", disable=not progress):
        run_dir = run_dirs[(variant, seed)]
        records.append(train_run(
            variant=variant, model_config=variant_config(variant, base), train_config=plan.train, data=inputs,
            vocab=vocab, seed=seed, run_dir=run_dir, checkpoint_dir=CHECKPOINT_DIR / plan.profile / run_dir.name,
            extra_config={"plan": plan.to_dict(), "features": report["features"]}, progress=progress,
        ))
    return records


def retrain_checkpoint(plan: ExperimentPlan, variant: str, seed: int, progress: bool = True) -> Path:
    """Train (variant, seed) again to get its best checkpoint when only its record is at hand (a fresh
    clone has the committed records, not the checkpoints). The scratch record goes beside the
    checkpoint, so the committed record is never touched. The same seed and settings give the same
    model on the same machine; elsewhere floating-point differences (stage 1 runs multi-threaded) can
    move it, so the rerun's test scores are compared with the committed record's and a
    :class:`~vmhan_lib.train.records.RerunMismatchWarning` names both when they differ.

    Returns the checkpoint directory (holding ``best.pt``).
    """
    inputs, report = prepare_inputs(plan, progress)
    vocab = load_relation_vocab(plan.data.path)
    rid = run_id(plan.profile, variant, seed)
    checkpoint_dir = CHECKPOINT_DIR / plan.profile / rid
    rerun = train_run(
        variant=variant, model_config=variant_config(variant, base_model_config(plan, inputs, len(vocab))),
        train_config=plan.train, data=inputs, vocab=vocab, seed=seed, run_dir=checkpoint_dir / "rerun",
        checkpoint_dir=checkpoint_dir, extra_config={"plan": plan.to_dict(), "features": report["features"]},
        progress=progress,
    )
    if is_complete(plan.runs_dir / rid):
        warn_if_rerun_differs(plan.runs_dir / rid, rerun, "the case studies explain the retrained model")
    return checkpoint_dir
