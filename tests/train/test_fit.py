"""The one fit loop, on the hypergraph task (stage 2); the encoder task has its own test file."""

from __future__ import annotations

from dataclasses import replace
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import vmhan_lib.train.fit as fit_module
from tests.factories import TINY, random_split, sentence_places
from vmhan_lib.data.mnre import RelationVocab
from vmhan_lib.hypergraph.batch import collate_hypergraphs
from vmhan_lib.metrics import score
from vmhan_lib.model.losses import vmhan_loss
from vmhan_lib.model.vmhan import build_model
from vmhan_lib.config import RunConfig, TrainConfig, run_config
from vmhan_lib.config_tree import ConfigError
from vmhan_lib.train.execution import Execution
from vmhan_lib.train.fit import NonFiniteTrainingError, fit, start_training, train_step
from vmhan_lib.train.hypergraph_task import HypergraphTask, SplitNodes
from vmhan_lib.train.records import read_predictions

VOCAB = RelationVocab(("None", "a", "b", "c"))


@pytest.fixture(scope="module")
def data() -> dict[str, SplitNodes]:
    return {"train": random_split(96, 0), "val": random_split(40, 1), "test": random_split(50, 2)}


def _run(tmp: Path, data: dict[str, SplitNodes], epochs: int = 3, execution: Execution = Execution(),
         task: HypergraphTask | None = None) -> dict:
    config = TrainConfig(epochs=epochs, batch_size=16, lr=1e-2)
    task = task or HypergraphTask(TINY, data, config.batch_size, 64, torch.device("cpu"))
    return fit(name="VM-HAN (Ours)", task=task, train_config=config, vocab=VOCAB, seed=3, run_dir=tmp / "run",
               checkpoint_dir=tmp / "ckpt", config_record={"seed": 3, "model": {"hidden": TINY.hidden}, "epochs": epochs},
               extra_record={"build": {"test": {"n_instances": 50}}}, progress=False, execution=execution)


def test_run_writes_record_and_predictions_consistent_with_scores(tmp_path: Path, data) -> None:
    record = _run(tmp_path, data)
    assert record["complete"] and [row["epoch"] for row in record["epochs"]] == [1, 2, 3]
    assert record["dev"] == max((row["dev"] for row in record["epochs"]), key=lambda d: d["f1"])
    assert record["config"] == {"seed": 3, "model": {"hidden": 8}, "epochs": 3} and record["build"]["test"]["n_instances"] == 50
    assert {"git_revision", "packages", "device", "execution"} <= set(record)
    assert record["execution"]["device"] == "cpu" and record["execution"]["autocast"] is None
    assert record["execution"]["threads"] == torch.get_num_threads() and record["execution"]["tf32"] is False
    # the resumable state is deleted once the record is written; the exported best model stays
    assert (tmp_path / "ckpt" / "best.pt").is_file() and not (tmp_path / "ckpt" / "state.pt").exists()
    _run(tmp_path / "kept", data, epochs=1, execution=Execution(keep_state=True))
    assert (tmp_path / "kept" / "ckpt" / "state.pt").is_file()
    predictions = read_predictions(tmp_path / "run")
    assert [p.index for p in predictions] == data["test"].indices
    for p in predictions:
        assert sum(p.probabilities) == pytest.approx(1.0, abs=1e-3) and p.variance is not None and p.variance > 0
        assert p.predicted == VOCAB.labels[max(range(4), key=lambda i: p.probabilities[i])]
    rescored = score([p.gold for p in predictions], [p.predicted for p in predictions]).as_dict()
    assert rescored == pytest.approx(record["test"])
    assert record["epochs"][-1]["train_loss"]["total"] < record["epochs"][0]["train_loss"]["total"]
    assert set(record["epochs"][0]["train_loss"]) == {"classification", "reconstruction", "kl", "total"}


def test_same_seed_same_result(tmp_path: Path, data) -> None:
    a = _run(tmp_path / "a", data)
    b = _run(tmp_path / "b", data)
    assert a["test"] == b["test"] and [r["dev"] for r in a["epochs"]] == [r["dev"] for r in b["epochs"]]
    assert (tmp_path / "a/run/test_predictions.jsonl").read_text() == (tmp_path / "b/run/test_predictions.jsonl").read_text()


def test_interrupted_run_resumes_to_the_same_result(tmp_path: Path, data, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = _run(tmp_path / "ref", data)
    calls = {"n": 0}
    original = fit_module.scores_of

    def interrupt_on_second_dev_eval(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(fit_module, "scores_of", interrupt_on_second_dev_eval)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "cut", data)
    assert not (tmp_path / "cut" / "run" / "record.json").exists()
    monkeypatch.setattr(fit_module, "scores_of", original)
    resumed = _run(tmp_path / "cut", data)
    assert [r["dev"] for r in resumed["epochs"]] == [r["dev"] for r in reference["epochs"]]
    assert resumed["test"] == reference["test"]
    ref_lines = (tmp_path / "ref" / "run" / "test_predictions.jsonl").read_text()
    assert (tmp_path / "cut" / "run" / "test_predictions.jsonl").read_text() == ref_lines


class _StopAtStep(HypergraphTask):
    """Raises (a killed process) at the ``stop_at``-th training step of its life, once."""

    def __init__(self, data: dict[str, SplitNodes], stop_at: int) -> None:
        super().__init__(TINY, data, 16, 64, torch.device("cpu"))
        self.steps, self.stop_at = 0, stop_at

    def loss(self, model, batch):
        self.steps += 1
        if self.steps == self.stop_at:
            raise KeyboardInterrupt
        return super().loss(model, batch)


def test_a_run_interrupted_mid_epoch_resumes_to_the_uninterrupted_predictions(tmp_path: Path, data) -> None:
    """Issue 26: killed at step 3 of 6 of epoch 2 (dropout has drawn from the RNG since the last save),
    resumed from epoch 1's state: the same dev curve, scores and test predictions, byte for byte."""
    reference = _run(tmp_path / "ref", data)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "cut", data, task=_StopAtStep(data, stop_at=6 + 3))
    assert not (tmp_path / "cut" / "run" / "record.json").exists()
    assert torch.load(tmp_path / "cut" / "ckpt" / "state.pt", weights_only=False)["curve"][-1]["epoch"] == 1
    torch.manual_seed(999), random.seed(999), np.random.seed(999)  # another process: other random states
    resumed = _run(tmp_path / "cut", data)
    assert [r["dev"] for r in resumed["epochs"]] == [r["dev"] for r in reference["epochs"]]
    assert resumed["test"] == reference["test"]
    ref_lines = (tmp_path / "ref" / "run" / "test_predictions.jsonl").read_text()
    assert (tmp_path / "cut" / "run" / "test_predictions.jsonl").read_text() == ref_lines


@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter")
def test_a_saved_state_resumes_onto_another_device(tmp_path: Path, data) -> None:
    """Issue 26: the state was loaded with ``map_location=<the run's device>``, so on a GPU the CPU RNG
    state landed there and ``torch.set_rng_state`` raised; ``meta`` stands in for the GPU."""
    _run(tmp_path, data, epochs=1, execution=Execution(keep_state=True))
    path = tmp_path / "ckpt" / "state.pt"
    saved = torch.load(path, weights_only=False)
    meta = torch.device("meta")
    task = HypergraphTask(TINY, data, 16, 64, meta)
    model, optimizer, scheduler = start_training(task, TrainConfig(epochs=1, batch_size=16, lr=1e-2), 3, meta)
    torch.manual_seed(12345)
    curve, best_f1, best_state = fit_module._restore(path, saved["digest"], model, optimizer, scheduler, meta)
    assert curve == saved["curve"] and best_f1 == saved["best_f1"]
    assert torch.equal(torch.get_rng_state(), saved["torch_rng"])  # restored as the CPU tensor torch wants
    moments = optimizer.state[next(model.parameters())]
    assert moments["exp_avg"].device == meta and moments["step"].device.type == "cpu"  # AdamW's own policy
    assert {t.device.type for t in best_state.values()} == {"cpu"}
    assert scheduler.last_epoch == saved["scheduler"]["last_epoch"]


def test_bf16_autocast_trains_and_evaluates_under_autocast_where_asked(tmp_path: Path, data) -> None:
    """``precision=bf16`` runs every forward pass under bf16 autocast (here on the CPU, which torch
    supports); ``auto`` on the CPU is fp32, as the committed runs."""
    seen = []

    class Watched(HypergraphTask):
        def loss(self, model, batch):
            seen.append(torch.is_autocast_enabled("cpu"))
            return super().loss(model, batch)

    task = Watched(TINY, data, 16, 64, torch.device("cpu"))
    record = _run(tmp_path / "bf16", data, epochs=1, execution=Execution(precision="bf16"), task=task)
    assert seen and all(seen) and record["execution"]["autocast"] == "bfloat16"
    assert all(math.isfinite(v) for v in record["epochs"][0]["train_loss"].values())
    assert 0 <= record["test"]["f1"] <= 1 and not torch.is_autocast_enabled("cpu")
    seen.clear()
    _run(tmp_path / "auto", data, epochs=1, task=Watched(TINY, data, 16, 64, torch.device("cpu")))
    assert seen and not any(seen)


def test_a_changed_configuration_never_resumes_an_old_state(tmp_path: Path, data) -> None:
    _run(tmp_path / "old", data, epochs=1, execution=Execution(keep_state=True))
    (tmp_path / "old" / "run" / "record.json").unlink()  # as if the run had stopped after its state was saved
    changed = _run(tmp_path / "old", data, epochs=2)
    fresh = _run(tmp_path / "fresh", data, epochs=2)
    assert [r["epoch"] for r in changed["epochs"]] == [1, 2]
    assert [r["dev"] for r in changed["epochs"]] == [r["dev"] for r in fresh["epochs"]]


def test_bad_device_names_allowed_values() -> None:
    with pytest.raises(ValueError, match="allowed: auto, cpu, cuda"):
        RunConfig(device="tpu")


def test_train_step_is_one_clipped_optimiser_step_on_the_eq12_loss(data) -> None:
    # plain SGD: Adam's first step is blind to gradient scale, so clipping would go unseen
    torch.manual_seed(0)
    model = build_model(TINY)
    reference = build_model(TINY)
    reference.load_state_dict(model.state_dict())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    reference_optimizer = torch.optim.SGD(reference.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5)
    batch = collate_hypergraphs(data["train"].nodes[:16], TINY.hypergraph, torch.tensor(data["train"].labels[:16]))
    model.eval(), reference.eval()  # no dropout: both models see the same function

    losses = train_step(model, optimizer, scheduler, vmhan_loss(model(batch), batch.labels, TINY), max_grad_norm=0.1)

    expected = vmhan_loss(reference(batch), batch.labels, TINY)
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


def test_hypergraph_batches_cover_train_once_per_epoch_in_seeded_order(data) -> None:
    task = HypergraphTask(TINY, data, 16, 64, torch.device("cpu"))
    batches = list(task.train_batches(7))
    assert len(batches) == len(task.train_batches(7)) == 6
    assert sum(b.batch_size for b in batches) == 96
    again = [b.labels for b in task.train_batches(7)]
    other = [b.labels for b in task.train_batches(8)]
    assert all(torch.equal(a, b) for a, b in zip(again, [b.labels for b in batches]))
    assert not all(torch.equal(a, b) for a, b in zip(other, again))


def test_sentence_scope_batches_whole_sentences_and_predicts_every_pair_in_split_order(tmp_path: Path, data) -> None:
    places = {split: sentence_places(len(part.nodes), seed) for seed, (split, part) in enumerate(data.items())}
    # interleave the sentences of test, so split order and sentence order differ
    places["test"] = [(sentence % 7, head, tail) for sentence, head, tail in places["test"]]
    sentence_data = {split: replace(part, places=places[split]) for split, part in data.items()}
    config = TINY.with_hypergraph(scope="sentence")
    task = HypergraphTask(config, sentence_data, 16, 64, torch.device("cpu"))
    batches = list(task.train_batches(7))
    assert sum(len(b.labels) for b in batches) == 96 and len(batches) <= 6  # ceil(96 / 16) steps at most
    assert sum(b.batch_size for b in batches) == len({s for s, _, _ in places["train"]})
    model = build_model(config.sized(12, 10, 4))
    by_pair = task.predict(model, "test").probabilities
    for i in (0, 13, 49):  # the same pair alone in its sentence's graph gives its row
        sentence = [p for p, place in enumerate(places["test"]) if place[0] == places["test"][i][0]]
        alone = HypergraphTask(config, {**sentence_data, "test": replace(
            sentence_data["test"], nodes=[data["test"].nodes[p] for p in sentence],
            labels=[data["test"].labels[p] for p in sentence], indices=sentence,
            places=[places["test"][p] for p in sentence])}, 16, 64, torch.device("cpu")).predict(model, "test")
        torch.testing.assert_close(by_pair[i], alone.probabilities[sentence.index(i)], atol=1e-6, rtol=0)
    record = fit(name="VM-HAN (Ours)", task=task, train_config=TrainConfig(epochs=2, batch_size=16, lr=1e-2),
                 vocab=VOCAB, seed=3, run_dir=tmp_path / "run", checkpoint_dir=tmp_path / "ckpt", config_record={},
                 progress=False)
    assert [p.index for p in read_predictions(tmp_path / "run")] == data["test"].indices and record["complete"]
    with pytest.raises(ValueError, match="needs the sentence of every pair"):
        HypergraphTask(config, data, 16, 64, torch.device("cpu"))


def test_an_empty_split_is_refused() -> None:
    with pytest.raises(ValueError, match="without instances"):
        SplitNodes([], [], [])


def test_a_non_finite_loss_stops_the_run_naming_it_and_records_nothing(tmp_path: Path, data) -> None:
    """Issue 22: a run whose loss turns non-finite is never recorded as complete."""
    poisoned = dict(data)
    first = data["train"].nodes[0]
    poisoned["train"] = SplitNodes([replace(first, text_features=torch.full_like(first.text_features, float("nan"))),
                                    *data["train"].nodes[1:]], data["train"].labels, data["train"].indices)
    with pytest.raises(NonFiniteTrainingError, match=r"^VM-HAN \(Ours\) seed 3: the loss is nan at step \d+ of "
                                                     r"epoch 1; likely causes: a learning rate too high"):
        _run(tmp_path, poisoned)
    assert not (tmp_path / "run" / "record.json").exists()


def test_values_that_cannot_be_meant_are_refused_when_the_configuration_is_read() -> None:
    for field, value in (("train.lr", "inf"), ("train.lr", "nan"), ("train.weight_decay", "nan"),
                         ("encoder_train.lr", "inf"), ("model.lambda_kl", "nan"), ("model.lambda_rec", "inf"),
                         ("train.max_grad_norm", "nan")):
        with pytest.raises(ConfigError, match=f"^{field}: must be a finite number"):
            run_config("tiny", overrides={field: value})
    with pytest.raises(ConfigError, match="^data.max_instances: must be >= 1 or None, got 0$"):
        run_config("tiny", overrides={"data.max_instances": 0})
