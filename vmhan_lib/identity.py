"""The one answer to "is this result current?" (torch-free).

Everything the workbook reuses instead of recomputing (run records, resumable states and exported
models, feature-cache entries, LLM answers, case-study bundles, per-run analysis rows) is keyed by
an *identity*: a JSON-able dict of what made it (the settings that shape it, the sha256 of every
input file read, which instances, the identities of the results it was built from, and the version
of the code that produced it). This module holds the pieces every producer uses:

- :data:`CODE_VERSIONS`, the one table of code versions, one per producer: bump a producer's
  entry when a change to its code changes what it produces, and every result it made is stale;
- :func:`digest` (sha256 of an identity) and :func:`file_sha256` (a file's content hash, cached
  on disk by path, size and modification time, so 9,000 images are hashed once, not per build);
- :func:`differences` (what differs between a stored identity and the current one, in words) and
  :func:`refuse_stale` (the one policy for stale results: refuse, naming what differs, unless the
  user asked to retrain them).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

from vmhan_lib.config_tree import ConfigError
from vmhan_lib.paths import REPO_ROOT

CODE_VERSIONS: dict[str, str] = {
    "features": "features-1",  # the feature cache's entries (node features, caption and image indexes)
    "selections": "selections-1",  # the text- and visual-LLM node selections
    "selection-payload": "with-fallbacks",  # what a selections entry holds besides the selections
    "object-selections": "object-selections-1",  # the object prompt's choices
    "chunker": "np-chunker-1",  # object phrases found in captions
    "markers": "typed-punct:@*head*@|#^tail^#|start-markers",  # the entity-marker scheme (data.markers)
    "image-nodes": "image-nodes-1",  # detector + image encoder features
    "fold-assignment": "sentence-grouped-1",  # the out-of-fold train folds (data.splits.sentence_folds)
    "fit-gap": "fit-gap-1",  # analysis.fit_gap rows
    "visual-shuffle": "visual-shuffle-1",  # analysis.visual_shuffle rows
    "visual-signal": "visual-signal-1",  # train.visual_signal: the controlled signal added to visual nodes
    "signal-attention": "signal-attention-1",  # analysis.controlled_signal attention rows
}
"""The version of each producer's code. Values are names, not numbers, so that identities written
before this table existed (which hold the same names) stay valid."""

IGNORED_VALUES: tuple[str, ...] = (
    "train.device", "train.cpu_threads", "train.eval_batch_size",
    "encoder_train.device", "encoder_train.cpu_threads", "encoder_train.eval_batch_size",
    "text_encoder.device", "text_encoder.batch_size", "model.variant",
)
"""Dotted places, in a run identity, of values that do not make the result: where and how fast it is
computed (device, threads, evaluation and feature batch sizes) and ``model.variant`` (the job's
``variant`` names it). Identities leave them out (:func:`without_ignored_values`); identities written
before 2026-12-03, which hold them, are compared without them (:func:`upgrade`, the one
translation of older identities)."""

DEFAULT_VALUES: dict[str, Any] = {"model.hypergraph.scope": "pair", "model.sample_in_training": True}
"""Dotted places, in a run identity, of fields added after runs were recorded (or removed since, with
the value that is now the only behaviour), with the value that means what those runs did: an
identity holding that value leaves it out (:func:`without_ignored_values`), so the runs recorded
before the field existed (or while it did) stay current; any other value enters the identity."""

HASH_CACHE_FILE = REPO_ROOT / ".cache" / "file_sha256.json"
"""Content hashes of files already read, by (resolved path, size, mtime in ns)."""

_hashes: dict[str, str] | None = None
_unsaved = 0


class StaleRunsError(ConfigError):
    """Finished results whose stored identity differs from the current one (the user did not ask to
    retrain them); the message names each and what differs."""


def digest(key: Any) -> str:
    """Stable sha256 of a JSON-able identity (sorted keys; non-JSON values as text)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _hash_table() -> dict[str, str]:
    global _hashes
    if _hashes is None:
        try:
            _hashes = json.loads(HASH_CACHE_FILE.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            _hashes = {}  # no cache yet, or a damaged one: hashes are recomputed, never trusted blindly
    return _hashes


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, cached by (resolved path, size, mtime): a file rewritten in
    place gets a new mtime and is hashed again. Call :func:`save_hashes` after many new files."""
    global _unsaved
    resolved = Path(path).resolve()
    stat = resolved.stat()
    memo = f"{resolved}|{stat.st_size}|{stat.st_mtime_ns}"
    table = _hash_table()
    if memo not in table:
        sha = hashlib.sha256()
        with resolved.open("rb") as handle:
            for chunk in iter(lambda: handle.read(chunk_bytes), b""):
                sha.update(chunk)
        table[memo] = sha.hexdigest()
        _unsaved += 1
    return table[memo]


def files_sha256(paths: Iterable[str | Path]) -> dict[str, str]:
    """``file name -> sha256`` of ``paths``, the hash cache saved once."""
    hashes = {Path(p).name: file_sha256(p) for p in paths}
    save_hashes()
    return hashes


def save_hashes() -> None:
    """Write the hash cache (atomically) when new files were hashed since the last save; a cache
    that cannot be written (read-only checkout) only costs the hashing again next time."""
    global _unsaved
    if not _unsaved:
        return
    try:
        HASH_CACHE_FILE.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=".file_sha256.", dir=HASH_CACHE_FILE.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(_hash_table(), out)
        os.replace(tmp, HASH_CACHE_FILE)
        _unsaved = 0
    except OSError:
        pass


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def without_ignored_values(identity: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``identity`` without the values at :data:`IGNORED_VALUES` and the :data:`DEFAULT_VALUES` it holds."""
    return {key: without_ignored_values(value, f"{prefix}{key}.") if isinstance(value, dict) else value
            for key, value in identity.items() if not _left_out(f"{prefix}{key}", value)}


def _left_out(place: str, value: Any) -> bool:
    """Whether the value at dotted ``place`` stays out of identities (:data:`IGNORED_VALUES`, :data:`DEFAULT_VALUES`)."""
    return place in IGNORED_VALUES or (place in DEFAULT_VALUES and DEFAULT_VALUES[place] == value)


def upgrade(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored identity as identities are written today, flattened: the :data:`IGNORED_VALUES` and
    the :data:`DEFAULT_VALUES` set aside."""
    flat = _flatten(json.loads(json.dumps(stored)))
    return {key: value for key, value in flat.items() if not _left_out(key, value)}


def differences(stored: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """What differs between a stored identity and the current one (both :func:`upgrade`-d), in words
    (``[]``: the same result). An input file is named, not its digests; a setting gives both values."""
    if stored is None:
        return ["no identity stored (a record older than run identities)"]
    old, new = upgrade(stored), upgrade(current)
    said = []
    for key in sorted(old.keys() | new.keys()):
        if old.get(key) == new.get(key):
            continue
        if ".files." in f".{key}":
            name = key.split(".files.", 1)[-1]
            state = "was not read" if key not in old else "is not read now" if key not in new else "changed"
            said.append(f"data file {name} {state}")
        else:
            said.append(f"{key}: {old.get(key, '(unset)')!r} -> {new.get(key, '(unset)')!r}")
    return said


def refuse_stale(results: Sequence[tuple[str, list[str] | None]], retrain: bool) -> None:
    """The one policy for stale results: raise :class:`StaleRunsError` naming every result of
    ``results`` (``(name, differences or None when there is none)``) that differs and what differs,
    unless ``retrain`` (then the caller makes them again, replacing them)."""
    stale = [(name, said) for name, said in results if said]
    if not stale or retrain:
        return
    named = "; ".join(f"{name} ({', '.join(d[:3])}{', ...' if len(d) > 3 else ''})" for name, d in stale[:4])
    more = f"; and {len(stale) - 4} more" if len(stale) > 4 else ""
    raise StaleRunsError(
        f"{len(stale)} finished run(s) were made from other inputs than the current ones: {named}{more}. "
        "Rerun with --retrain-stale (or --set experiment.stale_runs=retrain) to train them again, replacing their records")
