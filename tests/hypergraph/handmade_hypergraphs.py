"""Hand-made instances and their hypergraphs written out by hand."""

from __future__ import annotations

import torch

from vmhan_lib.features.nodes import InstanceNodes

D_TEXT = 6
D_VISUAL = 5


def full_instance(generator: torch.Generator) -> InstanceNodes:
    """h, t, 2 text-LLM spans; image, 4 objects (k = 3 keeps 3), 2 visual-LLM nodes."""
    return InstanceNodes(
        text_features=torch.randn(4, D_TEXT, generator=generator),
        visual_features=torch.randn(7, D_VISUAL, generator=generator),
        text_names=["Alice", "Acme", "joined", "CEO"],
        visual_names=["<image>", "person", "logo", "desk", "chair", "smiling", "handshake"],
        n_objects=4,
    )


def text_only_instance(generator: torch.Generator) -> InstanceNodes:
    """h, t and nothing else: no image, no objects."""
    return InstanceNodes(
        text_features=torch.randn(2, D_TEXT, generator=generator),
        visual_features=torch.zeros(0, D_VISUAL),
        text_names=["Bob", "Paris"],
        visual_names=[],
        n_objects=0,
        has_image=False,
    )


# Slots of a batch [full_instance, text_only_instance] with the default config:
# text slots 0..3 = Alice, Acme, joined, CEO; visual slots 4..9 = <image>, person, logo, desk, smiling, handshake.
FULL_MEMBERS = {
    "global": {0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
    "textual": {0, 1, 2, 3},
    "visual": {4, 5, 6, 7, 8, 9},
    "head_visual": {0, 4, 5, 6, 7, 8, 9},
    "tail_visual": {1, 4, 5, 6, 7, 8, 9},
}
TEXT_ONLY_MEMBERS = {"global": {0, 1}, "textual": {0, 1}, "visual": set(), "head_visual": set(), "tail_visual": set()}


