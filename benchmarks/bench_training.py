"""Training and inference cost of the two stages, on the real MNRE inputs of a profile.

Stage 2 (every Table 1 model: VM-HAN, the text-only model, GCN, GAT, HGNN) on the cached node
features of the profile's train split, with the profile's stage-2 settings (batch size, threads,
AdamW, linear warm-up/decay), through the code the experiments run: the inputs of
:func:`vmhan_lib.train.stage1.prepare_inputs`, a :class:`~vmhan_lib.train.hypergraph_task.HypergraphTask`
and :func:`vmhan_lib.train.fit.train_step` on the task's loss (Eq. 12):

- training throughput (instances/s) and time per epoch: one full epoch over the train split in
  the experiments' order (the task's batches of seed 0, epoch 0; collation included; dev
  evaluation excluded);
- inference latency per instance: batch of 1 (:func:`~vmhan_lib.train.hypergraph_task.predict_nodes`),
  median over ``--latency-instances`` test instances; and the batched rate of the task's
  evaluation (``predict`` at the evaluation batch size) over the whole test split;
- memory of one training step (the first batch of the timed epoch): bytes autograd saves for
  backward plus parameters, gradients and AdamW state (exact tensor bytes), and on a GPU the
  allocator's peak for the epoch.

Stage 1 (the entity-marker text encoder with its linear head), with the profile's stage-1 settings
through an :class:`~vmhan_lib.train.encoder_task.EncoderTask` on real tokenised train sentences in
its length-bucketed batches: ``--encoder-steps`` optimiser steps of ``train_step`` on the task's
loss (after one warm-up step) give instances/s and the extrapolated epoch time, printed beside
the epoch times the committed fine-tuning record measured; inference latency per sentence at
batch 1.

The run configuration is the profile's (``--profile``, ``--set NAME=VALUE`` as for
``python -m vmhan_lib``). The GPU is used when present (``device``
= ``auto``, or ``--device``); timings then synchronise the device. Prints the figures and writes them
with the configuration, machine load and provenance to ``results/benchmarks/training[_<device>].json``
(``results/tiny/benchmarks/`` for the ``tiny`` profile, so it never touches the committed files).

Run: ``.venv/bin/python benchmarks/bench_training.py [--profile cpu] [--device auto] [--set NAME=VALUE]``.
On a fresh clone the profile's encoder and features are built first (cached after; see the README).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
from dataclasses import replace
from typing import Any

import torch

from measure import fit_loop_batches, saved_tensor_bytes, synchronized_seconds, tensor_state_bytes
from vmhan_lib.config_tree import ConfigError, parse_assignments
from vmhan_lib.data.mnre import SPLITS, RelationVocab, load_mnre
from vmhan_lib.io import atomic_write_json, provenance
from vmhan_lib.model.variants import TABLE1_VARIANTS, variant_config
from vmhan_lib.paths import PROFILES, output_dirs
from vmhan_lib.config import DEVICES, STAGE1_HEAD_DROPOUT, RunConfig, run_config, stage1_train_config
from vmhan_lib.train.encoder_task import EncoderTask
from vmhan_lib.train.execution import resolve_device
from vmhan_lib.train.fit import start_training, train_step
from vmhan_lib.train.hypergraph_task import HypergraphTask, predict_nodes
from vmhan_lib.train.records import read_record
from vmhan_lib.train.stage1 import PreparedInputs, prepare_inputs
from vmhan_lib.train.jobs import RunPaths

BENCH_SEED = 0
"""The seed of the benchmarked runs (the experiments' first seed): model initialisation and batch order."""


def bench_stage2(config: RunConfig, inputs: PreparedInputs, variant: str, device: torch.device,
                 latency_instances: int) -> dict[str, Any]:
    """One training epoch, the memory of one step, and inference latency of one stage-2 model."""
    train_config = config.train
    model_config = variant_config(variant, inputs.model)
    task = HypergraphTask(model_config, inputs.data, train_config.batch_size, config.eval_batch_size, device)
    model, optimizer, scheduler = start_training(task, train_config, BENCH_SEED, device)
    train_instances = len(task.labels["train"])
    batches = task.train_batches(BENCH_SEED * 1_000)  # the fit loop's first epoch of seed 0

    def epoch() -> None:
        model.train()
        for batch in batches:
            train_step(model, optimizer, scheduler, task.loss(model, batch), train_config.max_grad_norm)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    epoch_s = synchronized_seconds(epoch, device)
    gpu_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None

    first = next(iter(batches))
    saved = saved_tensor_bytes(lambda: task.loss(model, first)["total"])
    state = tensor_state_bytes(model, optimizer)

    test = inputs.data["test"].nodes
    single = [
        synchronized_seconds(lambda i=i: predict_nodes(model, test[i:i + 1], model_config, 1, device), device)
        for i in range(min(latency_instances, len(test)))
    ]
    batched_s = synchronized_seconds(lambda: task.predict(model, "test"), device)
    return {
        "variant": variant,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_instances": train_instances,
        "batch_size": train_config.batch_size,
        "epoch_s": epoch_s,
        "train_instances_per_s": train_instances / epoch_s,
        "step_memory_mib": {"saved_for_backward": saved / 2**20, "parameters_grads_optimizer": state / 2**20},
        "gpu_peak_allocated_mib": None if gpu_peak is None else gpu_peak / 2**20,
        "latency_batch1_ms": {"median": 1e3 * statistics.median(single), "p90": 1e3 * _quantile(single, 0.9),
                              "instances": len(single)},
        "inference_batched_ms_per_instance": 1e3 * batched_s / len(test),
        "inference_batch_size": config.eval_batch_size,
    }


def bench_stage1(config: RunConfig, vocab: RelationVocab, text_model: str, device: torch.device, steps: int,
                 latency_instances: int) -> dict[str, Any]:
    """Stage-1 optimiser steps on real train sentences and batch-1 inference latency of ``text_model``
    (the fine-tuned encoder directory), with the profile's stage-1 settings."""
    train_config = stage1_train_config(config)
    seed = config.experiment.encoder_seed
    splits = {s: load_mnre(config.data.path, s, vocab)[: config.data.max_instances] for s in ("train", "test")}
    task = EncoderTask(splits, vocab, replace(config.features.text, model=text_model), train_config.batch_size,
                       config.eval_batch_size, STAGE1_HEAD_DROPOUT, device)
    model, optimizer, scheduler = start_training(task, train_config, seed, device)
    train_instances = len(task.labels["train"])
    chosen, collate = fit_loop_batches(task, seed, steps + 1)

    def run(indices: torch.Tensor) -> None:
        train_step(model, optimizer, scheduler, task.loss(model, collate(indices)), train_config.max_grad_norm)

    model.train()
    run(chosen[0])  # warm-up: allocator and kernel selection
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step_s = [synchronized_seconds(lambda indices=indices: run(indices), device) for indices in chosen[1:]]
    gpu_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    instances = sum(len(indices) for indices in chosen[1:])
    per_s = instances / sum(step_s)

    encoded = task.encoded
    longest = collate(max(chosen[1:], key=lambda indices: max(len(encoded["train"][i].input_ids) for i in indices)))
    saved = saved_tensor_bytes(lambda: task.loss(model, longest)["total"])

    model.eval()
    with torch.no_grad():
        single = []
        for pair in encoded["test"][:latency_instances]:
            batch = task.tokenizer.collate([pair]).to(device)
            single.append(synchronized_seconds(
                lambda: model(batch.input_ids, batch.attention_mask, batch.entity_positions), device))
    return {
        "model": text_model,
        "device": str(device),
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch_size": train_config.batch_size,
        "timed_steps": len(step_s),
        "train_instances_per_s": per_s,
        "epoch_s_extrapolated": train_instances / per_s,
        "step_s_median": statistics.median(step_s),
        "step_memory_mib": {
            "saved_for_backward_longest_batch": saved / 2**20,
            "longest_batch_tokens": int(longest[0].input_ids.shape[1]),
            "parameters_grads_optimizer": tensor_state_bytes(model, optimizer) / 2**20,
        },
        "gpu_peak_allocated_mib": None if gpu_peak is None else gpu_peak / 2**20,
        "latency_batch1_ms": {"median": 1e3 * statistics.median(single), "p90": 1e3 * _quantile(single, 0.9),
                              "instances": len(single)},
        "recorded_epoch_s": _recorded_encoder_epochs(config),
    }


def _recorded_encoder_epochs(config: RunConfig) -> list[float] | None:
    """Epoch wall times of the profile's committed stage-1 run record, when there is one."""
    run_dir = RunPaths.of(config).encoder_run_dir(config)
    if not (run_dir / "record.json").is_file():
        return None
    return [row["wall_s"] for row in read_record(run_dir)["epochs"]]


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(100 * q) - 1] if len(values) > 1 else values[0]


def _threads(count: int | None, default: int) -> int:
    """Set torch's CPU threads as the fit loop does (``None``: torch's own count); returns the count used."""
    torch.set_num_threads(default if count is None else count)
    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=None, choices=PROFILES,
                        help="whose inputs and settings (default: $VMHAN_PROFILE, else cpu)")
    parser.add_argument("--data-dir", default=None, help="MNRE directory (default: $VMHAN_DATA, else data/mnre)")
    parser.add_argument("--set", dest="assignments", action="append", metavar="NAME=VALUE", default=None,
                        help="set a field of the run configuration by its dotted name, e.g. --set train.batch_size=16 "
                             "(repeatable; `python -m vmhan_lib config --fields` lists every field)")
    parser.add_argument("--device", default=None, choices=DEVICES,
                        help="= --set device=D (default: the configuration's, auto = the GPU when present)")
    parser.add_argument("--variants", nargs="+", default=list(TABLE1_VARIANTS), choices=TABLE1_VARIANTS,
                        metavar="VARIANT", help="stage-2 models (default: every Table 1 model)")
    parser.add_argument("--encoder-steps", type=int, default=20, help="timed stage-1 steps (default 20)")
    parser.add_argument("--latency-instances", type=int, default=200, help="test instances timed at batch 1 (default 200)")
    parser.add_argument("--output", default=None,
                        help="result file (default results/benchmarks/training[_cuda].json; "
                             "results/tiny/benchmarks/ for the tiny profile)")
    args = parser.parse_args(argv)
    if args.encoder_steps < 1 or args.latency_instances < 1:
        parser.error("--encoder-steps and --latency-instances must be >= 1")
    try:
        overrides = parse_assignments(args.assignments)
        if args.device is not None:
            overrides["device"] = args.device
        config = run_config(args.profile, args.data_dir, overrides)
        device = encoder_device = resolve_device(config.device)
    except (ConfigError, RuntimeError) as err:
        parser.error(str(err))

    inputs = prepare_inputs(config, RunPaths.of(config))
    torch_threads = torch.get_num_threads()
    load_before = os.getloadavg()
    stage2_threads = _threads(config.train.cpu_threads, torch_threads)
    stage2 = {}
    for variant in args.variants:
        result = stage2[variant] = bench_stage2(config, inputs, variant, device, args.latency_instances)
        print(
            f"stage 2 {variant:<32} {result['train_instances_per_s']:8.0f} inst/s, epoch {result['epoch_s']:6.1f} s, "
            f"step memory {sum(result['step_memory_mib'].values()):6.1f} MiB, latency batch 1 "
            f"{result['latency_batch1_ms']['median']:.2f} ms, batched {result['inference_batched_ms_per_instance']:.3f} ms/inst"
        )
    stage1_threads = _threads(None, torch_threads)
    fine_tuned = inputs.features["text"]["model"]  # stage 1's encoder directory
    stage1 = bench_stage1(config, inputs.vocab, fine_tuned, encoder_device, args.encoder_steps, args.latency_instances)
    torch.set_num_threads(torch_threads)
    print(
        f"stage 1 text encoder ({stage1['parameters'] / 1e6:.1f} M parameters, batch {stage1['batch_size']}): "
        f"{stage1['train_instances_per_s']:.1f} inst/s, epoch ~{stage1['epoch_s_extrapolated']:.0f} s "
        f"(recorded epochs: {stage1['recorded_epoch_s']}), latency batch 1 {stage1['latency_batch1_ms']['median']:.1f} ms"
    )
    load_after = os.getloadavg()
    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "stage2": stage2,
        "stage1_encoder": stage1,
        "process_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "machine": {"cpu_count": os.cpu_count(), "stage2_threads": stage2_threads,
                    "stage1_threads": stage1_threads, "load_average_before": load_before,
                    "load_average_after": load_after},
        "provenance": provenance({"run": config.to_dict(), "features": inputs.features, "argv": sys.argv,
                                  "splits": list(SPLITS)}),
    }
    suffix = "" if device.type == "cpu" else f"_{device.type}"
    output = args.output or output_dirs(config.profile)[0] / "benchmarks" / f"training{suffix}.json"
    atomic_write_json(output, result)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
