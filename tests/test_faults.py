"""Faults a user meets, each answered in one line naming the file, nothing half-right recorded
(issue 22): damaged resumable states, cache entries, checkpoints and bundles; a full disk."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from tests.factories import TINY, random_split
from vmhan_lib.data.mnre import RelationVocab
from vmhan_lib.config import TrainConfig
from vmhan_lib.features.cache import FeatureCache
from vmhan_lib.io import StorageError, atomic_write_text
from vmhan_lib.train.checkpoints import load_best_checkpoint
from vmhan_lib.train.execution import Execution
from vmhan_lib.train.fit import fit
from vmhan_lib.train.hypergraph_task import HypergraphTask, best_model_ready
from vmhan_lib.train.case_study_bundle import load_bundle

VOCAB = RelationVocab(("None", "a", "b", "c"))


def _cut(path: Path) -> None:
    """Half of the file, as after a crash or a full disk elsewhere."""
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _fit(tmp: Path, epochs: int, keep_state: bool = False) -> dict:
    data = {"train": random_split(64, 0), "val": random_split(32, 1), "test": random_split(32, 2)}
    config = TrainConfig(epochs=epochs, batch_size=16, lr=1e-2)
    task = HypergraphTask(TINY, data, config.batch_size, 64, torch.device("cpu"))
    return fit(name="GCN", task=task, train_config=config, vocab=VOCAB, seed=0, run_dir=tmp / "run",
               checkpoint_dir=tmp / "ckpt", config_record={"epochs": epochs}, identity={"run": 1}, progress=False,
               execution=Execution(keep_state=keep_state))


def test_a_damaged_resumable_state_is_set_aside_and_the_run_trains_afresh(tmp_path: Path) -> None:
    reference = _fit(tmp_path / "ref", 2)
    _fit(tmp_path / "cut", 2, keep_state=True)
    state = tmp_path / "cut" / "ckpt" / "state.pt"
    _cut(state)
    (tmp_path / "cut" / "run" / "record.json").unlink()  # an unfinished run with a damaged state
    with pytest.warns(UserWarning, match=r"state\.pt: the resumable training state cannot be read .*set aside as "
                                         r"state\.pt\.unreadable"):
        again = _fit(tmp_path / "cut", 2)
    assert (tmp_path / "cut" / "ckpt" / "state.pt.unreadable").is_file()
    assert again["test"] == reference["test"]  # trained from the start, same seed, same result


def test_a_damaged_best_checkpoint_is_named_and_counts_as_missing(tmp_path: Path) -> None:
    _fit(tmp_path, 1)
    best = tmp_path / "ckpt" / "best.pt"
    digest = torch.load(best, weights_only=False)["digest"]
    _cut(best)
    with pytest.raises(StorageError, match=rf"^{best}: the best checkpoint cannot be read \("):
        load_best_checkpoint(best)
    with pytest.warns(UserWarning, match="set aside as best.pt.unreadable"):
        assert not best_model_ready(best.parent, digest)  # so the run is trained again


def test_a_damaged_cache_entry_is_set_aside_and_computed_again(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    calls = []

    def compute() -> dict:
        calls.append(1)
        return {"x": torch.arange(1000)}

    cache.load_or_compute("text", "val", {"k": 1}, compute)
    [entry] = list(tmp_path.glob("*.pt"))
    _cut(entry)
    with pytest.warns(UserWarning, match="feature-cache entry cannot be read"):
        payload = FeatureCache(tmp_path).load_or_compute("text", "val", {"k": 1}, compute)
    assert len(calls) == 2 and torch.equal(payload["x"], torch.arange(1000))
    assert entry.with_name(entry.name + ".unreadable").is_file()


def test_a_damaged_bundle_is_named(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pt"
    torch.save({"format": "case-study-bundle-1", "x": torch.zeros(1000)}, bundle)
    _cut(bundle)
    with pytest.raises(StorageError, match=r"bundle\.pt: the case-study bundle cannot be read"):
        load_bundle(bundle)


def test_a_full_disk_or_a_folder_that_is_a_file_is_one_line_naming_the_path(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "runs" / "record.json"
    atomic_write_text(target, "old\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StorageError, match=rf"^cannot write {target}: No space left on device$"):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n" and [p.name for p in target.parent.iterdir()] == ["record.json"]
    monkeypatch.undo()
    (tmp_path / "blocked").write_text("a file where a folder should be")
    with pytest.raises(StorageError, match=r"cannot write .*blocked/x\.json"):
        atomic_write_text(tmp_path / "blocked" / "x.json", "{}")


def test_a_damaged_committed_bundle_falls_back_to_the_checkpoint_route_with_a_warning(tmp_path: Path) -> None:
    from vmhan_lib.config import run_config
    from vmhan_lib.train.case_study_bundle import BundleMismatchWarning, _current_bundle
    from vmhan_lib.train.jobs import Job

    bundle = tmp_path / "tiny__vm-han-ours__seed0.pt"
    torch.save({"format": "case-study-bundle-1", "x": torch.zeros(1000)}, bundle)
    _cut(bundle)
    with pytest.warns(BundleMismatchWarning, match=r"the case-study bundle cannot be read .*checkpoint route"):
        found, why = _current_bundle(bundle, run_config("tiny"), Job("VM-HAN (Ours)", 0), 10)
    assert found is None and str(bundle) in why
