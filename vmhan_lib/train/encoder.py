"""Stage 1: fine-tune the entity-marker text encoder once, with a linear relation head.

The fine-tuned encoder is the text side of every model of stage 2: its frozen states at the
entity start markers become the head and tail node features (and its span means the text-LLM
node features). The encoder with its head is itself a model: the *fine-tuned text-only* model,
whose run record is written like any other.

Maths: for the start-marker states h_h, h_t in R^d of an instance,
p(r | h, t, T) = softmax(W [dropout(h_h); dropout(h_t)] + b), W in R^{R x 2d}; loss = cross-entropy.
"""

from __future__ import annotations

import copy
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoTokenizer

from vmhan_lib.data.mnre import Instance, RelationVocab
from vmhan_lib.features.cache import key_digest
from vmhan_lib.features.config import TextEncoderConfig
from vmhan_lib.features.text_encoder import EncodedPair, EntityMarkerEncoder, EntityMarkerTokenizer, TokenizedBatch
from vmhan_lib.features.weights import resolve_text_model
from vmhan_lib.io import provenance
from vmhan_lib.metrics import score
from vmhan_lib.train.config import EncoderTrainConfig
from vmhan_lib.train.loop import (
    linear_warmup_decay,
    resolve_device,
    restore_training_state,
    save_training_state,
    seed_everything,
)
from vmhan_lib.train.records import (
    Prediction,
    is_complete,
    read_record,
    warn_if_rerun_differs,
    write_predictions,
    write_record,
)

ENCODER_DIR = "encoder"


class EncoderClassifier(nn.Module):
    """Entity-marker encoder + dropout + linear head over [h_h; h_t]."""

    def __init__(self, encoder: EntityMarkerEncoder, num_relations: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * encoder.hidden_size, num_relations)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, entity_positions: torch.Tensor) -> torch.Tensor:
        pair = self.encoder(input_ids, attention_mask, entity_positions)  # [B, 2, d]
        return self.head(self.dropout(pair.flatten(1)))  # [B, 2d] -> [B, R]


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


@torch.no_grad()
def _probabilities(
    model: EncoderClassifier, tokenizer: EntityMarkerTokenizer, pairs: Sequence[EncodedPair], batch_size: int,
    device: torch.device,
) -> torch.Tensor:
    model.eval()
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i].input_ids))  # length-sorted: less padding
    out = torch.zeros((len(pairs), model.head.out_features))
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        batch = tokenizer.collate([pairs[i] for i in chosen]).to(device)
        out[chosen] = model(batch.input_ids, batch.attention_mask, batch.entity_positions).softmax(-1).cpu()
    return out


def _scores(vocab: RelationVocab, gold: Sequence[str], probabilities: torch.Tensor) -> dict[str, Any]:
    return score(list(gold), [vocab.labels[i] for i in probabilities.argmax(-1).tolist()]).as_dict()


def encoder_train_step(
    model: EncoderClassifier, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
    batch: TokenizedBatch, labels: torch.Tensor, max_grad_norm: float,
) -> float:
    """One optimiser step of stage 1 (cross-entropy, clipped gradients); returns the loss."""
    loss = nn.functional.cross_entropy(model(batch.input_ids, batch.attention_mask, batch.entity_positions), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    return loss.item()


def finetune_text_encoder(
    *,
    splits: dict[str, Sequence[Instance]],
    vocab: RelationVocab,
    text_config: TextEncoderConfig,
    train_config: EncoderTrainConfig,
    seed: int,
    output_dir: Path,
    run_dir: Path,
    device_name: str = "auto",
    extra_config: dict[str, Any] | None = None,
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Fine-tune, select the epoch with the best dev F1, save the encoder, score test once.

    Args:
        splits: ``{"train", "val", "test"}`` instances.
        output_dir: receives ``encoder/`` (a Hugging Face model directory, loadable by
            :class:`TextEncoderConfig` ``model=<dir>``) and the resumable training state.
        run_dir: the run record of the fine-tuned text-only model.
    Returns:
        The encoder directory and the run record.

    When ``run_dir`` holds a complete record but the encoder is missing (a fresh clone: records are
    committed, checkpoints are not), the encoder is trained again with its record written to
    ``output_dir/rerun``, never over the committed one, and the two test scores are compared
    (:func:`~vmhan_lib.train.records.warn_if_rerun_differs`).
    """
    encoder_dir = output_dir / ENCODER_DIR
    committed = is_complete(run_dir)
    if committed and (encoder_dir / "config.json").is_file():
        return encoder_dir, read_record(run_dir)
    if committed:
        _, rerun = finetune_text_encoder(
            splits=splits, vocab=vocab, text_config=text_config, train_config=train_config, seed=seed,
            output_dir=output_dir, run_dir=output_dir / "rerun", device_name=device_name,
            extra_config=extra_config, progress=progress,
        )
        warn_if_rerun_differs(run_dir, rerun, "the features of stage 2 come from the retrained encoder")
        return encoder_dir, read_record(run_dir)
    device = resolve_device(device_name)
    config_record = {
        "variant": "Text-only (fine-tuned encoder)", "seed": seed, "text_encoder": text_config.__dict__,
        "encoder_train": train_config.__dict__, **(extra_config or {}),
    }
    digest = key_digest(config_record)
    seed_everything(seed)
    source = resolve_text_model(text_config.model).source
    hf_tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer = EntityMarkerTokenizer(hf_tokenizer, text_config.max_length)
    encoded = {
        split: [tokenizer.encode_instance(x) for x in tqdm(rows, desc=f"tokenise {split}", disable=not progress)]
        for split, rows in splits.items()
    }
    gold = {split: [x.relation for x in rows] for split, rows in splits.items()}
    labels = torch.tensor(vocab.ids(gold["train"]))
    model = EncoderClassifier(EntityMarkerEncoder.from_pretrained(text_config.model), len(vocab), train_config.dropout).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay)
    steps_per_epoch = math.ceil(len(encoded["train"]) / train_config.batch_size)
    scheduler = linear_warmup_decay(optimizer, steps_per_epoch * train_config.epochs, train_config.warmup_ratio)
    state_path = output_dir / "state.pt"
    curve, best_f1, best_state = restore_training_state(state_path, digest, model, optimizer, scheduler, device)
    for epoch in range(len(curve), train_config.epochs):
        model.train()
        started = time.perf_counter()
        batches = length_bucketed_batches(
            [len(pair.input_ids) for pair in encoded["train"]], train_config.batch_size,
            torch.Generator().manual_seed(seed * 1_000 + epoch),
        )
        total = 0.0
        bar = tqdm(batches, desc=f"encoder epoch {epoch + 1}", disable=not progress, leave=False)
        for step, chosen in enumerate(bar):
            batch = tokenizer.collate([encoded["train"][i] for i in chosen]).to(device)
            total += encoder_train_step(model, optimizer, scheduler, batch, labels[chosen].to(device), train_config.max_grad_norm)
            bar.set_postfix(loss=f"{total / (step + 1):.4f}")
        dev = _scores(vocab, gold["val"], _probabilities(model, tokenizer, encoded["val"], train_config.eval_batch_size, device))
        curve.append({"epoch": epoch + 1, "train_loss": {"total": total / steps_per_epoch}, "dev": dev,
                      "wall_s": time.perf_counter() - started})
        if dev["f1"] > best_f1:
            best_f1, best_state = dev["f1"], copy.deepcopy(model.state_dict())
        save_training_state(state_path, digest, model, optimizer, scheduler, curve, best_f1, best_state)
    model.load_state_dict(best_state)
    _save_encoder(model.encoder, hf_tokenizer, encoder_dir)
    probabilities = _probabilities(model, tokenizer, encoded["test"], train_config.eval_batch_size, device)
    write_predictions(run_dir, [
        Prediction(x.index, x.relation, vocab.labels[int(probabilities[i].argmax())], tuple(probabilities[i].tolist()))
        for i, x in enumerate(splits["test"])
    ])
    best_epoch = max(curve, key=lambda row: row["dev"]["f1"])
    record = {
        "run_id": run_dir.name, "variant": config_record["variant"], "seed": seed, "device": str(device),
        **provenance(config_record),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "epochs": curve, "best_epoch": best_epoch["epoch"], "dev": best_epoch["dev"],
        "test": _scores(vocab, gold["test"], probabilities),
        "train_wall_s": sum(row["wall_s"] for row in curve),
        "encoder_dir": str(encoder_dir),
        "complete": True,
    }
    write_record(run_dir, record)
    return encoder_dir, record


def _save_encoder(encoder: EntityMarkerEncoder, hf_tokenizer: Any, target: Path) -> None:
    """Write the backbone and tokenizer as a model directory, atomically (temp dir, then rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    encoder.backbone.save_pretrained(staging)
    hf_tokenizer.save_pretrained(staging)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
