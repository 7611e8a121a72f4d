"""Data layer: MNRE-2 splits, labels, captions, statistics and the download step."""

from vmhan_lib.data.captions import CAPTIONERS, captions_for_instances, load_captions
from vmhan_lib.data.mnre import (NEGATIVE_LABEL, SPLITS, DataFormatError, Entity, Instance, RelationVocab,
                                 SentenceGroup, entity_relation_categories, group_by_sentence, load_mnre,
                                 load_relation_vocab)

__all__ = [
    "CAPTIONERS", "NEGATIVE_LABEL", "SPLITS", "DataFormatError", "Entity", "Instance", "RelationVocab",
    "SentenceGroup", "captions_for_instances", "entity_relation_categories", "group_by_sentence",
    "load_captions", "load_mnre", "load_relation_vocab",
]
