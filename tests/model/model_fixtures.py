"""Random instances of varied shape for the model tests, optionally with a learnable label signal."""

from __future__ import annotations

import torch

from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.model import ModelConfig, model_preset

TINY = model_preset("tiny")


def random_instance(
    generator: torch.Generator, config: ModelConfig = TINY, shift: torch.Tensor | None = None
) -> InstanceNodes:
    """An instance with 0-3 text-LLM nodes and, one time in five, no visual node at all, else maybe
    an image, 0-4 objects and 0-3 visual-LLM nodes."""

    def count(high: int) -> int:
        return int(torch.randint(0, high + 1, (1,), generator=generator))

    n_text = 2 + count(3)
    has_image = bool(torch.rand(1, generator=generator) < 0.8)
    n_objects = count(4)
    n_visual = int(has_image) + n_objects + count(3)
    if torch.rand(1, generator=generator) < 0.2:
        has_image, n_objects, n_visual = False, 0, 0
    text = torch.randn(n_text, config.d_text, generator=generator)
    visual = torch.randn(n_visual, config.d_visual, generator=generator)
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


def random_instances(count: int, seed: int = 0, config: ModelConfig = TINY) -> list[InstanceNodes]:
    generator = torch.Generator().manual_seed(seed)
    return [random_instance(generator, config) for _ in range(count)]


def signal_instances(count: int, seed: int = 0, config: ModelConfig = TINY) -> tuple[list[InstanceNodes], torch.Tensor]:
    """Instances whose label is encoded in the head and tail features (a per-class offset)."""
    generator = torch.Generator().manual_seed(seed)
    prototypes = 2.0 * torch.randn(config.num_relations, config.d_text, generator=torch.Generator().manual_seed(99))
    labels = torch.randint(0, config.num_relations, (count,), generator=generator)
    return [random_instance(generator, config, prototypes[y]) for y in labels.tolist()], labels
