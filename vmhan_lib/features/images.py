"""Visual nodes from real images: YOLO objects, top-k by confidence, image and object features.

For every image of the user's folder (here the 39 real MNRE images of ``images_sample/``):

1. ultralytics YOLO detects objects (the paper uses YOLOv3; any ultralytics weights file works,
   and a model yaml such as ``yolov8n.yaml`` builds an untrained detector, which the tests use
   because no detector weights are reachable here: its boxes are random but well-formed);
2. the k most confident detections are kept (k = 3 in the paper), boxes clipped to the image;
3. the image encoder (:mod:`vmhan_lib.features.image_encoder`) gives the image feature (whole
   image) and one object feature per box (the box crop).

A missing or unreadable image does not stop the run: it is recorded as an :class:`ImageFailure`
naming the file and the error, and the run goes on.

Import :mod:`vmhan_lib` before ultralytics (it sets ``YOLO_OFFLINE``, ``YOLO_CONFIG_DIR``, ...;
the package ``__init__`` does so whenever this module is imported).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from vmhan_lib.features.config import DETECTOR_IMAGE_SIZE, DETECTOR_SEED, ImageNodeConfig
from vmhan_lib.features.image_encoder import ImageEncoder, load_image_encoder

if TYPE_CHECKING:
    from ultralytics import YOLO

logger = logging.getLogger(__name__)

IMAGE_NOT_FOUND = "image file not found"
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MODEL_CONFIG_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")
Annotation = Sequence[tuple[str, Sequence[float]]]
"""MORE's annotated objects of an image: ``(name, (cx, cy, w, h))``, the box normalised to [0, 1]."""


@dataclass
class ImageNodes:
    """The visual nodes of one image.

    Attributes:
        img_id: the image's file name (the MNRE join key).
        path: where it was read from.
        width, height: image size in pixels.
        boxes: ``[k', 4]`` float32 ``x1, y1, x2, y2`` pixels, ``0 <= x1 < x2 <= width`` (same for y);
            ``k' <= top_k`` (fewer when fewer objects pass ``min_confidence``), most confident first.
        class_names: the detector's class name of each box.
        confidences: ``[k']`` detection confidences, descending.
        image_feature: ``[d]`` encoder features of the whole image (the image node v_I).
        object_features: ``[k', d]`` encoder features of each box crop (the object nodes).
    """

    img_id: str
    path: Path
    width: int
    height: int
    boxes: torch.Tensor
    class_names: list[str]
    confidences: torch.Tensor
    image_feature: torch.Tensor
    object_features: torch.Tensor

    @property
    def n_objects(self) -> int:
        return int(self.boxes.shape[0])


@dataclass(frozen=True)
class ImageFailure:
    """An image that could not be processed: which file, and why."""

    img_id: str
    path: Path
    error: str

    def __str__(self) -> str:
        return f"{self.path}: {self.error}"


@dataclass
class ImageRunResult:
    """What :meth:`ImageNodeExtractor.run` returns: nodes of the images that worked, and the failures."""

    nodes: dict[str, ImageNodes] = field(default_factory=dict)
    failures: list[ImageFailure] = field(default_factory=list)
    seconds: float = 0.0


def load_detector(detector: str | Path, seed: int = 0) -> "YOLO":
    """An ultralytics YOLO detector from a weights file or a model yaml (untrained), never downloaded.

    A detector built from a yaml gets random weights drawn with ``seed`` (torch's global random
    state is left as it was), so the same yaml and seed give the same detector in every process.

    Raises:
        FileNotFoundError: ``detector`` is a weights path that does not exist (ultralytics would
            otherwise try to download a file of that name).
    """
    from ultralytics import YOLO  # vmhan_lib, imported first, has set the offline variables

    spec = str(detector)
    if Path(spec).suffix.lower() in MODEL_CONFIG_SUFFIXES:
        logger.warning("YOLO detector built from %s has random weights: its boxes are meaningless "
                       "(fine for testing the pipeline; pass a weights file for real objects)", spec)
    elif not Path(spec).is_file():
        raise FileNotFoundError(
            f"YOLO weights file not found: {Path(spec).resolve()} (no detector weights are downloaded; "
            "pass the path of your weights file, or a model yaml such as 'yolov8n.yaml' for an untrained detector)"
        )
    if Path(spec).suffix.lower() in MODEL_CONFIG_SUFFIXES:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return YOLO(spec, task="detect")
    return YOLO(spec, task="detect")


def list_images(image_dir: str | Path) -> list[str]:
    """File names of the images in ``image_dir`` (suffixes :data:`IMAGE_SUFFIXES`), sorted."""
    folder = Path(image_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder.resolve()}")
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_rgb_image(path: Path) -> Image.Image:
    """Open and fully decode an image as RGB (so a truncated file fails here, not later).

    Raises:
        OSError: missing, unreadable, unidentifiable or truncated file (PIL's errors).
    """
    try:
        handle = Image.open(path)
    except ImportError as err:
        # ultralytics patches Image.open to import pi-heif when PIL cannot identify a file;
        # without pi-heif that surfaces as ImportError instead of PIL's UnidentifiedImageError
        raise UnidentifiedImageError(f"cannot identify image file {str(path)!r}") from err
    with handle:
        handle.load()
        return handle.convert("RGB")


def clip_boxes(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Clip ``[N, 4]`` xyxy boxes into a ``width`` x ``height`` image, keeping at least one pixel each way."""
    clipped = boxes.clone()
    for low, high, size in ((0, 2, width), (1, 3, height)):
        clipped[:, low] = clipped[:, low].clamp(0, size - 1)
        clipped[:, high] = torch.minimum(torch.maximum(clipped[:, high], clipped[:, low] + 1),
                                         torch.full_like(clipped[:, high], float(size)))
    return clipped


def normalised_boxes_to_pixels(boxes: Sequence[Sequence[float]], width: int, height: int) -> torch.Tensor:
    """``[N, 4]`` xyxy pixel boxes of boxes given as normalised ``(cx, cy, w, h)`` (MORE's format)."""
    if not boxes:
        return torch.zeros(0, 4)
    cx, cy, w, h = torch.tensor([list(map(float, box)) for box in boxes], dtype=torch.float32).unbind(dim=1)
    return torch.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height], dim=1)


class ImageNodeExtractor:
    """Detector + encoder, applied to batches of images (see the module docstring)."""

    def __init__(self, detector: "YOLO | None", encoder: ImageEncoder, top_k: int = 3, min_confidence: float = 0.25,
                 device: str = "cpu") -> None:
        """``top_k`` objects kept per image, the most confident first (0: the image node alone);
        detections below ``min_confidence`` dropped (an untrained detector needs 0); YOLO inference
        at :data:`DETECTOR_IMAGE_SIZE` pixels on ``device``."""
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        self.detector, self.encoder = detector, encoder
        self.top_k, self.min_confidence, self.device = top_k, min_confidence, device

    @classmethod
    def of(cls, config: ImageNodeConfig, top_k: int, device: str = "cpu", batch_size: int = 16) -> "ImageNodeExtractor":
        """Load the detector (none when ``top_k`` is 0) and the encoder that ``config`` names."""
        encoder = load_image_encoder(config.encoder, config.encoder_weights, device=device, batch_size=batch_size)
        detector = None if config.detector is None or top_k == 0 else load_detector(config.detector, seed=DETECTOR_SEED)
        return cls(detector, encoder, top_k, config.min_confidence, device)

    def detect_many(self, images: Sequence[Image.Image]) -> list[tuple[torch.Tensor, list[str], torch.Tensor]]:
        """Top-k detections of each of ``images`` (boxes ``[k', 4]`` clipped to it, class names,
        confidences), the detector run once per group of images of one size:
        one batch, each image letterboxed exactly as it would be alone (ultralytics pads a batch of
        mixed sizes to the full square instead)."""
        if self.top_k == 0 or self.detector is None:
            return [(torch.zeros(0, 4), [], torch.zeros(0)) for _ in images]
        by_size: dict[tuple[int, int], list[int]] = {}
        for position, image in enumerate(images):
            by_size.setdefault(image.size, []).append(position)
        found: dict[int, tuple[torch.Tensor, list[str], torch.Tensor]] = {}
        for (width, height), members in by_size.items():
            results = self.detector.predict(
                [images[p] for p in members], conf=self.min_confidence, imgsz=DETECTOR_IMAGE_SIZE,
                max_det=max(self.top_k, 1) * 10, device=self.device, verbose=False, save=False,
            )
            for position, result in zip(members, results, strict=True):
                confidences = result.boxes.conf.detach().float().cpu()
                order = torch.argsort(confidences, descending=True)[: self.top_k]
                boxes = clip_boxes(result.boxes.xyxy.detach().float().cpu()[order], width, height)
                classes = result.boxes.cls.detach().cpu()[order].long().tolist()
                found[position] = boxes, [str(result.names[c]) for c in classes], confidences[order]
        return [found[position] for position in range(len(images))]

    def process_many(self, loaded: Sequence[tuple[str, Path, Image.Image, Annotation | None]]) -> list[ImageNodes]:
        """Visual nodes of read images ``(img_id, path, image, annotated)``: the detector over those
        without annotated objects (:meth:`detect_many`), then every image and crop through the encoder
        together (in batches of its ``batch_size``).

        ``annotated`` (MORE): the image's annotated objects as ``(name, (cx, cy, w, h))`` with the
        box normalised to [0, 1]; they replace the detector's boxes (confidence 1, annotation order).
        """
        to_detect = [position for position, item in enumerate(loaded) if item[3] is None]
        detected = dict(zip(to_detect, self.detect_many([loaded[p][2] for p in to_detect]), strict=True))
        pictures: list[Image.Image] = []
        found = []
        for position, (_, _, image, annotated) in enumerate(loaded):
            if annotated is None:
                boxes, names, confidences = detected[position]
            else:
                boxes = clip_boxes(normalised_boxes_to_pixels([box for _, box in annotated], *image.size), *image.size)
                names, confidences = [name for name, _ in annotated], torch.ones(len(annotated))
            found.append((boxes, names, confidences))
            pictures += [image, *(image.crop(tuple(int(round(v)) for v in box.tolist())) for box in boxes)]
        features = self.encoder.encode(pictures)  # [images + crops, d]: each image, then its crops
        nodes, row = [], 0
        for (img_id, path, image, _), (boxes, names, confidences) in zip(loaded, found):
            nodes.append(ImageNodes(
                img_id=img_id, path=path, width=image.size[0], height=image.size[1], boxes=boxes, class_names=names,
                confidences=confidences, image_feature=features[row],
                object_features=features[row + 1:row + 1 + len(boxes)],
            ))
            row += 1 + len(boxes)
        return nodes

    def run(self, image_dir: str | Path, img_ids: Iterable[str] | None = None,
            show_progress: bool = True, paths: Mapping[str, Path] | None = None,
            annotated: Mapping[str, Sequence[tuple[str, Sequence[float]]]] | None = None) -> ImageRunResult:
        """Visual nodes of ``img_ids`` (default: every image in ``image_dir``); failures are collected.

        ``paths`` gives the file of an image where it is not ``image_dir/img_id`` (e.g. in a split
        sub-folder); ``annotated`` the annotated objects of an image (see :meth:`process_many`). Each
        failure (missing file, not an image, truncated file) is recorded with the file's path and
        the error, and the run goes on. Images are read, detected and encoded ``encoder.batch_size``
        at a time (:meth:`process_many`).
        """
        folder = Path(image_dir)
        names: Sequence[str] = list(img_ids) if img_ids is not None else list_images(folder)
        result = ImageRunResult()
        started = time.perf_counter()
        with tqdm(total=len(names), desc="images", unit="img", disable=not show_progress) as bar:
            for start in range(0, len(names), self.encoder.batch_size):
                loaded = []
                for img_id in names[start:start + self.encoder.batch_size]:
                    path = Path((paths or {}).get(img_id) or folder / img_id)
                    try:
                        if not path.is_file():
                            raise FileNotFoundError(IMAGE_NOT_FOUND)
                        loaded.append((img_id, path, read_rgb_image(path),
                                       None if annotated is None else annotated.get(img_id, [])))
                    except (OSError, ValueError, SyntaxError) as err:  # what PIL raises on broken files
                        result.failures.append(ImageFailure(img_id, path, f"{type(err).__name__}: {err}"))
                result.nodes.update((nodes.img_id, nodes) for nodes in self.process_many(loaded))
                bar.update(len(names[start:start + self.encoder.batch_size]))
        result.seconds = time.perf_counter() - started
        return result


def match_object_names(class_names: Sequence[str], chosen_names: Sequence[str]) -> list[int]:
    """Indices into ``class_names`` (most confident first) of the names a selector chose.

    Each name takes the most confident unused box of that class (names are compared
    case-insensitively); names that match no unused box are skipped.
    """
    used: set[int] = set()
    indices = []
    for name in chosen_names:
        for index, class_name in enumerate(class_names):
            if index not in used and class_name.lower() == name.lower():
                used.add(index)
                indices.append(index)
                break
    return indices
