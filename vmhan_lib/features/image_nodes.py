"""Image-based visual material of a split, through the feature cache (``features.visual_source`` = images/both).

:func:`build_image_index` runs the real image pipeline (:mod:`vmhan_lib.features.images`: the image
encoder for the image node, and, when a detector is given, its :data:`~vmhan_lib.features.config.MAX_DETECTIONS` most confident
boxes as object candidates) over the images of a split's instances and caches the result under a
key of everything that changes it: the encoder and its weights, the detector (weights sha256, or
yaml name and seed), the detection settings, and the sha256 of every image file read (an image
that is missing is part of the key too). MORE's annotated objects replace the detector
(``annotated``). An image that is missing or unreadable gets no features; its reason
(:data:`~vmhan_lib.features.images.IMAGE_NOT_FOUND` or ``unreadable image``) and the error are kept,
so the feature builder can count it and train that instance without visual nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import urlparse

import torch

from vmhan_lib.data.splits import image_file
from vmhan_lib.features.cache import FeatureCache
from vmhan_lib.features.config import DETECTOR_IMAGE_SIZE, DETECTOR_SEED, EFFICIENTNET_LITE0, MAX_DETECTIONS, ImageNodeConfig
from vmhan_lib.features.images import IMAGE_NOT_FOUND, MODEL_CONFIG_SUFFIXES, ImageNodeExtractor, ImageRunResult
from vmhan_lib.weights import EFFICIENTNET_LITE0 as LITE0_WEIGHTS
from vmhan_lib.identity import CODE_VERSIONS, digest, file_sha256

UNREADABLE_IMAGE = "unreadable image"

Annotated = Mapping[str, Sequence[tuple[str, Sequence[float]]]]
"""MORE: ``img_id -> [(object name, (cx, cy, w, h) normalised)]``."""


@dataclass
class ImageIndex:
    """Image-based visual material of a set of images (one split).

    Attributes:
        img_ids: the images, in order of first appearance.
        dim: the encoder's feature width d.
        image_features: ``[n_images, d]`` image-node features (zeros where the image failed).
        missing_reason: per image, ``""`` when it was read, else :data:`IMAGE_NOT_FOUND` or
            :data:`UNREADABLE_IMAGE`.
        errors: per image, ``"<path>: <error>"`` when it failed, else ``""``.
        object_names: per image, its object candidates' names, most confident first (detector
            class names, or MORE's annotated names in annotation order).
        object_features: per image, ``[c_i, d]`` features of each candidate's crop.
        confidences: per image, ``[c_i]`` detection confidences (1 for annotated objects).
    """

    img_ids: list[str]
    dim: int
    image_features: torch.Tensor
    missing_reason: list[str]
    errors: list[str]
    object_names: list[list[str]]
    object_features: list[torch.Tensor]
    confidences: list[torch.Tensor]

    def __post_init__(self) -> None:
        self._rows = {image: i for i, image in enumerate(self.img_ids)}

    def row(self, img_id: str) -> int:
        """Row of ``img_id`` in :attr:`image_features` and the per-image lists."""
        return self._rows[img_id]


def detector_identity(config: ImageNodeConfig) -> str | None:
    """What identifies the detector in a cache key: ``None`` (no detector), ``<yaml>@seed<s>`` for
    an untrained one built from a yaml, else ``<file name>:<sha256>`` of the weights file.

    Raises:
        FileNotFoundError: a weights file that does not exist (no weights are ever downloaded).
    """
    if config.detector is None:
        return None
    spec = Path(config.detector)
    if spec.suffix.lower() in MODEL_CONFIG_SUFFIXES:
        return f"{spec.name}{':' + file_sha256(spec) if spec.is_file() else ''}@seed{DETECTOR_SEED}"
    if not spec.is_file():
        raise FileNotFoundError(
            f"YOLO weights file not found: {spec.resolve()} (features.images.detector; no detector weights are "
            "downloaded here: pass your weights file, a model yaml such as yolov8n.yaml, or None for the image node alone)")
    return f"{spec.name}:{file_sha256(spec)}"


def encoder_identity(config: ImageNodeConfig) -> str:
    """What identifies the image encoder in a cache key: its name and its weights' sha256 (or file name)."""
    if config.encoder_weights is not None:
        return f"{config.encoder}:{file_sha256(config.encoder_weights)}"
    if config.encoder == EFFICIENTNET_LITE0:
        return f"{config.encoder}:{LITE0_WEIGHTS.sha256}"
    from torchvision import models  # the torchvision weights file name carries its hash

    try:
        url = models.get_model_weights(config.encoder).DEFAULT.url
    except ValueError as err:
        raise ValueError(f"unknown image encoder {config.encoder!r}; allowed: {EFFICIENTNET_LITE0} or a "
                         "torchvision model name (torchvision.models.list_models())") from err
    return f"{config.encoder}:{Path(urlparse(url).path).name}"


def image_index_key(image_dir: Path, split: str, img_ids: Sequence[str], config: ImageNodeConfig,
                    annotated: Annotated | None = None) -> dict[str, Any]:
    """The cache key of :func:`build_image_index` (also part of the nodes key of the feature builder)."""
    unique = list(dict.fromkeys(img_ids))
    files = {img: image_file(image_dir, split, img) for img in unique}
    return {
        "detector": None if annotated is not None else detector_identity(config),
        "encoder": encoder_identity(config),
        "min_confidence": config.min_confidence,
        "max_candidates": MAX_DETECTIONS,
        "detector_image_size": DETECTOR_IMAGE_SIZE,
        "images": digest({"ids": unique, "sha256": {img: None if f is None else file_sha256(f) for img, f in files.items()}}),
        "annotated": None if annotated is None else digest({img: annotated.get(img, []) for img in unique}),
        "code": CODE_VERSIONS["image-nodes"],
    }


def _payload(unique: Sequence[str], result: ImageRunResult, dim: int) -> dict[str, Any]:
    """The cached payload of :func:`build_image_index` from the pipeline's ``result``: per image its
    feature row, missing reason, error and object names; the object features and confidences of all
    images concatenated, ``counts`` per image to split them again. A failed image has zero features
    and no objects."""
    failures = {f.img_id: f for f in result.failures}
    features = torch.zeros(len(unique), dim)
    names, counts, objects, confidences, reasons, errors = [], [], [], [], [], []
    for row, img in enumerate(unique):
        nodes = result.nodes.get(img)
        if nodes is None:
            failure = failures[img]
            reasons.append(IMAGE_NOT_FOUND if IMAGE_NOT_FOUND in failure.error else UNREADABLE_IMAGE)
            errors.append(str(failure))
            names.append([])
            counts.append(0)
            continue
        features[row] = nodes.image_feature
        reasons.append("")
        errors.append("")
        names.append(list(nodes.class_names))
        counts.append(nodes.n_objects)
        objects.append(nodes.object_features)
        confidences.append(nodes.confidences.float())
    return {"dim": dim, "image_features": features, "missing_reason": reasons, "errors": errors,
            "object_names": names, "counts": counts,
            "object_features": torch.cat(objects) if objects else torch.zeros(0, dim),
            "confidences": torch.cat(confidences) if confidences else torch.zeros(0)}


def _extract(folder: Path, split: str, unique: Sequence[str], config: ImageNodeConfig, annotated: Annotated | None,
             cache: FeatureCache) -> dict[str, Any]:
    """Run the image pipeline over the distinct images ``unique`` (the detector only when one is set
    and no annotated objects replace it) on the cache's device, as :func:`_payload`."""
    top_k = MAX_DETECTIONS if config.detector and annotated is None else 0
    extractor = ImageNodeExtractor.of(config, top_k, cache.device, cache.batch_size)
    paths = {img: image_file(folder, split, img) or folder / img for img in unique}
    result = extractor.run(folder, unique, show_progress=cache.progress, paths=paths, annotated=annotated)
    return _payload(unique, result, extractor.encoder.dim)


def build_image_index(
    image_dir: str | Path, split: str, img_ids: Sequence[str], config: ImageNodeConfig = ImageNodeConfig(),
    cache: FeatureCache | None = None, annotated: Annotated | None = None,
) -> ImageIndex:
    """Image and object features of the images of ``img_ids`` (see the module docstring), cached.

    Args:
        image_dir: the image folder (``data.image_dir``): ``<image_dir>/<img_id>`` or ``<image_dir>/<split>/<img_id>``.
        split: ``train``, ``val`` or ``test``.
        img_ids: the images (repeats allowed: one row per distinct image).
        config: encoder, detector and detection settings.
        cache: the feature cache, with the device, batch size and progress bars of a miss (default: none).
        annotated: MORE's annotated objects per image, used instead of a detector.
    """
    folder = Path(image_dir)
    unique = list(dict.fromkeys(img_ids))
    key = image_index_key(folder, split, unique, config, annotated)
    active = cache or FeatureCache(enabled=False)
    payload = active.load_or_compute(
        "image-nodes", split, key, lambda: _extract(folder, split, unique, config, annotated, active))
    return ImageIndex(
        unique, payload["dim"], payload["image_features"], payload["missing_reason"], payload["errors"],
        payload["object_names"], list(torch.split(payload["object_features"], payload["counts"])),
        list(torch.split(payload["confidences"], payload["counts"])),
    )
