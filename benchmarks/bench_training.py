"""Training and inference cost of the two stages, on the real MNRE inputs of a profile.

Stage 2 (every Table 1 model: VM-HAN, the text-only model, GCN, GAT, HGNN) on the cached node
features of the profile's train split, with the profile's stage-2 settings (batch size, threads,
AdamW, linear warm-up/decay), through the code the experiments run: the inputs of
:func:`vmhan_lib.train.runner.prepare_inputs`, a :class:`~vmhan_lib.train.hypergraph_task.HypergraphTask`
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
``python -m vmhan_lib``). The GPU is used when present (``train.device`` / ``encoder_train.device``
``auto``, or ``--device``); timings then synchronise the device. Prints the figures and writes them
with the configuration, machine load and provenance to ``results/benchmarks/training[_<device>].json``
(``results/tiny/benchmarks/`` for the ``tiny`` profile, so it never touches the committed files).

Run: ``.venv/bin/python benchmarks/bench_training.py [--profile cpu] [--device auto] [--set NAME=VALUE]``.
On a fresh clone the profile's encoder and features are built first (cached after; see the README).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
from dataclasses import replace
from typing import Any

import torch
from transformers import AutoTokenizer

from measure import saved_tensor_bytes, synchronized_seconds, tensor_state_bytes
from vmhan_lib.paths import PROFILES, RESULTS_DIR
from vmhan_lib.data.mnre import SPLITS, load_mnre, load_relation_vocab
from vmhan_lib.features.text_encoder import EntityMarkerEncoder, EntityMarkerTokenizer
from vmhan_lib.features.weights import resolve_text_model
from vmhan_lib.hypergraph import collate_hypergraphs
from vmhan_lib.io import atomic_write_json, provenance
from vmhan_lib.model import build_model, variant_config, vmhan_loss
from vmhan_lib.train.config import DEVICES
from vmhan_lib.train.encoder import EncoderClassifier, encoder_train_step, length_bucketed_batches
from vmhan_lib.train.experiment import (
    ENCODER_SEED,
    TABLE1_VARIANTS,
    ExperimentPlan,
    base_model_config,
    experiment_plan,
    prepare_inputs,
)
from vmhan_lib.train.loop import SplitNodes, linear_warmup_decay, resolve_device, train_step
from vmhan_lib.train.records import read_record, run_id

ENCODER_VARIANT = "Text-only (fine-tuned encoder)"


def bench_stage2(
    plan: ExperimentPlan, inputs: dict[str, SplitNodes], num_relations: int, variant: str, device: torch.device,
    latency_instances: int,
) -> dict[str, Any]:
    """One training epoch, the memory of one step, and inference latency of one stage-2 model."""
    torch.manual_seed(0)
    config = variant_config(variant, base_model_config(plan, inputs, num_relations))
    model = build_model(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=plan.train.lr, weight_decay=plan.train.weight_decay)
    train, test = inputs["train"], inputs["test"]
    batch_size = plan.train.batch_size
    steps = math.ceil(len(train.nodes) / batch_size)
    scheduler = linear_warmup_decay(optimizer, steps, plan.train.warmup_ratio)
    labels = torch.tensor(train.labels)
    order = torch.randperm(len(train.nodes), generator=torch.Generator().manual_seed(0))

    def epoch() -> None:
        model.train()
        for step in range(steps):
            chosen = order[step * batch_size:(step + 1) * batch_size]
            batch = collate_hypergraphs([train.nodes[i] for i in chosen], config.hypergraph, labels[chosen]).to(device)
            train_step(model, optimizer, scheduler, batch, config, plan.train.max_grad_norm)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    epoch_s = synchronized_seconds(epoch, device)
    gpu_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None

    first = collate_hypergraphs(train.nodes[:batch_size], config.hypergraph, labels[:batch_size]).to(device)
    saved = saved_tensor_bytes(lambda: vmhan_loss(model(first), first.labels, config)["total"])
    state = tensor_state_bytes(model, optimizer)

    model.eval()
    with torch.no_grad():
        single = [
            synchronized_seconds(lambda i=i: model(collate_hypergraphs([test.nodes[i]], config.hypergraph).to(device)), device)
            for i in range(min(latency_instances, len(test.nodes)))
        ]
        eval_size = plan.train.eval_batch_size
        batched_s = synchronized_seconds(lambda: [
            model(collate_hypergraphs(test.nodes[s:s + eval_size], config.hypergraph).to(device))
            for s in range(0, len(test.nodes), eval_size)
        ], device)
    return {
        "variant": variant,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_instances": len(train.nodes),
        "batch_size": batch_size,
        "epoch_s": epoch_s,
        "train_instances_per_s": len(train.nodes) / epoch_s,
        "step_memory_mib": {"saved_for_backward": saved / 2**20, "parameters_grads_optimizer": state / 2**20},
        "gpu_peak_allocated_mib": None if gpu_peak is None else gpu_peak / 2**20,
        "latency_batch1_ms": {"median": 1e3 * statistics.median(single), "p90": 1e3 * _quantile(single, 0.9),
                              "instances": len(single)},
        "inference_batched_ms_per_instance": 1e3 * batched_s / len(test.nodes),
        "inference_batch_size": eval_size,
    }


def bench_stage1(plan: ExperimentPlan, device: torch.device, steps: int, latency_instances: int) -> dict[str, Any]:
    """Stage-1 optimiser steps on real train sentences and batch-1 inference latency."""
    torch.manual_seed(0)
    config = plan.encoder_train
    vocab = load_relation_vocab(plan.data.path)
    splits = {s: load_mnre(plan.data.path, s, vocab)[: plan.data.max_instances] for s in ("train", "test")}
    text_model = plan.features.text.model
    tokenizer = EntityMarkerTokenizer(AutoTokenizer.from_pretrained(resolve_text_model(text_model).source), plan.features.text.max_length)
    encoded = {split: [tokenizer.encode_instance(x) for x in rows] for split, rows in splits.items()}
    labels = torch.tensor(vocab.ids([x.relation for x in splits["train"]]))
    model = EncoderClassifier(EntityMarkerEncoder.from_pretrained(text_model), len(vocab), config.dropout).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = linear_warmup_decay(optimizer, steps + 1, config.warmup_ratio)
    batches = length_bucketed_batches([len(p.input_ids) for p in encoded["train"]], config.batch_size,
                                      torch.Generator().manual_seed(0))[: steps + 1]

    def run(chosen: torch.Tensor) -> None:
        batch = tokenizer.collate([encoded["train"][i] for i in chosen]).to(device)
        encoder_train_step(model, optimizer, scheduler, batch, labels[chosen].to(device), config.max_grad_norm)

    model.train()
    run(batches[0])  # warm-up: allocator and kernel selection
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step_s = [synchronized_seconds(lambda chosen=chosen: run(chosen), device) for chosen in batches[1:]]
    gpu_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    instances = sum(len(chosen) for chosen in batches[1:])
    per_s = instances / sum(step_s)

    longest = max(batches[1:], key=lambda chosen: max(len(encoded["train"][i].input_ids) for i in chosen))
    longest_batch = tokenizer.collate([encoded["train"][i] for i in longest]).to(device)
    saved = saved_tensor_bytes(lambda: model(longest_batch.input_ids, longest_batch.attention_mask,
                                             longest_batch.entity_positions).logsumexp(-1).mean())

    model.eval()
    with torch.no_grad():
        single = []
        for pair in encoded["test"][:latency_instances]:
            batch = tokenizer.collate([pair]).to(device)
            single.append(synchronized_seconds(
                lambda: model(batch.input_ids, batch.attention_mask, batch.entity_positions), device))
    return {
        "model": text_model,
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch_size": config.batch_size,
        "timed_steps": len(step_s),
        "train_instances_per_s": per_s,
        "epoch_s_extrapolated": len(encoded["train"]) / per_s,
        "step_s_median": statistics.median(step_s),
        "step_memory_mib": {
            "saved_for_backward_longest_batch": saved / 2**20,
            "longest_batch_tokens": int(longest_batch.input_ids.shape[1]),
            "parameters_grads_optimizer": tensor_state_bytes(model, optimizer) / 2**20,
        },
        "gpu_peak_allocated_mib": None if gpu_peak is None else gpu_peak / 2**20,
        "latency_batch1_ms": {"median": 1e3 * statistics.median(single), "p90": 1e3 * _quantile(single, 0.9),
                              "instances": len(single)},
        "recorded_epoch_s": _recorded_encoder_epochs(plan),
    }


def _recorded_encoder_epochs(plan: ExperimentPlan) -> list[float] | None:
    """Epoch wall times of the profile's committed stage-1 run record, when there is one."""
    run_dir = plan.runs_dir / run_id(plan.profile, ENCODER_VARIANT, ENCODER_SEED)
    if not (run_dir / "record.json").is_file():
        return None
    return [row["wall_s"] for row in read_record(run_dir)["epochs"]]


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(100 * q) - 1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu", choices=PROFILES, help="whose inputs and settings (default cpu)")
    parser.add_argument("--device", default="auto", choices=DEVICES, help="auto = the GPU when present (default)")
    parser.add_argument("--variants", nargs="+", default=list(TABLE1_VARIANTS), choices=TABLE1_VARIANTS,
                        metavar="VARIANT", help="stage-2 models (default: every Table 1 model)")
    parser.add_argument("--encoder-steps", type=int, default=20, help="timed stage-1 steps (default 20)")
    parser.add_argument("--latency-instances", type=int, default=200, help="test instances timed at batch 1 (default 200)")
    parser.add_argument("--output", default=None, help="result file (default results/benchmarks/training[_cuda].json)")
    args = parser.parse_args(argv)
    if args.encoder_steps < 1 or args.latency_instances < 1:
        parser.error("--encoder-steps and --latency-instances must be >= 1")

    device = resolve_device(args.device)
    plan = experiment_plan(args.profile)
    plan = replace(plan, train=replace(plan.train, device=device.type))
    inputs, report = prepare_inputs(plan)
    if plan.train.cpu_threads is not None:
        torch.set_num_threads(plan.train.cpu_threads)
    load_before = os.getloadavg()
    num_relations = len(load_relation_vocab(plan.data.path))
    stage2 = {}
    for variant in args.variants:
        result = stage2[variant] = bench_stage2(plan, inputs, num_relations, variant, device, args.latency_instances)
        print(
            f"stage 2 {variant:<32} {result['train_instances_per_s']:8.0f} inst/s, epoch {result['epoch_s']:6.1f} s, "
            f"step memory {sum(result['step_memory_mib'].values()):6.1f} MiB, latency batch 1 "
            f"{result['latency_batch1_ms']['median']:.2f} ms, batched {result['inference_batched_ms_per_instance']:.3f} ms/inst"
        )
    torch.set_num_threads(os.cpu_count() or 1)
    fine_tuned = report["features"]["text"]["model"]  # stage 1's encoder directory
    encoder_plan = replace(plan, features=replace(plan.features, text=replace(plan.features.text, model=fine_tuned)))
    stage1 = bench_stage1(encoder_plan, device, args.encoder_steps, args.latency_instances)
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
        "machine": {"cpu_count": os.cpu_count(), "stage2_threads": plan.train.cpu_threads,
                    "stage1_threads": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": load_after},
        "provenance": provenance({"plan": plan.to_dict(), "argv": sys.argv, "splits": list(SPLITS)}),
    }
    suffix = "" if device.type == "cpu" else f"_{device.type}"
    output = args.output or RESULTS_DIR / "benchmarks" / f"training{suffix}.json"
    atomic_write_json(output, result)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
