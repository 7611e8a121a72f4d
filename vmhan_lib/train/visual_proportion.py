"""The paper's Fig. 5: VM-HAN trained and tested with a proportion of instances keeping their visual nodes.

For a proportion p, a seeded random choice of round(p * n) instances of each split keeps its
visual nodes (image, objects, visual-LLM nodes); every other instance gets none (an empty
``visual_features``, ``has_image`` False, ``n_objects`` 0), so its hypergraph is text-only. The
choice is made per split with its own seed stream, and for one seed the instances kept at a lower
proportion are a subset of those kept at a higher one (one permutation, cut at different
lengths). Instances that had no visual node to begin with stay without.

Each (proportion, seed) is one run of :func:`vmhan_lib.train.loop.train_run` named
``"VM-HAN (Ours) @ visual 25%"`` etc., recorded under ``<runs_dir>/../visual_proportion/`` so the
main tables never see them; runs are resumable and, when all are complete, nothing is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from vmhan_lib.data.mnre import SPLITS, load_relation_vocab
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.model.variants import FULL_MODEL, variant_config
from vmhan_lib.train.experiment import CHECKPOINT_DIR, ExperimentPlan, base_model_config, prepare_inputs
from vmhan_lib.train.loop import SplitNodes, train_run
from vmhan_lib.train.records import is_complete, read_record, run_id

VISUAL_PROPORTIONS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
RUNS_FOLDER = "visual_proportion"


def proportion_variant(proportion: float) -> str:
    """The run name of a proportion, e.g. ``"VM-HAN (Ours) @ visual 25%"``."""
    return f"{FULL_MODEL} @ visual {round(100 * proportion)}%"


def visual_proportion_dir(plan: ExperimentPlan) -> Path:
    """Where the Fig. 5 run records go: ``visual_proportion/`` beside the plan's runs folder."""
    return plan.runs_dir.parent / RUNS_FOLDER


def visual_keep_mask(n_instances: int, proportion: float, seed: int) -> np.ndarray:
    """Boolean mask of the round(proportion * n) instances that keep their visual nodes.

    Deterministic for a seed; masks of one seed are nested across proportions.
    """
    if not 0.0 <= proportion <= 1.0:
        raise ValueError(f"proportion must lie in [0, 1], got {proportion}")
    keep = np.zeros(n_instances, dtype=bool)
    order = np.random.default_rng(seed).permutation(n_instances)
    keep[order[:round(proportion * n_instances)]] = True
    return keep


def without_visual_nodes(nodes: InstanceNodes) -> InstanceNodes:
    """The same instance with no visual node at all (text nodes unchanged)."""
    return InstanceNodes(
        text_features=nodes.text_features,
        visual_features=nodes.visual_features.new_zeros((0, nodes.visual_features.shape[1])),
        text_names=nodes.text_names,
        visual_names=[],
        n_objects=0,
        has_image=False,
    )


def with_visual_proportion(data: dict[str, SplitNodes], proportion: float, seed: int) -> dict[str, SplitNodes]:
    """Every split of ``data`` with only a ``proportion`` of its instances keeping their visual
    nodes; split ``i`` of :data:`vmhan_lib.data.mnre.SPLITS` draws from seed ``(seed, i)``."""
    result = {}
    for name, split in data.items():
        stream = [seed, SPLITS.index(name)] if name in SPLITS else [seed, len(SPLITS)]
        keep = visual_keep_mask(len(split.nodes), proportion, int(np.random.default_rng(stream).integers(2**31)))
        nodes = [n if kept else without_visual_nodes(n) for n, kept in zip(split.nodes, keep)]
        result[name] = SplitNodes(nodes=nodes, labels=split.labels, indices=split.indices)
    return result


def run_visual_proportion(
    plan: ExperimentPlan, proportions: Sequence[float] = VISUAL_PROPORTIONS, seeds: Sequence[int] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train (or reuse) VM-HAN for every proportion and seed (default ``plan.seeds``); returns the
    run records, each with ``config.visual_proportion``."""
    jobs = [(p, s) for p in proportions for s in (seeds if seeds is not None else plan.seeds)]
    runs_dir = visual_proportion_dir(plan)
    run_dirs = {job: runs_dir / run_id(plan.profile, proportion_variant(job[0]), job[1]) for job in jobs}
    if all(is_complete(d) for d in run_dirs.values()):
        return [read_record(run_dirs[job]) for job in jobs]
    inputs, report = prepare_inputs(plan, progress)
    vocab = load_relation_vocab(plan.data.path)
    full_config = variant_config(FULL_MODEL, base_model_config(plan, inputs, len(vocab)))
    records = []
    for proportion, seed in tqdm(jobs, desc=f"{plan.profile} visual proportion", disable=not progress):
        run_dir = run_dirs[(proportion, seed)]
        records.append(train_run(
            variant=proportion_variant(proportion), model_config=full_config, train_config=plan.train,
            data=with_visual_proportion(inputs, proportion, seed), vocab=vocab, seed=seed, run_dir=run_dir,
            checkpoint_dir=CHECKPOINT_DIR / plan.profile / RUNS_FOLDER / run_dir.name,
            extra_config={"plan": plan.to_dict(), "features": report["features"], "visual_proportion": proportion},
            progress=progress,
        ))
    return records
