"""The case-study explorer in a notebook: a case as display outputs, and the ipywidgets that pick it.

:func:`display_case_study` shows one :class:`~vmhan_lib.analysis.case_study.CaseStudy`;
:func:`explorer_widget` wires the explorer's calls to controls (entity search, sentence, pair, layer
and head) and draws the first case at once, so the widget notebook
(``notebooks/08_case_studies.ipynb``) only displays it.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from vmhan_lib.analysis.case_study import CaseStudy, CaseStudyExplorer

FIGURE_DPI = 100
"""Resolution of the case-study figure shown in notebooks and in the explorer."""
IMAGE_WIDTH_PX = 360
"""Width at which a case's own image is shown."""


def figure_png(case: CaseStudy, layer: int = -1, head: int = 0) -> bytes:
    """The PNG bytes of :meth:`CaseStudy.figure` (the figure is closed afterwards)."""
    fig = case.figure(layer, head)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _display_data(data: dict[str, Any], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """One notebook ``display_data`` output of ``data`` (``{mime type: content}``)."""
    return {"output_type": "display_data", "data": data, "metadata": metadata or {}}


def case_study_outputs(case: CaseStudy, layer: int = -1, head: int = 0) -> list[dict[str, Any]]:
    """The case as notebook ``display_data`` outputs, in the order shown: summary and captions
    (markdown), the image when at hand, every pair of the sentence (table), and the hypergraph with
    the attention of ``layer`` and ``head`` (PNG).

    These are plain output dictionaries so that an ``ipywidgets.Output`` can hold them as its state
    (``Output.outputs``): what the kernel sets there is drawn by JupyterLab whenever the widget
    appears, and saved by papermill/nbval, with no dependence on capturing the kernel's messages.
    """
    summary = case.summary_markdown()
    outputs = [_display_data({"text/markdown": summary, "text/plain": summary})]
    if case.image_path is not None:
        mime = "image/png" if Path(case.image_path).suffix.lower() == ".png" else "image/jpeg"
        image = base64.b64encode(Path(case.image_path).read_bytes()).decode("ascii")
        outputs.append(_display_data({mime: image, "text/plain": case.image_path.name}, {mime: {"width": IMAGE_WIDTH_PX}}))
    table = case.pairs_table()
    outputs.append(_display_data({"text/html": table.to_html(index=False), "text/plain": table.to_string(index=False)}))
    figure = base64.b64encode(figure_png(case, layer, head)).decode("ascii")
    outputs.append(_display_data({"image/png": figure, "text/plain": f"<attention figure of {case.head} -> {case.tail}>"}))
    return outputs


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
            self.view.outputs = (_display_data({"text/markdown": message, "text/plain": message}),)
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
