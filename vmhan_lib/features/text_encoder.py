"""Frozen text features (the paper's BERT text initialisation) and a sentence embedder.

Entity features are the frozen encoder's states at the entity start markers of the inputs that
:class:`vmhan_lib.data.markers.EntityMarkerTokenizer` builds (the marker scheme, truncation and
phrase location are described there); text-LLM phrase features are the mean states over their
spans in the same pass. The trainable encoder over these inputs is
:class:`vmhan_lib.model.text_encoder.EntityMarkerEncoder`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from vmhan_lib.data.markers import EntityMarkerTokenizer, gather_positions, span_means
from vmhan_lib.data.mnre import Instance, split_path
from vmhan_lib.features.cache import FeatureCache
from vmhan_lib.identity import CODE_VERSIONS, digest, files_sha256
from vmhan_lib.features.config import TextEncoderConfig
from vmhan_lib.weights import resolve_text_model


@lru_cache(maxsize=6)
def load_frozen_backbone(model: str, device: str = "cpu") -> tuple[PreTrainedTokenizerBase, PreTrainedModel, str]:
    """Tokenizer, eval-mode model on ``device`` and cache identity of ``model``, loaded once per
    process and device: a module is never moved in place, so the caption embedder on the GPU and
    an embedding selector on the CPU never pull one module between devices.

    Shared by frozen-feature computations; for training take a fresh copy with
    :meth:`vmhan_lib.model.text_encoder.EntityMarkerEncoder.from_pretrained`.
    """
    if device != "cpu":
        tokenizer, backbone, identity = load_frozen_backbone(model)
        return tokenizer, copy.deepcopy(backbone).to(device), identity
    resolved = resolve_text_model(model)
    tokenizer = AutoTokenizer.from_pretrained(resolved.source)
    backbone = AutoModel.from_pretrained(resolved.source).eval()
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
    return tokenizer, backbone, resolved.identity


@dataclass
class FrozenTextFeatures:
    """Frozen text features of a list of instances.

    Attributes:
        entities: ``[N, 2, d]`` head and tail start-marker states.
        phrases: per instance, ``[m_i, d]`` mean states of its phrases found in the sentence.
        phrase_found: per instance, which requested phrases were found (rows of ``phrases``).
        n_truncated: instances whose sentence was cut to fit ``max_length``.
    """

    entities: torch.Tensor
    phrases: list[torch.Tensor] = field(default_factory=list)
    phrase_found: list[list[bool]] = field(default_factory=list)
    n_truncated: int = 0


@torch.inference_mode()
def compute_frozen_text_features(
    instances: Sequence[Instance],
    config: TextEncoderConfig = TextEncoderConfig(),
    phrases: Sequence[Sequence[str]] | None = None,
    show_progress: bool = True,
    batch_size: int = 64,
    device: str = "cpu",
) -> FrozenTextFeatures:
    """Encode ``instances`` with the frozen encoder (batched by length, progress bar).

    Args:
        instances: MNRE instances.
        config: model and max length.
        phrases: optional phrases per instance (text-LLM nodes) to pool from the same pass.
        show_progress: show a tqdm bar.
        batch_size, device: sentences per forward pass, and where it runs.
    """
    if phrases is not None and len(phrases) != len(instances):
        raise ValueError(f"phrases must have one list per instance: {len(phrases)} != {len(instances)}")
    tokenizer, backbone, _ = load_frozen_backbone(config.model, str(device))
    width = int(backbone.config.hidden_size)
    marker_tokenizer = EntityMarkerTokenizer(tokenizer, config.max_length)
    encoded = [
        marker_tokenizer.encode_instance(instance, phrases[i] if phrases is not None else ())
        for i, instance in enumerate(tqdm(instances, desc="tokenise", disable=not show_progress))
    ]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    entities = torch.zeros((len(encoded), 2, width))
    phrase_rows: list[torch.Tensor] = [torch.zeros((0, width))] * len(encoded)
    for start in tqdm(range(0, len(order), batch_size), desc="encode entities", disable=not show_progress):
        rows = order[start:start + batch_size]
        batch = marker_tokenizer.collate([encoded[i] for i in rows]).to(device)
        hidden = backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state  # [B, L, d]
        entities[rows] = gather_positions(hidden, batch.entity_positions).float().cpu()
        phrases = span_means(hidden, batch.phrase_spans, batch.phrase_mask)  # [B, M, d]
        for offset, row in enumerate(rows):
            phrase_rows[row] = phrases[offset][batch.phrase_mask[offset]].float().cpu()
    return FrozenTextFeatures(
        entities=entities,
        phrases=phrase_rows,
        phrase_found=[[span is not None for span in e.phrase_spans] for e in encoded],
        n_truncated=sum(e.truncated for e in encoded),
    )


def placeholder_text_features(instances: Sequence[Instance], config: TextEncoderConfig = TextEncoderConfig(),
                              phrases: Sequence[Sequence[str]] | None = None) -> FrozenTextFeatures:
    """What :func:`compute_frozen_text_features` returns, without running the encoder: zero states of
    its width, with the same ``phrase_found`` and truncations (the tokenizer alone decides those).
    For ``joint`` training, whose text node features come from the live encoder for every batch."""
    tokenizer, backbone, _ = load_frozen_backbone(config.model)
    width = int(backbone.config.hidden_size)
    marker_tokenizer = EntityMarkerTokenizer(tokenizer, config.max_length)
    encoded = [marker_tokenizer.encode_instance(instance, phrases[i] if phrases is not None else ())
               for i, instance in enumerate(instances)]
    found = [[span is not None for span in e.phrase_spans] for e in encoded]
    return FrozenTextFeatures(entities=torch.zeros((len(encoded), 2, width)),
                              phrases=[torch.zeros((sum(row), width)) for row in found], phrase_found=found,
                              n_truncated=sum(e.truncated for e in encoded))


class SentenceEmbedder:
    """Sentence embeddings as sentence-transformers computes all-MiniLM-L6-v2's: mean of the last
    hidden states over real tokens, then L2-normalised. Used for captions, object phrases, entity
    names and LLM-selected phrases."""

    def __init__(self, model: str, max_length: int = 256, batch_size: int = 64, device: str = "cpu") -> None:
        self.tokenizer, self.backbone, self.identity = load_frozen_backbone(model, str(device))
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device

    @property
    def dimension(self) -> int:
        return int(self.backbone.config.hidden_size)

    @torch.inference_mode()
    def embed(self, texts: Sequence[str], show_progress: bool = False, desc: str = "embed") -> torch.Tensor:
        """``[len(texts), d]`` unit vectors (an empty text embeds ``[CLS] [SEP]`` like any other)."""
        result = torch.zeros((len(texts), self.dimension))
        if not texts:
            return result
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in tqdm(range(0, len(order), self.batch_size), desc=desc, disable=not show_progress):
            rows = order[start:start + self.batch_size]
            batch = self.tokenizer(
                [texts[i] for i in rows], padding=True, truncation=True,
                max_length=self.max_length, return_tensors="pt",
            ).to(self.device)
            hidden = self.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            result[rows] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu()
        return result


def cached_text_features(
    data_dir: str | Path,
    split: str,
    instances: Sequence[Instance],
    config: TextEncoderConfig = TextEncoderConfig(),
    cache: FeatureCache | None = None,
    phrases: Sequence[Sequence[str]] | None = None,
    data_file: str | Path | None = None,
) -> FrozenTextFeatures:
    """:func:`compute_frozen_text_features` of ``instances`` of ``split``, through the feature cache
    (whose device, batch size and progress bars compute a miss).

    The key holds the model identity (weights sha256), marker scheme, max length, the split
    file's sha256 (``data_file``, default the MNRE file of ``split`` under ``data_dir``), which
    instances (their indices) and the phrases asked for.
    """
    key = {
        "model": load_frozen_backbone(config.model)[2],
        "marker_scheme": CODE_VERSIONS["markers"],
        "max_length": config.max_length,
        "data_file": files_sha256([Path(data_file) if data_file is not None else split_path(data_dir, split)]),
        "instances": digest({"indices": [instance.index for instance in instances]}),
        "phrases": digest({"phrases": [list(p) for p in phrases]}) if phrases is not None else None,
    }

    active = cache or FeatureCache(enabled=False)

    def compute() -> dict:
        features = compute_frozen_text_features(instances, config, phrases, active.progress, active.batch_size,
                                                 active.device)
        return {"entities": features.entities, "phrases": features.phrases,
                "phrase_found": features.phrase_found, "n_truncated": features.n_truncated}

    payload = active.load_or_compute("text", split, key, compute)
    return FrozenTextFeatures(payload["entities"], payload["phrases"], payload["phrase_found"], payload["n_truncated"])
