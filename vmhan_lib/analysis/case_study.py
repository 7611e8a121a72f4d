"""Attention-weight case studies: what a trained model predicts for a test instance, and why.

:func:`load_explorer` starts from a run's case-study bundle when there is one for the current
settings and data (the committed ``cpu`` headline run's: its dev-selected model and the node
features of its first :data:`BUNDLE_INSTANCES` test instances, a few MB, checked against the run
record when loaded), else from the checkpoint that the fit loop selected on dev
(:mod:`vmhan_lib.train.checkpoints`; :meth:`CaseStudyExplorer.from_checkpoint` rebuilds the node
features with the configuration stored in it: fine-tuned encoder, captioners, node selector). The
model predicts every explored instance once, and then
:meth:`CaseStudyExplorer.explain` gives, for one instance, a :class:`CaseStudy`: the sentence, the
pair, gold and predicted relation with probabilities, the captions of its image by every captioner,
the image file when it is among the sample images, every other pair of the same sentence with its
gold and predicted relation, and the V-HAN attention weights of every layer and head.

:func:`explorer_widget` wires these calls to controls (entity search, sentence, pair, layer and
head) and draws the first case at once; the widget notebook (``notebooks/08_case_studies.ipynb``)
only displays it.
"""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display

from vmhan_lib.analysis.hypergraph_view import draw_hypergraph, draw_hypergraph_attention
from vmhan_lib.data.captions import CAPTIONERS, load_captions
from vmhan_lib.data.mnre import DataFormatError, Instance, group_by_sentence
from vmhan_lib.data.splits import load_split, load_vocab
from vmhan_lib.features.build import build_split
from vmhan_lib.features.node_selection import make_prompt_selectors
from vmhan_lib.features.nodes import InstanceNodes, pack_nodes, unpack_nodes
from vmhan_lib.hypergraph.batch import HypergraphBatch, collate_hypergraphs
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.vhan_layer import HypergraphAttention
from vmhan_lib.model.vmhan import VMHAN
from vmhan_lib.config import RunConfig
from vmhan_lib.io import atomic_torch_save
from vmhan_lib.identity import digest
from vmhan_lib.paths import output_dirs
from vmhan_lib.train.checkpoints import (checkpoint_features, ensure_best_checkpoint, load_best_checkpoint,
                                         model_from_checkpoint, run_config_of)
from vmhan_lib.train.hypergraph_task import predict_nodes
from vmhan_lib.train.records import Prediction, read_predictions, run_id
from vmhan_lib.train.jobs import Job, RunPaths, job_identity, run_prefix

SAMPLE_IMAGES_DIR = "images_sample"
BUNDLE_FORMAT = "case-study-bundle-1"
BUNDLE_INSTANCES = 100
"""Test instances a case-study bundle holds (the notebook explores the first 36 by default)."""
BUNDLE_FOLDER = "case_study"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PREDICTION_BATCH_SIZE = 64
FIGURE_DPI = 100
"""Resolution of the case-study figure shown in notebooks and in the explorer."""
IMAGE_WIDTH_PX = 360
"""Width at which a case's own image is shown."""


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
        features = checkpoint_features(checkpoint, path, show_progress=progress)
        built = build_split(data, "test", features, make_prompt_selectors(features))
        data_dir_path = data.path
        vocab = load_vocab(data)
        instances = load_split(data, "test", vocab)
        captions = {name: load_captions(data_dir_path, name, "test") for name in CAPTIONERS}
        return cls(model, config, instances, built.nodes, vocab.labels, captions, sample_image_paths(data_dir_path))

    def save_bundle(self, path: Path, checkpoint: dict[str, Any], run_name: str, identity_digest: str) -> Path:
        """Write what the explorer needs to start without the data pipeline, atomically: the
        checkpoint's configuration and model, the node features of the explored test instances
        and their test-file indices; ``run_name`` and ``identity_digest`` name the run it explains.
        A few MB for the default :data:`BUNDLE_INSTANCES` (the committed ``cpu`` headline run's)."""
        return atomic_torch_save({
            "format": BUNDLE_FORMAT, "run_id": run_name, "identity_digest": identity_digest,
            "config": checkpoint["config"], "model": self.model.state_dict(),
            "test_indices": [instance.index for instance in self.instances],
            "test_instances": [_instance_key(instance) for instance in self.instances], "nodes": pack_nodes(self.nodes),
        }, Path(path))

    @classmethod
    def from_bundle(cls, bundle: dict[str, Any], max_test_instances: int | None, data_dir: str | Path) -> "CaseStudyExplorer":
        """The explorer of a loaded bundle (:func:`load_bundle`) over its first
        ``max_test_instances`` instances (``None``: all it holds); sentences and captions are read
        from ``data_dir``.

        Raises:
            DataFormatError: the test split in ``data_dir`` is not the one the bundle was made from.
        """
        model, config = model_from_checkpoint(bundle)
        count = len(bundle["test_indices"]) if max_test_instances is None else min(max_test_instances, len(bundle["test_indices"]))
        data = replace(run_config_of(bundle).data, data_dir=str(data_dir), max_instances=count)
        vocab = load_vocab(data)
        instances = load_split(data, "test", vocab)
        if [_instance_key(i) for i in instances] != bundle["test_instances"][:count]:
            raise DataFormatError(f"the test split in {data_dir} is not the one the case-study bundle of "
                                  f"{bundle['run_id']} was made from")
        captions = {name: load_captions(data_dir, name, "test") for name in CAPTIONERS}
        return cls(model, config, instances, unpack_nodes(bundle["nodes"])[:count], vocab.labels, captions,
                   sample_image_paths(Path(data_dir)))

    def agreement_with(self, predictions: Sequence[Prediction]) -> tuple[int, float]:
        """How many explored instances the model predicts as ``predictions`` (a run record's test
        predictions, by test index) do, and the largest difference of a class probability."""
        by_index = {p.index: p for p in predictions}
        same, largest = 0, 0.0
        for position, instance in enumerate(self.instances):
            recorded = by_index[instance.index]
            same += self.predicted(position) == recorded.predicted
            largest = max(largest, float((self.probabilities[position] - torch.tensor(recorded.probabilities)).abs().max()))
        return same, largest

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


def figure_png(case: CaseStudy, layer: int = -1, head: int = 0) -> bytes:
    """The PNG bytes of :meth:`CaseStudy.figure` (the figure is closed afterwards)."""
    fig = case.figure(layer, head)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def case_study_outputs(case: CaseStudy, layer: int = -1, head: int = 0) -> list[dict[str, Any]]:
    """The case as notebook ``display_data`` outputs, in the order shown: summary and captions
    (markdown), the image when at hand, every pair of the sentence (table), and the hypergraph with
    the attention of ``layer`` and ``head`` (PNG).

    These are plain output dictionaries so that an ``ipywidgets.Output`` can hold them as its state
    (``Output.outputs``): what the kernel sets there is drawn by JupyterLab whenever the widget
    appears, and saved by papermill/nbval, with no dependence on capturing the kernel's messages.
    """
    summary = case.summary_markdown()
    outputs: list[tuple[dict[str, str], dict[str, Any]]] = [({"text/markdown": summary, "text/plain": summary}, {})]
    if case.image_path is not None:
        mime = "image/png" if Path(case.image_path).suffix.lower() == ".png" else "image/jpeg"
        image = base64.b64encode(Path(case.image_path).read_bytes()).decode("ascii")
        outputs.append(({mime: image, "text/plain": case.image_path.name}, {mime: {"width": IMAGE_WIDTH_PX}}))
    table = case.pairs_table()
    outputs.append(({"text/html": table.to_html(index=False), "text/plain": table.to_string(index=False)}, {}))
    figure = base64.b64encode(figure_png(case, layer, head)).decode("ascii")
    outputs.append(({"image/png": figure, "text/plain": f"<attention figure of {case.head} -> {case.tail}>"}, {}))
    return [{"output_type": "display_data", "data": data, "metadata": metadata} for data, metadata in outputs]


def display_case_study(case: CaseStudy, layer: int = -1, head: int = 0) -> None:
    """Show a case study in a notebook: summary and captions, the image when at hand, every pair of
    the sentence, and the hypergraph with the attention of ``layer`` and ``head``."""
    for output in case_study_outputs(case, layer, head):
        display(output["data"], metadata=output["metadata"], raw=True)


@dataclass
class ExplorerWidget:
    """The explorer's widget box and its controls (kept so tests and notebooks can drive them).

    ``layer`` and ``head`` are 1-based on the sliders; ``view`` holds the drawn case as its
    ``outputs`` state. Made by :func:`explorer_widget`.
    """

    explorer: CaseStudyExplorer
    search: widgets.Text
    sentence: widgets.Dropdown
    pair: widgets.Dropdown
    layer: widgets.IntSlider
    head: widgets.IntSlider
    view: widgets.Output
    box: widgets.VBox
    _updating: bool = field(default=False, init=False, repr=False)

    def draw(self) -> None:
        """Draw the selected pair at the selected layer and head into ``view`` (one state update)."""
        if self.pair.value is None:
            message = f"no sentence has an entity matching {self.search.value!r}"
            self.view.outputs = ({"output_type": "display_data", "metadata": {},
                                  "data": {"text/markdown": message, "text/plain": message}},)
            return
        case = self.explorer.explain(self.pair.value)
        self.view.outputs = tuple(case_study_outputs(case, self.layer.value - 1, self.head.value - 1))

    def on_search(self, _: Any = None) -> None:
        """Narrow the sentences to those with an entity matching the search text (keeping the
        selected one when it still matches), then refresh the pairs and redraw."""
        options = self.explorer.sentence_options(self.search.value)
        self._select(self.sentence, options)
        self.on_sentence()

    def on_sentence(self, _: Any = None) -> None:
        """List the pairs of the selected sentence (keeping the selected pair when it is among them)
        and redraw."""
        if self._updating:
            return
        options = [] if self.sentence.value is None else self.explorer.pair_options(self.sentence.value)
        self._select(self.pair, options)
        self.draw()

    def on_view_control(self, _: Any = None) -> None:
        """Redraw after the pair, layer or head changed (not while the controls are being refilled)."""
        if not self._updating:
            self.draw()

    def _select(self, dropdown: widgets.Dropdown, options: list[tuple[str, int]]) -> None:
        # Refill a dropdown and set its value explicitly (ipywidgets may leave it None), without
        # letting the observers redraw for each intermediate value.
        positions = [position for _, position in options]
        keep = dropdown.value if dropdown.value in positions else (positions[0] if positions else None)
        self._updating = True
        try:
            dropdown.options = options
            dropdown.value = keep
        finally:
            self._updating = False


def explorer_widget(explorer: CaseStudyExplorer) -> ExplorerWidget:
    """The explorer's controls (entity search, sentence, pair, layer and head sliders) above the
    drawn case, with the first pair of the first sentence already drawn.

    Every control redraws the case. The controls carry CSS classes (``vmhan-explorer``,
    ``vmhan-search``, ``vmhan-sentence``, ``vmhan-pair``, ``vmhan-layer``, ``vmhan-head``,
    ``vmhan-case``) so a browser test can find them.
    """
    layers, heads = max(1, explorer.config.num_layers), max(1, explorer.config.heads)
    wide = widgets.Layout(width="95%")
    search = widgets.Text(description="entity", placeholder="part of a head or tail name")
    sentence = widgets.Dropdown(description="sentence", options=[], layout=wide)
    pair = widgets.Dropdown(description="pair", options=[], layout=wide)
    layer = widgets.IntSlider(description="layer", min=1, max=layers, value=layers)
    head = widgets.IntSlider(description="head", min=1, max=heads, value=1)
    view = widgets.Output()
    box = widgets.VBox([search, sentence, pair, widgets.HBox([layer, head]), view])
    for control, name in ((box, "explorer"), (search, "search"), (sentence, "sentence"), (pair, "pair"),
                          (layer, "layer"), (head, "head"), (view, "case")):
        control.add_class(f"vmhan-{name}")
    shown = ExplorerWidget(explorer, search, sentence, pair, layer, head, view, box)
    shown.on_search()  # fills sentence and pair, and draws the first case before the box is shown
    search.observe(shown.on_search, names="value")
    sentence.observe(shown.on_sentence, names="value")
    for control in (pair, layer, head):
        control.observe(shown.on_view_control, names="value")
    return shown


def _instance_key(instance: Instance) -> str:
    """A short digest of a test instance's sentence, pair and label (a bundle checks its data by it)."""
    return digest([instance.index, instance.tokens, instance.head.span, instance.tail.span, instance.relation])[:16]


class BundleMismatchWarning(UserWarning):
    """The model of a case-study bundle does not predict what its run record says."""


def bundle_path(config: RunConfig, job: Job) -> Path:
    """Where the case-study bundle of ``job`` lives: ``results/case_study/<run id>.pt``
    (``results/tiny/case_study/`` for ``tiny``); the ``cpu`` headline run's is committed."""
    return output_dirs(config.profile)[0] / BUNDLE_FOLDER / f"{run_id(run_prefix(config), job.name, job.seed)}.pt"


def load_bundle(path: Path) -> dict[str, Any]:
    """A case-study bundle written by :meth:`CaseStudyExplorer.save_bundle`."""
    bundle = torch.load(path, map_location="cpu", weights_only=False)
    if bundle.get("format") != BUNDLE_FORMAT:
        raise DataFormatError(f"{path}: not a case-study bundle of format {BUNDLE_FORMAT}")
    return bundle


def write_bundle(config: RunConfig, job: Job, checkpoint_path: Path, count: int = BUNDLE_INSTANCES,
                 progress: bool = True) -> Path:
    """Build the explorer of a trained checkpoint over the first ``count`` test instances and
    save its bundle at :func:`bundle_path`."""
    explorer = CaseStudyExplorer.from_checkpoint(checkpoint_path, count, data_dir=str(config.data.path), progress=progress)
    return explorer.save_bundle(bundle_path(config, job), load_best_checkpoint(checkpoint_path),
                                run_id(run_prefix(config), job.name, job.seed), digest(job_identity(config, job)))


def load_explorer(config: RunConfig, job: Job, max_test_instances: int | None, train_if_missing: bool = False,
                  progress: bool = True) -> CaseStudyExplorer:
    """The explorer of ``job``: from its case-study bundle when one was made for this run's
    identity and holds ``max_test_instances`` instances (seconds), checked against the run
    record's test predictions (a :class:`BundleMismatchWarning` when they differ); otherwise, said
    so, from its checkpoint (:func:`~vmhan_lib.train.checkpoints.ensure_best_checkpoint`, trained
    first when missing and ``train_if_missing``), with the node features rebuilt."""
    path = bundle_path(config, job)
    reason = None
    if not path.is_file():
        reason = f"no case-study bundle at {path}"
    else:
        bundle = load_bundle(path)
        held = len(bundle["test_indices"])
        if bundle["identity_digest"] != digest(job_identity(config, job)):
            reason = f"{path} was made for other settings or data than the current ones"
        elif max_test_instances is None or max_test_instances > held:
            reason = f"{path} holds the first {held} test instances, {max_test_instances or 'all'} asked"
    if reason is None:
        explorer = CaseStudyExplorer.from_bundle(bundle, max_test_instances, config.data.path)
        run_dir = RunPaths.of(config).run_dir(run_prefix(config), job)
        same, largest = explorer.agreement_with(read_predictions(run_dir))
        if same != len(explorer):
            warnings.warn(BundleMismatchWarning(
                f"the model of {path.name} predicts {len(explorer) - same} of {len(explorer)} explored test instances "
                f"otherwise than its run record {run_dir} (largest probability difference {largest:.5f})"), stacklevel=2)
        print(f"model and node features from the case-study bundle {path}; its predictions of the {len(explorer)} "
              f"explored test instances agree with the run record in {same} (largest probability difference {largest:.1e})")
        return explorer
    print(f"{reason}: loading the checkpoint and rebuilding the node features instead")
    checkpoint = ensure_best_checkpoint(config, job, train_if_missing=train_if_missing, progress=progress)
    return CaseStudyExplorer.from_checkpoint(checkpoint, max_test_instances, data_dir=str(config.data.path), progress=progress)
