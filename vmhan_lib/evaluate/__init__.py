"""Evaluation beyond single scores: paired significance, reachability of reported numbers, the
paper's reported numbers as data."""
