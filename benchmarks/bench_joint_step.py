"""Cost of one ``joint`` training step (encoder + hypergraph model under Eq. 12) per text encoder and precision.

For each encoder (default all-MiniLM-L6-v2 and all-mpnet-base-v2) the profile's configuration with
``experiment.training = joint`` and that ``features.text.model`` is run through the code the
experiments run: the inputs of :func:`vmhan_lib.train.stage1.prepare_inputs` (no stage 1 in joint
mode), the task of :func:`vmhan_lib.train.runner.make_task` (a
:class:`~vmhan_lib.train.joint_task.JointTask`), :func:`vmhan_lib.train.fit.start_training` (two
AdamW parameter groups) and :func:`vmhan_lib.train.fit.train_step` on the task's length-bucketed
train batches of seed 0 (batch ``train.batch_size``, 16 in every profile but ``cpu``), with the
fit loop's CPU thread count (``train.cpu_threads``), once per precision of ``--precisions``: ``fp32``,
and ``bf16`` = the loss under bf16 autocast as the fit loop runs it (:mod:`vmhan_lib.train.execution`;
with TF32 matmuls on a GPU, what ``experiment.precision=auto`` does there). Measured:

- step time: median (and min / max) of ``--steps`` steps after one warm-up step (collation included);
- memory: the process's peak resident set size (``resource`` ``ru_maxrss``; it includes the frozen
  copy of the encoder that the feature build loads) and the resident size before training starts;
  exact tensor bytes of parameters, gradients and AdamW state, and of what autograd saves for
  backward on the longest timed batch; on a GPU, ``torch.cuda.max_memory_allocated`` over the
  timed steps.

Each (encoder, precision) runs in its own process, so each peak is its own. Prints a table and writes it with
the configuration, machine load and provenance to ``results/benchmarks/joint_step[_cuda].json``
(``results/tiny/benchmarks/`` for the ``tiny`` profile).

Run: ``nice .venv/bin/python benchmarks/bench_joint_step.py [--profile tiny] [--steps 5] [--device auto]
[--precisions fp32 bf16]``
(the default profile is ``tiny``: its 200 train instances give 13 batches of 16, and the node
features of each encoder are built for 3 x 200 instances on first use).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from typing import Any

import torch

from measure import fit_loop_batches, rss_bytes, saved_tensor_bytes, synchronized_seconds, tensor_state_bytes
from vmhan_lib.config import DEVICES, RunConfig, run_config
from vmhan_lib.config_tree import ConfigError, parse_assignments
from vmhan_lib.features.config import PACKAGED_MINILM, PACKAGED_MPNET
from vmhan_lib.io import atomic_write_json, provenance
from vmhan_lib.model.variants import FULL_MODEL, VARIANTS, variant_config
from vmhan_lib.paths import PROFILES, output_dirs
from vmhan_lib.train.execution import Execution, autocast, autocast_dtype, resolve_device, threads_and_tf32
from vmhan_lib.train.fit import start_training, train_step
from vmhan_lib.train.jobs import RunPaths
from vmhan_lib.train.runner import make_task
from vmhan_lib.train.stage1 import PreparedInputs, prepare_inputs

BENCH_SEED = 0
"""The seed of the benchmarked steps: model initialisation and batch order (the experiments' first seed)."""
MIB = 2**20


def bench_encoder(profile: str, data_dir: str | None, overrides: dict[str, Any], encoder: str, variant: str,
                  steps: int, precision: str) -> dict[str, Any]:
    """Time ``steps`` joint training steps of ``variant`` with ``encoder`` in ``precision`` (after one
    warm-up step)."""
    config = run_config(profile, data_dir, {**overrides, "experiment.training": "joint", "features.text.model": encoder})
    device = resolve_device(config.device)
    inputs = prepare_inputs(config, RunPaths.of(config))
    with threads_and_tf32(config.train, Execution(precision), device):
        return _bench_steps(config, inputs, variant, steps, device, autocast_dtype(precision, device))


def _bench_steps(config: RunConfig, inputs: PreparedInputs, variant: str, steps: int, device: torch.device,
                 dtype: torch.dtype | None) -> dict[str, Any]:
    """:func:`bench_encoder`'s timed steps, the loss under autocast to ``dtype`` (``None``: fp32)."""
    task = make_task(config, variant_config(variant, inputs.model), inputs.data, inputs, device)
    rss_before = rss_bytes()
    model, optimizer, scheduler = start_training(task, config.train, BENCH_SEED, device)
    chosen, collate = fit_loop_batches(task, BENCH_SEED, steps + 1)

    def loss(batch: Any) -> dict[str, torch.Tensor]:
        with autocast(device, dtype):
            return task.loss(model, batch)

    def step(indices: torch.Tensor) -> None:
        train_step(model, optimizer, scheduler, loss(collate(indices)), config.train.max_grad_norm)

    model.train()
    step(chosen[0])  # warm-up: allocator, kernel selection, AdamW state
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step_s = [synchronized_seconds(lambda indices=indices: step(indices), device) for indices in chosen[1:]]
    gpu_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    encoded = task.encoded["train"]
    longest = max(chosen[1:], key=lambda indices: max(len(encoded[i].input_ids) for i in indices))
    longest_batch = collate(longest)
    saved = saved_tensor_bytes(lambda: loss(longest_batch)["total"])
    median = statistics.median(step_s)
    return {
        "encoder": config.features.text.model,
        "variant": variant,
        "precision": "fp32" if dtype is None else "bf16 autocast",
        "tf32": device.type == "cuda" and torch.get_float32_matmul_precision() != "highest",
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu_threads": torch.get_num_threads(),
        "parameters": {"encoder": sum(p.numel() for p in model.encoder.parameters()),
                       "graph": sum(p.numel() for p in model.graph.parameters())},
        "batch_size": config.train.batch_size,
        "timed_steps": len(step_s),
        "step_s": {"median": median, "min": min(step_s), "max": max(step_s)},
        "train_instances_per_s": config.train.batch_size / median,
        "memory_mib": {
            "process_peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_training": rss_before / MIB,
            "parameters_grads_adamw": tensor_state_bytes(model, optimizer) / MIB,
            "saved_for_backward_longest_batch": saved / MIB,
            "longest_batch_tokens": int(longest_batch.tokens.input_ids.shape[1]),
            "gpu_peak_allocated": None if gpu_peak is None else gpu_peak / MIB,
        },
        "config": config.to_dict(),
    }


def _row(result: dict[str, Any]) -> str:
    memory = result["memory_mib"]
    gpu = "-" if memory["gpu_peak_allocated"] is None else f"{memory['gpu_peak_allocated']:.0f}"
    params = sum(result["parameters"].values()) / 1e6
    step = result["step_s"]
    return (f"| {result['encoder']} | {result['precision']} | {params:.1f} | {result['batch_size']} | {result['timed_steps']} | "
            f"{step['median']:.3f} ({step['min']:.3f}-{step['max']:.3f}) | {result['train_instances_per_s']:.1f} | "
            f"{memory['process_peak_rss']:.0f} | {memory['rss_before_training']:.0f} | {memory['parameters_grads_adamw']:.0f} | "
            f"{memory['saved_for_backward_longest_batch']:.0f} ({memory['longest_batch_tokens']} tok) | {gpu} | "
            f"{result['device']}, {result['cpu_threads']} thr |")


HEADER = ("| encoder | precision | parameters (M) | batch | steps | step s, median (min-max) | inst/s | peak RSS MiB | "
          "RSS before training MiB | params+grads+AdamW MiB | saved for backward MiB | GPU peak MiB | device |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def _worker(argv: list[str] | None, encoder: str, precision: str) -> dict[str, Any]:
    """One (encoder, precision) measured in its own process (its own peak memory)."""
    command = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]), "--worker", encoder,
               "--worker-precision", precision]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{encoder}, {precision}: step {result['step_s']['median']:.3f} s", file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="tiny", choices=PROFILES, help="whose inputs and settings (default tiny)")
    parser.add_argument("--data-dir", default=None, help="MNRE directory (default: $VMHAN_DATA, else data/mnre)")
    parser.add_argument("--set", dest="assignments", action="append", metavar="NAME=VALUE", default=None,
                        help="set a field of the run configuration by its dotted name (repeatable)")
    parser.add_argument("--device", default=None, choices=DEVICES, help="= --set device=D (default: the config's)")
    parser.add_argument("--encoders", nargs="+", default=[PACKAGED_MINILM, PACKAGED_MPNET], metavar="MODEL",
                        help="text encoders (short names, hub ids or local directories; default MiniLM and MPNet)")
    parser.add_argument("--variant", default=FULL_MODEL, choices=list(VARIANTS), help="the model (default VM-HAN)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps after one warm-up step (default 5)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"],
                        help="fp32 and/or bf16 autocast (default both)")
    parser.add_argument("--output", default=None, help="result file (default <profile results>/benchmarks/joint_step[_cuda].json)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # one encoder, in its own process
    parser.add_argument("--worker-precision", default="fp32", help=argparse.SUPPRESS)  # and one precision
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    try:
        overrides = parse_assignments(args.assignments)
        if args.device is not None:
            overrides["device"] = args.device
        run_config(args.profile, args.data_dir, overrides)
    except ConfigError as err:
        parser.error(str(err))
    if args.worker is not None:
        print(json.dumps(bench_encoder(args.profile, args.data_dir, overrides, args.worker, args.variant, args.steps,
                                       args.worker_precision)))
        return 0

    load_before = os.getloadavg()
    results = [_worker(argv, encoder, precision) for encoder in args.encoders for precision in args.precisions]
    load_after = os.getloadavg()
    print(HEADER)
    print("\n".join(_row(result) for result in results))
    device = resolve_device(results[0]["config"]["device"])
    suffix = "" if device.type == "cpu" else f"_{device.type}"
    output = args.output or output_dirs(args.profile)[0] / "benchmarks" / f"joint_step{suffix}.json"
    atomic_write_json(output, {
        "results": results,
        "machine": {"cpu_count": os.cpu_count(), "load_average_before": load_before, "load_average_after": load_after},
        "provenance": provenance({"argv": sys.argv, "profile": args.profile, "overrides": overrides}),
    })
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
