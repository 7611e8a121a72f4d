"""Choosing the captioner of the image node on dev (:func:`compare_captioners`).

For each captioner, a linear probe on frozen ``[head; tail; image node]`` features is trained on
train and scored on dev, against a text-only reference; the captioner with the best dev F1 is
chosen. Run ``python -m vmhan_lib.analysis.captioner_choice`` to write
``results/captioner_choice.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.linear_model import RidgeClassifier
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from vmhan_lib.data.config import DataConfig

from vmhan_lib.paths import RESULTS_DIR
from vmhan_lib.data.captions import CAPTIONERS
from vmhan_lib.data.mnre import NEGATIVE_LABEL, Instance, load_mnre
from vmhan_lib.features.cache import FeatureCache
from vmhan_lib.features.caption_nodes import build_caption_index, check_captioners
from vmhan_lib.features.config import CaptionNodeConfig, TextEncoderConfig
from vmhan_lib.features.text_encoder import cached_text_features
from vmhan_lib.io import atomic_write_json, provenance
from vmhan_lib.metrics import Scores, score

PROBE_RIDGE_ALPHA = 100.0
"""L2 strength of the linear probe of :func:`compare_captioners`."""
PROXY = (
    f"dev (MNRE-2 val) F1 of a ridge classifier (StandardScaler, alpha={PROBE_RIDGE_ALPHA}) trained on train "
    "frozen [head; tail; image-node] features; head/tail = all-MiniLM-L6-v2 start-marker states, "
    "image node = mean-pooled normalised caption embedding; f1_95ci = bootstrap over dev instances"
)
"""What :func:`compare_captioners` measures, in one line (its ``proxy`` field)."""


def _linear_probe_dev_scores(
    train_x: np.ndarray, train_y: list[str], dev_x: np.ndarray, dev_y: list[str], seed: int
) -> tuple[Scores, np.ndarray]:
    scaler = StandardScaler().fit(train_x)
    classifier = RidgeClassifier(alpha=PROBE_RIDGE_ALPHA, random_state=seed)
    classifier.fit(scaler.transform(train_x), train_y)
    predictions = classifier.predict(scaler.transform(dev_x))
    return score(dev_y, list(predictions), negative=NEGATIVE_LABEL), predictions


def _bootstrap_f1(gold: list[str], predicted: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float]:
    """2.5 and 97.5 percentiles (in %) of dev F1 over bootstrap resamples of the dev instances."""
    generator = np.random.default_rng(seed)
    gold_array = np.asarray(gold, dtype=object)
    values = []
    for _ in range(n_resamples):
        rows = generator.integers(0, len(gold_array), len(gold_array))
        values.append(100 * score(list(gold_array[rows]), list(predicted[rows]), negative=NEGATIVE_LABEL).f1)
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def _probe_result(
    entity_features: dict[str, np.ndarray], labels: dict[str, list[str]], extra: dict[str, np.ndarray] | None,
    seed: int, n_bootstrap: int,
) -> dict[str, Any]:
    """Dev scores (in %, 2 decimals) and bootstrap F1 interval of the linear probe on the entity
    features of each split, with ``extra`` features of the split appended (``None``: text only)."""
    features = {split: entity if extra is None else np.hstack([entity, extra[split]])
                for split, entity in entity_features.items()}
    scores, predictions = _linear_probe_dev_scores(features["train"], labels["train"], features["val"], labels["val"], seed)
    low, high = _bootstrap_f1(labels["val"], predictions, n_bootstrap, seed)
    return {**{k: round(v, 2) for k, v in scores.percent().items()}, "f1_95ci": [round(low, 2), round(high, 2)]}


def _caption_features(
    data_dir: Path, splits: dict[str, list[Instance]], captioner: str, caption_config: CaptionNodeConfig,
    cache: FeatureCache,
) -> tuple[dict[str, np.ndarray], int]:
    """Per split, the image-node features of each instance from ``captioner``'s captions alone
    (zeros where it has none), and how many instances of all splits have no caption."""
    image_features: dict[str, np.ndarray] = {}
    n_missing = 0
    for split, instances in splits.items():
        index = build_caption_index(
            data_dir, split, [i.img_id for i in instances], (captioner,), caption_config, cache, with_objects=False,
        )
        rows = [index.row(i.img_id) for i in instances]
        image_features[split] = index.image_embeddings[rows].numpy()
        n_missing += sum(bool(index.missing_reason[r]) for r in rows)
    return image_features, n_missing


def compare_captioners(
    data_config: DataConfig = DataConfig(),
    text_config: TextEncoderConfig = TextEncoderConfig(),
    caption_config: CaptionNodeConfig = CaptionNodeConfig(),
    captioners: Sequence[str] = CAPTIONERS,
    cache: FeatureCache | None = None,
    seed: int = 13,
    n_bootstrap: int = 1000,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Dev proxy for choosing the captioner of the image node.

    For each captioner: a linear probe (ridge classifier, one-vs-rest least squares on standardised
    features, alpha = :data:`PROBE_RIDGE_ALPHA`; closed form, so seconds per fit on 2 cores where a
    logistic regression took minutes) trained on train on frozen ``[head; tail; image node]``
    features, scored on dev (MNRE-2 val) with the MNRE F1;
    a text-only ``[head; tail]`` model is the reference. Each F1 comes with a bootstrap 95 %
    interval over dev instances. The captioner with the best dev F1 is chosen.

    Returns:
        A JSON-ready dict: per-captioner scores, the text-only reference and ``chosen``.
    """
    captioners = check_captioners(captioners)
    data_dir = data_config.path
    feature_cache = cache or FeatureCache(progress=show_progress)
    splits = {split: load_mnre(data_dir, split)[: data_config.max_instances] for split in ("train", "val")}
    labels = {split: [instance.relation for instance in instances] for split, instances in splits.items()}
    entity_features = {
        split: cached_text_features(data_dir, split, instances, text_config, feature_cache)
        .entities.flatten(1).numpy()
        for split, instances in splits.items()
    }
    results: dict[str, Any] = {"text_only": _probe_result(entity_features, labels, None, seed, n_bootstrap),
                               "captioners": {}}
    for captioner in tqdm(captioners, desc="captioners", disable=not show_progress):
        image_features, n_missing = _caption_features(data_dir, splits, captioner, caption_config, feature_cache)
        results["captioners"][captioner] = {**_probe_result(entity_features, labels, image_features, seed, n_bootstrap),
                                            "instances_without_caption": n_missing}
    results["chosen"] = max(results["captioners"], key=lambda c: results["captioners"][c]["f1"])
    results["proxy"] = PROXY
    return results


def main() -> None:
    """Run :func:`compare_captioners` on the configured data and write ``results/captioner_choice.json``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--max-instances", type=int, default=None)
    parser.add_argument("--output", default=str(RESULTS_DIR / "captioner_choice.json"))
    args = parser.parse_args()
    data_config = DataConfig(data_dir=args.data_dir, max_instances=args.max_instances)
    text_config, caption_config = TextEncoderConfig(), CaptionNodeConfig()
    results = compare_captioners(data_config, text_config, caption_config)
    config = {"data": asdict(data_config), "text": asdict(text_config), "captions": asdict(caption_config)}
    atomic_write_json(args.output, {**results, "provenance": provenance(config)})
    print(json.dumps({k: v for k, v in results.items() if k != "proxy"}, indent=2))


if __name__ == "__main__":
    main()
