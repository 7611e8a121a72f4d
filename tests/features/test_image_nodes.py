"""Visual nodes from real images in build_split: shapes and values, missing and unreadable images
counted, the image node alone without a detector, both sources, the object prompt, and the cache.

The detector is built from ``yolov8n.yaml`` (seeded random weights): no detector weights can be had here.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import pytest
import torch

import vmhan_lib  # noqa: F401  (offline variables before ultralytics)
from vmhan_lib.data import Instance
from vmhan_lib.data.config import DataConfig
from vmhan_lib.data.splits import load_split
from vmhan_lib.features.build import IMAGE_NODE_NAME, PromptSelectors, build_split
from vmhan_lib.features.cache import FeatureCache
from vmhan_lib.features.config import FeatureConfig, ImageNodeConfig
from vmhan_lib.features.image_encoder import load_image_encoder
from vmhan_lib.features.images import read_rgb_image

N = 10
LITE0, MINILM = 1280, 384
DETECTOR = ImageNodeConfig(detector="yolov8n.yaml", min_confidence=0.0)
IMAGES = FeatureConfig(visual_source="images", images=DETECTOR)


def _stages(file_names: list[str]) -> list[str]:
    """Sorted stage of each cache file name ``{stage}-{split}-{digest}.pt``."""
    return sorted(name.rsplit("-", 2)[0] for name in file_names)


@pytest.fixture(scope="module")
def image_folder(mnre_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Two sample images of the first train instances that have one, plus a third as a broken file."""
    sample = mnre_dir / "images_sample"
    if not sample.is_dir():
        pytest.skip(f"no sample images at {sample}")
    present = {p.name for p in sample.iterdir()}
    img_ids = list(dict.fromkeys(i.img_id for i in load_split(DataConfig(data_dir=str(mnre_dir)), "train")
                                 if i.img_id in present))[:3]
    folder = tmp_path_factory.mktemp("images")
    for img_id in img_ids[:2]:
        shutil.copy(sample / img_id, folder / img_id)
    (folder / img_ids[2]).write_bytes(b"not a jpeg")
    return folder, img_ids[2]


def _data(mnre_dir: Path, folder: Path) -> DataConfig:
    """The instances of the folder's images first, then N - 3 more whose image is not there."""
    listed = sum((folder / i.img_id).is_file() for i in load_split(DataConfig(data_dir=str(mnre_dir)), "train"))
    return DataConfig(data_dir=str(mnre_dir), max_instances=listed + N - 3, image_dir=str(folder), image_instances="first")


def test_nodes_from_real_images_counted_failures_and_cache_hit(mnre_dir: Path, image_folder, tmp_path: Path) -> None:
    folder, broken = image_folder
    cache = FeatureCache(root=tmp_path / "features")
    data = _data(mnre_dir, folder)
    built = build_split(data, "train", IMAGES, cache=cache)
    instances = load_split(data, "train")
    assert built.report.cache_misses == 3  # text, image nodes, nodes
    with_image = [i for i in instances if (folder / i.img_id).is_file() and i.img_id != broken]
    n_broken = sum(i.img_id == broken for i in instances)
    assert with_image == instances[: len(with_image)] and len(with_image) >= 2  # image_instances=first
    assert built.report.without_image == {"unreadable image": n_broken, "image file not found": N - 3}
    assert built.report.n_failed_images == len({i.img_id for i in instances[len(with_image):]})
    assert any(str(folder / broken) in failure for failure in built.report.failed_images)
    assert built.report.visual_source == "images"

    encoder = load_image_encoder("efficientnet-lite0")
    expected = encoder.encode([read_rgb_image(folder / with_image[0].img_id)])[0]
    for node, instance in zip(built.nodes, instances):
        if instance in with_image:
            assert node.has_image and node.visual_names[0] == IMAGE_NODE_NAME and 1 <= node.n_objects <= 3
            assert node.visual_features.shape == (1 + node.n_objects, LITE0 + MINILM)
            assert float(node.visual_features[:, LITE0:].abs().sum()) == 0  # no visual-LLM rows: sentence block empty
        else:
            assert not node.has_image and node.visual_features.shape == (0, LITE0 + MINILM)
    assert torch.allclose(built.nodes[0].visual_features[0, :LITE0], expected, atol=1e-4)

    computed = list(cache.computed)
    again = build_split(data, "train", IMAGES, cache=cache)
    assert again.report.cache_hits == 1 and again.report.cache_misses == 0 and cache.computed == computed
    assert all(torch.equal(a.visual_features, b.visual_features) for a, b in zip(built.nodes, again.nodes))

    other_threshold = replace(IMAGES, images=replace(DETECTOR, min_confidence=0.01))
    build_split(data, "train", other_threshold, cache=cache)
    assert _stages(cache.computed[len(computed):]) == ["image-nodes", "nodes"]  # text features reused


def test_image_node_alone_without_detector_and_both_sources(mnre_dir: Path, image_folder, tmp_path: Path) -> None:
    folder, _ = image_folder
    cache = FeatureCache(root=tmp_path / "features")
    data = _data(mnre_dir, folder)
    alone = build_split(data, "train", replace(IMAGES, images=ImageNodeConfig()), cache=cache).nodes
    assert [n.visual_features.shape for n in alone if n.has_image] == [(1, LITE0 + MINILM)] * sum(n.has_image for n in alone)
    assert all(n.n_objects == 0 for n in alone)

    both = build_split(data, "train", replace(IMAGES, visual_source="both"), cache=cache).nodes
    node = next(n for n in both if n.has_image)
    assert node.visual_features.shape[1] == LITE0 + MINILM
    image_row = node.visual_features[0]
    assert float(image_row[:LITE0].abs().sum()) > 0 and abs(float(image_row[LITE0:].norm()) - 1) < 1e-4
    detected = [row for row in node.visual_features[1:1 + node.n_objects] if float(row[LITE0:].abs().sum()) == 0]
    assert 1 <= len(detected) <= 3 and node.n_objects > len(detected)  # detections, then caption objects


class ObjectPicker:
    """Object prompt stub: picks the candidates in reverse order, counting its calls."""

    name = "object-picker"

    def __init__(self) -> None:
        self.calls = 0
        self.offered: list[list[str]] = []

    def select_objects(self, instance: Instance, candidates: Sequence[str], k: int) -> list[str]:
        self.calls += 1
        self.offered.append(list(candidates))
        return list(reversed(candidates))[:k]


def test_object_prompt_picks_among_detected_and_caption_objects(mnre_dir: Path, image_folder, tmp_path: Path) -> None:
    folder, _ = image_folder
    cache = FeatureCache(root=tmp_path / "features")
    data = _data(mnre_dir, folder)
    config = replace(IMAGES, visual_source="both", k_objects=2)
    picker = ObjectPicker()
    built = build_split(data, "train", config, PromptSelectors(objects=picker), cache=cache)
    assert all(picker.offered)  # asked only where there are candidates
    assert built.report.object_selections == 2 * len(built.nodes)  # both candidate sources, every instance
    assert 0 < picker.calls <= 2 * len(built.nodes)
    node = next(n for n in built.nodes if n.has_image)
    caption_names = node.visual_names[1 + sum(1 for r in node.visual_features[1:1 + node.n_objects]
                                              if float(r[LITE0:].abs().sum()) == 0):1 + node.n_objects]
    caption_offer = next(o for o in picker.offered if caption_names and caption_names[0] in o)
    assert caption_names == list(reversed(caption_offer))[:2]

    second = ObjectPicker()
    build_split(data, "train", config, PromptSelectors(objects=second), cache=cache)
    assert second.calls == 0  # the object prompt's answers are cached
