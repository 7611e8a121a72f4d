"""Time per 1,000 instances of the real-image pipeline and of the node selectors, on CPU.

Stages, each measured on a sample and scaled linearly to 1,000 (the file says so):
- ``image_pipeline``: YOLO detection (``yolov8n.yaml``: untrained, but the same network and cost
  as trained yolov8n weights; confidence 0 so every image yields k = 3 crops) + EfficientNet-Lite0
  features of the image and its k crops, over the real sample images. Image work is per image;
  per 1,000 instances it is scaled by MNRE-2's images-per-instance ratio (every split counted).
- ``embedding_selector``: text nodes (m), visual nodes from the LLaVA-NeXT caption (n) and k of
  10 object names per instance, with the packaged all-MiniLM-L6-v2 (memo cold at the start).
- ``smollm2_selector``: the three prompts for a handful of instances through the packaged
  SmolLM2-135M-Instruct GGUF, with an empty answer cache; then the same again to show the cache.

Usage: ``python benchmarks/bench_images_llm.py`` (options: ``--help``). Writes
``results/benchmarks/images_llm.json`` atomically, with provenance. Timings are wall-clock and
depend on what else runs on the machine: the 1-minute load average is recorded beside them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import vmhan_lib  # noqa: F401  (offline variables before ultralytics)
from vmhan_lib.paths import RESULTS_DIR, resolve_data_dir
from vmhan_lib.data import SPLITS, Instance, load_captions, load_mnre
from vmhan_lib.features.config import ImageNodeConfig
from vmhan_lib.features.images import ImageNodeExtractor, list_images
from vmhan_lib.features.node_selection import (
    AnswerCache,
    EmbeddingRankSelector,
    LLMNodeSelector,
    NodeSelector,
    TransformersChatBackend,
)
from vmhan_lib.io import atomic_write_json, provenance

OBJECT_NAMES = ("person", "car", "dog", "tie", "chair", "cell phone", "sports ball", "book", "cup", "airplane")


def per_thousand(seconds: float, count: int) -> float:
    return round(1000.0 * seconds / count, 2) if count else float("nan")


def images_per_instance(data_dir: Path) -> float:
    """MNRE-2's distinct images over its instances, all splits together."""
    instances = [i for split in SPLITS for i in load_mnre(data_dir, split)]
    return len({i.img_id for i in instances}) / len(instances)


def run_selector(selector: NodeSelector, instances: Sequence[Instance], captions: dict[str, str],
                 m: int, n: int, k: int) -> tuple[float, list[dict[str, Any]]]:
    """Seconds for all three selections of every instance, and what was chosen."""
    chosen = []
    started = time.perf_counter()
    for instance in instances:
        chosen.append({
            "instance": instance.index, "head": instance.head.name, "tail": instance.tail.name,
            "text_nodes": selector.select_text_nodes(instance, m),
            "visual_nodes": selector.select_visual_nodes(instance, captions.get(instance.img_id, ""), n),
            "objects": selector.select_objects(instance, OBJECT_NAMES, k),
        })
    return time.perf_counter() - started, chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="MNRE directory (default: $VMHAN_DATA or data/mnre)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--embedding-sample", type=int, default=200, help="instances for the embedding selector")
    parser.add_argument("--llm-sample", type=int, default=3, help="instances (x3 prompts) for SmolLM2")
    parser.add_argument("--m", type=int, default=3)
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--output", default=str(RESULTS_DIR / "benchmarks" / "images_llm.json"))
    args = parser.parse_args()

    data_dir = resolve_data_dir(args.data_dir)
    image_dir = data_dir / "images_sample"
    ratio = images_per_instance(data_dir)
    report: dict[str, Any] = {"note": "per-1,000 figures are the sample's wall-clock time scaled linearly",
                              "load_average_1min_at_start": os.getloadavg()[0], "cpu_count": os.cpu_count()}

    config = ImageNodeConfig(detector="yolov8n.yaml", min_confidence=0.0)
    started = time.perf_counter()
    extractor = ImageNodeExtractor.of(config, args.k)
    load_seconds = time.perf_counter() - started
    extractor.run(image_dir, list_images(image_dir)[:1], show_progress=False)  # warm-up
    result = extractor.run(image_dir, show_progress=True)
    n_images = len(result.nodes) + len(result.failures)
    report["image_pipeline"] = {
        "detector": config.detector, "encoder": config.encoder, "top_k": args.k,
        "images": n_images, "failures": [str(f) for f in result.failures],
        "model_load_seconds": round(load_seconds, 2), "seconds": round(result.seconds, 2),
        "seconds_per_1000_images": per_thousand(result.seconds, n_images),
        "mnre2_images_per_instance": round(ratio, 4),
        "seconds_per_1000_instances": round(per_thousand(result.seconds, n_images) * ratio, 2),
    }
    print("image pipeline:", report["image_pipeline"])

    instances = load_mnre(data_dir, args.split)
    captions = load_captions(data_dir, "llavanext", args.split)
    ranker = EmbeddingRankSelector()
    ranker.embed(["warm-up"])  # model loading is not part of the stage
    sample = instances[: args.embedding_sample]
    seconds, chosen = run_selector(ranker, sample, captions, args.m, args.n, args.k)
    report["embedding_selector"] = {
        "instances": len(sample), "seconds": round(seconds, 2),
        "seconds_per_1000_instances": per_thousand(seconds, len(sample)), "examples": chosen[:3],
    }
    print("embedding selector:", {k: v for k, v in report["embedding_selector"].items() if k != "examples"})

    with tempfile.TemporaryDirectory() as cache_dir:
        backend = TransformersChatBackend.smollm2()
        backend.load()
        llm = LLMNodeSelector(backend, AnswerCache(cache_dir), fallback=ranker)
        llm_sample = instances[: args.llm_sample]
        cold_seconds, llm_chosen = run_selector(llm, llm_sample, captions, args.m, args.n, args.k)
        cold_stats = llm.stats.as_dict()
        rerun = LLMNodeSelector(backend, AnswerCache(cache_dir), fallback=ranker)
        warm_seconds, _ = run_selector(rerun, llm_sample, captions, args.m, args.n, args.k)
    report["smollm2_selector"] = {
        "model": backend.model, "max_new_tokens": backend.max_new_tokens, "decoding": "greedy",
        "load_seconds": round(backend.load_seconds, 2), "instances": len(llm_sample),
        "calls": cold_stats["backend_calls"], "seconds": round(cold_seconds, 2),
        "mean_seconds_per_call": cold_stats["mean_seconds_per_call"],
        "seconds_per_1000_instances": per_thousand(cold_seconds, len(llm_sample)),
        "fallbacks": cold_stats["fallbacks"], "stats": cold_stats,
        "rerun_seconds": round(warm_seconds, 3), "rerun_cache_hit_rate": rerun.stats.cache_hit_rate,
        "examples": llm_chosen,
    }
    print("SmolLM2 selector:", {k: v for k, v in report["smollm2_selector"].items() if k not in ("examples", "stats")})
    report["load_average_1min_at_end"] = os.getloadavg()[0]

    payload = {**report, "provenance": provenance({
        "split": args.split, "embedding_sample": args.embedding_sample, "llm_sample": args.llm_sample,
        "m": args.m, "n": args.n, "k": args.k, "image_dir": str(image_dir),
    })}
    print("wrote", atomic_write_json(args.output, payload))


if __name__ == "__main__":
    main()
