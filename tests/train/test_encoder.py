from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import write_tiny_mnre
from vmhan_lib.data.mnre import load_mnre, load_relation_vocab
from vmhan_lib.features.config import TextEncoderConfig
from vmhan_lib.features.text_encoder import EntityMarkerEncoder
from vmhan_lib.train.config import EncoderTrainConfig
from vmhan_lib.train.encoder import finetune_text_encoder
from vmhan_lib.train.records import RerunMismatchWarning, read_predictions, read_record, write_record


def test_finetune_saves_a_loadable_encoder_and_a_text_only_record(tmp_path: Path) -> None:
    root = write_tiny_mnre(tmp_path / "mnre")
    splits = {s: load_mnre(root, s) for s in ("train", "val", "test")}
    vocab = load_relation_vocab(root)
    kwargs = dict(
        splits=splits, vocab=vocab, text_config=TextEncoderConfig(max_length=32),
        train_config=EncoderTrainConfig(epochs=2, batch_size=2, lr=1e-4), seed=0,
        output_dir=tmp_path / "ckpt", run_dir=tmp_path / "run", device_name="cpu", progress=False,
    )
    encoder_dir, record = finetune_text_encoder(**kwargs)
    assert record["complete"] and [row["epoch"] for row in record["epochs"]] == [1, 2]
    assert [p.index for p in read_predictions(tmp_path / "run")] == [0, 1]
    reloaded = EntityMarkerEncoder.from_pretrained(str(encoder_dir))
    original = EntityMarkerEncoder.from_pretrained("all-MiniLM-L6-v2")
    changed = any(not torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), original.state_dict().values()))
    assert changed, "fine-tuning must change the encoder weights"
    again_dir, again = finetune_text_encoder(**kwargs)  # complete: loaded, not retrained
    assert again_dir == encoder_dir and again["test"] == record["test"]


    # a fresh clone: the record is committed, the encoder and its training state are not
    shutil.rmtree(encoder_dir)
    (tmp_path / "ckpt" / "state.pt").unlink()
    committed = read_record(tmp_path / "run")
    tampered_f1 = committed["test"]["f1"] + 0.5
    write_record(tmp_path / "run", {**committed, "test": {**committed["test"], "f1": tampered_f1}})
    committed_bytes = (tmp_path / "run" / "record.json").read_bytes()
    with pytest.warns(RerunMismatchWarning, match=f"committed record {100 * tampered_f1:.2f}"):
        rerun_dir, kept = finetune_text_encoder(**kwargs)
    assert rerun_dir == encoder_dir and (encoder_dir / "config.json").is_file()
    assert (tmp_path / "run" / "record.json").read_bytes() == committed_bytes and kept["test"]["f1"] == tampered_f1
    assert read_record(tmp_path / "ckpt" / "rerun")["test"] == record["test"]  # same seed, same machine


def test_length_bucketed_batches_cover_every_instance_once_with_similar_lengths() -> None:
    from vmhan_lib.train.encoder import length_bucketed_batches

    lengths = [int(x) for x in torch.randint(5, 100, (1000,), generator=torch.Generator().manual_seed(0))]
    batches = length_bucketed_batches(lengths, 16, torch.Generator().manual_seed(1), bucket_batches=10)
    flat = torch.cat(batches).tolist()
    assert sorted(flat) == list(range(1000)) and all(len(b) <= 16 for b in batches)
    spread = sum(max(lengths[i] for i in b.tolist()) - min(lengths[i] for i in b.tolist()) for b in batches) / len(batches)
    assert spread < 15  # random batches of 16 from 5..99 spread ~80
    again = length_bucketed_batches(lengths, 16, torch.Generator().manual_seed(1), bucket_batches=10)
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
