"""Joint (end-to-end) training: the live encoder's features, the Eq. 12 loss over encoder and model,
every variant, and a joint run through the runner (real all-MiniLM-L6-v2, tiny MNRE files)."""

from __future__ import annotations

import copy
import math
import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import write_tiny_mnre
from tests.factories import sentence_split
from vmhan_lib.analysis.case_study import CaseStudyExplorer
from vmhan_lib.analysis.fit_gap import fit_gap_rows
from vmhan_lib.analysis.visual_shuffle import shuffle_rows
from vmhan_lib.config import TrainConfig, run_config
from vmhan_lib.data.captions import CAPTIONERS
from vmhan_lib.data.mnre import load_mnre, load_relation_vocab
from vmhan_lib.features.config import TextEncoderConfig
from vmhan_lib.features.text_encoder import compute_frozen_text_features
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.text_encoder import EntityMarkerEncoder
from vmhan_lib.model.variants import VARIANTS, variant_config
from vmhan_lib.model.vmhan import build_model
from vmhan_lib.train.checkpoints import checkpoint_features, checkpoint_inputs, load_best_checkpoint, model_from_checkpoint
from vmhan_lib.train.fit import start_training, train_step
from vmhan_lib.train.hypergraph_task import predict_nodes
from vmhan_lib.train.joint_task import JointTask
from vmhan_lib.train.records import read_predictions, read_record
from vmhan_lib.train.jobs import RunPaths, table_jobs
from vmhan_lib.train.runner import run_jobs

MINILM_WIDTH = 384
SPANS = {"train": [["met"], ["met", "at"], [], ["in"]], "val": [["and"]], "test": [["joins"], []]}
"""Text-LLM spans per instance of the tiny MNRE files: 0-2 per instance, so the batch pads them."""
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = write_tiny_mnre(tmp_path_factory.mktemp("joint") / "mnre")
    vocab = load_relation_vocab(root)
    instances = {s: load_mnre(root, s, vocab) for s in SPANS}
    data = {s: sentence_split(instances[s], SPANS[s], vocab, seed=i, d_text=MINILM_WIDTH)
            for i, s in enumerate(SPANS)}
    base = ModelConfig(hidden=16, heads=2).sized(MINILM_WIDTH, data["train"].nodes[0].visual_features.shape[1], len(vocab))
    return {"root": root, "vocab": vocab, "instances": instances, "data": data, "base": base}


def _task(tiny: dict, variant: str = "VM-HAN (Ours)", encoder_lr: float = 1e-4) -> JointTask:
    return JointTask(variant_config(variant, tiny["base"]), tiny["data"], tiny["instances"],
                     TextEncoderConfig(max_length=32), batch_size=4, eval_batch_size=8, encoder_lr=encoder_lr, device=CPU)


def test_live_features_equal_the_frozen_feature_path_for_the_same_weights(tiny: dict) -> None:
    task = _task(tiny)
    model = task.build_model().eval()
    batch = task.collate("train", [0, 1, 2, 3])
    with torch.no_grad():
        live = model.text_features(batch)  # [4, N_t, 384]
    assert live.shape == batch.graphs.text_features.shape == (4, 4, MINILM_WIDTH)  # head, tail, up to 2 spans
    # the two-stage path: frozen features computed in their own (length-sorted) batches
    frozen = compute_frozen_text_features(tiny["instances"]["train"], TextEncoderConfig(max_length=32), SPANS["train"],
                                          show_progress=False)
    for b, spans in enumerate(SPANS["train"]):
        expected = torch.cat([frozen.entities[b], frozen.phrases[b]])  # [2 + m_b, 384]
        assert frozen.phrases[b].shape[0] == len(spans)
        torch.testing.assert_close(live[b, : 2 + len(spans)], expected, atol=1e-5, rtol=1e-4)
        assert not live[b, 2 + len(spans):].any()  # padded slots stay zero, as the collated hypergraph's
    assert not torch.allclose(live[0, 0], live[0, 1])  # head and tail are different markers


def test_joint_training_lowers_the_eq12_loss_and_trains_the_encoder(tiny: dict) -> None:
    task = _task(tiny, encoder_lr=1e-4)
    config = TrainConfig(epochs=10, batch_size=4, lr=1e-2, encoder_lr=1e-4, warmup_ratio=0.0)
    model, optimizer, scheduler = start_training(task, config, 0, CPU)
    encoder_group, graph_group = optimizer.param_groups
    assert (encoder_group["initial_lr"], graph_group["initial_lr"]) == (1e-4, 1e-2)
    assert sum(p.numel() for p in encoder_group["params"]) == sum(p.numel() for p in model.encoder.parameters())
    # the fresh part is exactly the two-stage model: only the encoder is added (frozen there)
    assert sum(p.numel() for p in graph_group["params"]) == sum(p.numel() for p in build_model(task.config).parameters())
    initial = {name: value.clone() for name, value in model.encoder.state_dict().items()}
    batch = task.collate("train", [0, 1, 2, 3])

    def eval_loss() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            return {name: value.item() for name, value in task.loss(model, batch).items()}

    before = eval_loss()
    assert set(before) == {"classification", "reconstruction", "kl", "total"}
    for _ in range(8):
        model.train()
        losses = train_step(model, optimizer, scheduler, task.loss(model, batch), config.max_grad_norm)
        assert all(math.isfinite(v) for v in losses.values())
    after = eval_loss()
    assert after["total"] < 0.7 * before["total"], (before, after)
    changed = [name for name, value in model.encoder.state_dict().items() if not torch.equal(value, initial[name])]
    assert any("encoder.layer.5" in name for name in changed)  # the last transformer layer moved
    assert any("word_embeddings" in name for name in changed)  # and the gradient reached the embeddings


@pytest.fixture(scope="module")
def two_layer_minilm() -> EntityMarkerEncoder:
    """The real all-MiniLM-L6-v2 cut to its first two layers: the variant test checks each variant's
    wiring with the encoder, not the encoder (the tests above use all six layers)."""
    encoder = EntityMarkerEncoder.from_pretrained("all-MiniLM-L6-v2")
    encoder.backbone.encoder.layer = torch.nn.ModuleList(encoder.backbone.encoder.layer[:2])
    encoder.backbone.config.num_hidden_layers = 2
    return encoder


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_builds_and_takes_a_joint_step(tiny: dict, variant: str, two_layer_minilm: EntityMarkerEncoder,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EntityMarkerEncoder, "from_pretrained", classmethod(lambda cls, model: copy.deepcopy(two_layer_minilm)))
    task = _task(tiny, variant)
    config = TrainConfig(epochs=1, batch_size=4, lr=1e-3, encoder_lr=1e-4)
    model, optimizer, scheduler = start_training(task, config, 0, CPU)
    query = model.encoder.backbone.encoder.layer[-1].attention.self.query.weight
    before = query.detach().clone()
    batch = next(iter(task.train_batches(0)))
    losses = train_step(model, optimizer, scheduler, task.loss(model, batch), config.max_grad_norm)
    assert all(math.isfinite(v) for v in losses.values())
    assert not torch.equal(query.detach(), before)
    predictions = task.predict(model, "test")
    assert predictions.probabilities.shape == (2, len(tiny["vocab"]))
    torch.testing.assert_close(predictions.probabilities.sum(-1), torch.ones(2))
    assert (predictions.variances is None) == (not task.config.variational)


def test_spans_the_tokenizer_cannot_find_are_refused(tiny: dict) -> None:
    data = dict(tiny["data"])
    data["val"] = sentence_split(tiny["instances"]["val"], [["nowhere"]], tiny["vocab"], seed=0, d_text=MINILM_WIDTH)
    with pytest.raises(ValueError, match=r"val instance 0: text-LLM node\(s\) \['nowhere'\] not found"):
        JointTask(tiny["base"], data, tiny["instances"], TextEncoderConfig(max_length=32), 4, 8, 1e-4, CPU)


def test_a_joint_run_through_the_runner_writes_complete_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_tiny_mnre(tmp_path / "mnre")
    for name in CAPTIONERS:  # the case-study explorer shows every captioner's caption
        for split in SPANS:
            target = root / "captions" / f"{name}_{split}.txt"
            if not target.exists():
                shutil.copyfile(root / "captions" / f"qwen_{split}.txt", target)
    config = run_config("tiny", data_dir=str(root), overrides={
        "experiment.training": "joint", "train.epochs": 1, "train.batch_size": 2, "device": "cpu",
        "experiment.variants": "VM-HAN (Ours),Text-only", "data.captioners": "qwen",
        "features.visual_selection_captioner": "qwen", "features.cache_dir": str(tmp_path / "cache"), "model.hidden": 16,
    })
    paths = RunPaths(tmp_path / "runs", tmp_path / "ckpt")
    records = run_jobs(config, table_jobs(config), paths=paths, progress=False)
    assert [r["variant"] for r in records] == ["VM-HAN (Ours)", "Text-only"]
    assert not list((tmp_path / "cache").glob("text-*"))  # issue 26: no frozen text features, only placeholders
    for record in records:
        assert record["complete"] and (record["training"], record["text_encoder"]) == ("joint", "all-MiniLM-L6-v2")
        assert record["run_id"].startswith("tiny__joint-all-minilm-l6-v2__") and record["epochs"][0]["epoch"] == 1
        assert record["identity"]["training"] == "joint" and record["config"]["run"]["train"]["encoder_lr"] == 2e-5
        run_dir = paths.runs / record["run_id"]
        assert read_record(run_dir)["test"] == record["test"] and len(read_predictions(run_dir)) == 2
        assert (paths.checkpoints / record["run_id"] / "best.pt").is_file()
        assert (Path(record["encoder_dir"]) / "config.json").is_file()
    assert record["n_parameters"] > 22_000_000  # the encoder is part of the trained model
    assert not any(p.name.startswith("encoder") for p in paths.checkpoints.iterdir())  # no stage 1
    assert not any("fine-tuned-encoder" in p.name for p in paths.runs.iterdir())
    again = run_jobs(config, table_jobs(config), paths=paths, progress=False)  # complete: read, not retrained
    assert [r["created_utc"] for r in again] == [r["created_utc"] for r in records]
    # the exported checkpoint reads as a two-stage one: frozen features of the trained encoder + the graph part
    # reproduce the recorded test predictions (what the case studies load)
    best = paths.checkpoints / records[0]["run_id"] / "best.pt"
    explorer = CaseStudyExplorer.from_checkpoint(best)
    recorded = torch.tensor([p.probabilities for p in read_predictions(paths.runs / records[0]["run_id"])])
    torch.testing.assert_close(explorer.probabilities, recorded, atol=1e-4, rtol=0)
    # the analyses rebuild a joint model's inputs with its own exported encoder (not the pretrained one): its
    # probabilities on them are the recorded ones, and so are the fit gap's and the visual-shuffle test's scores
    checkpoint = load_best_checkpoint(best)
    rebuilt = checkpoint_inputs(config, checkpoint_features(checkpoint, best), ["test"])["test"].nodes
    model, model_config = model_from_checkpoint(checkpoint)
    torch.testing.assert_close(predict_nodes(model, rebuilt, model_config, 8, CPU).probabilities, recorded, atol=1e-4, rtol=0)
    pretrained = checkpoint_inputs(config, config.features, ["test"])["test"].nodes
    assert not torch.allclose(rebuilt[0].text_features, pretrained[0].text_features)
    monkeypatch.setattr(RunPaths, "of", classmethod(lambda cls, c: paths))
    jobs = table_jobs(config)
    for row, record in zip(fit_gap_rows(config, jobs), records, strict=True):
        assert row["dev_f1"] == pytest.approx(100 * record["dev"]["f1"])
        assert row["test_accuracy"] == pytest.approx(100 * record["test"]["accuracy"])
        assert row["test_f1"] == pytest.approx(100 * record["test"]["f1"]) and 0 <= row["train_f1"] <= 100
    for row, record in zip(shuffle_rows(config, jobs, seeds=(0,)), records, strict=True):
        assert row["f1"] == pytest.approx(100 * record["test"]["f1"])


def test_a_joint_run_exports_its_model_only_where_an_analysis_loads_it(tiny: dict, tmp_path: Path) -> None:
    """Issue 26: each MPNet joint run exported its 0.41 GiB encoder; only Table 1's rows (the visual
    shuffle, the fit gap, the case studies) or a caller that needs the model get one now."""
    from vmhan_lib.train.jobs import Job
    from vmhan_lib.train.runner import exports_model

    assert exports_model(Job("GCN", 1), False) and exports_model(Job("VM-HAN (Ours)", 0), False)
    assert not exports_model(Job("w/o V-HAN", 0), False) and exports_model(Job("w/o V-HAN", 0), True)
    assert not exports_model(Job("VM-HAN (Ours)", 0, visual_proportion=0.5), False)
    task = JointTask(tiny["base"], tiny["data"], tiny["instances"], TextEncoderConfig(max_length=32), 4, 8, 1e-4, CPU,
                     export_model=False)
    assert task.export(task.build_model(), tmp_path / "ckpt", "d" * 64, {"features": {"text": {}}}) == {}
    assert not (tmp_path / "ckpt").exists()
