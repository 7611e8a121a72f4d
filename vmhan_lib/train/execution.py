"""Where and how a run executes, never part of what it computes (its identity).

One device for every part of a configuration's runs, resolved once where the work starts
(:func:`run_device`: ``auto`` -> the GPU when present; profile ``full`` without a visible GPU
refuses unless ``device=cpu``); the precision of the forward passes (:class:`Execution`,
:func:`autocast_dtype`: bf16 autocast and TF32 matmuls on CUDA by default, fp32 elsewhere); the
random states a resumable state keeps (CPU, CUDA, Python, NumPy), always restored from CPU tensors;
and the facts a run record stores about all this (:func:`execution_facts`).
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import socket
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from vmhan_lib.config import RunConfig, TrainConfig
from vmhan_lib.config_tree import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the GPU when one is present, else the CPU.

    Raises:
        ConfigError: ``cuda`` asked for and no GPU visible.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device=cuda: {_no_gpu()}; use device=auto or device=cpu")
    return torch.device(name)


def _no_gpu() -> str:
    return (f"torch sees no GPU (no GPU, no driver, or a driver older than the CUDA {torch.version.cuda} this "
            "torch was built for)")


def run_device(config: RunConfig) -> torch.device:
    """The one device of every part of ``config``'s runs (features, stage 1, stage 2, analyses),
    resolved once, where the work starts (:func:`resolve_device` of ``config.device``).

    Raises:
        ConfigError: profile ``full`` (the paper's setting, meant for a GPU) with ``device=auto`` and
            no GPU visible: it would train on the CPU for days; ``device=cpu`` says that is meant.
    """
    if config.profile == "full" and config.device == "auto" and not torch.cuda.is_available():
        raise ConfigError(f"profile full is the paper's setting for a GPU, but {_no_gpu()}; set device=cpu "
                          "(--set device=cpu) to run it on the CPU anyway")
    return resolve_device(config.device)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (``None``: fp32): bf16 for ``bf16``, and
    for ``auto`` on CUDA."""
    return torch.bfloat16 if precision == "bf16" or (precision == "auto" and device.type == "cuda") else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device`` (nothing when ``dtype`` is ``None``)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def execution_facts(device: torch.device, dtype: torch.dtype | None) -> dict[str, Any]:
    """How a run executed (its record's ``execution``; not part of its identity): device and its
    name, torch, CUDA and cuDNN versions, autocast dtype, TF32 matmuls, CPU threads, worker."""
    cuda = device.type == "cuda"
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else (platform.processor() or platform.machine()),
        "torch": torch.__version__, "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "autocast": None if dtype is None else str(dtype).removeprefix("torch."),
        "tf32": cuda and torch.get_float32_matmul_precision() != "highest",
        "threads": torch.get_num_threads(), "worker": f"{socket.gethostname()}:{os.getpid()}",
    }


def rng_states(device: torch.device) -> dict[str, Any]:
    """Every random state a run draws from: CPU torch, Python, NumPy, and the CUDA generators when
    ``device`` is a GPU."""
    states = {"torch_rng": torch.get_rng_state(), "python_rng": random.getstate(), "numpy_rng": np.random.get_state()}
    if device.type == "cuda":
        states["cuda_rng"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    """Set the random states of :func:`rng_states` (each as a CPU tensor, where torch wants it);
    a state saved before the Python and NumPy ones were kept restores torch's alone."""
    torch.set_rng_state(state["torch_rng"].cpu())
    if "python_rng" in state:
        random.setstate(state["python_rng"])
        np.random.set_state(state["numpy_rng"])
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state_all([generator.cpu() for generator in state["cuda_rng"]])


@dataclass(frozen=True)
class Execution:
    """How a run executes, not what it computes (recorded, never part of its identity).

    Attributes:
        precision: ``auto`` (bf16 autocast and TF32 matmuls on CUDA, fp32 elsewhere), ``bf16``
            (bf16 autocast on any device) or ``fp32``.
        keep_state: keep the resumable state (model, AdamW moments, best state: 1.6 GiB for
            MPNet) once the run's record is written; by default it is deleted then.
    """

    precision: str = "auto"
    keep_state: bool = False

    @classmethod
    def of(cls, config: RunConfig) -> "Execution":
        return cls(config.experiment.precision, config.experiment.keep_states)


@contextlib.contextmanager
def threads_and_tf32(train_config: TrainConfig, execution: Execution, device: torch.device) -> Iterator[None]:
    """``train.cpu_threads`` torch threads, and TF32 matmuls on CUDA unless ``fp32``; both restored after."""
    threads, matmul = torch.get_num_threads(), torch.get_float32_matmul_precision()
    if train_config.cpu_threads is not None:
        torch.set_num_threads(train_config.cpu_threads)
    if device.type == "cuda" and execution.precision != "fp32":
        torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_float32_matmul_precision(matmul)
