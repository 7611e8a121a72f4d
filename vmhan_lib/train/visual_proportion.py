"""The paper's Fig. 5: VM-HAN trained and tested with a proportion of instances keeping their visual nodes.

For a proportion p, a seeded random choice of round(p * n) instances of each split keeps its
visual nodes (image, objects, visual-LLM nodes); every other instance gets none (an empty
``visual_features``, ``has_image`` False, ``n_objects`` 0), so its hypergraph is text-only. The
choice is made per split with its own seed stream, and for one seed the instances kept at a lower
proportion are a subset of those kept at a higher one (one permutation, cut at different
lengths). Instances that had no visual node to begin with stay without.

Each (proportion, seed) is one job of :func:`vmhan_lib.train.runner.run_jobs`
(:func:`~vmhan_lib.train.jobs.proportion_jobs`) named ``"VM-HAN (Ours) @ visual 25%"`` etc.,
recorded under ``<runs_dir>/../visual_proportion/`` so the main tables never see them.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from vmhan_lib.data.mnre import SPLITS
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.train.hypergraph_task import SplitNodes


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
        result[name] = replace(split, nodes=nodes)
    return result
