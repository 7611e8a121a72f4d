"""Out-of-fold stage-1 features end to end on real MNRE lines: one encoder per fold trained without
it, each train instance encoded by the encoder that never saw it, dev and test by the shared
stage-1 encoder, every encoder reused on a rerun."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

import vmhan_lib.train.jobs as jobs
import vmhan_lib.train.stage1 as stage1
from vmhan_lib.config_tree import ConfigError
from vmhan_lib.identity import StaleRunsError
from vmhan_lib.config import run_config
from vmhan_lib.data.splits import load_split, sentence_folds
from vmhan_lib.features.text_encoder import compute_frozen_text_features
from vmhan_lib.identity import digest
from vmhan_lib.train.records import read_record
from vmhan_lib.train.jobs import Job, RunPaths
from vmhan_lib.train.stage1 import prepare_inputs, stage1_ready
from vmhan_lib.train.runner import run_jobs

SETTINGS = {"data.max_instances": 24, "encoder_train.epochs": 1, "train.epochs": 1, "experiment.folds": 2, "device": "cpu"}


@pytest.fixture(scope="module")
def trained(mnre_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One out-of-fold VM-HAN run (2 folds), the train instances each encoder was fine-tuned on."""
    root = tmp_path_factory.mktemp("oof")
    config = run_config("tiny", str(mnre_dir), {**SETTINGS, "features.cache_dir": str(root / "cache"),
                                                "experiment.training": "out-of-fold"})
    paths = RunPaths(root / "runs", root / "ckpt")
    assert not stage1_ready(config, paths)
    seen: list[list[int]] = []
    real_task = stage1.EncoderTask

    def recording_task(splits, *args, **kwargs):
        seen.append([x.index for x in splits["train"]])
        return real_task(splits, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stage1, "EncoderTask", recording_task)
        [record] = run_jobs(config, [Job("VM-HAN (Ours)", 0)], paths=paths, progress=False)
    return {"config": config, "paths": paths, "record": record, "seen": seen}


def test_each_fold_encoder_is_trained_without_its_fold(trained: dict) -> None:
    config, paths = trained["config"], trained["paths"]
    train = load_split(config.data, "train")
    folds = sentence_folds(train, 2, config.experiment.encoder_seed)
    everything = [x.index for x in train]
    assert trained["seen"][0] == everything  # the shared stage-1 encoder: all of train
    for fold, used in zip(folds, trained["seen"][1:]):
        assert used == [x.index for p, x in enumerate(train) if p not in set(fold)]
    assert len(trained["seen"]) == 3 and stage1_ready(config, paths)
    for fold in range(2):
        record = read_record(paths.fold_encoder_run_dir(config, fold))
        assert record["variant"] == f"Text-only (fine-tuned encoder) fold {fold + 1} of 2"
        assert record["training"] == "out-of-fold" and record["complete"]
        assert record["identity"]["fold"] == fold + 1 and record["identity"]["folds"] == 2
    assert paths.fold_encoder_run_dir(config, 0).parent.name == "folds"


def test_train_text_nodes_come_from_the_encoder_that_never_saw_them(trained: dict) -> None:
    config, paths = trained["config"], trained["paths"]
    calls = []
    with pytest.MonkeyPatch.context() as patch:  # a rerun trains nothing
        patch.setattr(stage1, "EncoderTask", lambda *a, **k: calls.append(a) or pytest.fail("retrained"))
        inputs = prepare_inputs(config, paths, progress=False)
        in_fold = prepare_inputs(config.with_training("two-stage"), paths,
                                 progress=False)
    assert calls == []
    train = load_split(config.data, "train")
    folds = sentence_folds(train, 2, config.experiment.encoder_seed)
    for fold, positions in enumerate(folds):
        encoder = replace(config.features.text, model=str(paths.fold_encoder_checkpoint_dir(config, fold) / "encoder"))
        reference = compute_frozen_text_features([train[p] for p in positions], encoder, None, False)
        for row, position in enumerate(positions):
            node = inputs.data["train"].nodes[position]
            assert torch.allclose(node.text_features[:2], reference.entities[row], atol=1e-5)
            assert torch.equal(node.visual_features, in_fold.data["train"].nodes[position].visual_features)
    assert any(not torch.allclose(a.text_features, b.text_features, atol=1e-3)
               for a, b in zip(inputs.data["train"].nodes, in_fold.data["train"].nodes))
    for split in ("val", "test"):  # dev and test: the shared stage-1 encoder, as two-stage
        for a, b in zip(inputs.data[split].nodes, in_fold.data[split].nodes):
            assert torch.equal(a.text_features, b.text_features)


def test_out_of_fold_runs_have_their_own_ids_and_name_their_fold_encoders(trained: dict) -> None:
    config, record = trained["config"], trained["record"]
    assert record["run_id"] == "tiny__out-of-fold-all-minilm-l6-v2__vm-han-ours__seed0"
    assert record["training"] == "out-of-fold" and record["identity"]["training"] == "out-of-fold"
    fold_digests = [digest(identity) for identity in jobs.fold_encoder_identities(config)]
    assert all(d in record["identity"]["features"]["text_encoder"] for d in fold_digests)
    two_stage = config.with_training("two-stage")
    assert jobs.job_identity(two_stage, Job("VM-HAN (Ours)", 0))["features"]["text_encoder"] == \
        f"stage-1 run {digest(jobs.encoder_identity(two_stage))}"


def test_stale_stage1_runs_are_refused_together_before_any_training(trained: dict, tmp_path: Path) -> None:
    config, paths = trained["config"], trained["paths"]
    changed = replace(config, encoder_train=replace(config.encoder_train, lr=1e-4))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stage1, "EncoderTask", lambda *a, **k: pytest.fail("trained before refusing"))
        with pytest.raises(StaleRunsError, match=r"^3 finished run\(s\).*fold-1-of-2.*fold-2-of-2"):
            prepare_inputs(changed, paths, progress=False)
    assert not stage1_ready(changed, paths) and stage1_ready(config, paths)
    assert not stage1_ready(config, RunPaths(tmp_path / "no-runs", paths.checkpoints))  # encoders, but no records


def test_fold_identities_name_the_held_out_instances_when_images_decide_them(mnre_dir: Path) -> None:
    settings = {**SETTINGS, "experiment.training": "out-of-fold"}
    plain = jobs.fold_encoder_identities(run_config("tiny", str(mnre_dir), settings))
    assert all("held_out" not in identity for identity in plain)  # the fingerprinted train file decides the folds
    first = jobs.fold_encoder_identities(run_config("tiny", str(mnre_dir), {**settings, "data.image_instances": "first"}))
    assert len({identity["held_out"] for identity in first}) == 2


def test_stage1_alone_reuses_every_encoder_and_builds_no_features(trained: dict, tmp_path: Path) -> None:
    config, paths = trained["config"], trained["paths"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stage1, "EncoderTask", lambda *a, **k: pytest.fail("retrained"))
        patch.setattr(stage1, "build_split", lambda *a, **k: pytest.fail("built features"))
        records = stage1.train_stage1(config, paths, progress=False)
    assert [r["variant"] for r in records] == ["Text-only (fine-tuned encoder)",
                                               "Text-only (fine-tuned encoder) fold 1 of 2",
                                               "Text-only (fine-tuned encoder) fold 2 of 2"]
    assert [r["identity"].get("fold") for r in records] == [None, 1, 2] and all(r["complete"] for r in records)
    assert records[0]["run_id"] == paths.encoder_run_dir(config).name
    fresh_clone = RunPaths(paths.runs, tmp_path / "no-checkpoints")  # committed records, no exported encoders
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stage1, "EncoderTask", lambda *a, **k: pytest.fail("retrained"))
        assert stage1.train_stage1(config, fresh_clone, progress=False) == records
        changed = replace(config, encoder_train=replace(config.encoder_train, lr=1e-4))
        with pytest.raises(StaleRunsError, match=r"^3 finished run\(s\)"):
            stage1.train_stage1(changed, paths, progress=False)


def test_stage1_alone_trains_only_the_encoder(mnre_dir: Path, tmp_path: Path) -> None:
    config = run_config("tiny", str(mnre_dir), {**SETTINGS, "features.cache_dir": str(tmp_path / "cache")})
    paths = RunPaths(tmp_path / "runs", tmp_path / "ckpt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stage1, "build_split", lambda *a, **k: pytest.fail("built features"))
        [record] = stage1.train_stage1(config, paths, progress=False)
    assert record["variant"] == "Text-only (fine-tuned encoder)" and len(record["epochs"]) == 1
    assert stage1_ready(config, paths) and sorted(p.name for p in paths.runs.iterdir()) == [record["run_id"]]
    assert not (tmp_path / "cache").exists()  # no node features were computed
    with pytest.raises(ConfigError, match="joint training has none"):
        stage1.train_stage1(config.with_training("joint"), paths, progress=False)
