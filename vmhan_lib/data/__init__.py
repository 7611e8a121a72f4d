"""Data layer: MNRE-2 splits, labels, captions, statistics and the download step."""

from vmhan_lib.data.captions import captions_for_instances, load_captions
from vmhan_lib.data.mnre import SPLITS, Instance, group_by_sentence, load_mnre

__all__ = ["SPLITS", "Instance", "captions_for_instances", "group_by_sentence", "load_captions", "load_mnre"]
