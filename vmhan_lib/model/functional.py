"""Small tensor helpers shared by the layers."""

from __future__ import annotations

import torch


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax of ``scores`` over ``dim`` restricted to ``mask`` (broadcastable bool).

    Masked entries get weight 0; a group with no unmasked entry gets all zeros (not NaN), and
    gradients stay finite in both cases.
    """
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=dim) * mask


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, M, d]`` -> ``[B, M, heads, d / heads]``."""
    batch, items, width = x.shape
    return x.view(batch, items, heads, width // heads)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[B, M, heads, d_head]`` -> ``[B, M, heads * d_head]``."""
    batch, items, heads, head_width = x.shape
    return x.reshape(batch, items, heads * head_width)
