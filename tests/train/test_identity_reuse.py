"""The reuse scenarios of issue 21: a run is current only while every input file it read is the same.

A run trained on an image folder with damaged images must not be reused once the images are
restored; a MORE run must not be reused after its object dictionary or an image changes. The
inputs are faked (``fake_inputs``), so these tests train nothing: they check the identity and the
refusal, which come before any training.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import vmhan_lib.train.runner as runner
from tests.conftest import write_tiny_mnre
from tests.factories import TINY, random_split
from tests.more_fixture import write_more_fixture
from vmhan_lib.config import run_config
from vmhan_lib.data.mnre import RelationVocab
from vmhan_lib.identity import StaleRunsError
from vmhan_lib.train.jobs import Job, RunPaths, job_identity
from vmhan_lib.train.records import run_differences
from vmhan_lib.train.runner import run_jobs
from vmhan_lib.train.stage1 import PreparedInputs

SETTINGS = {"train.epochs": 1, "train.lr": 1e-2, "device": "cpu", "features.visual_source": "images"}


@pytest.fixture
def fake_inputs(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    data = {"train": random_split(64, 0), "val": random_split(32, 1), "test": random_split(32, 2)}
    loads = {"n": 0}

    def prepare(config, paths, progress=True):
        loads["n"] += 1
        return PreparedInputs(data, {}, {"test": {"n_instances": 32}}, TINY, RelationVocab(("None", "a", "b", "c")))

    monkeypatch.setattr(runner, "prepare_inputs", prepare)
    return loads


def _image_folder(data: Path) -> dict[str, bytes]:
    """One distinct file per image of the tiny MNRE fixture, in its default image folder."""
    folder = data / "images_sample"
    folder.mkdir()
    images = {name: bytes([n + 1]) * 64 for n, name in enumerate(["a.jpg", "b.jpg", "c.jpg", "d.jpg"])}
    for name, raw in images.items():
        (folder / name).write_bytes(raw)
    return images


def test_a_run_on_damaged_images_is_stale_once_they_are_restored(tmp_path: Path, fake_inputs) -> None:
    data = write_tiny_mnre(tmp_path / "mnre")
    images = _image_folder(data)
    for name in ("a.jpg", "c.jpg", "d.jpg"):
        (data / "images_sample" / name).write_bytes(b"damaged")
    config = run_config("tiny", str(data), {**SETTINGS, "data.captioners": ["qwen"], "features.visual_selection_captioner": "qwen"})
    paths, job = RunPaths(tmp_path / "runs", tmp_path / "ckpt"), Job("GCN", 0)
    run_jobs(config, [job], paths=paths, progress=False)
    assert fake_inputs["n"] == 1

    for name in ("a.jpg", "c.jpg", "d.jpg"):
        (data / "images_sample" / name).write_bytes(images[name])
    said = run_differences(paths.run_dir("tiny", job), job_identity(config, job))
    assert said == [f"data file images/{name} changed" for name in ("a.jpg", "c.jpg", "d.jpg")]
    with pytest.raises(StaleRunsError, match=r"tiny__gcn__seed0 \(data file images/a.jpg changed"):
        run_jobs(config, [job], paths=paths, progress=False)
    assert fake_inputs["n"] == 1  # refused before anything was loaded

    retrain = run_config("tiny", str(data), {**SETTINGS, "data.captioners": ["qwen"], "features.visual_selection_captioner": "qwen", "experiment.stale_runs": "retrain"})
    run_jobs(retrain, [job], paths=paths, progress=False)
    assert fake_inputs["n"] == 2 and run_differences(paths.run_dir("tiny", job), job_identity(config, job)) == []


def test_which_instances_a_run_uses_is_part_of_its_identity(tmp_path: Path) -> None:
    data = write_tiny_mnre(tmp_path / "mnre")
    _image_folder(data)
    config = run_config("tiny", str(data), {"data.image_instances": "first", "data.captioners": ["qwen"], "features.visual_selection_captioner": "qwen"})
    job = Job("GCN", 0)
    before = job_identity(config, job)["data"]
    (data / "images_sample" / "a.jpg").unlink()  # train now starts with b.jpg's instance
    after = job_identity(config, job)["data"]
    assert before["instances"]["train"] != after["instances"]["train"]
    assert before["instances"]["test"] == after["instances"]["test"]
    # a caption run reads no image: its identity holds none
    assert not any(name.startswith("images/") for name in job_identity(
        run_config("tiny", str(data), {"data.captioners": ["qwen"], "features.visual_selection_captioner": "qwen"}), job)["data"]["files"])


def test_a_more_run_is_stale_after_its_object_dictionary_or_an_image_changes(tmp_path: Path, mnre_dir: Path,
                                                                           fake_inputs) -> None:
    more = write_more_fixture(tmp_path / "more", mnre_dir)
    config = run_config("tiny", str(more), {**SETTINGS, "data.dataset": "more"})
    paths, job = RunPaths(tmp_path / "runs", tmp_path / "ckpt"), Job("VM-HAN (Ours)", 0)
    run_jobs(config, [job], paths=paths, progress=False)
    identity = job_identity(config, job)
    assert {"ent_train_dict.pth", "ent_valid_dict.pth", "ent_test_dict.pth"} <= set(identity["data"]["files"])

    objects = torch.load(more / "ent_train_dict.pth")
    first = next(iter(objects))
    objects[first]["man"] = [0.5, 0.5, 0.2, 0.2]  # one box moved
    torch.save(objects, more / "ent_train_dict.pth")
    with pytest.raises(StaleRunsError, match=r"data file ent_train_dict.pth changed"):
        run_jobs(config, [job], paths=paths, progress=False)

    image = sorted((more / "img_org" / "test").iterdir())[0]
    image.write_bytes(image.read_bytes()[:-10])  # a truncated image
    said = run_differences(paths.run_dir("tiny", job), job_identity(config, job))
    assert f"data file images/test/{image.name} changed" in said and fake_inputs["n"] == 1


def test_an_identity_written_with_execution_values_stays_current_and_keeps_its_digest(tmp_path: Path,
                                                                                   fake_inputs) -> None:
    """The one translation of older identities: device, threads and batch sizes were part of them."""
    data = write_tiny_mnre(tmp_path / "mnre")
    config = run_config("tiny", str(data), {"data.captioners": ["qwen"], "features.visual_selection_captioner": "qwen",
                                            "train.epochs": 1, "device": "cpu"})
    paths, job = RunPaths(tmp_path / "runs", tmp_path / "ckpt"), Job("GCN", 0)
    run_jobs(config, [job], paths=paths, progress=False)
    record_file = paths.run_dir("tiny", job) / "record.json"
    record = json.loads(record_file.read_text())
    assert "device" not in record["identity"]["train"]
    record["identity"]["train"].update(device="auto", cpu_threads=1, eval_batch_size=256)  # as written before
    record_file.write_text(json.dumps(record))

    identity = job_identity(config, job, paths=paths)
    assert identity == record["identity"]  # the stored one: what is keyed by its digest stays valid
    assert run_jobs(config, [job], paths=paths, progress=False)[0]["identity"] == record["identity"]
    assert fake_inputs["n"] == 1
    record["identity"]["train"]["lr"] = 0.5  # a value that is part of the identity still counts
    record_file.write_text(json.dumps(record))
    assert run_differences(paths.run_dir("tiny", job), job_identity(config, job, paths=paths)) == [
        "train.lr: 0.5 -> 0.001"]


def test_sentence_scope_runs_have_their_own_ids_and_identities_and_share_stage1(tmp_path: Path, fake_inputs) -> None:
    """scope = pair stays out of identities (the runs recorded before the field existed stay current);
    sentence-scope runs get their own run ids, identities and record fields, over the same stage 1."""
    from dataclasses import replace

    from vmhan_lib.config_tree import ConfigError
    from vmhan_lib.identity import DEFAULT_VALUES
    from vmhan_lib.train.jobs import run_prefix, setting_record

    data = write_tiny_mnre(tmp_path / "mnre")
    base = {"data.captioners": ["qwen"], "features.visual_selection_captioner": "qwen", "train.epochs": 1, "device": "cpu"}
    pair = run_config("tiny", str(data), base)
    sentence = run_config("tiny", str(data), {**base, "model.hypergraph.scope": "sentence"})
    paths, job = RunPaths(tmp_path / "runs", tmp_path / "ckpt"), Job("GCN", 0)
    assert DEFAULT_VALUES["model.hypergraph.scope"] == "pair"
    assert "scope" not in job_identity(pair, job, paths=paths)["model"]["hypergraph"]
    assert job_identity(sentence, job, paths=paths)["model"]["hypergraph"]["scope"] == "sentence"
    assert run_prefix(pair) == "tiny" and run_prefix(sentence) == "tiny__two-stage-all-minilm-l6-v2-sentence"
    assert setting_record(pair) == {"training": "two-stage", "text_encoder": "all-MiniLM-L6-v2"}
    assert setting_record(sentence)["scope"] == "sentence"
    assert paths.encoder_run_dir(sentence) == paths.encoder_run_dir(pair)  # one stage 1 for both scopes
    assert paths.encoder_checkpoint_dir(sentence) == paths.encoder_checkpoint_dir(pair)
    oof = replace(sentence, experiment=replace(sentence.experiment, training="out-of-fold"))
    assert paths.fold_encoder_run_dir(oof, 0) == paths.fold_encoder_run_dir(replace(pair, experiment=oof.experiment), 0)
    for wrong in ({"experiment.training": "joint"}, {"data.dataset": "more", "features.visual_source": "images"}):
        with pytest.raises((ConfigError, ValueError), match="scope=sentence is for MNRE"):
            run_config("tiny", str(data), {**base, "model.hypergraph.scope": "sentence", **wrong})
