"""The one fit loop: every model of the workbook is trained by :func:`fit`.

One run: seed everything, build the model, train with AdamW and linear warm-up/decay, evaluate on
dev after every epoch, keep the state with the best dev F1, export it, score test once with it,
and write the run record and the test predictions (:mod:`vmhan_lib.train.records`). After every
epoch the full training state (model, optimiser, scheduler, the CPU, CUDA, Python and NumPy RNGs, dev
curve, best state) is saved atomically, so an interrupted run continues where it stopped, on any
device: a state is always loaded to the CPU and moved (the model's and the optimiser's tensors to the
model's device, the RNG states where each belongs), and deleted once the run's record is written
unless ``keep_state``. How a run executes (device and its name, CUDA version, precision, threads,
worker) is recorded in ``execution``, never in its identity: ``precision`` ``auto`` trains and
evaluates under bf16 autocast with TF32 matmuls on CUDA and in fp32 elsewhere, ``bf16`` under bf16
autocast on any device, ``fp32`` never.

What differs between models is a :class:`FitTask`: how the model is built, how an epoch is cut
into batches, the loss of a batch, the class probabilities of a split, and what is exported from
the best state (:mod:`vmhan_lib.train.hypergraph_task` for the hypergraph models and baselines,
:mod:`vmhan_lib.train.encoder_task` for the stage-1 text encoder).
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from vmhan_lib.data.mnre import RelationVocab
from vmhan_lib.io import StorageError, atomic_torch_save, load_torch, provenance, set_aside
from vmhan_lib.identity import digest
from vmhan_lib.metrics import score
from vmhan_lib.config import TrainConfig
from vmhan_lib.config_tree import ConfigError
from vmhan_lib.train.execution import (Execution, autocast, autocast_dtype, execution_facts, restore_rng, rng_states,
                                       threads_and_tf32)
from vmhan_lib.train.records import Prediction, write_run

STATE_FILE = "state.pt"
TEST_EXIT_ENV = "VMHAN_TEST_EXIT_AFTER_EPOCH"
"""Test hook: ``"<run name>:<epoch>"`` makes the process exit (``os._exit``, no clean-up, like a
killed worker) right after that run has saved that epoch in this process; a resumed run starts
after it and is not stopped again. Read only by :func:`_exit_if_a_test_asks`."""
TEST_EXIT_STATUS = 17


def _exit_if_a_test_asks(name: str, epoch: int) -> None:
    wanted = os.environ.get(TEST_EXIT_ENV, "")
    run, sep, at = wanted.rpartition(":")
    if sep and run == name and at.strip() == str(epoch):
        os._exit(TEST_EXIT_STATUS)


@dataclass
class SplitPredictions:
    """What a model says about a split: probabilities ``[n, R]`` and, for variational models, the
    mean predicted variance of the head and tail nodes ``[n]``."""

    probabilities: torch.Tensor
    variances: torch.Tensor | None = None


class FitTask(Protocol):
    """What the fit loop needs of one kind of model.

    ``labels[split]`` and ``indices[split]`` are the relation ids and file indices of the
    instances of ``train``, ``val`` and ``test``, in the order :meth:`predict` returns them;
    ``device`` is where the model trains.
    """

    labels: dict[str, list[int]]
    indices: dict[str, list[int]]
    device: torch.device

    def build_model(self) -> torch.nn.Module:
        """A fresh model (called right after seeding, so its initialisation follows the seed)."""

    def train_batches(self, epoch_seed: int) -> Sequence[Any]:
        """The batches of one epoch over train, shuffled with ``torch.Generator().manual_seed(epoch_seed)``."""

    def parameter_groups(self, model: torch.nn.Module) -> list[dict[str, Any]]:
        """The AdamW parameter groups of ``model``; a group without ``"lr"`` trains at ``train_config.lr``."""

    def loss(self, model: torch.nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        """The loss terms of a batch, ``"total"`` included (the one that is minimised)."""

    def predict(self, model: torch.nn.Module, split: str) -> SplitPredictions:
        """Evaluation-mode predictions for every instance of ``split``."""

    def export(self, model: torch.nn.Module, checkpoint_dir: Path, digest: str,
               config: dict[str, Any]) -> dict[str, Any]:
        """Save the best model (already loaded into ``model``); returns fields for the run record."""


class LazyBatches:
    """An epoch's batches, collated one at a time as the loop asks (a whole epoch collated at once
    would hold every padded batch in memory): ``collate(chosen)`` for each index tensor in turn."""

    def __init__(self, chosen: Sequence[torch.Tensor], collate: Callable[[torch.Tensor], Any]) -> None:
        self.chosen, self.collate = list(chosen), collate

    def __len__(self) -> int:
        return len(self.chosen)

    def __iter__(self) -> Iterator[Any]:
        return (self.collate(indices) for indices in self.chosen)


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


class NonFiniteTrainingError(ConfigError):
    """The loss or the gradient of a training step is not finite: the run stops, nothing is recorded."""


def train_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
    losses: dict[str, torch.Tensor], max_grad_norm: float,
) -> dict[str, float]:
    """One optimiser step on the loss terms of a batch (minimise ``"total"``, clipped gradients).

    Raises:
        NonFiniteTrainingError: the loss or the gradient norm is not finite (the step is not taken),
            or the step itself overflows the parameters' float type (a learning rate like 1e38).
    """
    optimizer.zero_grad(set_to_none=True)
    if not torch.isfinite(losses["total"]):
        raise NonFiniteTrainingError(f"the loss is {losses['total'].item()}")
    losses["total"].backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    if not torch.isfinite(norm):
        raise NonFiniteTrainingError(f"the gradient norm is {norm.item()}")
    try:
        optimizer.step()
    except RuntimeError as err:  # torch's words: "value cannot be converted to type float without overflow"
        if "overflow" not in str(err):
            raise
        raise NonFiniteTrainingError("the optimiser step overflows the parameters' float type") from None
    scheduler.step()
    return {name: value.item() for name, value in losses.items()}


def start_training(task: FitTask, train_config: TrainConfig, seed: int, device: torch.device
                   ) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """Seed, build the task's model on ``device``, and its AdamW optimiser over the task's parameter
    groups (:meth:`FitTask.parameter_groups`) with the linear warm-up/decay schedule (the same factor
    for every group) over ``epochs`` passes of ``ceil(train instances / batch size)`` steps (the fit
    loop's start; benchmarks use it to time exactly what the experiments run)."""
    seed_everything(seed)
    model = task.build_model().to(device)
    optimizer = torch.optim.AdamW(task.parameter_groups(model), lr=train_config.lr,
                                  weight_decay=train_config.weight_decay)
    steps_per_epoch = math.ceil(len(task.labels["train"]) / train_config.batch_size)
    scheduler = linear_warmup_decay(optimizer, steps_per_epoch * train_config.epochs, train_config.warmup_ratio)
    return model, optimizer, scheduler


def cpu_copy(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of a state dict on the CPU (the best state: no second model in GPU memory)."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in weights.items()}


def _restore(path: Path, digest: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: torch.optim.lr_scheduler.LRScheduler, device: torch.device,
             ) -> tuple[list[dict[str, Any]], float, dict[str, torch.Tensor]]:
    """Resume from ``path`` when it holds a run of the same configuration (``digest``); returns the
    dev curve so far, the best dev F1 and the best state (empty curve: a fresh start). The state is
    loaded to the CPU: ``load_state_dict`` copies the weights to the model's device, the optimiser
    casts its moments to each parameter's device (its ``step`` counters stay on the CPU)."""
    state = None
    if path.is_file():
        try:
            state = load_torch(path, "resumable training state", map_location="cpu")
        except StorageError as err:
            set_aside(path, err)
    if state is not None:
        if state["digest"] == digest:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            restore_rng(state, device)
            return state["curve"], state["best_f1"], state["best_state"]
    return [], -1.0, cpu_copy(model.state_dict())


def scores_of(vocab: RelationVocab, labels: Sequence[int], probabilities: torch.Tensor) -> dict[str, Any]:
    """The MNRE scores of argmax predictions against gold relation ids."""
    predicted = probabilities.argmax(-1).tolist()
    return score([vocab.labels[i] for i in labels], [vocab.labels[i] for i in predicted]).as_dict()


def fit(
    *,
    name: str,
    task: FitTask,
    train_config: TrainConfig,
    vocab: RelationVocab,
    seed: int,
    run_dir: Path,
    checkpoint_dir: Path,
    config_record: dict[str, Any],
    identity: dict[str, Any] | None = None,
    extra_record: dict[str, Any] | None = None,
    progress: bool = True,
    execution: Execution = Execution(),
) -> dict[str, Any]:
    """Train ``task``'s model, select on dev F1, export the best state, test once, write the record.

    Args:
        name: the run's name (a Table 1 / Table 2 row, or a Fig. 5 run), shown and recorded.
        checkpoint_dir: the resumable training state and the exported best model (not results).
        config_record: the whole configuration of the run, stored in the record.
        identity: what makes the result (default: ``config_record``); its digest keys the
            resumable state and the exported model, so a changed configuration never resumes an
            old state.
        extra_record: more fields for the record (e.g. the feature build reports).
        execution: precision, and whether the resumable state outlives the record.
    Returns:
        The run record (as written).
    """
    with threads_and_tf32(train_config, execution, task.device):
        return _fit(name, task, train_config, vocab, seed, run_dir, checkpoint_dir, config_record,
                    digest(config_record if identity is None else identity), extra_record or {}, progress, execution)


def _train_epoch(name: str, seed: int, epoch: int, task: FitTask, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                 train_config: TrainConfig, vocab: RelationVocab, progress: bool,
                 dtype: torch.dtype | None) -> dict[str, Any]:
    """One epoch (0-based ``epoch``): a pass over train, then dev scored, the forward passes under
    autocast to ``dtype`` (``None``: fp32); returns its row of the dev curve (mean loss terms per
    step, dev scores, wall time of the pass and the dev scoring)."""
    model.train()
    started = time.perf_counter()
    totals: dict[str, float] = {}
    batches = task.train_batches(seed * 1_000 + epoch)
    bar = tqdm(batches, desc=f"{name} s{seed} epoch {epoch + 1}", disable=not progress, leave=False)
    for step, batch in enumerate(bar):
        with autocast(task.device, dtype):
            terms = task.loss(model, batch)
        try:
            losses = train_step(model, optimizer, scheduler, terms, train_config.max_grad_norm)
        except NonFiniteTrainingError as err:
            raise NonFiniteTrainingError(
                f"{name} seed {seed}: {err} at step {step + 1} of epoch {epoch + 1}; likely causes: a learning "
                f"rate too high for this model (lr {train_config.lr}), or non-finite input features. Nothing was "
                "recorded; the last saved epoch stays resumable") from None
        for term, value in losses.items():
            totals[term] = totals.get(term, 0.0) + value
        bar.set_postfix(loss=f"{totals['total'] / (step + 1):.4f}")
    with autocast(task.device, dtype):
        dev_scores = scores_of(vocab, task.labels["val"], task.predict(model, "val").probabilities)
    steps_per_epoch = math.ceil(len(task.labels["train"]) / train_config.batch_size)
    return {
        "epoch": epoch + 1,
        "train_loss": {term: total / steps_per_epoch for term, total in totals.items()},
        "dev": dev_scores,
        "wall_s": time.perf_counter() - started,
    }


def _test_predictions(task: FitTask, vocab: RelationVocab, test: SplitPredictions) -> list[Prediction]:
    """One :class:`Prediction` per test instance (gold, argmax, probabilities, variance if any)."""
    labels, variances = task.labels["test"], test.variances
    return [
        Prediction(
            index=task.indices["test"][i], gold=vocab.labels[labels[i]],
            predicted=vocab.labels[int(test.probabilities[i].argmax())],
            probabilities=tuple(test.probabilities[i].tolist()),
            variance=None if variances is None else float(variances[i]),
        )
        for i in range(len(labels))
    ]


def _fit(name: str, task: FitTask, train_config: TrainConfig, vocab: RelationVocab, seed: int, run_dir: Path,
         checkpoint_dir: Path, config_record: dict[str, Any], digest: str, extra_record: dict[str, Any],
         progress: bool, execution: Execution) -> dict[str, Any]:
    """:func:`fit` with the run's identity ``digest`` computed: resume or start, train the missing
    epochs (saving the state after each), export the best state, test it, write the record, delete
    the state (unless ``execution.keep_state``)."""
    device, dtype = task.device, autocast_dtype(execution.precision, task.device)
    model, optimizer, scheduler = start_training(task, train_config, seed, device)
    state_path = checkpoint_dir / STATE_FILE
    curve, best_f1, best_state = _restore(state_path, digest, model, optimizer, scheduler, device)
    for epoch in range(len(curve), train_config.epochs):
        curve.append(_train_epoch(name, seed, epoch, task, model, optimizer, scheduler, train_config, vocab, progress,
                                  dtype))
        if curve[-1]["dev"]["f1"] > best_f1:
            best_f1, best_state = curve[-1]["dev"]["f1"], cpu_copy(model.state_dict())
        atomic_torch_save({
            "digest": digest, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), **rng_states(device),
            "curve": curve, "best_f1": best_f1, "best_state": best_state,
        }, state_path)
        _exit_if_a_test_asks(name, epoch + 1)
    model.load_state_dict(best_state)
    exported = task.export(model, checkpoint_dir, digest, config_record)
    best_epoch = max(curve, key=lambda row: row["dev"]["f1"])
    with autocast(device, dtype):
        test = task.predict(model, "test")
    record = {
        "run_id": run_dir.name,
        "variant": name,
        "seed": seed,
        "device": str(device),
        "execution": execution_facts(device, dtype),
        **provenance(config_record),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "epochs": curve,
        "best_epoch": best_epoch["epoch"],
        "dev": best_epoch["dev"],
        "test": scores_of(vocab, task.labels["test"], test.probabilities),
        "train_wall_s": sum(row["wall_s"] for row in curve),
        **exported,
        **extra_record,
        "complete": True,
    }
    write_run(run_dir, record, _test_predictions(task, vocab, test))
    if not execution.keep_state:
        state_path.unlink(missing_ok=True)
    return record
