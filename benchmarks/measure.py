"""Measurement helpers shared by the benchmark scripts: wall time on CPU or GPU, and memory."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import torch


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def saved_tensor_bytes(step: Callable[[], torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for backward during ``step`` (distinct storages)."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step().backward()
    return sum(storages.values())


def synchronized_seconds(work: Callable[[], object], device: torch.device) -> float:
    """Wall time of ``work()``; on a GPU, waits for its kernels before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def tensor_state_bytes(module: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> int:
    """Bytes of a model's parameters and gradients and of the optimiser's state tensors."""
    total = sum(p.numel() * p.element_size() for p in module.parameters())
    total += sum(p.grad.numel() * p.grad.element_size() for p in module.parameters() if p.grad is not None)
    if optimizer is not None:
        total += sum(
            value.numel() * value.element_size()
            for state in optimizer.state.values() for value in state.values() if torch.is_tensor(value)
        )
    return total


def fit_loop_batches(task: Any, seed: int, count: int) -> tuple[list[torch.Tensor], Callable[[torch.Tensor], Any]]:
    """The first ``count`` training batches the fit loop would draw from ``task`` (a
    :class:`~vmhan_lib.train.fit.FitTask`) with ``seed``, epoch after epoch, and their collate
    function: a benchmark times the very batches training sees."""
    chosen: list[torch.Tensor] = []
    for epoch in range(count):
        batches = task.train_batches(seed * 1_000 + epoch)
        chosen.extend(batches.chosen[: count - len(chosen)])
        if len(chosen) == count:
            break
    return chosen, batches.collate
