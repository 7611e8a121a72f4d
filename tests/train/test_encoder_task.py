"""Stage 1 through the fit loop and the runner's one rerun policy (tiny MNRE files)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import write_tiny_mnre
from vmhan_lib.data.mnre import load_mnre, load_relation_vocab
from vmhan_lib.features.config import TextEncoderConfig
from vmhan_lib.model.text_encoder import EntityMarkerEncoder
from vmhan_lib.config import STAGE1_HEAD_DROPOUT, TrainConfig
from vmhan_lib.identity import digest
from vmhan_lib.train.encoder_task import EncoderTask, encoder_ready, length_bucketed_batches
from vmhan_lib.train.fit import fit
from vmhan_lib.train.records import RerunMismatchWarning, read_predictions, read_record, write_run
from vmhan_lib.train.jobs import ensure_run


def test_finetune_saves_a_loadable_encoder_and_a_text_only_record(tmp_path: Path) -> None:
    root = write_tiny_mnre(tmp_path / "mnre")
    splits = {s: load_mnre(root, s) for s in ("train", "val", "test")}
    vocab = load_relation_vocab(root)
    config = TrainConfig(epochs=2, batch_size=2, lr=1e-4)
    checkpoint_dir = tmp_path / "ckpt"

    def train(record_dir: Path) -> dict:
        task = EncoderTask(splits, vocab, TextEncoderConfig(max_length=32), config.batch_size,
                           64, STAGE1_HEAD_DROPOUT, torch.device("cpu"))
        return fit(name="Text-only (fine-tuned encoder)", task=task, train_config=config, vocab=vocab, seed=0,
                   run_dir=record_dir, checkpoint_dir=checkpoint_dir, config_record={"seed": 0}, identity=identity,
                   extra_record={"identity": identity}, progress=False)

    identity = {"seed": 0}
    made_by = digest(identity)

    def ensure() -> dict:
        return ensure_run(tmp_path / "run", checkpoint_dir, identity, encoder_ready(checkpoint_dir, made_by), True,
                          train, "stage 2")

    record = ensure()
    assert record["complete"] and [row["epoch"] for row in record["epochs"]] == [1, 2]
    assert [p.index for p in read_predictions(tmp_path / "run")] == [0, 1]
    encoder_dir = Path(record["encoder_dir"])
    assert encoder_ready(checkpoint_dir, made_by) and encoder_dir == checkpoint_dir / "encoder"
    assert not encoder_ready(checkpoint_dir, digest({"seed": 1}))  # exported by another run
    reloaded = EntityMarkerEncoder.from_pretrained(str(encoder_dir))
    original = EntityMarkerEncoder.from_pretrained("all-MiniLM-L6-v2")
    changed = any(not torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), original.state_dict().values()))
    assert changed, "fine-tuning must change the encoder weights"
    before = (tmp_path / "run" / "record.json").stat().st_mtime_ns
    assert ensure()["test"] == record["test"]  # complete: read, not retrained
    assert (tmp_path / "run" / "record.json").stat().st_mtime_ns == before

    # a fresh clone: the record is committed, the encoder and its training state are not
    shutil.rmtree(encoder_dir)
    assert not (checkpoint_dir / "state.pt").exists()  # deleted once the record was written
    committed = read_record(tmp_path / "run")
    tampered_f1 = committed["test"]["f1"] + 0.5
    write_run(tmp_path / "run", {**committed, "test": {**committed["test"], "f1": tampered_f1}},
              read_predictions(tmp_path / "run"))
    committed_bytes = (tmp_path / "run" / "record.json").read_bytes()
    with pytest.warns(RerunMismatchWarning, match=f"committed record {100 * tampered_f1:.2f}"):
        kept = ensure()
    assert encoder_ready(checkpoint_dir, made_by)
    assert (tmp_path / "run" / "record.json").read_bytes() == committed_bytes and kept["test"]["f1"] == tampered_f1
    assert read_record(checkpoint_dir / "rerun")["test"] == record["test"]  # same seed, same machine


def test_length_bucketed_batches_cover_every_instance_once_with_similar_lengths() -> None:
    lengths = [int(x) for x in torch.randint(5, 100, (1000,), generator=torch.Generator().manual_seed(0))]
    batches = length_bucketed_batches(lengths, 16, torch.Generator().manual_seed(1), bucket_batches=10)
    flat = torch.cat(batches).tolist()
    assert sorted(flat) == list(range(1000)) and all(len(b) <= 16 for b in batches)
    spread = sum(max(lengths[i] for i in b.tolist()) - min(lengths[i] for i in b.tolist()) for b in batches) / len(batches)
    assert spread < 15  # random batches of 16 from 5..99 spread ~80
    again = length_bucketed_batches(lengths, 16, torch.Generator().manual_seed(1), bucket_batches=10)
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
