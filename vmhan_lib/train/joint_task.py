r"""The fit task of ``joint`` training: the text encoder, a hypergraph model and its classifier
trained together under the joint loss of Eq. 12, as the paper (``experiment.training = joint``).

For every batch the text node features come from the *live* encoder
(:class:`~vmhan_lib.model.joint.JointModel`): x_h, x_t = the states ``[B, 2, d_text]`` at the head
and tail start markers, x_m = the mean states ``[B, M, d_text]`` over the text-LLM spans, so the loss

    L = lambda_c L_c + lambda_rec L_rec + lambda_KL L_KL                                 (Eq. 12)

with L_c = -log p(r | x_h,mu, x_h,sigma, x_t,mu, x_t,sigma) (Eq. 9), L_rec (Eq. 10) and L_KL
(Eq. 11) of :func:`~vmhan_lib.model.losses.vmhan_loss` is minimised over the encoder weights and
the fresh Eq. 4-9 network together. The visual nodes are those built for the split (cached caption
embeddings). Every Table 1 / Table 2 variant trains this way; the Text-only variant is then the
encoder fine-tuned with its head (Eq. 4's projection of x_h, x_t and the Eq. 9 classifier).

The inputs are the built :class:`~vmhan_lib.train.hypergraph_task.SplitNodes` of the pretrained
encoder (the text-LLM spans kept there are the ones the tokenizer found in the sentence; their
frozen features are not used) and the MNRE instances they came from, tokenised once with those
spans. The optimiser has two parameter groups: the encoder at ``train.encoder_lr`` (paper: 2e-5),
the rest at ``train.lr``. The exported model is the encoder as a model directory ``encoder/`` and
``best.pt``, the graph part as two-stage runs write it, its features naming that encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import AutoTokenizer

from vmhan_lib.data.mnre import Instance
from vmhan_lib.features.config import TextEncoderConfig
from vmhan_lib.data.markers import EncodedPair, EntityMarkerTokenizer
from vmhan_lib.weights import resolve_text_model
from vmhan_lib.hypergraph.batch import collate_hypergraphs
from vmhan_lib.io import atomic_torch_save
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.joint import JointBatch, JointModel
from vmhan_lib.model.losses import vmhan_loss
from vmhan_lib.model.text_encoder import EntityMarkerEncoder
from vmhan_lib.model.vmhan import build_model
from vmhan_lib.train.encoder_task import exported_encoder_dir, length_bucketed_batches, save_encoder
from vmhan_lib.train.fit import LazyBatches, SplitPredictions
from vmhan_lib.train.hypergraph_task import BEST_FILE, SplitNodes, pair_variance


class JointTask:
    """Train ``config``'s model with the encoder ``text_config.model`` end to end.

    Args:
        config: the variant's model config, sized to the encoder's width (``d_text``).
        data: ``{"train", "val", "test"}`` built nodes; ``text_names[2:]`` of each instance are its
            text-LLM spans.
        instances: the MNRE instances of each split, in the order of ``data`` (same indices).
        text_config: the pretrained encoder to start from and the subword budget.
        batch_size, eval_batch_size: instances per training step / per evaluation pass.
        encoder_lr: learning rate of the encoder's parameter group.
        device: where the batches go.
        export_model: write the trained model (:meth:`export`); ``False`` for runs no analysis loads
            (the encoder alone is 0.41 GiB for MPNet): their record is all that is kept.

    Raises:
        ValueError: ``instances`` and ``data`` disagree, or a text-LLM span of the built nodes is not
            found by the encoder's tokenizer (the nodes were built with another encoder or budget).
    """

    def __init__(self, config: ModelConfig, data: dict[str, SplitNodes], instances: dict[str, Sequence[Instance]],
                 text_config: TextEncoderConfig, batch_size: int, eval_batch_size: int, encoder_lr: float,
                 device: torch.device, export_model: bool = True) -> None:
        self.config = config
        self.export_model = export_model
        self.data = data
        self.text_config = text_config
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.encoder_lr = encoder_lr
        self.device = device
        self.hf_tokenizer = AutoTokenizer.from_pretrained(resolve_text_model(text_config.model).source)
        self.tokenizer = EntityMarkerTokenizer(self.hf_tokenizer, text_config.max_length)
        self.encoded = {split: self._encode(split, data[split], instances[split]) for split in data}
        self.labels = {split: part.labels for split, part in data.items()}
        self.indices = {split: part.indices for split, part in data.items()}
        self._train_labels = torch.tensor(data["train"].labels)

    def _encode(self, split: str, part: SplitNodes, instances: Sequence[Instance]) -> list[EncodedPair]:
        """Tokenise each instance with its text-LLM spans (only where the hypergraph keeps them)."""
        if [x.index for x in instances] != part.indices:
            raise ValueError(f"{split}: the instances are not those of the built nodes (indices differ)")
        keep_spans = self.config.hypergraph.use_text_llm
        encoded = []
        for instance, nodes in zip(instances, part.nodes):
            pair = self.tokenizer.encode_instance(instance, nodes.text_names[2:] if keep_spans else ())
            missing = [name for name, span in zip(nodes.text_names[2:], pair.phrase_spans) if span is None]
            if missing:
                raise ValueError(f"{split} instance {instance.index}: text-LLM node(s) {missing} not found by the "
                                 f"tokenizer of {self.text_config.model!r} (max_length {self.text_config.max_length}); "
                                 "build the nodes with the encoder that is trained")
            encoded.append(pair)
        return encoded

    def build_model(self) -> JointModel:
        return JointModel(EntityMarkerEncoder.from_pretrained(self.text_config.model), build_model(self.config))

    def parameter_groups(self, model: JointModel) -> list[dict[str, Any]]:
        """The pretrained encoder at ``encoder_lr``; the fresh Eq. 4-9 network at ``train_config.lr``."""
        return [{"params": list(model.encoder.parameters()), "lr": self.encoder_lr},
                {"params": list(model.graph.parameters())}]

    def train_batches(self, epoch_seed: int) -> LazyBatches:
        lengths = [len(pair.input_ids) for pair in self.encoded["train"]]
        return LazyBatches(length_bucketed_batches(lengths, self.batch_size, torch.Generator().manual_seed(epoch_seed)),
                           self._collate_train)

    def collate(self, split: str, rows: Sequence[int]) -> JointBatch:
        """The :class:`JointBatch` of instances ``rows`` of ``split``, on the task's device."""
        tokens = self.tokenizer.collate([self.encoded[split][i] for i in rows])
        labels = self._train_labels[list(rows)] if split == "train" else None
        graphs = collate_hypergraphs([self.data[split].nodes[i] for i in rows], self.config.hypergraph, labels)
        return JointBatch(tokens, graphs).to(self.device)

    def _collate_train(self, chosen: torch.Tensor) -> JointBatch:
        return self.collate("train", chosen.tolist())

    def loss(self, model: JointModel, batch: JointBatch) -> dict[str, torch.Tensor]:
        return vmhan_loss(model(batch), batch.graphs.labels, self.config)  # Eq. 12

    @torch.no_grad()
    def predict(self, model: JointModel, split: str) -> SplitPredictions:
        """Evaluation-mode probabilities ``[n, R]`` and head/tail variances ``[n]`` (variational
        models), in split order; batches are length-sorted (less padding)."""
        model.eval()
        pairs = self.encoded[split]
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i].input_ids))
        probabilities = torch.zeros((len(pairs), self.config.num_relations))
        variances = torch.zeros(len(pairs)) if self.config.variational else None
        for start in range(0, len(order), self.eval_batch_size):
            rows = order[start:start + self.eval_batch_size]
            output = model(self.collate(split, rows))
            probabilities[rows] = output.logits.softmax(-1).cpu()
            if variances is not None:
                variances[rows] = pair_variance(output).cpu()
        return SplitPredictions(probabilities, variances)

    def export(self, model: JointModel, checkpoint_dir: Path, digest: str, config: dict[str, Any]) -> dict[str, Any]:
        """``encoder/`` = the trained encoder, then ``best.pt`` = the graph part with ``config`` whose
        ``features.text.model`` names that encoder: the checkpoint reads as a two-stage one (its frozen
        features from ``encoder/`` are the live features of evaluation), e.g. for the case studies.
        Nothing without ``export_model``."""
        if not self.export_model:
            return {}
        target = save_encoder(model.encoder, self.hf_tokenizer, exported_encoder_dir(checkpoint_dir), digest)
        features = config["features"]
        exported = {**config, "features": {**features, "text": {**features["text"], "model": str(target)}}}
        atomic_torch_save({"digest": digest, "config": exported, "model": model.graph.state_dict()},
                          checkpoint_dir / BEST_FILE)
        return {"encoder_dir": str(target)}
