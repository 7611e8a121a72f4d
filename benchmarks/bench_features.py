"""Time per 1,000 instances of each features stage on CPU, measured on a sample and extrapolated.

Stages (all with the offline all-MiniLM-L6-v2, no cache):
- ``tokenise_and_encode_entities``: entity-marker tokenisation + frozen encoder forward;
- ``caption_embedding``: sentence embedding of the sample's captions (image nodes);
- ``object_extraction_and_ranking``: chunking the captions, embedding the object phrases and the
  entity names, and ranking the top-k objects per instance.

Usage: ``python benchmarks/bench_features.py --split test --sample 300``. Writes
``results/benchmarks/features.json`` atomically, with provenance. The figures are the sample's
wall-clock times scaled linearly to 1,000 instances (said so in the file); the machine's 1-minute
load average before and after is recorded, since other jobs sharing the cores inflate the times.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict

import torch

from vmhan_lib.data.config import DataConfig

from vmhan_lib.paths import RESULTS_DIR
from vmhan_lib.data import load_captions, load_mnre
from vmhan_lib.features.caption_nodes import extract_object_phrases, rank_objects
from vmhan_lib.features.config import MAX_CAPTION_TOKENS, CaptionNodeConfig, TextEncoderConfig
from vmhan_lib.features.text_encoder import SentenceEmbedder, compute_frozen_text_features, load_frozen_backbone
from vmhan_lib.io import atomic_write_json, provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test")
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--captioner", default="llavanext")
    parser.add_argument("--output", default=str(RESULTS_DIR / "benchmarks" / "features.json"))
    args = parser.parse_args()

    data = DataConfig(max_instances=args.sample, captioners=(args.captioner,))
    text_config, caption_config = TextEncoderConfig(), CaptionNodeConfig()
    instances = load_mnre(data.path, args.split)[: args.sample]
    captions_table = load_captions(data.path, args.captioner, args.split)
    captions = [captions_table.get(i.img_id, "") for i in instances]
    load_frozen_backbone(text_config.model)  # model loading is not part of any stage
    embedder = SentenceEmbedder(caption_config.embedder, MAX_CAPTION_TOKENS, 64)

    load_before = os.getloadavg()[0]
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    compute_frozen_text_features(instances, text_config, show_progress=False)
    seconds["tokenise_and_encode_entities"] = time.perf_counter() - start

    start = time.perf_counter()
    embedder.embed(captions)
    seconds["caption_embedding"] = time.perf_counter() - start

    start = time.perf_counter()
    phrases = [extract_object_phrases(c) for c in captions]
    unique = list(dict.fromkeys(p for per_caption in phrases for p in per_caption))
    phrase_embeddings = embedder.embed(unique)
    row = {p: i for i, p in enumerate(unique)}
    names = list(dict.fromkeys(n for i in instances for n in (i.head.name, i.tail.name)))
    name_embeddings = embedder.embed(names)
    name_row = {n: i for i, n in enumerate(names)}
    for instance, per_caption in zip(instances, phrases):
        objects = phrase_embeddings[[row[p] for p in per_caption]] if per_caption else torch.zeros((0, embedder.dimension))
        rank_objects(objects, name_embeddings[name_row[instance.head.name]],
                     name_embeddings[name_row[instance.tail.name]], caption_config.k_objects)
    seconds["object_extraction_and_ranking"] = time.perf_counter() - start

    per_1000 = {stage: round(value * 1000 / len(instances), 2) for stage, value in seconds.items()}
    result = {
        "seconds_per_1000_instances": per_1000,
        "total_seconds_per_1000_instances": round(sum(per_1000.values()), 2),
        "measured_seconds": {k: round(v, 3) for k, v in seconds.items()},
        "n_instances_measured": len(instances),
        "note": f"measured on the first {len(instances)} instances of {args.split} "
                "(one pass, model already loaded, no cache) and scaled linearly to 1,000 instances; "
                "captions are per instance here (an image shared by several pairs is embedded once per pair)",
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "provenance": provenance({"split": args.split, "sample": args.sample, "captioner": args.captioner,
                                  "text": asdict(text_config), "captions": asdict(caption_config)}),
    }
    atomic_write_json(args.output, result)
    print(json.dumps({k: result[k] for k in ("seconds_per_1000_instances", "total_seconds_per_1000_instances", "note")}, indent=2))


if __name__ == "__main__":
    main()
