"""Torch-free training configuration with one preset per profile.

The paper's settings (section 5.1): AdamW, lr 2e-5, weight decay 0.01, dropout 0.6, batch 16.
Our two-stage ``cpu`` profile (see :mod:`vmhan_lib.train.experiment`) fine-tunes the text encoder
once with the settings DESIGN.md section 6 measured (lr 5e-5, batch 32, 4 epochs, linear warm-up
and decay), then trains every hypergraph model on the frozen features of that encoder, where the
hypergraph part gets its own, larger learning rate (a freshly initialised small network does not
learn at 2e-5 within a few epochs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class EncoderTrainConfig:
    """Stage 1: fine-tune the entity-marker text encoder with a linear relation head.

    Attributes:
        epochs: passes over train (default 4); the checkpoint with the best dev F1 is kept.
        batch_size: sentences per step (default 32).
        lr: AdamW learning rate of the encoder and head (default 5e-5).
        weight_decay: AdamW weight decay (default 0.01, as the paper).
        warmup_ratio: share of steps with linear warm-up, then linear decay (default 0.1).
        dropout: dropout on the head input (default 0.1).
        max_grad_norm: gradient clipping (default 1.0).
        eval_batch_size: sentences per forward pass at evaluation (default 64).
    """

    epochs: int = 4
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    dropout: float = 0.1
    max_grad_norm: float = 1.0
    eval_batch_size: int = 64

    def __post_init__(self) -> None:
        _positive(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, eval_batch_size=self.eval_batch_size)


@dataclass(frozen=True)
class TrainConfig:
    """Stage 2: train a hypergraph model (or a baseline) on node features.

    Attributes:
        epochs: passes over train (default 10); the checkpoint with the best dev F1 is kept.
        batch_size: hypergraphs per step (default 16, as the paper).
        lr: AdamW learning rate of the hypergraph part and classifier (default 1e-3).
        weight_decay: AdamW weight decay (default 0.01, as the paper).
        warmup_ratio: share of steps with linear warm-up, then linear decay (default 0.1).
        max_grad_norm: gradient clipping (default 1.0).
        eval_batch_size: hypergraphs per forward pass at evaluation (default 256).
        device: ``auto`` (GPU when present), ``cpu`` or ``cuda``.
        cpu_threads: torch CPU threads while training (default 1): the hypergraph part works on
            small tensors, where thread synchronisation costs more than it saves (measured: 19 ms
            per VM-HAN step of 16 hypergraphs with 1 thread, 453 ms with 2 on a loaded 2-core
            machine); ``None`` keeps torch's setting.
    """

    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    eval_batch_size: int = 256
    device: str = "auto"
    cpu_threads: int | None = 1

    def __post_init__(self) -> None:
        _positive(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, eval_batch_size=self.eval_batch_size)
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; allowed: {', '.join(DEVICES)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive(**values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")


def train_presets(profile: str) -> tuple[EncoderTrainConfig, TrainConfig]:
    """Stage-1 and stage-2 settings of a profile (``tiny``, ``cpu``, ``full``)."""
    if profile == "tiny":
        return EncoderTrainConfig(epochs=1, batch_size=16), TrainConfig(epochs=2, batch_size=16)
    if profile == "cpu":
        # batch 32 and 8 epochs (not the paper's 16 and more): 56 runs must fit a 2-core machine
        return EncoderTrainConfig(), TrainConfig(epochs=8, batch_size=32)
    if profile == "full":
        return (
            EncoderTrainConfig(epochs=10, batch_size=16, lr=2e-5),
            TrainConfig(epochs=30, batch_size=16),
        )
    raise ValueError(f"unknown profile {profile!r}; allowed: tiny, cpu, full")
