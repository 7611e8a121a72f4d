"""The fit task of every hypergraph model and baseline (stage 2): node features in, relations out.

The inputs are each split's :class:`~vmhan_lib.features.nodes.InstanceNodes` (:class:`SplitNodes`);
an epoch is a seeded permutation of train's *units* cut into batches of hypergraphs, the loss is
Eq. 12 (:func:`~vmhan_lib.model.losses.vmhan_loss`), and the exported model is ``best.pt``. A unit is
one entity pair in ``hypergraph.scope = pair`` (one hypergraph each,
:func:`~vmhan_lib.hypergraph.batch.collate_hypergraphs`) and one sentence with all its pairs in
``sentence`` scope (:func:`~vmhan_lib.hypergraph.sentence.collate_sentences`, the loss over every
pair of the batch's sentences). Either way a unit joins the batch where its first pair falls when the
epoch's pairs are cut every ``batch_size`` (:func:`unit_batches`), so a batch holds about
``batch_size`` pairs and an epoch has at most ``ceil(pairs / batch_size)`` steps, as the
schedule plans; in pair scope this is exactly the permutation cut into ``batch_size`` pairs.
Predictions are per pair, in split order, in both scopes.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from vmhan_lib.data.mnre import Instance, RelationVocab
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.hypergraph.batch import HypergraphBatch, collate_hypergraphs
from vmhan_lib.hypergraph.config import HypergraphConfig
from vmhan_lib.hypergraph.sentence import SentencePair, collate_sentences
from vmhan_lib.io import StorageError, atomic_torch_save, load_torch, set_aside
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.losses import vmhan_loss
from vmhan_lib.model.vmhan import VMHAN, ModelOutput, build_model
from vmhan_lib.train.fit import LazyBatches, SplitPredictions

BEST_FILE = "best.pt"
Places = Sequence[tuple[Hashable, Hashable, Hashable]]
"""Per pair: (sentence key, head key, tail key), see :class:`SplitNodes`."""


@dataclass
class SplitNodes:
    """The model inputs of one split: node features, relation ids, instance indices (file order) and,
    for sentence scope, where each pair sits: ``places[i]`` = (sentence key, head key, tail key),
    e.g. ((image, tokens), head span, tail span); None where unknown (sentence scope refuses it)."""

    nodes: list[InstanceNodes]
    labels: list[int]
    indices: list[int]
    places: Places | None = None

    def __post_init__(self) -> None:
        if not len(self.nodes) == len(self.labels) == len(self.indices):
            raise ValueError("nodes, labels and indices must have the same length")
        if not self.nodes:
            raise ValueError("a split without instances cannot be trained or scored")
        if self.places is not None and len(self.places) != len(self.nodes):
            raise ValueError("places must name the sentence and entities of every instance")

    @classmethod
    def of(cls, nodes: list[InstanceNodes], instances: Sequence[Instance], vocab: RelationVocab) -> "SplitNodes":
        """The nodes built for ``instances`` (same order), with their relation ids, file indices and places."""
        return cls(nodes, vocab.ids([x.relation for x in instances]), [x.index for x in instances],
                   [(x.sentence_key, x.head.span, x.tail.span) for x in instances])

    def units(self, scope: str) -> list[list[int]]:
        """The positions of each unit of ``scope`` (:func:`scope_units`)."""
        return scope_units(len(self.nodes), self.places, scope)


def scope_units(n: int, places: Places | None, scope: str) -> list[list[int]]:
    """The positions of the units of ``n`` pairs: every pair alone (``pair``), or the pairs of each
    sentence of ``places`` in order of first appearance (``sentence``)."""
    if scope == "pair":
        return [[i] for i in range(n)]
    if places is None:
        raise ValueError("hypergraph.scope = sentence needs the sentence of every pair (SplitNodes.of)")
    groups: dict[Hashable, list[int]] = {}
    for position, (sentence, _, _) in enumerate(places):
        groups.setdefault(sentence, []).append(position)
    return list(groups.values())


def collate_units(nodes: Sequence[InstanceNodes], places: Places | None, units: Sequence[list[int]],
                  config: HypergraphConfig, labels: Sequence[int] | None = None) -> HypergraphBatch:
    """The batch of ``units`` (lists of positions) in ``config.scope``; its pairs are the units'
    positions in order (``labels``: of every position, or None)."""
    flat = [i for unit in units for i in unit]
    if config.scope == "pair":
        return collate_hypergraphs([nodes[i] for i in flat], config, None if labels is None else [labels[i] for i in flat])
    sentences = [[SentencePair(nodes[i], places[i][1], places[i][2]) for i in unit] for unit in units] if places else []
    return collate_sentences(sentences, config, None if labels is None else [[labels[i] for i in u] for u in units])


def unit_batches(sizes: Sequence[int], order: Sequence[int], batch_size: int) -> list[torch.Tensor]:
    """The units ``order`` (of ``sizes[u]`` pairs each) cut into batches: a unit goes to batch
    ``p // batch_size``, p = the position of its first pair in the order (empty batches dropped)."""
    batches: dict[int, list[int]] = {}
    start = 0
    for unit in order:
        batches.setdefault(start // batch_size, []).append(int(unit))
        start += sizes[int(unit)]
    return [torch.tensor(chosen, dtype=torch.long) for chosen in batches.values()]


def pair_variance(output: ModelOutput) -> torch.Tensor | None:
    """The mean predicted variance of the head and tail nodes of each pair ``[P]`` (None for deterministic models)."""
    if output.node_sigma is None or output.pair_index is None:
        return None
    graph, head, tail = output.pair_index.unbind(dim=1)  # [P] each
    return torch.stack([output.node_sigma[graph, head], output.node_sigma[graph, tail]], dim=1).mean(dim=(1, 2))  # [P]


@torch.no_grad()
def predict_nodes(model: VMHAN, nodes: Sequence[InstanceNodes], config: ModelConfig, batch_size: int,
                  device: torch.device, places: Places | None = None) -> SplitPredictions:
    """Evaluation-mode probabilities ``[n, R]`` and, for variational models, the mean predicted
    variance of the head and tail nodes ``[n]`` (deterministic: evaluation uses the means), in pair
    order, in either scope (``places``: of every pair, needed in sentence scope; batches of units
    holding about ``batch_size`` pairs)."""
    model.eval()
    units = scope_units(len(nodes), places, config.hypergraph.scope)
    probabilities, variances = [], []
    for chosen in unit_batches([len(unit) for unit in units], range(len(units)), batch_size):
        output = model(collate_units(nodes, places, [units[u] for u in chosen.tolist()], config.hypergraph).to(device))
        probabilities.append(output.logits.softmax(-1).cpu())
        if output.node_sigma is not None:
            variances.append(pair_variance(output).cpu())
    rows = torch.tensor([i for unit in units for i in unit], dtype=torch.long)  # the pairs in batch order

    def in_pair_order(parts: list[torch.Tensor]) -> torch.Tensor:
        ordered = torch.empty_like(torch.cat(parts))
        ordered[rows] = torch.cat(parts)
        return ordered

    return SplitPredictions(in_pair_order(probabilities), in_pair_order(variances) if variances else None)


class HypergraphTask:
    """Train ``config``'s model on ``data`` (``{"train", "val", "test"}`` :class:`SplitNodes`)."""

    def __init__(self, config: ModelConfig, data: dict[str, SplitNodes], batch_size: int, eval_batch_size: int,
                 device: torch.device) -> None:
        self.config = config
        self.data = data
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.device = device
        self.labels = {split: part.labels for split, part in data.items()}
        self.indices = {split: part.indices for split, part in data.items()}
        self._train_units = data["train"].units(config.hypergraph.scope)

    def build_model(self) -> VMHAN:
        return build_model(self.config)

    def train_batches(self, epoch_seed: int) -> LazyBatches:
        order = torch.randperm(len(self._train_units), generator=torch.Generator().manual_seed(epoch_seed))
        sizes = [len(unit) for unit in self._train_units]
        return LazyBatches(unit_batches(sizes, order.tolist(), self.batch_size), self._collate)

    def _collate(self, chosen: torch.Tensor) -> HypergraphBatch:
        train = self.data["train"]
        units = [self._train_units[u] for u in chosen.tolist()]
        return collate_units(train.nodes, train.places, units, self.config.hypergraph, train.labels).to(self.device)

    def parameter_groups(self, model: torch.nn.Module) -> list[dict[str, Any]]:
        return [{"params": list(model.parameters())}]  # one group, at train_config.lr

    def loss(self, model: VMHAN, batch: HypergraphBatch) -> dict[str, torch.Tensor]:
        return vmhan_loss(model(batch), batch.labels, self.config)

    def predict(self, model: VMHAN, split: str) -> SplitPredictions:
        part = self.data[split]
        return predict_nodes(model, part.nodes, self.config, self.eval_batch_size, self.device, part.places)

    def export(self, model: VMHAN, checkpoint_dir: Path, digest: str, config: dict[str, Any]) -> dict[str, Any]:
        """Write ``best.pt`` = ``{"digest", "config", "model"}`` (``digest``: of the run's identity)."""
        atomic_torch_save({"digest": digest, "config": config, "model": model.state_dict()}, checkpoint_dir / BEST_FILE)
        return {}


def best_model_ready(checkpoint_dir: Path, digest: str) -> bool:
    """Whether ``checkpoint_dir`` holds the exported model of the run whose identity has ``digest``."""
    path = Path(checkpoint_dir) / BEST_FILE
    if not path.is_file():
        return False
    try:
        return load_torch(path, "best checkpoint").get("digest") == digest
    except StorageError as err:  # trained again, as if missing
        set_aside(path, err)
        return False
