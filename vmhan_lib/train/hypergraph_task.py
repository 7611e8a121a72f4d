"""The fit task of every hypergraph model and baseline (stage 2): node features in, relations out.

The inputs are each split's :class:`~vmhan_lib.features.nodes.InstanceNodes` (:class:`SplitNodes`);
an epoch is a seeded permutation of train cut into batches of hypergraphs
(:func:`~vmhan_lib.hypergraph.batch.collate_hypergraphs`), the loss is Eq. 12
(:func:`~vmhan_lib.model.losses.vmhan_loss`), and the exported model is ``best.pt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from vmhan_lib.data.mnre import Instance, RelationVocab
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.hypergraph.batch import HEAD_SLOT, TAIL_SLOT, HypergraphBatch, collate_hypergraphs
from vmhan_lib.io import StorageError, atomic_torch_save, load_torch, set_aside
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.losses import vmhan_loss
from vmhan_lib.model.vmhan import VMHAN, ModelOutput, build_model
from vmhan_lib.train.fit import LazyBatches, SplitPredictions

BEST_FILE = "best.pt"


@dataclass
class SplitNodes:
    """The model inputs of one split: node features, relation ids, instance indices (file order)."""

    nodes: list[InstanceNodes]
    labels: list[int]
    indices: list[int]

    def __post_init__(self) -> None:
        if not len(self.nodes) == len(self.labels) == len(self.indices):
            raise ValueError("nodes, labels and indices must have the same length")
        if not self.nodes:
            raise ValueError("a split without instances cannot be trained or scored")

    @classmethod
    def of(cls, nodes: list[InstanceNodes], instances: Sequence[Instance], vocab: RelationVocab) -> "SplitNodes":
        """The nodes built for ``instances`` (same order), with their relation ids and file indices."""
        return cls(nodes, vocab.ids([x.relation for x in instances]), [x.index for x in instances])


def pair_variance(output: ModelOutput) -> torch.Tensor | None:
    """The mean predicted variance of the head and tail nodes ``[B]`` (None for deterministic models)."""
    if output.node_sigma is None:
        return None
    return output.node_sigma[:, [HEAD_SLOT, TAIL_SLOT]].mean(dim=(1, 2))  # [B, 2, d] -> [B]


@torch.no_grad()
def predict_nodes(model: VMHAN, nodes: list[InstanceNodes], config: ModelConfig, batch_size: int,
                  device: torch.device) -> SplitPredictions:
    """Evaluation-mode probabilities ``[n, R]`` and, for variational models, the mean predicted
    variance of the head and tail nodes ``[n]`` (deterministic: evaluation uses the means)."""
    model.eval()
    probabilities, variances = [], []
    for start in range(0, len(nodes), batch_size):
        batch = collate_hypergraphs(nodes[start:start + batch_size], config.hypergraph).to(device)
        output = model(batch)
        probabilities.append(output.logits.softmax(-1).cpu())
        if output.node_sigma is not None:
            variances.append(pair_variance(output).cpu())
    return SplitPredictions(torch.cat(probabilities), torch.cat(variances) if variances else None)


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
        self._train_labels = torch.tensor(data["train"].labels)

    def build_model(self) -> VMHAN:
        return build_model(self.config)

    def train_batches(self, epoch_seed: int) -> LazyBatches:
        order = torch.randperm(len(self.data["train"].nodes), generator=torch.Generator().manual_seed(epoch_seed))
        return LazyBatches(order.split(self.batch_size), self._collate)

    def _collate(self, chosen: torch.Tensor) -> HypergraphBatch:
        train = self.data["train"].nodes
        return collate_hypergraphs([train[i] for i in chosen], self.config.hypergraph,
                                   self._train_labels[chosen]).to(self.device)

    def parameter_groups(self, model: torch.nn.Module) -> list[dict[str, Any]]:
        return [{"params": list(model.parameters())}]  # one group, at train_config.lr

    def loss(self, model: VMHAN, batch: HypergraphBatch) -> dict[str, torch.Tensor]:
        return vmhan_loss(model(batch), batch.labels, self.config)

    def predict(self, model: VMHAN, split: str) -> SplitPredictions:
        return predict_nodes(model, self.data[split].nodes, self.config, self.eval_batch_size, self.device)

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
