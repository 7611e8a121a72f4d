"""The fit task of stage 1: fine-tune the entity-marker text encoder with a linear relation head.

The fine-tuned encoder is the text side of every model of stage 2: its frozen states at the
entity start markers become the head and tail node features (and its span means the text-LLM
node features). The encoder with its head (:class:`~vmhan_lib.model.text_encoder.EncoderClassifier`)
is itself a model, the *fine-tuned text-only* model, whose run record is written like any other.
The exported model is a Hugging Face model directory, ``encoder/`` in the checkpoint folder,
loadable as ``features.text.model``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from vmhan_lib.data.mnre import Instance, RelationVocab
from vmhan_lib.features.config import TextEncoderConfig
from vmhan_lib.data.markers import EncodedPair, EntityMarkerTokenizer, TokenizedBatch
from vmhan_lib.weights import resolve_text_model
from vmhan_lib.model.text_encoder import EncoderClassifier, EntityMarkerEncoder
from vmhan_lib.train.fit import LazyBatches, SplitPredictions

ENCODER_DIR = "encoder"


def length_bucketed_batches(lengths: Sequence[int], batch_size: int, generator: torch.Generator,
                            bucket_batches: int = 50) -> list[torch.Tensor]:
    """Random batches of similar length: shuffle, sort each chunk of ``bucket_batches`` batches by
    length, cut it into batches, shuffle the batch order. Less padding, same randomness in expectation."""
    order = torch.randperm(len(lengths), generator=generator)
    chunk = batch_size * bucket_batches
    batches = []
    for start in range(0, len(order), chunk):
        piece = order[start:start + chunk]
        piece = piece[torch.argsort(torch.tensor([lengths[i] for i in piece.tolist()]), stable=True)]
        batches.extend(piece.split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def exported_encoder_dir(checkpoint_dir: Path) -> Path:
    """Where :meth:`EncoderTask.export` writes the encoder of a checkpoint folder."""
    return checkpoint_dir / ENCODER_DIR


DIGEST_FILE = "run_digest.txt"
"""Beside the exported encoder: the digest of the identity of the run that trained it."""


def encoder_ready(checkpoint_dir: Path, digest: str) -> bool:
    """Whether ``checkpoint_dir`` holds the encoder exported by the run whose identity has ``digest``."""
    marker = exported_encoder_dir(checkpoint_dir) / DIGEST_FILE
    return marker.is_file() and marker.read_text(encoding="utf-8").strip() == digest


def save_encoder(encoder: EntityMarkerEncoder, tokenizer: PreTrainedTokenizerBase, target: Path, digest: str) -> Path:
    """Write ``encoder``'s backbone and ``tokenizer`` as a Hugging Face model directory ``target``,
    atomically (temp dir, then rename); loadable as ``features.text.model``. ``digest`` (of the
    identity of the run that trained it) goes beside, in :data:`DIGEST_FILE`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    encoder.backbone.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / DIGEST_FILE).write_text(digest + "\n", encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


class EncoderTask:
    """Fine-tune ``text_config.model`` with a head over ``splits`` (``{"train", "val", "test"}`` instances)."""

    def __init__(self, splits: dict[str, Sequence[Instance]], vocab: RelationVocab, text_config: TextEncoderConfig,
                 batch_size: int, eval_batch_size: int, dropout: float, device: torch.device) -> None:
        self.text_config = text_config
        self.num_relations = len(vocab)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.dropout = dropout
        self.device = device
        self.hf_tokenizer = AutoTokenizer.from_pretrained(resolve_text_model(text_config.model).source)
        self.tokenizer = EntityMarkerTokenizer(self.hf_tokenizer, text_config.max_length)
        self.encoded: dict[str, list[EncodedPair]] = {
            split: [self.tokenizer.encode_instance(x) for x in rows] for split, rows in splits.items()
        }
        self.labels = {split: vocab.ids([x.relation for x in rows]) for split, rows in splits.items()}
        self.indices = {split: [x.index for x in rows] for split, rows in splits.items()}
        self._train_labels = torch.tensor(self.labels["train"])

    def build_model(self) -> EncoderClassifier:
        return EncoderClassifier(EntityMarkerEncoder.from_pretrained(self.text_config.model), self.num_relations,
                                 self.dropout)

    def train_batches(self, epoch_seed: int) -> LazyBatches:
        lengths = [len(pair.input_ids) for pair in self.encoded["train"]]
        return LazyBatches(length_bucketed_batches(lengths, self.batch_size, torch.Generator().manual_seed(epoch_seed)),
                           self._collate)

    def _collate(self, chosen: torch.Tensor) -> tuple[TokenizedBatch, torch.Tensor]:
        inputs = self.tokenizer.collate([self.encoded["train"][i] for i in chosen]).to(self.device)
        return inputs, self._train_labels[chosen].to(self.device)

    def parameter_groups(self, model: torch.nn.Module) -> list[dict[str, Any]]:
        return [{"params": list(model.parameters())}]  # one group, at train_config.lr

    def loss(self, model: EncoderClassifier, batch: tuple[TokenizedBatch, torch.Tensor]) -> dict[str, torch.Tensor]:
        inputs, labels = batch
        logits = model(inputs.input_ids, inputs.attention_mask, inputs.entity_positions)
        return {"total": nn.functional.cross_entropy(logits, labels)}

    @torch.no_grad()
    def predict(self, model: EncoderClassifier, split: str) -> SplitPredictions:
        model.eval()
        pairs = self.encoded[split]
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i].input_ids))  # length-sorted: less padding
        out = torch.zeros((len(pairs), model.head.out_features))
        for start in range(0, len(order), self.eval_batch_size):
            chosen = order[start:start + self.eval_batch_size]
            batch = self.tokenizer.collate([pairs[i] for i in chosen]).to(self.device)
            out[chosen] = model(batch.input_ids, batch.attention_mask, batch.entity_positions).softmax(-1).cpu()
        return SplitPredictions(out)

    def export(self, model: EncoderClassifier, checkpoint_dir: Path, digest: str, config: dict[str, Any]) -> dict[str, Any]:
        """Write the fine-tuned encoder as a model directory (:func:`save_encoder`), marked with ``digest``."""
        target = save_encoder(model.encoder, self.hf_tokenizer, exported_encoder_dir(checkpoint_dir), digest)
        return {"encoder_dir": str(target)}
