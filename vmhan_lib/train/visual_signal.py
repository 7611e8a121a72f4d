"""The controlled visual-signal study (issue 24), semi-synthetic: visual nodes that carry a known
amount of relation information, to ask whether a model *would* use what an image carries.

Our visual nodes come from captions and carry almost nothing the sentence does not (Fig. 5 is flat),
so the real-data runs cannot say whether VM-HAN would read visual information if it had some. Here
the real stage-2 inputs (the frozen text features and caption-based visual nodes of
:func:`~vmhan_lib.train.stage1.prepare_inputs`) get a signal added to exactly one visual node of
each instance:

    v <- v + s * m * (p_y + eps_i),      p_y ~ unit vector per gold relation y,  eps_i ~ N(0, I / d)

with ``m`` the mean L2 norm of train's visual node features, ``s`` the strength (a multiple of
``m``), ``p_y`` drawn once per relation from the run's seed and ``eps_i`` the instance's own noise
(of about the norm of ``p_y``, from the same seed), so that the node does not carry one exact vector
per class. The ``image`` arm puts it in the image node (row 0), the ``object`` arm in one of the k
object nodes (a seeded random one per instance). Instances without such a node (no image, no
object) carry no signal. The same ``s`` in train, dev and test; ``s = 0`` leaves every feature
as it is. A study may also train on a fixed subsample of train (:data:`SUBSAMPLE_SEED`, the same for
every model, strength and seed) to fit its budget; dev and test stay whole.

Runs are :class:`~vmhan_lib.train.jobs.Job` s with a :class:`VisualSignal`, trained by the one runner
(:func:`~vmhan_lib.train.runner.train_job`), named ``"<variant> @ controlled signal image s=0.1"``,
with the signal in their identity and record, and kept in ``<runs>/../controlled_signal/``: no
table of the paper reads them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from vmhan_lib.config_tree import ConfigError
from vmhan_lib.data.mnre import SPLITS
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.train.hypergraph_task import SplitNodes

ARMS: tuple[str, ...] = ("image", "object")
"""Where the signal goes: the image node, or one of the k object nodes."""
SUBSAMPLE_SEED = 0
"""The seed of the train subsample of :attr:`VisualSignal.train_instances` (one subsample for all runs)."""


@dataclass(frozen=True)
class VisualSignal:
    """The controlled signal of one run.

    Attributes:
        arm: one of :data:`ARMS`.
        strength: s >= 0, in units of the mean norm of train's visual node features.
        train_instances: train on this fixed subsample of train (:func:`train_subsample`), or all of
            it (``None``).
    """

    arm: str
    strength: float
    train_instances: int | None = None

    def __post_init__(self) -> None:
        if self.arm not in ARMS:
            raise ConfigError(f"visual signal arm {self.arm!r} is not one of {', '.join(ARMS)}")
        if isinstance(self.strength, bool) or not math.isfinite(self.strength) or self.strength < 0:
            raise ConfigError(f"visual signal strength must be a finite number >= 0, got {self.strength!r}")
        if self.train_instances is not None and (isinstance(self.train_instances, bool) or self.train_instances < 2):
            raise ConfigError(f"train_instances must be an integer >= 2 or None, got {self.train_instances!r}")

    @property
    def label(self) -> str:
        """``"image s=0.1"``: the part of a run name that says its signal."""
        return f"{self.arm} s={self.strength:g}"


def signal_prototypes(labels: list[int], dim: int, seed: int) -> torch.Tensor:
    """``[n, d]``: the unit vector p_y of each label y of ``labels``, relation y's own draw from
    ``(seed, 0, y)`` (the same in every split and whatever other relations there are)."""
    draws = {y: np.random.default_rng([seed, 0, y]).standard_normal(dim) for y in set(labels)}
    units = {y: draw / np.linalg.norm(draw) for y, draw in draws.items()}
    return torch.from_numpy(np.stack([units[y] for y in labels])).float()


def mean_visual_norm(split: SplitNodes) -> float:
    """The mean L2 norm of every visual node feature of ``split`` (the unit of the strength s)."""
    rows = torch.cat([n.visual_features for n in split.nodes])  # [sum of visual nodes, d]
    if rows.shape[0] == 0:
        raise ValueError("no visual node to carry a visual signal")
    return float(rows.norm(dim=1).mean())


def signal_row(nodes: InstanceNodes, arm: str, rng: np.random.Generator) -> int | None:
    """The visual row that carries the signal: 0 (the image node) in the ``image`` arm, a random one of
    the k object rows in the ``object`` arm; ``None`` when the instance has no such node."""
    if arm == "image":
        return 0 if nodes.has_image else None
    if nodes.n_objects == 0:
        return None
    return int(nodes.has_image) + int(rng.integers(nodes.n_objects))


def split_stream(seed: int, split: str) -> np.random.Generator:
    """The generator of ``split``'s signal rows, then its noise: ``(seed, 1, i)`` for split ``i`` of
    :data:`~vmhan_lib.data.mnre.SPLITS`."""
    return np.random.default_rng([seed, 1, SPLITS.index(split) if split in SPLITS else len(SPLITS)])


def signal_rows(nodes: list[InstanceNodes], arm: str, rng: np.random.Generator) -> list[int | None]:
    """:func:`signal_row` of every instance, in order (drawn first from ``rng``, :func:`split_stream`)."""
    return [signal_row(node, arm, rng) for node in nodes]


def train_subsample(n_instances: int, size: int | None) -> list[int]:
    """The positions (file order) of the fixed train subsample of ``size`` (all when ``None`` or larger)."""
    if size is None or size >= n_instances:
        return list(range(n_instances))
    return sorted(np.random.default_rng(SUBSAMPLE_SEED).choice(n_instances, size, replace=False).tolist())


def with_signal_rows(split: SplitNodes, rows: list[int | None], vectors: torch.Tensor) -> SplitNodes:
    """``split`` with ``vectors[i]`` added to visual row ``rows[i]`` of instance i (none where ``None``)."""
    nodes = []
    for node, row, vector in zip(split.nodes, rows, vectors):
        if row is None:
            nodes.append(node)
            continue
        visual = node.visual_features.clone()
        visual[row] += vector.to(visual.dtype)
        nodes.append(replace(node, visual_features=visual))
    return SplitNodes(nodes=nodes, labels=split.labels, indices=split.indices)


def with_visual_signal(data: dict[str, SplitNodes], signal: VisualSignal, seed: int) -> dict[str, SplitNodes]:
    """Every split of ``data`` (which holds ``train``) with the signal of ``signal`` drawn from ``seed``
    (split ``i`` of :data:`~vmhan_lib.data.mnre.SPLITS` draws its noise and objects from ``(seed, 1, i)``),
    and train cut to its subsample."""
    norm = mean_visual_norm(data["train"])
    dim = data["train"].nodes[0].visual_features.shape[1]
    result = {}
    for name, split in data.items():
        if name == "train":
            keep = train_subsample(len(split.nodes), signal.train_instances)
            split = SplitNodes([split.nodes[p] for p in keep], [split.labels[p] for p in keep],
                               [split.indices[p] for p in keep])
        if signal.strength == 0:
            result[name] = split
            continue
        rng = split_stream(seed, name)
        rows = signal_rows(split.nodes, signal.arm, rng)
        noise = torch.from_numpy(rng.standard_normal((len(split.nodes), dim)) / math.sqrt(dim)).float()
        vectors = signal.strength * norm * (signal_prototypes(split.labels, dim, seed) + noise)  # [n, d]
        result[name] = with_signal_rows(split, rows, vectors)
    return result
