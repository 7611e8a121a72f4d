"""Cost of the hypergraph part of VM-HAN on CPU, next to a 6-layer 384-wide BERT text encoder.

Measures, for the full variant ("VM-HAN (Ours)", default ModelConfig sized to d_text = d_visual
= 384 and the 23 MNRE relations) on realistic hypergraphs (2 + m text nodes, m in 0..3; image + 3
objects + n visual-LLM nodes, n in 0..3) and batches of 16 and 256 hypergraphs, through the code
the experiments run (a :class:`~vmhan_lib.train.hypergraph_task.HypergraphTask` over them as its
train split):

- collation time (the task's batch of an epoch: list of InstanceNodes -> HypergraphBatch, done
  once per batch by the fit loop);
- forward + loss (Eq. 12, the task's ``loss``) + backward time, median of repeated runs after a
  warm-up (no optimiser step, as for the encoder below);
- memory: bytes of the tensors autograd saves for backward (exact), and the rise of the process's
  peak resident memory over its level just before the first step (``ru_maxrss``; each measurement
  runs in a fresh process).

For comparison: forward + backward of ``BertModel(BertConfig(hidden_size=384, num_hidden_layers=6,
num_attention_heads=12, intermediate_size=1536))`` (random weights; the shape of all-MiniLM-L6-v2)
on 16 sentences of 128 tokens. Prints the figures and the ratio hypergraph / encoder and writes
them with the config and provenance to ``results/benchmarks/hypergraph.json``.

Run: ``.venv/bin/python benchmarks/bench_hypergraph.py [--threads T]``. Timings on a shared machine
depend on its load: the result file records the load average before and after.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from measure import rss_bytes, saved_tensor_bytes
from vmhan_lib.config_tree import to_dict
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.io import atomic_write_json, provenance
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.variants import variant_config
from vmhan_lib.paths import RESULTS_DIR
from vmhan_lib.train.hypergraph_task import HypergraphTask, SplitNodes

OUTPUT = RESULTS_DIR / "benchmarks" / "hypergraph.json"
HYPERGRAPH_BATCH_SIZES = (16, 256)
ENCODER_BATCH, ENCODER_TOKENS = 16, 128
ENCODER_SHAPE = {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536}
MAX_TEXT_LLM, N_OBJECTS, MAX_VISUAL_LLM = 3, 3, 3
D_TEXT = D_VISUAL = 384  # all-MiniLM-L6-v2 and the caption embedder
NUM_RELATIONS = 23  # MNRE, None included


def model_config() -> ModelConfig:
    """The full model with the default widths, sized to the benchmark's node features."""
    return variant_config("VM-HAN (Ours)").sized(D_TEXT, D_VISUAL, NUM_RELATIONS)


def realistic_instances(count: int, config: ModelConfig, seed: int = 0) -> list[InstanceNodes]:
    """Random node features of the sizes MNRE hypergraphs have here (see module docstring)."""
    generator = torch.Generator().manual_seed(seed)
    instances = []
    for _ in range(count):
        m = int(torch.randint(0, MAX_TEXT_LLM + 1, (1,), generator=generator))
        n = int(torch.randint(0, MAX_VISUAL_LLM + 1, (1,), generator=generator))
        n_visual = 1 + N_OBJECTS + n
        instances.append(InstanceNodes(
            text_features=torch.randn(2 + m, config.d_text, generator=generator),
            visual_features=torch.randn(n_visual, config.d_visual, generator=generator),
            text_names=["head", "tail"] + [f"span{i}" for i in range(m)],
            visual_names=[f"visual{i}" for i in range(n_visual)],
            n_objects=N_OBJECTS,
        ))
    return instances


def _time_steps(step: Callable[[], torch.Tensor], warmup: int, repeats: int) -> dict[str, Any]:
    """Warm up, then time ``repeats`` forward + backward runs; also the peak-RSS rise."""
    rss_before = rss_bytes()
    for _ in range(warmup):
        step().backward()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        step().backward()
        seconds.append(time.perf_counter() - start)
    peak_rise = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    return {
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "runs_s": seconds,
        "peak_rss_rise_mib": max(peak_rise, 0) / 2**20,
    }


def bench_hypergraph(batch_size: int, repeats: int) -> dict[str, Any]:
    """Full VM-HAN on ``batch_size`` hypergraphs: collate, then forward + loss + backward."""
    torch.manual_seed(0)
    config = model_config()
    instances = realistic_instances(batch_size, config)
    labels = torch.randint(0, config.num_relations, (batch_size,)).tolist()
    split = SplitNodes(nodes=instances, labels=labels, indices=list(range(batch_size)))
    task = HypergraphTask(config, {"train": split}, batch_size, batch_size, torch.device("cpu"))
    batches = task.train_batches(0)  # one batch: every instance
    start = time.perf_counter()
    batch = next(iter(batches))
    collate_s = time.perf_counter() - start
    model = task.build_model().train()

    def step() -> torch.Tensor:
        model.zero_grad(set_to_none=True)
        return task.loss(model, batch)["total"]

    timing = _time_steps(step, warmup=2, repeats=repeats)
    return {
        "batch_size": batch_size,
        "nodes_per_graph_padded": batch.num_nodes,
        "real_nodes": int(batch.node_mask.sum()),
        "hyperedges_per_graph": batch.num_edges,
        "parameters": sum(p.numel() for p in model.parameters()),
        "collate_s": collate_s,
        "forward_backward": timing,
        "saved_for_backward_mib": saved_tensor_bytes(step) / 2**20,
    }


def bench_text_encoder(repeats: int) -> dict[str, Any]:
    """Forward + backward of a randomly initialised 6-layer 384-wide BertModel on 16 x 128 tokens."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig(**ENCODER_SHAPE)).train()
    input_ids = torch.randint(1000, model.config.vocab_size, (ENCODER_BATCH, ENCODER_TOKENS))
    attention_mask = torch.ones_like(input_ids)

    def step() -> torch.Tensor:
        model.zero_grad(set_to_none=True)
        return model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.square().mean()

    timing = _time_steps(step, warmup=1, repeats=repeats)
    return {
        "batch_size": ENCODER_BATCH,
        "tokens": ENCODER_TOKENS,
        "config": ENCODER_SHAPE,
        "parameters": sum(p.numel() for p in model.parameters()),
        "forward_backward": timing,
        "saved_for_backward_mib": saved_tensor_bytes(step) / 2**20,
    }


def _run_job(job: tuple[str, int, int, int]) -> dict[str, Any]:
    kind, batch_size, repeats, threads = job
    torch.set_num_threads(threads)
    return bench_text_encoder(repeats) if kind == "encoder" else bench_hypergraph(batch_size, repeats)


def _in_fresh_process(job: tuple[str, int, int, int]) -> dict[str, Any]:
    """Run one measurement in a new process so its peak memory is its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_run_job, (job,))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed hypergraph runs per batch size (default 10)")
    parser.add_argument("--encoder-repeats", type=int, default=5, help="timed encoder runs (default 5)")
    parser.add_argument(
        "--threads", type=int, default=torch.get_num_threads(),
        help=f"torch intra-op threads for every measurement (default {torch.get_num_threads()})",
    )
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"result file (default {OUTPUT})")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    hypergraph = {
        str(size): _in_fresh_process(("hypergraph", size, args.repeats, args.threads))
        for size in HYPERGRAPH_BATCH_SIZES
    }
    encoder = _in_fresh_process(("encoder", ENCODER_BATCH, args.encoder_repeats, args.threads))
    load_after = os.getloadavg()

    encoder_s = encoder["forward_backward"]["median_s"]
    ratios = {size: result["forward_backward"]["median_s"] / encoder_s for size, result in hypergraph.items()}
    for size, result in hypergraph.items():
        timing = result["forward_backward"]
        print(
            f"VM-HAN hypergraph part, batch {size:>3}: forward+backward {1e3 * timing['median_s']:8.2f} ms "
            f"(min {1e3 * timing['min_s']:.2f}), collate {1e3 * result['collate_s']:.1f} ms, "
            f"saved for backward {result['saved_for_backward_mib']:.2f} MiB, "
            f"peak RSS rise {timing['peak_rss_rise_mib']:.1f} MiB, "
            f"ratio to encoder {ratios[size]:.4f}"
        )
    timing = encoder["forward_backward"]
    print(
        f"BERT 6x384 encoder, batch {ENCODER_BATCH} x {ENCODER_TOKENS} tokens: forward+backward "
        f"{1e3 * timing['median_s']:8.1f} ms (min {1e3 * timing['min_s']:.1f}), saved for backward "
        f"{encoder['saved_for_backward_mib']:.1f} MiB, peak RSS rise {timing['peak_rss_rise_mib']:.1f} MiB"
    )
    result = {
        "hypergraph": hypergraph,
        "text_encoder": encoder,
        "ratio_hypergraph_over_encoder": ratios,
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": args.threads,
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "provenance": provenance({
            "model": to_dict(model_config()),
            "hypergraph_batch_sizes": list(HYPERGRAPH_BATCH_SIZES),
            "nodes": {"max_text_llm": MAX_TEXT_LLM, "objects": N_OBJECTS, "max_visual_llm": MAX_VISUAL_LLM},
            "encoder": {"batch": ENCODER_BATCH, "tokens": ENCODER_TOKENS, **ENCODER_SHAPE},
            "repeats": args.repeats,
            "encoder_repeats": args.encoder_repeats,
            "threads": args.threads,
            "argv": sys.argv,
        }),
    }
    atomic_write_json(args.output, result)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
