"""The visual-shuffle test of Li et al. (arXiv 2211.07504, "On Analyzing the Role of Image for
Visual-enhanced Relation Extraction"): does a trained model use the image of *its* instance?

Inference only. A trained model is scored on a split as it is, and again with every instance's
visual nodes (image node, objects, visual-LLM nodes, and whether it has an image) replaced by those
of another instance of the same split, for several seeded permutations. A model that reads its own
image loses when the images are shuffled; a model that ignores the visual nodes scores exactly the
same. The permutations are derangements (no instance keeps its own nodes): a seeded random order
of the instances, each instance taking the nodes of the next one in that order. Instances of the
same sentence share an image, so a few receive another pair's copy of their own image; the test
measures the loss of instance-specific visual information all the same.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import pandas as pd
import torch

from vmhan_lib.identity import CODE_VERSIONS
from vmhan_lib.data.mnre import RelationVocab
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.train.fit import scores_of
from vmhan_lib.train.hypergraph_task import SplitNodes, predict_nodes

if TYPE_CHECKING:
    from vmhan_lib.analysis.run_analyses import Settings
    from vmhan_lib.config import RunConfig
    from vmhan_lib.train.jobs import Job


def visual_derangement(n: int, seed: int) -> list[int]:
    """A seeded permutation ``p`` of ``0..n-1`` with ``p[i] != i`` for every i (``n >= 2``):
    instance i takes the visual nodes of instance ``p[i]``."""
    if n < 2:
        raise ValueError(f"shuffling visual nodes needs at least 2 instances, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    source = [0] * n
    for position, instance in enumerate(order):
        source[instance] = order[(position + 1) % n]
    return source


def shuffle_visual_nodes(nodes: Sequence[InstanceNodes], source: Sequence[int]) -> list[InstanceNodes]:
    """``nodes`` with instance i's visual side (features, names, objects, image flag) taken from
    instance ``source[i]``; the text side (head, tail, text-LLM nodes) is kept."""
    if sorted(source) != list(range(len(nodes))):
        raise ValueError("source must be a permutation of the instances")
    return [replace(nodes[i], visual_features=nodes[j].visual_features, visual_names=list(nodes[j].visual_names),
                    n_objects=nodes[j].n_objects, has_image=nodes[j].has_image) for i, j in enumerate(source)]


@dataclass
class VisualShuffleResult:
    """Scores of one model on one split, as it is and with the visual nodes shuffled.

    Attributes:
        normal: the MNRE scores (fractions) with every instance's own visual nodes.
        shuffled: the scores under each permutation, in ``seeds`` order.
        seeds: the permutations' seeds.
    """

    normal: dict[str, float]
    shuffled: list[dict[str, float]]
    seeds: tuple[int, ...]

    def f1_drop(self) -> tuple[float, float]:
        """Mean and standard deviation (0 for one permutation) over permutations of normal F1 minus
        shuffled F1, in points."""
        drops = [100 * (self.normal["f1"] - s["f1"]) for s in self.shuffled]
        return statistics.mean(drops), statistics.stdev(drops) if len(drops) > 1 else 0.0

    def row(self) -> dict[str, float]:
        """A row of :data:`SHUFFLE_FILE` (points): normal test F1, the mean and spread of the shuffled
        F1, the drop and its spread (:meth:`f1_drop`)."""
        shuffled = [100 * s["f1"] for s in self.shuffled]
        drop, spread = self.f1_drop()
        return {"f1": 100 * self.normal["f1"], "shuffled_f1": statistics.mean(shuffled),
                "shuffled_f1_std": statistics.stdev(shuffled) if len(shuffled) > 1 else 0.0,
                "f1_drop": drop, "f1_drop_std": spread}


def visual_shuffle_test(model: torch.nn.Module, config: ModelConfig, split: SplitNodes, vocab: RelationVocab,
                        seeds: Sequence[int] = (0, 1, 2, 3, 4), batch_size: int = 256,
                        device: torch.device = torch.device("cpu")) -> VisualShuffleResult:
    """Score ``model`` (a hypergraph model collated with ``config.hypergraph``, e.g. from a best
    checkpoint) on ``split`` with its own visual nodes and under one visual derangement per seed.

    Raises:
        ValueError: fewer than two instances, or no seed.
    """
    if not seeds:
        raise ValueError("the visual-shuffle test needs at least one permutation seed")

    def scores(nodes: list[InstanceNodes]) -> dict[str, float]:
        probabilities = predict_nodes(model, nodes, config, batch_size, device, split.places).probabilities
        return scores_of(vocab, split.labels, probabilities)

    normal = scores(split.nodes)
    shuffled = [scores(shuffle_visual_nodes(split.nodes, visual_derangement(len(split.nodes), seed))) for seed in seeds]
    return VisualShuffleResult(normal, shuffled, tuple(seeds))


SHUFFLE_FILE = "visual_shuffle.csv"
"""The committed result of :func:`shuffle_results` (``results/``, ``results/tiny/`` for ``tiny``)."""


def shuffle_rows(config: "RunConfig", jobs: Sequence["Job"], seeds: Sequence[int] = (0, 1, 2, 3, 4)
                 ) -> list[dict[str, Any]]:
    """The visual-shuffle test of every job of ``config`` (its best checkpoint at hand) on the whole
    test split, built with the features the checkpoint was trained on (with a job's controlled visual
    signal, :mod:`vmhan_lib.train.visual_signal`, added as in its training): per job the normal test
    F1, the mean and spread of the shuffled F1 over ``seeds`` and the drop (points)."""
    from vmhan_lib.data.splits import load_vocab
    from vmhan_lib.train.checkpoints import checkpointed_test_splits

    vocab = load_vocab(config.data)
    return [visual_shuffle_test(model, model_config, test, vocab, seeds).row()
            for _, model, model_config, test in checkpointed_test_splits(config, jobs)]


def shuffle_sentence(table: pd.DataFrame) -> str:
    """One sentence per row, computed from the numbers: whether shuffling the images costs the
    model more than the spread over permutations."""
    if table.empty:
        return "No trained model at hand: the visual-shuffle test has nothing to score."
    lines = []
    for row in table.itertuples():
        uses = row.f1_drop > max(2 * row.f1_drop_std, 0.1)
        lines.append(
            f"{row.variant} (seed {row.seed}, {row.training}, {row.encoder}): test F1 {row.f1:.2f} with its own visual "
            f"nodes, {row.shuffled_f1:.2f} ± {row.shuffled_f1_std:.2f} with another instance's "
            f"({row.permutations} permutations), a drop of {row.f1_drop:.2f} points: "
            + ("it reads its own image." if uses else "no sign that it uses the image of its instance."))
    return " ".join(lines)


def shuffle_results(settings: "Settings", results_dir: Path, permutations: int = 5) -> pd.DataFrame:
    """The visual-shuffle test of every run of ``settings`` (:func:`shuffle_rows` where its model is
    at hand, else its current row of ``results_dir/visual_shuffle.csv``: a fresh clone has the
    records, not the checkpoints), written back to that file
    (:func:`~vmhan_lib.analysis.run_analyses.per_run_rows`)."""
    from vmhan_lib.analysis.run_analyses import per_run_rows

    if permutations < 1:
        raise ValueError(f"permutations must be >= 1, got {permutations}")
    seeds = tuple(range(permutations))
    return per_run_rows(settings, Path(results_dir) / SHUFFLE_FILE, lambda config, jobs: shuffle_rows(config, jobs, seeds),
                        {"permutations": permutations, "code": CODE_VERSIONS["visual-shuffle"]}, "visual-shuffle test")
