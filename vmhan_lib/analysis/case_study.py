"""Attention-weight case studies: what a trained model predicts for a test instance, and why.

:meth:`CaseStudyExplorer.from_checkpoint` reads the checkpoint that the fit loop selected on dev
for a run (:mod:`vmhan_lib.train.checkpoints`), rebuilds the node features of the test instances
with the configuration stored in it (fine-tuned encoder, captioners, node selector), predicts them
all once, and then
:meth:`CaseStudyExplorer.explain` gives, for one instance, a :class:`CaseStudy`: the sentence, the
pair, gold and predicted relation with probabilities, the captions of its image by every captioner,
the image file when it is among the sample images, every other pair of the same sentence with its
gold and predicted relation, and the V-HAN attention weights of every layer and head.

The widget notebook (``notebooks/08_case_studies.ipynb``) only wires these calls to controls.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Image, Markdown, display

from vmhan_lib.analysis.hypergraph_view import draw_hypergraph, draw_hypergraph_attention
from vmhan_lib.data.captions import CAPTIONERS, load_captions
from vmhan_lib.data.mnre import Instance, group_by_sentence
from vmhan_lib.data.splits import load_split, load_vocab
from vmhan_lib.config_tree import from_dict
from vmhan_lib.features.build import build_split
from vmhan_lib.features.config import FeatureConfig
from vmhan_lib.features.node_selection import make_prompt_selectors
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.hypergraph.batch import HypergraphBatch, collate_hypergraphs
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.vhan_layer import HypergraphAttention
from vmhan_lib.model.vmhan import VMHAN
from vmhan_lib.train.checkpoints import load_best_checkpoint, model_from_checkpoint, run_config_of
from vmhan_lib.train.hypergraph_task import predict_nodes

SAMPLE_IMAGES_DIR = "images_sample"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PREDICTION_BATCH_SIZE = 64


def sample_image_paths(data_dir: Path) -> dict[str, Path]:
    """``img_id -> file`` of the real images shipped in ``<data_dir>/images_sample`` (empty if none)."""
    folder = Path(data_dir) / SAMPLE_IMAGES_DIR
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


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
        title = f"test #{self.index}: {self.head} -> {self.tail}  (gold {self.gold}, predicted {self.predicted})"
        if not self.attention:
            fig = draw_hypergraph(self.batch, 0)
            fig.suptitle(title)
            return fig
        return draw_hypergraph_attention(self.batch, 0, self.attention, layer % self.num_layers, head, title)


class CaseStudyExplorer:
    """Predictions of one trained model on test instances, explained one at a time.

    Args:
        model: a trained model (evaluation mode is set here).
        config: its configuration (its hypergraph config collates the instances).
        instances: the explored test instances, file order.
        nodes: their node features, aligned with ``instances``.
        relation_labels: class labels in id order.
        captions: ``{captioner: {img_id: caption}}``.
        image_paths: ``{img_id: image file}`` for the images at hand.
    """

    def __init__(self, model: VMHAN, config: ModelConfig, instances: Sequence[Instance],
                 nodes: Sequence[InstanceNodes], relation_labels: Sequence[str],
                 captions: dict[str, dict[str, str]], image_paths: dict[str, Path]) -> None:
        if len(instances) != len(nodes):
            raise ValueError(f"{len(instances)} instances but {len(nodes)} node sets")
        if not instances:
            raise ValueError("nothing to explore: no test instances")
        self.model = model.eval()
        self.config = config
        self.instances = list(instances)
        self.nodes = list(nodes)
        self.relation_labels = tuple(relation_labels)
        self.captions = captions
        self.image_paths = image_paths
        self.probabilities = self._predict_all()  # [n, R]
        self._sentence_of: dict[int, tuple[int, ...]] = {
            position: group.instance_indices
            for group in group_by_sentence(self.instances) for position in group.instance_indices
        }

    @classmethod
    def from_checkpoint(cls, path: Path, max_test_instances: int | None = None, data_dir: str | None = None,
                        progress: bool = False) -> "CaseStudyExplorer":
        """Load a best checkpoint and the first ``max_test_instances`` test instances (``None``: as
        many as the run saw), with the node features the model was trained on (the features,
        captioners and node selector stored in the checkpoint; ``data_dir`` overrides where the
        data are, for a checkpoint made on another machine).

        The node features come from the feature cache when that subset was built before; otherwise
        the node selector runs on every instance (about a second each on 2 CPU cores).
        """
        checkpoint = load_best_checkpoint(path)
        model, config = model_from_checkpoint(checkpoint)
        trained = run_config_of(checkpoint)
        limits = [n for n in (trained.data.max_instances, max_test_instances) if n is not None]
        data = replace(trained.data, max_instances=min(limits) if limits else None,
                       data_dir=data_dir if data_dir is not None else trained.data.data_dir)
        features = replace(from_dict(FeatureConfig, checkpoint["config"]["features"]), show_progress=progress)
        built = build_split(data, "test", features, make_prompt_selectors(features))
        data_dir_path = data.path
        vocab = load_vocab(data)
        instances = load_split(data, "test", vocab)
        captions = {name: load_captions(data_dir_path, name, "test") for name in CAPTIONERS}
        return cls(model, config, instances, built.nodes, vocab.labels, captions, sample_image_paths(data_dir_path))

    def _predict_all(self) -> torch.Tensor:
        return predict_nodes(self.model, self.nodes, self.config, PREDICTION_BATCH_SIZE, torch.device("cpu")).probabilities

    def __len__(self) -> int:
        return len(self.instances)

    def predicted(self, position: int) -> str:
        return self.relation_labels[int(self.probabilities[position].argmax())]

    def sentence_pairs(self, position: int) -> tuple[int, ...]:
        """Positions of every pair of the sentence of ``position`` (itself included), file order."""
        return self._sentence_of[position]

    def search(self, query: str) -> list[int]:
        """Positions whose head or tail name contains ``query`` (case-insensitive); all for ``""``."""
        needle = query.strip().lower()
        return [p for p, x in enumerate(self.instances) if needle in x.head.name.lower() or needle in x.tail.name.lower()]

    def sentence_options(self, query: str = "") -> list[tuple[str, int]]:
        """``(label, first position)`` of every sentence with a pair matching ``query``, for a dropdown."""
        firsts = dict.fromkeys(self._sentence_of[p][0] for p in self.search(query))
        options = []
        for first in firsts:
            text = self.instances[first].text
            pairs = len(self._sentence_of[first])
            options.append((f"#{self.instances[first].index} ({pairs} pair{'s' * (pairs > 1)}) {text[:90]}", first))
        return options

    def pair_options(self, position: int) -> list[tuple[str, int]]:
        """``(label, position)`` of every pair of the sentence of ``position``, for a dropdown."""
        return [
            (f"{self.instances[p].head.name} -> {self.instances[p].tail.name}  "
             f"(gold {self.instances[p].relation}, predicted {self.predicted(p)})", p)
            for p in self.sentence_pairs(position)
        ]

    def examples_with_several_pairs(self, count: int = 3, min_pairs: int = 2) -> list[int]:
        """The first pair of each of the first ``count`` sentences with at least ``min_pairs`` pairs."""
        firsts = dict.fromkeys(pairs[0] for pairs in self._sentence_of.values() if len(pairs) >= min_pairs)
        return sorted(firsts)[:count]

    def explain(self, position: int) -> CaseStudy:
        """The :class:`CaseStudy` of the instance at ``position``."""
        if not 0 <= position < len(self):
            raise IndexError(f"position {position} outside the {len(self)} explored test instances")
        instance = self.instances[position]
        batch = collate_hypergraphs([self.nodes[position]], self.config.hypergraph)
        with torch.no_grad():
            output = self.model(batch, return_attention=True)
        ranked = sorted(zip(self.relation_labels, self.probabilities[position].tolist()), key=lambda item: -item[1])
        pairs = [
            PairOutcome(p, self.instances[p].head.name, self.instances[p].tail.name, self.instances[p].relation,
                        self.predicted(p), float(self.probabilities[p].max()))
            for p in self.sentence_pairs(position)
        ]
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
            pairs=pairs,
            batch=batch,
            attention=output.attention or [],
        )


def display_case_study(case: CaseStudy, layer: int = -1, head: int = 0) -> None:
    """Show a case study in a notebook: summary and captions, the image when at hand, every pair of
    the sentence, and the hypergraph with the attention of ``layer`` and ``head``."""
    display(Markdown(case.summary_markdown()))
    if case.image_path is not None:
        display(Image(filename=str(case.image_path), width=360))
    display(case.pairs_table())
    fig = case.figure(layer, head)
    display(fig)
    plt.close(fig)
