from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
import torch

from vmhan_lib.data.download import DownloadError, build_image_index, check_reachable, download, load_manifest, verify


def test_manifest_lists_every_shared_file() -> None:
    entries = load_manifest()
    assert len(entries) == 74
    assert {e.method for e in entries} == {"raw", "pth-to-json", "derived-index"}
    val = next(e for e in entries if e.path == "mnre/text/mnre_val.txt")
    assert val.url.endswith("/mnre_txt/mnre_val%20.txt") and val.commit in val.url


@pytest.mark.real_data
def test_real_files_match_manifest(mnre_dir: Path) -> None:
    status = verify(mnre_dir.parent)
    assert set(status.values()) == {"ok"}, {k: v for k, v in status.items() if v != "ok"}


@pytest.mark.real_data
def test_download_from_fake_source_rebuilds_verified_tree(mnre_dir: Path, tmp_path: Path) -> None:
    """Serve each manifest entry from the real files (pth entries re-pickled) and check the result."""
    by_url = {}
    for entry in load_manifest():
        local = mnre_dir.parent / entry.path
        if entry.method == "raw":
            by_url[entry.url] = local.read_bytes()
        elif entry.method == "pth-to-json":
            buffer = io.BytesIO()
            torch.save({int(k): v for k, v in json.loads(local.read_text()).items()}, buffer)
            by_url[entry.url] = buffer.getvalue()
    calls = []

    def fake_fetch(url: str, timeout: float) -> bytes:
        calls.append(url)
        return by_url[url]

    status = download(tmp_path, fetch=fake_fetch, probe=lambda: None)
    assert set(status.values()) == {"ok"} and len(calls) == len(by_url)
    again = download(tmp_path, fetch=fake_fetch, probe=lambda: None)  # resumable: nothing refetched
    assert set(again.values()) == {"ok"} and len(calls) == len(by_url)


def test_hash_mismatch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download(tmp_path, fetch=lambda url, timeout: b"not the file", probe=lambda: None)
    assert not (tmp_path / "mnre" / "text" / "mnre_test.txt").exists()


def test_unreachable_source_fails_fast_with_advice() -> None:
    start = time.monotonic()
    with pytest.raises(DownloadError, match="VMHAN_DATA"):
        check_reachable("unreachable.invalid", timeout=5.0)
    assert time.monotonic() - start < 10


@pytest.mark.real_data
def test_image_index_is_rebuilt_exactly(mnre_dir: Path) -> None:
    folders = {
        Path(e.path).name: Path(e.source_path).parent.name
        for e in load_manifest() if e.path.endswith(".jpg")
    }
    assert build_image_index(mnre_dir, folders) == (mnre_dir / "images_sample" / "index.tsv").read_text()
