"""Synthetic node sets for the tests: one :class:`InstanceNodes` per instance, or a whole split.

Every factory draws its features from a ``torch.Generator`` (or a seed), so the same call gives the
same tensors; none depends on the hypergraph's config (the hypergraph uses every node it is given).
Widths default to those of :data:`TINY`, the tiny model the tests build.

Hand-made instances, for tests that spell out the expected hypergraph:

- :func:`handmade_instance`: named nodes of your choice, random features;
- :func:`full_instance`: every node kind once or more (all five hyperedges non-empty);
  :data:`FULL_MEMBERS` writes its hypergraph out;
- :func:`text_only_instance`: head and tail only; :data:`TEXT_ONLY_MEMBERS`.

Random instances, for tests of properties over varied shapes:

- :func:`random_instance` / :func:`random_instances`: varied node counts, some without any visual node;
- :func:`signal_instances`: the same shapes, with a label the model can learn from the features;
- :func:`random_split`: a :class:`SplitNodes` (nodes, labels, indices) for the training tests, the
  label learnable from the head feature.

Nodes of real sentences, for joint training (the text features are recomputed by the encoder):

- :func:`sentence_split`: a :class:`SplitNodes` over MNRE instances, each with the text-LLM spans
  you give (words of its sentence) and random visual nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.model.config import ModelConfig

if TYPE_CHECKING:  # imported where used: the model and hypergraph tests need not import the train package
    from vmhan_lib.data.mnre import Instance, RelationVocab
    from vmhan_lib.train.hypergraph_task import SplitNodes

TINY = ModelConfig(d_text=12, d_visual=10, hidden=8, heads=2, num_layers=2, num_relations=4)
"""The tiny model of the tests (the former ``model_preset("tiny")``): widths 12 / 10, 4 relations."""
D_TEXT = TINY.d_text
D_VISUAL = TINY.d_visual
NUM_RELATIONS = TINY.num_relations


# --- hand-made instances -----------------------------------------------------------------------


def handmade_instance(
    text_names: Sequence[str],
    visual_names: Sequence[str] = (),
    *,
    n_objects: int,
    generator: torch.Generator,
    has_image: bool | None = None,
    d_text: int = D_TEXT,
    d_visual: int = D_VISUAL,
) -> InstanceNodes:
    """An instance with the given nodes and standard-normal features.

    Args:
        text_names: head, tail, then the text-LLM nodes (at least two names).
        visual_names: image node (if any), the objects, then the visual-LLM nodes; empty = no
            visual node at all.
        n_objects: how many of ``visual_names`` after the image node are objects.
        generator: the features are drawn from it, the text rows first, then the visual rows.
        has_image: whether ``visual_names[0]`` is the image node; default: it is named ``"<image>"``.
        d_text, d_visual: feature widths.
    """
    if has_image is None:
        has_image = list(visual_names[:1]) == ["<image>"]
    return InstanceNodes(
        text_features=torch.randn(len(text_names), d_text, generator=generator),
        visual_features=torch.randn(len(visual_names), d_visual, generator=generator),
        text_names=list(text_names),
        visual_names=list(visual_names),
        n_objects=n_objects,
        has_image=has_image,
    )


def full_instance(generator: torch.Generator, *, d_text: int = D_TEXT, d_visual: int = D_VISUAL) -> InstanceNodes:
    """h = Alice, t = Acme, 2 text-LLM spans; the image, 3 objects, 2 visual-LLM nodes (10 nodes).

    Its hypergraph with every hyperedge type is :data:`FULL_MEMBERS`.
    """
    return handmade_instance(
        ["Alice", "Acme", "joined", "CEO"], ["<image>", "person", "logo", "desk", "smiling", "handshake"],
        n_objects=3, generator=generator, d_text=d_text, d_visual=d_visual,
    )


def text_only_instance(generator: torch.Generator, *, d_text: int = D_TEXT, d_visual: int = D_VISUAL) -> InstanceNodes:
    """h = Bob, t = Paris and nothing else: no image, no object, no LLM node (:data:`TEXT_ONLY_MEMBERS`)."""
    return handmade_instance(["Bob", "Paris"], [], n_objects=0, generator=generator, d_text=d_text, d_visual=d_visual)


# Node slots of the batch [full_instance, text_only_instance] with every hyperedge type:
# text slots 0..3 = Alice, Acme, joined, CEO; visual slots 4..9 = <image>, person, logo, desk, smiling, handshake.
FULL_MEMBERS: dict[str, set[int]] = {
    "global": {0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
    "textual": {0, 1, 2, 3},
    "visual": {4, 5, 6, 7, 8, 9},
    "head_visual": {0, 4, 5, 6, 7, 8, 9},
    "tail_visual": {1, 4, 5, 6, 7, 8, 9},
}
"""Slots of each hyperedge of :func:`full_instance` (Eq. 1-3), as the first instance of a batch."""
TEXT_ONLY_MEMBERS: dict[str, set[int]] = {
    "global": {0, 1}, "textual": {0, 1}, "visual": set(), "head_visual": set(), "tail_visual": set(),
}
"""Slots of each hyperedge of :func:`text_only_instance`: without a visual node the visual and
inter-modal hyperedges are empty."""


# --- random instances --------------------------------------------------------------------------


def random_instance(
    generator: torch.Generator,
    *,
    d_text: int = D_TEXT,
    d_visual: int = D_VISUAL,
    shift: torch.Tensor | None = None,
) -> InstanceNodes:
    """An instance of random shape: head, tail and 0-3 text-LLM nodes; one time in five no visual
    node at all, else an image (four times in five), 0-4 objects and 0-3 visual-LLM nodes.

    Args:
        generator: node counts and features are drawn from it.
        d_text, d_visual: feature widths.
        shift: ``[d_text]``, added to the head and tail features (a label signal, see
            :func:`signal_instances`).
    """

    def count(high: int) -> int:
        return int(torch.randint(0, high + 1, (1,), generator=generator))

    n_text = 2 + count(3)
    has_image = bool(torch.rand(1, generator=generator) < 0.8)
    n_objects = count(4)
    n_visual = int(has_image) + n_objects + count(3)
    if torch.rand(1, generator=generator) < 0.2:
        has_image, n_objects, n_visual = False, 0, 0
    text = torch.randn(n_text, d_text, generator=generator)
    visual = torch.randn(n_visual, d_visual, generator=generator)
    if shift is not None:
        text[:2] += shift
    return InstanceNodes(
        text_features=text,
        visual_features=visual,
        text_names=["head", "tail"] + [f"span{i}" for i in range(n_text - 2)],
        visual_names=[f"visual{i}" for i in range(n_visual)],
        n_objects=n_objects,
        has_image=has_image,
    )


def random_instances(
    count: int, seed: int = 0, *, d_text: int = D_TEXT, d_visual: int = D_VISUAL
) -> list[InstanceNodes]:
    """``count`` :func:`random_instance` drawn from one generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return [random_instance(generator, d_text=d_text, d_visual=d_visual) for _ in range(count)]


def signal_instances(
    count: int,
    seed: int = 0,
    *,
    num_classes: int = NUM_RELATIONS,
    d_text: int = D_TEXT,
    d_visual: int = D_VISUAL,
) -> tuple[list[InstanceNodes], torch.Tensor]:
    """``count`` random instances whose label is learnable: the head and tail features carry a
    per-class offset (a fixed random prototype of norm ~2 sqrt(d_text) per class).

    Returns:
        the instances and their labels, a ``[count]`` long tensor in ``0 .. num_classes - 1``.
    """
    generator = torch.Generator().manual_seed(seed)
    prototypes = 2.0 * torch.randn(num_classes, d_text, generator=torch.Generator().manual_seed(99))
    labels = torch.randint(0, num_classes, (count,), generator=generator)
    instances = [random_instance(generator, d_text=d_text, d_visual=d_visual, shift=prototypes[y])
                 for y in labels.tolist()]
    return instances, labels


def random_split(
    n: int,
    seed: int,
    *,
    num_classes: int = NUM_RELATIONS,
    d_text: int = D_TEXT,
    d_visual: int = D_VISUAL,
    n_text: int = 4,
    n_visual: int | None = None,
    offset: int = 0,
) -> SplitNodes:
    """A split of ``n`` instances whose head feature carries the label: ``text[0, label] += 3``
    on standard-normal features, so a model can learn it but not trivially.

    Args:
        n: instances.
        seed: seeds the generator of labels, node counts and features.
        num_classes: labels are drawn uniformly from ``0 .. num_classes - 1``.
        d_text, d_visual: feature widths (``d_text > num_classes - 1``).
        n_text: text nodes per instance (head, tail, ``n_text - 2`` text-LLM nodes).
        n_visual: ``None`` = 0-4 visual nodes drawn per instance (none: no image; else the image,
            then objects only); a number >= 2 = that many for every instance: the image,
            ``n_visual - 2`` objects, one visual-LLM node.
        offset: the instance indices are ``offset .. offset + n - 1``.
    """
    from vmhan_lib.train.hypergraph_task import SplitNodes

    if n_visual is not None and n_visual < 2:
        raise ValueError(f"n_visual must be None or >= 2 (image + visual-LLM node), got {n_visual}")
    generator = torch.Generator().manual_seed(seed)
    nodes, labels = [], []
    for _ in range(n):
        label = int(torch.randint(0, num_classes, (1,), generator=generator))
        text = torch.randn(n_text, d_text, generator=generator)
        text[0, label] += 3.0
        if n_visual is None:
            count = int(torch.randint(0, 5, (1,), generator=generator))
            n_objects = max(0, count - 1)
            visual_names = ["<image>"] + [f"object{j}" for j in range(n_objects)] if count else []
        else:
            count, n_objects = n_visual, n_visual - 2
            visual_names = ["<image>"] + [f"object{j}" for j in range(n_objects)] + ["visual_llm"]
        nodes.append(InstanceNodes(
            text_features=text, visual_features=torch.randn(count, d_visual, generator=generator),
            text_names=["h", "t"] + [f"span{i}" for i in range(n_text - 2)], visual_names=visual_names,
            n_objects=n_objects, has_image=count > 0,
        ))
        labels.append(label)
    return SplitNodes(nodes, labels, list(range(offset, offset + n)))


def sentence_split(
    instances: Sequence[Instance],
    spans: Sequence[Sequence[str]],
    vocab: RelationVocab,
    seed: int,
    *,
    d_text: int,
    d_visual: int = D_VISUAL,
) -> SplitNodes:
    """The nodes of real MNRE ``instances``: head, tail and ``spans[i]`` (text-LLM nodes, phrases of
    the sentence) with random text features of width ``d_text`` (the encoder's); every second
    instance has an image, two objects and a visual-LLM node, the others no visual node.
    Labels are the instances' relations."""
    from vmhan_lib.train.hypergraph_task import SplitNodes

    generator = torch.Generator().manual_seed(seed)
    nodes = []
    for i, (instance, phrases) in enumerate(zip(instances, spans, strict=True)):
        visual = ["<image>", "object0", "object1", "visual_llm"] if i % 2 == 0 else []
        nodes.append(handmade_instance([instance.head.name, instance.tail.name, *phrases], visual,
                                       n_objects=2 if visual else 0, generator=generator, d_text=d_text,
                                       d_visual=d_visual))
    return SplitNodes.of(nodes, instances, vocab)


def sentence_places(n: int, seed: int, max_pairs: int = 3) -> list[tuple[int, tuple[int, str], tuple[int, str]]]:
    """:attr:`SplitNodes.places` for ``n`` pairs: consecutive pairs form sentences of 1 to
    ``max_pairs`` pairs (sizes drawn from ``seed``); pair p's entities are ``(p, "h")`` and ``(p, "t")``,
    so no entity is pooled and a label carried by a pair's head and tail features stays learnable."""
    generator = torch.Generator().manual_seed(seed)
    places, sentence = [], 0
    while len(places) < n:
        size = int(torch.randint(1, max_pairs + 1, (1,), generator=generator))
        places += [(sentence, (p, "h"), (p, "t")) for p in range(len(places), min(n, len(places) + size))]
        sentence += 1
    return places
