from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import vmhan_lib.train.loop as loop
from vmhan_lib.data.mnre import RelationVocab
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.metrics import score
from vmhan_lib.model.config import model_preset
from vmhan_lib.train.config import TrainConfig
from vmhan_lib.train.loop import SplitNodes, train_run
from vmhan_lib.train.records import read_predictions, read_record

VOCAB = RelationVocab(("None", "a", "b", "c"))


def _split(n: int, seed: int, offset: int = 0) -> SplitNodes:
    """Random hypergraphs whose head feature carries the label (learnable) plus noise."""
    g = torch.Generator().manual_seed(seed)
    nodes, labels = [], []
    for i in range(n):
        label = int(torch.randint(0, 4, (1,), generator=g))
        text = torch.randn(4, 12, generator=g)
        text[0, label] += 3.0
        n_visual = int(torch.randint(0, 5, (1,), generator=g))
        nodes.append(InstanceNodes(
            text_features=text, visual_features=torch.randn(n_visual, 10, generator=g),
            text_names=["h", "t", "x", "y"], visual_names=[f"v{j}" for j in range(n_visual)],
            n_objects=max(0, n_visual - 1), has_image=n_visual > 0,
        ))
        labels.append(label)
    return SplitNodes(nodes, labels, list(range(offset, offset + n)))


@pytest.fixture(scope="module")
def data() -> dict[str, SplitNodes]:
    return {"train": _split(96, 0), "val": _split(40, 1), "test": _split(50, 2)}


def _run(tmp: Path, data: dict[str, SplitNodes], epochs: int = 3) -> dict:
    return train_run(
        variant="VM-HAN (Ours)", model_config=model_preset("tiny"),
        train_config=TrainConfig(epochs=epochs, batch_size=16, lr=1e-2, device="cpu"),
        data=data, vocab=VOCAB, seed=3, run_dir=tmp / "run", checkpoint_dir=tmp / "ckpt", progress=False,
    )


def test_run_writes_record_and_predictions_consistent_with_scores(tmp_path: Path, data) -> None:
    record = _run(tmp_path, data)
    assert record["complete"] and [row["epoch"] for row in record["epochs"]] == [1, 2, 3]
    assert record["dev"] == max((row["dev"] for row in record["epochs"]), key=lambda d: d["f1"])
    assert record["config"]["seed"] == 3 and record["config"]["model"]["hidden"] == 8
    assert {"git_revision", "packages", "device"} <= set(record)
    predictions = read_predictions(tmp_path / "run")
    assert [p.index for p in predictions] == data["test"].indices
    for p in predictions:
        assert sum(p.probabilities) == pytest.approx(1.0, abs=1e-3) and p.variance is not None and p.variance > 0
        assert p.predicted == VOCAB.labels[max(range(4), key=lambda i: p.probabilities[i])]
    rescored = score([p.gold for p in predictions], [p.predicted for p in predictions]).as_dict()
    assert rescored == pytest.approx(record["test"])
    first_loss = record["epochs"][0]["train_loss"]["total"]
    assert record["epochs"][-1]["train_loss"]["total"] < first_loss


def test_same_seed_same_result_and_complete_runs_are_not_retrained(tmp_path: Path, data) -> None:
    a = _run(tmp_path / "a", data)
    b = _run(tmp_path / "b", data)
    assert a["test"] == b["test"] and [r["dev"] for r in a["epochs"]] == [r["dev"] for r in b["epochs"]]
    before = (tmp_path / "a" / "run" / "record.json").stat().st_mtime_ns
    assert _run(tmp_path / "a", data)["test"] == a["test"]
    assert (tmp_path / "a" / "run" / "record.json").stat().st_mtime_ns == before


def test_interrupted_run_resumes_to_the_same_result(tmp_path: Path, data, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = _run(tmp_path / "ref", data)
    calls = {"n": 0}
    original = loop.evaluate_split

    def interrupt_on_second_dev_eval(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "evaluate_split", interrupt_on_second_dev_eval)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "cut", data)
    assert not (tmp_path / "cut" / "run" / "record.json").exists()
    monkeypatch.setattr(loop, "evaluate_split", original)
    resumed = _run(tmp_path / "cut", data)
    assert [r["dev"] for r in resumed["epochs"]] == [r["dev"] for r in reference["epochs"]]
    assert resumed["test"] == reference["test"]
    ref_lines = (tmp_path / "ref" / "run" / "test_predictions.jsonl").read_text()
    assert (tmp_path / "cut" / "run" / "test_predictions.jsonl").read_text() == ref_lines


def test_bad_device_names_allowed_values() -> None:
    with pytest.raises(ValueError, match="allowed: auto, cpu, cuda"):
        TrainConfig(device="tpu")


def test_train_step_is_one_clipped_optimiser_step_on_the_eq12_loss(data) -> None:
    # plain SGD: Adam's first step is blind to gradient scale, so clipping would go unseen
    config = model_preset("tiny")
    torch.manual_seed(0)
    model = loop.build_model(config)
    reference = loop.build_model(config)
    reference.load_state_dict(model.state_dict())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    reference_optimizer = torch.optim.SGD(reference.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5)
    batch = loop.collate_hypergraphs(data["train"].nodes[:16], config.hypergraph, torch.tensor(data["train"].labels[:16]))
    model.eval(), reference.eval()  # no dropout: both models see the same function

    losses = loop.train_step(model, optimizer, scheduler, batch, config, max_grad_norm=0.1)

    expected = loop.vmhan_loss(reference(batch), batch.labels, config)
    assert losses == pytest.approx({name: value.item() for name, value in expected.items()})
    expected["total"].backward()
    norm = torch.sqrt(sum(p.grad.square().sum() for p in reference.parameters() if p.grad is not None))
    assert norm > 0.1  # so clipping matters
    for p in reference.parameters():
        if p.grad is not None:
            p.grad.mul_(0.1 / (norm + 1e-6))
    for group in reference_optimizer.param_groups:
        group["lr"] = 0.05 * 0.5  # the scheduler's factor, applied at construction
    reference_optimizer.step()
    for mine, theirs in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(mine, theirs)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.025)
