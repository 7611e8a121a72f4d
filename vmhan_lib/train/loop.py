"""Stage 2: train one hypergraph model (a Table 1 / Table 2 variant) on node features.

One run: seed everything, train with AdamW and linear warm-up/decay, evaluate on dev after every
epoch, keep the state with the best dev F1, score test once with it, and write the run record.
After every epoch the full training state (model, optimiser, scheduler, RNG, dev curve, best
state) is saved atomically, so an interrupted run continues where it stopped; a complete run is
never retrained.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from vmhan_lib.data.mnre import RelationVocab
from vmhan_lib.features.cache import atomic_torch_save, key_digest
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.hypergraph.batch import HEAD_SLOT, TAIL_SLOT, HypergraphBatch, collate_hypergraphs
from vmhan_lib.io import provenance
from vmhan_lib.metrics import score
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.losses import vmhan_loss
from vmhan_lib.model.vmhan import VMHAN, build_model
from vmhan_lib.train.config import TrainConfig
from vmhan_lib.train.records import Prediction, is_complete, read_record, write_predictions, write_record

STATE_FILE = "state.pt"
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


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the GPU when one is present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no GPU is visible; use 'auto' or 'cpu'")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def linear_warmup_decay(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate rising linearly over the warm-up steps, then falling linearly to 0."""
    warmup = max(1, int(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def restore_training_state(
    path: Path, digest: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler, device: torch.device,
) -> tuple[list[dict[str, Any]], float, dict[str, torch.Tensor]]:
    """Resume from ``path`` when it holds a run of the same configuration (``digest``).

    Returns the dev curve so far, the best dev F1 and the best state (empty curve: fresh start).
    """
    if path.is_file():
        state = torch.load(path, map_location=device, weights_only=False)
        if state["digest"] == digest:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            return state["curve"], state["best_f1"], state["best_state"]
    return [], -1.0, copy.deepcopy(model.state_dict())


def save_training_state(
    path: Path, digest: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler, curve: list[dict[str, Any]], best_f1: float,
    best_state: dict[str, torch.Tensor],
) -> None:
    """Everything :func:`restore_training_state` needs, written atomically."""
    atomic_torch_save({
        "digest": digest, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
        "curve": curve, "best_f1": best_f1, "best_state": best_state,
    }, path)


@torch.no_grad()
def predict(
    model: VMHAN, data: SplitNodes, config: ModelConfig, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Class probabilities ``[n, R]`` and, for variational models, the mean predicted variance of
    the head and tail nodes ``[n]`` (deterministic: evaluation uses the means)."""
    model.eval()
    probabilities, variances = [], []
    for start in range(0, len(data.nodes), batch_size):
        batch = collate_hypergraphs(data.nodes[start:start + batch_size], config.hypergraph).to(device)
        output = model(batch)
        probabilities.append(output.logits.softmax(-1).cpu())
        if output.node_sigma is not None:
            pair_sigma = output.node_sigma[:, [HEAD_SLOT, TAIL_SLOT]]  # [B, 2, d]
            variances.append(pair_sigma.mean(dim=(1, 2)).cpu())
    return torch.cat(probabilities), (torch.cat(variances) if variances else None)


def evaluate_split(
    model: VMHAN, data: SplitNodes, config: ModelConfig, vocab: RelationVocab, batch_size: int, device: torch.device
) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor | None]:
    probabilities, variances = predict(model, data, config, batch_size, device)
    predicted = probabilities.argmax(-1).tolist()
    scores = score([vocab.labels[i] for i in data.labels], [vocab.labels[i] for i in predicted])
    return scores.as_dict(), probabilities, variances


def train_step(
    model: VMHAN, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
    batch: HypergraphBatch, config: ModelConfig, max_grad_norm: float,
) -> dict[str, float]:
    """One optimiser step on a labelled batch (Eq. 12 loss, clipped gradients); returns the loss terms."""
    losses = vmhan_loss(model(batch), batch.labels, config)
    optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    return {name: value.item() for name, value in losses.items()}


def train_run(
    *,
    variant: str,
    model_config: ModelConfig,
    train_config: TrainConfig,
    data: dict[str, SplitNodes],
    vocab: RelationVocab,
    seed: int,
    run_dir: Path,
    checkpoint_dir: Path,
    extra_config: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train, select on dev F1, test once, write ``run_dir/record.json`` and the predictions.

    Args:
        variant: the Table 1 / Table 2 row name the run realises.
        data: ``{"train": ..., "val": ..., "test": ...}``.
        checkpoint_dir: where the resumable training state and the best model go (not results).
        extra_config: more configuration to store with the run (features, data, encoder).
    Returns:
        The run record (as written).
    """
    if is_complete(run_dir):
        return read_record(run_dir)
    threads = torch.get_num_threads()
    if train_config.cpu_threads is not None:
        torch.set_num_threads(train_config.cpu_threads)
    try:
        return _train(variant, model_config, train_config, data, vocab, seed, run_dir, checkpoint_dir,
                      extra_config, progress)
    finally:
        torch.set_num_threads(threads)


def _train(
    variant: str, model_config: ModelConfig, train_config: TrainConfig, data: dict[str, SplitNodes],
    vocab: RelationVocab, seed: int, run_dir: Path, checkpoint_dir: Path, extra_config: dict[str, Any] | None,
    progress: bool,
) -> dict[str, Any]:
    device = resolve_device(train_config.device)
    config_record = {
        "variant": variant, "seed": seed, "model": model_config.to_dict(), "train": train_config.to_dict(),
        **(extra_config or {}),
    }
    digest = key_digest(config_record)
    seed_everything(seed)
    model = build_model(model_config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay)
    train = data["train"]
    steps_per_epoch = math.ceil(len(train.nodes) / train_config.batch_size)
    scheduler = linear_warmup_decay(optimizer, steps_per_epoch * train_config.epochs, train_config.warmup_ratio)
    state_path = checkpoint_dir / STATE_FILE
    curve, best_f1, best_state = restore_training_state(state_path, digest, model, optimizer, scheduler, device)
    labels = torch.tensor(train.labels)
    for epoch in range(len(curve), train_config.epochs):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(len(train.nodes), generator=torch.Generator().manual_seed(seed * 1_000 + epoch))
        totals: dict[str, float] = {}
        bar = tqdm(range(steps_per_epoch), desc=f"{variant} s{seed} epoch {epoch + 1}", disable=not progress, leave=False)
        for step in bar:
            chosen = order[step * train_config.batch_size:(step + 1) * train_config.batch_size]
            batch = collate_hypergraphs([train.nodes[i] for i in chosen], model_config.hypergraph, labels[chosen]).to(device)
            losses = train_step(model, optimizer, scheduler, batch, model_config, train_config.max_grad_norm)
            for name, value in losses.items():
                totals[name] = totals.get(name, 0.0) + value
            bar.set_postfix(loss=f"{totals['total'] / (step + 1):.4f}")
        dev_scores, _, _ = evaluate_split(model, data["val"], model_config, vocab, train_config.eval_batch_size, device)
        curve.append({
            "epoch": epoch + 1,
            "train_loss": {name: total / steps_per_epoch for name, total in totals.items()},
            "dev": dev_scores,
            "wall_s": time.perf_counter() - started,
        })
        if dev_scores["f1"] > best_f1:
            best_f1, best_state = dev_scores["f1"], copy.deepcopy(model.state_dict())
        save_training_state(state_path, digest, model, optimizer, scheduler, curve, best_f1, best_state)
    model.load_state_dict(best_state)
    atomic_torch_save({"digest": digest, "config": config_record, "model": best_state}, checkpoint_dir / BEST_FILE)
    best_epoch = max(curve, key=lambda row: row["dev"]["f1"])
    test_scores, probabilities, variances = evaluate_split(
        model, data["test"], model_config, vocab, train_config.eval_batch_size, device
    )
    write_predictions(run_dir, [
        Prediction(
            index=data["test"].indices[i],
            gold=vocab.labels[data["test"].labels[i]],
            predicted=vocab.labels[int(probabilities[i].argmax())],
            probabilities=tuple(probabilities[i].tolist()),
            variance=None if variances is None else float(variances[i]),
        )
        for i in range(len(data["test"].nodes))
    ])
    record = {
        "run_id": run_dir.name,
        "variant": variant,
        "seed": seed,
        "device": str(device),
        **provenance(config_record),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "epochs": curve,
        "best_epoch": best_epoch["epoch"],
        "dev": best_epoch["dev"],
        "test": test_scores,
        "train_wall_s": sum(row["wall_s"] for row in curve),
        "complete": True,
    }
    write_record(run_dir, record)
    return record
