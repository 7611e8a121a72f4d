"""The controlled visual-signal study: where the signal goes, its scale and seeds, the train
subsample, the runs' names, folders and identities, and a tiny study run through the one runner."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import vmhan_lib.train.runner as runner
import vmhan_lib.train.visual_signal as vs
from tests.factories import TINY, random_split
from vmhan_lib.config import TrainConfig, preset
from vmhan_lib.config_tree import ConfigError
from vmhan_lib.data.mnre import RelationVocab
from vmhan_lib.train.hypergraph_task import SplitNodes
from vmhan_lib.train.jobs import Job, RunPaths, job_identity
from vmhan_lib.train.signal_study import STUDIES, signal_jobs, study_jobs, study_of
from vmhan_lib.train.records import read_predictions, read_record
from vmhan_lib.train.stage1 import PreparedInputs

SHAPE = dict(num_classes=3, d_text=6, d_visual=64, n_text=3)


@pytest.fixture
def data() -> dict[str, SplitNodes]:
    """Every instance with the image, 2 objects and a visual-LLM node (``n_visual=4``)."""
    return {"train": random_split(200, 0, n_visual=4, **SHAPE), "val": random_split(50, 1, n_visual=4, **SHAPE),
            "test": random_split(50, 2, n_visual=4, **SHAPE)}


def _changed_rows(before: SplitNodes, after: SplitNodes) -> list[list[int]]:
    """Per instance, the visual rows that differ (text nodes and labels checked unchanged)."""
    assert after.labels == before.labels and after.indices == before.indices
    rows = []
    for old, new in zip(before.nodes, after.nodes):
        assert torch.equal(old.text_features, new.text_features) and old.n_objects == new.n_objects
        rows.append([r for r in range(old.visual_features.shape[0])
                     if not torch.equal(old.visual_features[r], new.visual_features[r])])
    return rows


def test_the_image_arm_changes_the_image_node_only(data) -> None:
    signal = vs.with_visual_signal(data, vs.VisualSignal("image", 0.3), seed=4)
    for split in ("train", "val", "test"):
        assert _changed_rows(data[split], signal[split]) == [[0]] * len(data[split].nodes)


def test_the_object_arm_changes_one_object_node_only(data) -> None:
    signal = vs.with_visual_signal(data, vs.VisualSignal("object", 0.3), seed=4)
    changed = _changed_rows(data["test"], signal["test"])
    assert all(len(rows) == 1 and rows[0] in (1, 2) for rows in changed)  # one of the k = 2 object rows
    assert {rows[0] for rows in changed} == {1, 2}  # a random object per instance, not always the first


def test_instances_without_the_node_carry_no_signal() -> None:
    split = random_split(60, 5, **SHAPE)  # 0-4 visual nodes: some without image, some without objects
    for arm in vs.ARMS:
        changed = _changed_rows(split, vs.with_visual_signal({"train": split}, vs.VisualSignal(arm, 1.0), 0)["train"])
        has_node = [(n.has_image if arm == "image" else n.n_objects > 0) for n in split.nodes]
        assert [bool(rows) for rows in changed] == has_node and not all(has_node) and any(has_node)


def test_zero_strength_leaves_every_feature_unchanged(data) -> None:
    for arm in vs.ARMS:
        same = vs.with_visual_signal(data, vs.VisualSignal(arm, 0.0), seed=4)
        for split in data:
            assert _changed_rows(data[split], same[split]) == [[]] * len(data[split].nodes)


def test_prototypes_are_unit_vectors_repeatable_from_the_seed() -> None:
    prototypes = vs.signal_prototypes([0, 1, 2, 1], 64, seed=3)
    assert torch.allclose(prototypes.norm(dim=1), torch.ones(4))
    assert torch.equal(prototypes[1], prototypes[3])  # one vector per relation
    assert torch.equal(prototypes, vs.signal_prototypes([0, 1, 2, 1], 64, seed=3))
    assert torch.equal(prototypes[2], vs.signal_prototypes([2], 64, seed=3)[0])  # whatever the other labels
    assert not torch.equal(prototypes, vs.signal_prototypes([0, 1, 2, 1], 64, seed=4))
    assert abs(float(prototypes[0] @ prototypes[1])) < 0.5  # random directions, nearly orthogonal in 64-d


def test_the_strength_is_in_units_of_the_mean_visual_norm(data) -> None:
    norm = float(np.mean([np.linalg.norm(row) for n in data["train"].nodes for row in n.visual_features.numpy()]))
    assert vs.mean_visual_norm(data["train"]) == pytest.approx(norm, rel=1e-5)
    added = {s: torch.stack([new.visual_features[0] - old.visual_features[0] for old, new in zip(
        data["test"].nodes, vs.with_visual_signal(data, vs.VisualSignal("image", s), seed=4)["test"].nodes)])
        for s in (0.2, 0.4)}
    assert torch.allclose(added[0.4], 2 * added[0.2], atol=1e-4)  # the same prototypes and noise, twice as strong
    along = (added[0.2] * vs.signal_prototypes(data["test"].labels, 64, seed=4)).sum(dim=1)  # [n]: s * m * (1 + p.eps)
    assert float(along.mean()) == pytest.approx(0.2 * norm, rel=0.1)
    assert float(added[0.2].norm(dim=1).mean()) == pytest.approx(0.2 * norm * np.sqrt(2), rel=0.1)  # |p + eps| ~ sqrt 2


def test_train_is_cut_to_one_fixed_subsample_dev_and_test_stay_whole(data) -> None:
    cuts = [vs.with_visual_signal(data, vs.VisualSignal(arm, s, 80), seed) for arm, s, seed in
            [("image", 0.0, 0), ("image", 0.5, 1), ("object", 1.0, 2)]]
    assert [len(c["train"].nodes) for c in cuts] == [80] * 3 and len(set(tuple(c["train"].indices) for c in cuts)) == 1
    assert all(c["test"].indices == data["test"].indices and c["val"].indices == data["val"].indices for c in cuts)
    assert vs.train_subsample(10, None) == list(range(10)) == vs.train_subsample(10, 50)


def test_bad_signals_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="arm 'text' is not one of image, object"):
        vs.VisualSignal("text", 0.1)
    with pytest.raises(ConfigError, match="strength must be a finite number >= 0"):
        vs.VisualSignal("image", -0.1)
    with pytest.raises(ConfigError, match="train_instances"):
        vs.VisualSignal("image", 0.1, 1)
    with pytest.raises(ConfigError, match="not both"):
        Job("VM-HAN (Ours)", 0, 0.5, vs.VisualSignal("image", 0.1))


def test_signal_runs_are_named_kept_apart_and_identified_by_their_signal(tmp_path: Path) -> None:
    config, paths = preset("tiny"), RunPaths(tmp_path / "runs", tmp_path / "ckpt")
    jobs = signal_jobs(["VM-HAN (Ours)", "Late fusion"], "object", (0.0, 0.1), (0, 1), train_instances=500)
    assert len(jobs) == 8 and jobs[1].name == "VM-HAN (Ours) @ controlled signal object s=0.1" and jobs[2].seed == 1
    assert paths.run_dir("tiny", jobs[1]) == tmp_path / "controlled_signal" / "tiny__vm-han-ours-controlled-signal-object-s-0-1__seed0"
    assert paths.checkpoint_dir("tiny", jobs[1]).parent == tmp_path / "ckpt" / "controlled_signal"
    identity = job_identity(config, jobs[1], paths=paths)
    assert identity["visual_signal"] == {"arm": "object", "strength": 0.1, "train_instances": 500, "code": "visual-signal-1"}
    assert "visual_signal" not in job_identity(config, Job("VM-HAN (Ours)", 0), paths=paths)  # other runs unchanged


def test_the_study_trains_text_only_once_and_the_object_arm_above_zero() -> None:
    study = STUDIES["cpu"]
    jobs = study_jobs(study)
    assert len(jobs) == sum(len(b.variants) * len(b.strengths) * len(b.seeds) for b in study.blocks)  # no repeat
    assert {j.signal.strength for j in jobs if j.variant == "Text-only"} == {0.0}
    assert all(j.signal.strength > 0 for j in jobs if j.signal.arm == "object")
    assert jobs[0].variant == "VM-HAN (Ours)" and len({j.signal.train_instances for j in jobs}) == 1
    assert len({(j.name, j.seed) for j in jobs}) == len(jobs)
    with pytest.raises(ConfigError, match="no controlled visual-signal study for profile 'full'"):
        study_of(preset("full"))


@pytest.fixture
def fake_inputs(monkeypatch: pytest.MonkeyPatch) -> dict:
    data = {"train": random_split(64, 0, n_visual=4), "val": random_split(32, 1, n_visual=4),
            "test": random_split(32, 2, n_visual=4)}
    loads = {"n": 0}

    def prepare(config, paths, progress=True):
        loads["n"] += 1
        return PreparedInputs(data, {"text": {"model": "encoder"}}, {"test": {"n_instances": 32}}, TINY,
                              RelationVocab(("None", "a", "b", "c")))

    monkeypatch.setattr(runner, "prepare_inputs", prepare)
    return {"data": data, "loads": loads}


def test_a_tiny_study_runs_through_the_one_runner_and_writes_apart(tmp_path: Path, fake_inputs) -> None:
    config = replace(preset("tiny"), device="cpu", train=TrainConfig(epochs=1, batch_size=16, lr=1e-2))
    paths = RunPaths(tmp_path / "runs", tmp_path / "ckpt")
    jobs = signal_jobs(["VM-HAN (Ours)", "Late fusion"], "image", (0.0, 2.0), (0,), train_instances=40)
    records = runner.run_jobs(config, jobs, paths=paths, progress=False)
    assert fake_inputs["loads"]["n"] == 1 and not (tmp_path / "runs").exists()
    assert [r["variant"] for r in records] == [j.name for j in jobs]
    assert [r["config"]["visual_signal"] for r in records] == [
        {"arm": "image", "strength": s, "train_instances": 40} for s in (0.0, 2.0)] * 2
    for job, record in zip(jobs, records):
        run_dir = paths.run_dir("tiny", job)
        assert run_dir.parent.name == "controlled_signal" and read_record(run_dir)["identity"]["visual_signal"]["strength"] == job.signal.strength
        assert [p.index for p in read_predictions(run_dir)] == fake_inputs["data"]["test"].indices
        assert (paths.checkpoint_dir("tiny", job) / "best.pt").is_file()
    probabilities = [[p.probabilities for p in read_predictions(paths.run_dir("tiny", job))] for job in jobs]
    assert probabilities[2] != probabilities[3]  # late fusion sees the signal
    again = runner.run_jobs(config, jobs, paths=paths, progress=False)
    assert fake_inputs["loads"]["n"] == 1 and [r["test"] for r in again] == [r["test"] for r in records]


def test_runs_on_the_first_n_instances_live_apart_but_the_cpu_study_shares_the_committed_encoder() -> None:
    from vmhan_lib.config import run_config
    from vmhan_lib.train.jobs import inputs_folder
    from vmhan_lib.train.signal_study import study_config

    assert inputs_folder(run_config("cpu", overrides={"data.max_instances": 1700})) == "first-1700"
    assert inputs_folder(run_config("cpu", overrides={"data.max_instances": 50, "features.visual_source": "images"})) \
        == "images-first-50"
    assert inputs_folder(preset("cpu")) == "" == inputs_folder(preset("tiny"))  # committed and tiny runs unchanged
    study, committed = study_config(preset("cpu"), STUDIES["cpu"]), preset("cpu")
    paths = RunPaths.of(study)
    assert paths.runs == RunPaths.of(committed).runs and study.data == committed.data
    assert paths.encoder_checkpoint_dir(study) == RunPaths.of(committed).encoder_checkpoint_dir(committed)
    assert paths.encoder_run_dir(study) == RunPaths.of(committed).encoder_run_dir(committed)
