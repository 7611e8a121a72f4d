"""On-disk feature cache: one file per (stage, split, configuration), written atomically.

A cache entry is ``{"key": {...}, "payload": {...}}`` saved with :func:`torch.save` into a
temporary file in the same directory and moved into place with :func:`os.replace`, so a reader
(another run, a notebook) never sees half a file. The file name is
``{stage}-{split}-{digest}.pt`` where ``digest`` is the sha256 of the JSON of the key: everything
that changes the features (model identity with its weights sha256, captioners, k, max length,
sha256 of every data file read, the features entry of :data:`vmhan_lib.identity.CODE_VERSIONS`, ...). Payloads hold only tensors,
strings, numbers, lists and dicts, so they load with ``weights_only=True``.

The default root is ``.cache/features`` in the repository; :class:`FeatureCache` takes another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


from vmhan_lib.io import StorageError, atomic_torch_save, load_torch, set_aside
from vmhan_lib.identity import CODE_VERSIONS, digest
from vmhan_lib.paths import REPO_ROOT

DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "features"


@dataclass
class FeatureCache:
    """Cache root, hit/miss counters (tests and benchmarks read them), and how a miss is computed.

    Attributes:
        root: directory of the cache files.
        enabled: when False every lookup computes and nothing is written.
        device: torch device of the frozen encoders that compute a miss (``cpu`` or ``cuda``).
        batch_size: sentences, captions or images per forward pass of a frozen encoder.
        progress: tqdm progress bars on long loops.
        hits: lookups answered from disk.
        misses: lookups that computed (and wrote) the value.
        computed: file names of the entries computed by this object, in the order they finished.
    """

    root: Path = DEFAULT_CACHE_DIR
    enabled: bool = True
    device: str = "cpu"
    batch_size: int = 64
    progress: bool = True
    hits: int = 0
    misses: int = 0
    computed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def path(self, stage: str, split: str, key: dict[str, Any]) -> Path:
        return self.root / f"{stage}-{split}-{digest(key)[:20]}.pt"

    def load_or_compute(
        self, stage: str, split: str, key: dict[str, Any], compute: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """The cached payload of ``(stage, split, key)``, else ``compute()`` written atomically."""
        full_key = {"stage": stage, "split": split, "code_version": CODE_VERSIONS["features"], **key}
        target = self.path(stage, split, full_key)
        entry = None
        if self.enabled and target.is_file():
            try:
                entry = load_torch(target, "feature-cache entry", weights_only=True)
            except StorageError as err:
                set_aside(target, err)
        if entry is not None:
            if entry.get("key") == json.loads(json.dumps(full_key, sort_keys=True, default=str)):
                self.hits += 1
                return entry["payload"]
        payload = compute()
        self.misses += 1
        self.computed.append(target.name)
        if self.enabled:
            atomic_torch_save({"key": json.loads(json.dumps(full_key, sort_keys=True, default=str)),
                               "payload": payload}, target)
        return payload
