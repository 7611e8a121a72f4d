"""Dataset statistics of MNRE-2 (or MORE), computed from the files (the numbers in the data README)."""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Any, Sequence

from vmhan_lib.data.mnre import (NEGATIVE_LABEL, SPLITS, Instance, RelationVocab, entity_relation_categories,
                                 group_by_sentence, load_mnre, load_relation_vocab)
from vmhan_lib.data.more import load_more, load_more_vocab


def split_statistics(instances: Sequence[Instance], vocab: RelationVocab) -> dict[str, Any]:
    """Counts of one split: instances, images, sentences, None share, pairs per sentence, relations."""
    groups = group_by_sentence(instances)
    relation_counts = Counter(instance.relation for instance in instances)
    n_none = relation_counts.get(NEGATIVE_LABEL, 0)
    pairs_per_sentence = Counter(group.n_pairs for group in groups)
    categories = entity_relation_categories(instances)
    n_categories = Counter(min(len(rels), 2) for rels in categories.values())
    sentences_per_image = Counter(group.img_id for group in groups)
    return {
        "instances": len(instances),
        "images": len({instance.img_id for instance in instances}),
        "sentences": len(groups),
        "images_with_several_sentences": sum(1 for n in sentences_per_image.values() if n > 1),
        "none_instances": n_none,
        "non_none_instances": len(instances) - n_none,
        "none_share": n_none / len(instances) if instances else 0.0,
        "pairs_per_sentence": {str(k): pairs_per_sentence[k] for k in sorted(pairs_per_sentence)},
        "pairs_per_sentence_max": max(pairs_per_sentence) if pairs_per_sentence else 0,
        "relation_counts": {label: relation_counts.get(label, 0) for label in vocab.labels},
        "relations_absent": [label for label in vocab.labels if relation_counts.get(label, 0) == 0],
        "entities": len(categories),
        "entities_with_no_relation": n_categories.get(0, 0),
        "entities_with_one_relation": n_categories.get(1, 0),
        "entities_with_several_relations": n_categories.get(2, 0),
    }


def dataset_statistics(data_dir: str | Path, dataset: str = "mnre") -> dict[str, Any]:
    """Statistics of every split of ``dataset`` (``mnre`` or ``more``, ``data.dataset``) plus
    cross-split checks (images shared between splits)."""
    more = dataset == "more"
    vocab = (load_more_vocab if more else load_relation_vocab)(data_dir)
    splits = {split: (load_more if more else load_mnre)(data_dir, split, vocab) for split in SPLITS}
    images = {split: {instance.img_id for instance in rows} for split, rows in splits.items()}
    shared = {f"{a}&{b}": len(images[a] & images[b]) for a, b in combinations(SPLITS, 2)}
    return {
        "labels": list(vocab.labels),
        "splits": {split: split_statistics(rows, vocab) for split, rows in splits.items()},
        "images_shared_between_splits": shared,
        "all_none_accuracy_test": sum(x.relation == NEGATIVE_LABEL for x in splits["test"]) / len(splits["test"]),
    }
