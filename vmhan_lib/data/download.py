"""Fetch the MNRE files from their public sources and verify them against the package manifest.

``manifest.tsv`` (beside this module) lists every file with its size, sha256, source repository,
path and commit, and how to obtain it:

- ``raw``: the file at that commit, as is;
- ``pth-to-json``: a pickled dict (``.pth``) converted to JSON with :func:`json.dumps` defaults;
- ``derived-index``: ``images_sample/index.tsv``, rebuilt from the text splits and the images.

Existing files whose hash matches are kept, so an interrupted download resumes. Without network
access the command fails within seconds with a message saying what to do instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from vmhan_lib.data.mnre import SPLITS, load_mnre
from vmhan_lib.identity import file_sha256, save_hashes
from vmhan_lib.io import atomic_write_bytes

RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
PROBE_HOST = "raw.githubusercontent.com"
INDEX_HEADER = "img_id\tmnre2_text_split\tn_instances\tfolder_in_MRE-ISE_repo\trelations"


class DownloadError(RuntimeError):
    """The files could not be fetched or did not match the manifest."""


@dataclass(frozen=True)
class ManifestEntry:
    """One data file: where it goes (relative to the data root), what it must hash to, its source."""

    path: str
    size: int
    sha256: str
    repo: str
    source_path: str
    commit: str
    method: str

    @property
    def url(self) -> str:
        return RAW_URL.format(repo=self.repo, commit=self.commit, path=urllib.parse.quote(self.source_path))


def load_manifest() -> list[ManifestEntry]:
    text = resources.files("vmhan_lib.data").joinpath("manifest.tsv").read_text(encoding="utf-8")
    entries = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        path, size, sha, repo, source_path, commit, method = line.split("\t")
        entries.append(ManifestEntry(path, int(size), sha, repo, source_path, commit, method))
    return entries


def verify(root: str | Path, entries: list[ManifestEntry] | None = None) -> dict[str, str]:
    """Check the files under ``root`` (the folder that holds ``mnre/``) against the manifest.

    Returns ``{path: "ok" | "missing" | "sha256 mismatch"}``.
    """
    status = {}
    for entry in entries or load_manifest():
        target = Path(root) / entry.path
        status[entry.path] = ("missing" if not target.is_file() else
                              "ok" if file_sha256(target) == entry.sha256 else "sha256 mismatch")
    save_hashes()
    return status


def check_reachable(host: str = PROBE_HOST, timeout: float = 5.0) -> None:
    """Fail fast (seconds, not minutes) when the public source cannot be reached."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as err:
        raise DownloadError(
            f"cannot reach {host} ({err.__class__.__name__}: {err}). This machine has no access to "
            "the public sources of MNRE. Copy the data from a machine that has (the layout is "
            "mnre/text, mnre/captions, mnre/aux, mnre/images_sample) and point the workbook at it "
            "with the VMHAN_DATA environment variable."
        ) from err


def _fetch(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"failed to fetch {url}: {err}") from err


def pth_to_json(payload: bytes) -> bytes:
    """The JSON form of a pickled ``{index: [crop file names]}`` dict, as the manifest hashes it."""
    import torch

    obj = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    return json.dumps({str(k): v for k, v in obj.items()}).encode("utf-8")


def build_image_index(mnre_dir: str | Path, folders: dict[str, str]) -> str:
    """Rebuild ``images_sample/index.tsv``: for each sample image its MNRE-2 split, instance count,
    source folder and sorted relations. ``folders`` maps image file name -> source folder."""
    by_image: dict[str, tuple[str, list[str]]] = {}
    wanted = set(folders)
    for split in SPLITS:
        for instance in load_mnre(mnre_dir, split):
            if instance.img_id in wanted:
                by_image.setdefault(instance.img_id, (split, []))[1].append(instance.relation)
    lines = [INDEX_HEADER]
    for img_id in sorted(by_image):
        split, relations = by_image[img_id]
        lines.append(f"{img_id}\t{split}\t{len(relations)}\t{folders[img_id]}\t{','.join(sorted(set(relations)))}")
    return "\n".join(lines) + "\n"


def download(root: str | Path, timeout: float = 60.0,
             fetch: Callable[[str, float], bytes] = _fetch,
             probe: Callable[[], None] = check_reachable) -> dict[str, str]:
    """Fetch every manifest file into ``root`` (which receives ``mnre/...``) and verify it.

    Files already present with the right hash are skipped. Raises :class:`DownloadError` on an
    unreachable source or a hash mismatch (the bad file is not written).
    """
    root = Path(root)
    entries = load_manifest()
    todo = [e for e, s in zip(entries, verify(root, entries).values()) if s != "ok"]
    if not todo:
        return {e.path: "ok" for e in entries}
    probe()
    image_folders = {Path(e.path).name: Path(e.source_path).parent.name for e in entries
                     if e.path.startswith("mnre/images_sample/") and e.path.endswith(".jpg")}
    ordered = sorted(todo, key=lambda e: e.method == "derived-index")  # the index needs the text first
    failures = defaultdict(list)
    for entry in tqdm(ordered, desc="download MNRE", unit="file"):
        if entry.method == "raw":
            payload = fetch(entry.url, timeout)
        elif entry.method == "pth-to-json":
            try:
                payload = pth_to_json(fetch(entry.url, timeout))
            except (pickle.UnpicklingError, EOFError, RuntimeError, AttributeError) as err:
                failures["not a readable .pth"].append(f"{entry.path} from {entry.url} ({err.__class__.__name__})")
                continue
        elif entry.method == "derived-index":
            if failures:  # the index is built from the text files, which did not all arrive
                break
            payload = build_image_index(root / "mnre", image_folders).encode("utf-8")
        else:
            raise DownloadError(f"manifest: unknown method {entry.method!r} for {entry.path}")
        digest = hashlib.sha256(payload).hexdigest()
        if digest != entry.sha256:
            failures["sha256 mismatch"].append(f"{entry.path} (got {digest[:12]}..., want {entry.sha256[:12]}...)")
            continue
        atomic_write_bytes(root / entry.path, payload)
    if failures:
        raise DownloadError("; ".join(f"{kind}: {', '.join(paths)}" for kind, paths in failures.items()))
    return verify(root, entries)
