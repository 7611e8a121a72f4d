"""Attention-weight case studies: what a trained model predicts for a test instance, and why.

:func:`load_explorer` gives the :class:`CaseStudyExplorer` of a run: its trained model and first
test instances, from the run's case-study bundle or else its dev-selected checkpoint
(:class:`~vmhan_lib.train.case_study_bundle.CaseStudyData`, which also predicts every explored
instance once). :meth:`CaseStudyExplorer.explain` then gives, for one instance, a :class:`CaseStudy`:
the sentence, the pair, gold and predicted relation with probabilities, the captions of its image
by every captioner, the image file when it is among the sample images, every other pair of the same
sentence with its gold and predicted relation, and the V-HAN attention weights of every layer and
head. The widget that wires these calls to controls is in :mod:`vmhan_lib.analysis.case_study_widget`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from vmhan_lib.analysis.hypergraph_view import draw_hypergraph, draw_hypergraph_attention
from vmhan_lib.config import RunConfig
from vmhan_lib.data.mnre import group_by_sentence
from vmhan_lib.hypergraph.batch import HypergraphBatch, collate_hypergraphs
from vmhan_lib.model.vhan_layer import HypergraphAttention
from vmhan_lib.train.case_study_bundle import CaseStudyData
from vmhan_lib.train.jobs import Job


@dataclass(frozen=True)
class PairOutcome:
    """One entity pair of a sentence: its test position, names, gold and predicted relation."""

    position: int
    head: str
    tail: str
    gold: str
    predicted: str
    predicted_probability: float

    @property
    def correct(self) -> bool:
        return self.gold == self.predicted

    @property
    def label(self) -> str:
        """``head -> tail  (gold ..., predicted ...)``: how a pair is named in menus and titles."""
        return f"{self.head} -> {self.tail}  (gold {self.gold}, predicted {self.predicted})"


@dataclass
class CaseStudy:
    """Everything shown for one test instance.

    Attributes:
        position: the instance's position among the explored test instances (file order).
        index: its index in the test file.
        tokens: the sentence; ``head_span`` / ``tail_span`` are half-open token spans.
        head, tail: the entity names.
        gold, predicted: relation labels.
        probabilities: ``{relation: probability}``, most probable first.
        captions: ``{captioner: caption}`` of the instance's image.
        image_path: the image file when it is among the sample images, else None.
        pairs: every pair of the same sentence, this one included, in file order.
        batch: the instance's hypergraph alone (a batch of one, index 0).
        attention: per V-HAN layer, the attention weights of ``batch`` (empty for other encoders).
    """

    position: int
    index: int
    tokens: tuple[str, ...]
    head_span: tuple[int, int]
    tail_span: tuple[int, int]
    head: str
    tail: str
    gold: str
    predicted: str
    probabilities: dict[str, float]
    captions: dict[str, str]
    image_path: Path | None
    pairs: list[PairOutcome]
    batch: HypergraphBatch
    attention: list[HypergraphAttention] = field(default_factory=list)

    @property
    def sentence(self) -> str:
        return " ".join(self.tokens)

    @property
    def marked_sentence(self) -> str:
        """The sentence with ``[h: ...]`` and ``[t: ...]`` around head and tail."""
        words = list(self.tokens)
        for (start, end), tag in sorted([(self.head_span, "h"), (self.tail_span, "t")], reverse=True):
            words[start:end] = [f"[{tag}: {' '.join(words[start:end])}]"]
        return " ".join(words)

    @property
    def pair(self) -> PairOutcome:
        """This case's own pair among :attr:`pairs`."""
        return next(pair for pair in self.pairs if pair.position == self.position)

    @property
    def num_layers(self) -> int:
        return len(self.attention)

    @property
    def num_heads(self) -> int:
        return self.attention[0].edge_from_nodes.shape[1] if self.attention else 0

    def top_relations(self, count: int = 3) -> list[tuple[str, float]]:
        return list(self.probabilities.items())[:count]

    def pairs_table(self) -> pd.DataFrame:
        """Every pair of the sentence with gold and predicted relation; this pair marked ``>``."""
        return pd.DataFrame([{
            "": ">" if pair.position == self.position else "",
            "head": pair.head, "tail": pair.tail, "gold": pair.gold, "predicted": pair.predicted,
            "p(predicted)": round(pair.predicted_probability, 3), "correct": pair.correct,
        } for pair in self.pairs])

    def summary_markdown(self) -> str:
        """Sentence, pair, gold vs predicted with probabilities, and the captions, as markdown."""
        top = ", ".join(f"`{label}` {p:.3f}" for label, p in self.top_relations())
        lines = [
            f"**test #{self.index}**: {self.marked_sentence}",
            "",
            f"- pair: **{self.head}** -> **{self.tail}**",
            f"- gold: `{self.gold}` (p = {self.probabilities[self.gold]:.3f}); predicted: `{self.predicted}` "
            f"({'correct' if self.gold == self.predicted else 'wrong'})",
            f"- most probable: {top}",
            f"- image: {self.image_path.name if self.image_path else 'not among the sample images'}",
            "",
            "captions of the image:",
            "",
        ]
        lines += [f"- *{name}*: {text or '(empty)'}" for name, text in self.captions.items()]
        return "\n".join(lines)

    def figure(self, layer: int = -1, head: int = 0) -> plt.Figure:
        """The hypergraph with its attention for ``layer`` (negative counts from the last) and ``head``;
        the plain hypergraph for models without attention."""
        title = f"test #{self.index}: {self.pair.label}"
        if not self.attention:
            fig = draw_hypergraph(self.batch, 0)
            fig.suptitle(title)
            return fig
        return draw_hypergraph_attention(self.batch, 0, self.attention, layer % self.num_layers, head, title)


class CaseStudyExplorer(CaseStudyData):
    """Predictions of one trained model on test instances, explained one at a time.

    Made like :class:`~vmhan_lib.train.case_study_bundle.CaseStudyData` (its arguments, or
    ``from_checkpoint`` / ``from_bundle`` / ``from_run``), and adds sentence grouping, entity search
    and :meth:`explain`.
    """

    @cached_property
    def _sentence_of(self) -> dict[int, tuple[int, ...]]:
        """``position -> positions of every pair of its sentence``, for every explored instance."""
        return {position: group.instance_indices
                for group in group_by_sentence(self.instances) for position in group.instance_indices}

    def sentence_pairs(self, position: int) -> tuple[int, ...]:
        """Positions of every pair of the sentence of ``position`` (itself included), file order."""
        return self._sentence_of[position]

    def search(self, query: str) -> list[int]:
        """Positions whose head or tail name contains ``query`` (case-insensitive); all for ``""``."""
        needle = query.strip().lower()
        return [p for p, x in enumerate(self.instances) if needle in x.head.name.lower() or needle in x.tail.name.lower()]

    def sentence_options(self, query: str = "") -> list[tuple[str, int]]:
        """``(label, first position)`` of every sentence with a pair matching ``query``, for a dropdown."""
        firsts = dict.fromkeys(self.sentence_pairs(p)[0] for p in self.search(query))
        options = []
        for first in firsts:
            text = self.instances[first].text
            pairs = len(self.sentence_pairs(first))
            options.append((f"#{self.instances[first].index} ({pairs} pair{'s' * (pairs > 1)}) {text[:90]}", first))
        return options

    def pair_options(self, position: int) -> list[tuple[str, int]]:
        """``(label, position)`` of every pair of the sentence of ``position``, for a dropdown."""
        return [(self._pair_outcome(p).label, p) for p in self.sentence_pairs(position)]

    def examples_with_several_pairs(self, count: int = 3, min_pairs: int = 2) -> list[int]:
        """The first pair of each of the first ``count`` sentences with at least ``min_pairs`` pairs."""
        firsts = dict.fromkeys(pairs[0] for pairs in self._sentence_of.values() if len(pairs) >= min_pairs)
        return sorted(firsts)[:count]

    def _pair_outcome(self, position: int) -> PairOutcome:
        """The names, gold and predicted relation of the pair at ``position``."""
        instance = self.instances[position]
        return PairOutcome(position, instance.head.name, instance.tail.name, instance.relation,
                           self.predicted(position), float(self.probabilities[position].max()))

    def explain(self, position: int) -> CaseStudy:
        """The :class:`CaseStudy` of the instance at ``position``."""
        if not 0 <= position < len(self):
            raise IndexError(f"position {position} outside the {len(self)} explored test instances")
        instance = self.instances[position]
        batch = collate_hypergraphs([self.nodes[position]], self.config.hypergraph)
        with torch.no_grad():
            output = self.model(batch, return_attention=True)
        ranked = sorted(zip(self.relation_labels, self.probabilities[position].tolist()), key=lambda item: -item[1])
        return CaseStudy(
            position=position,
            index=instance.index,
            tokens=instance.tokens,
            head_span=instance.head.span,
            tail_span=instance.tail.span,
            head=instance.head.name,
            tail=instance.tail.name,
            gold=instance.relation,
            predicted=self.predicted(position),
            probabilities=dict(ranked),
            captions={name: table.get(instance.img_id, "") for name, table in self.captions.items()},
            image_path=self.image_paths.get(instance.img_id),
            pairs=[self._pair_outcome(p) for p in self.sentence_pairs(position)],
            batch=batch,
            attention=output.attention or [],
        )


def load_explorer(config: RunConfig, job: Job, max_test_instances: int | None, train_if_missing: bool = False,
                  progress: bool = True) -> CaseStudyExplorer:
    """The explorer of ``job`` over its first ``max_test_instances`` test instances: from its
    current case-study bundle, checked against its run record, else from its checkpoint
    (:meth:`~vmhan_lib.train.case_study_bundle.CaseStudyData.from_run` says which and why)."""
    return CaseStudyExplorer.from_run(config, job, max_test_instances, train_if_missing, progress)
