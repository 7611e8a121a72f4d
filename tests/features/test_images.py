"""Visual nodes from real images: YOLO (built from its yaml: no weights are reachable here) + EfficientNet-Lite0."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import vmhan_lib  # noqa: F401  (offline variables before ultralytics)
from vmhan_lib.paths import REPO_ROOT
from vmhan_lib.features.image_encoder import (
    ImageEncoderUnavailableError,
    load_efficientnet_lite0,
    load_image_encoder,
)
from vmhan_lib.features.config import ImageNodeConfig
from vmhan_lib.features.images import (
    ImageNodeExtractor,
    clip_boxes,
    list_images,
    load_detector,
    match_object_names,
    read_rgb_image,
)
from vmhan_lib.weights import WeightIntegrityError

LITE0_DIM = 1280
N_REAL_IMAGES = 3


@pytest.fixture(scope="module")
def image_dir(mnre_dir: Path) -> Path:
    folder = mnre_dir / "images_sample"
    if not folder.is_dir():
        pytest.skip(f"no sample images at {folder}")
    return folder


@pytest.fixture(scope="module")
def extractor() -> ImageNodeExtractor:
    # an untrained detector needs confidence 0 to report anything
    config = ImageNodeConfig(detector="yolov8n.yaml", min_confidence=0.0)
    return ImageNodeExtractor(load_detector(config.detector), load_image_encoder(config.encoder), top_k=3,
                              min_confidence=0.0)


def test_pipeline_on_real_images(extractor: ImageNodeExtractor, image_dir: Path) -> None:
    names = list_images(image_dir)[:N_REAL_IMAGES]
    result = extractor.run(image_dir, names, show_progress=False)
    assert result.failures == []
    assert list(result.nodes) == names
    for nodes in result.nodes.values():
        k = nodes.n_objects
        assert 1 <= k <= 3
        assert nodes.boxes.shape == (k, 4) and nodes.boxes.dtype == torch.float32
        x1, y1, x2, y2 = nodes.boxes.unbind(1)
        assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 > x1).all() and (y2 > y1).all()
        assert (x2 <= nodes.width).all() and (y2 <= nodes.height).all()
        assert (nodes.width, nodes.height) == (800, 600)
        assert len(nodes.class_names) == k and all(isinstance(n, str) for n in nodes.class_names)
        assert nodes.confidences.shape == (k,)
        assert (nodes.confidences[:-1] >= nodes.confidences[1:]).all()
        assert nodes.image_feature.shape == (LITE0_DIM,)
        assert nodes.object_features.shape == (k, LITE0_DIM)
        assert torch.isfinite(nodes.object_features).all() and torch.isfinite(nodes.image_feature).all()
    assert result.seconds > 0


def test_images_go_through_the_detector_and_the_encoder_in_batches_with_the_results_of_one_at_a_time(
        extractor: ImageNodeExtractor, image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 26: one detector call per batch of same-size images, one encoder pass per batch of images
    and crops; the same boxes and features as image by image (a resized copy: a second size, its own call)."""
    names = list_images(image_dir)[:4]
    for name in names:
        shutil.copyfile(image_dir / name, tmp_path / name)
    read_rgb_image(image_dir / names[0]).resize((320, 240)).save(tmp_path / "small.jpg")
    names.insert(2, "small.jpg")
    alone = {name: extractor.process_many([(name, tmp_path / name, read_rgb_image(tmp_path / name), None)])[0]
             for name in names}
    calls = {"detector": 0, "encoder": 0}
    predict, encode = extractor.detector.predict, extractor.encoder.encode

    def counted(kind, function):
        def call(*args, **kwargs):
            calls[kind] += 1
            return function(*args, **kwargs)
        return call

    monkeypatch.setattr(extractor.detector, "predict", counted("detector", predict))
    monkeypatch.setattr(extractor.encoder, "encode", counted("encoder", encode))
    batched = extractor.run(tmp_path, names, show_progress=False).nodes
    assert calls == {"detector": 2, "encoder": 1} and list(batched) == names  # sizes 800x600 and 320x240
    for name in names:
        assert batched[name].class_names == alone[name].class_names
        torch.testing.assert_close(batched[name].boxes, alone[name].boxes, atol=1e-3, rtol=0)
        torch.testing.assert_close(batched[name].image_feature, alone[name].image_feature, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(batched[name].object_features, alone[name].object_features, atol=1e-4, rtol=1e-4)


def test_top_k_is_respected(extractor: ImageNodeExtractor, image_dir: Path) -> None:
    one = ImageNodeExtractor(extractor.detector, extractor.encoder, top_k=1, min_confidence=0.0)
    none = ImageNodeExtractor(extractor.detector, extractor.encoder, top_k=0)
    name = list_images(image_dir)[0]
    assert one.run(image_dir, [name], show_progress=False).nodes[name].n_objects == 1
    empty = none.run(image_dir, [name], show_progress=False).nodes[name]
    assert empty.boxes.shape == (0, 4) and empty.object_features.shape == (0, LITE0_DIM)
    assert empty.image_feature.shape == (LITE0_DIM,)


def test_bad_and_missing_images_are_recorded_and_the_run_goes_on(
        extractor: ImageNodeExtractor, image_dir: Path, tmp_path: Path) -> None:
    real = list_images(image_dir)[0]
    shutil.copy(image_dir / real, tmp_path / real)
    (tmp_path / "garbage.jpg").write_bytes(os.urandom(2048))
    (tmp_path / "truncated.jpg").write_bytes((image_dir / real).read_bytes()[:3000])
    ids = ["garbage.jpg", real, "missing.jpg", "truncated.jpg"]
    result = extractor.run(tmp_path, ids, show_progress=False)
    assert list(result.nodes) == [real]
    failed = {failure.img_id: failure for failure in result.failures}
    assert set(failed) == {"garbage.jpg", "missing.jpg", "truncated.jpg"}
    for img_id, failure in failed.items():
        assert str(tmp_path / img_id) in str(failure)
    assert "not found" in failed["missing.jpg"].error
    assert "truncated" in failed["truncated.jpg"].error


def test_read_rgb_image_raises_oserror_on_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(OSError, match="bad.jpg"):
        read_rgb_image(bad)


def test_clip_boxes_keeps_boxes_inside_and_non_empty() -> None:
    boxes = torch.tensor([[-5.0, -5.0, 900.0, 700.0], [850.0, 10.0, 900.0, 11.0], [10.0, 10.0, 10.0, 10.0]])
    clipped = clip_boxes(boxes, 800, 600)
    assert clipped.tolist() == [[0, 0, 800, 600], [799, 10, 800, 11], [10, 10, 11, 11]]


def test_match_object_names_maps_names_to_most_confident_unused_boxes(
        extractor: ImageNodeExtractor, image_dir: Path) -> None:
    name = list_images(image_dir)[0]
    nodes = extractor.run(image_dir, [name], show_progress=False).nodes[name]
    nodes.class_names = ["person", "tie", "person"][: nodes.n_objects]
    assert match_object_names(nodes.class_names, ["Person", "person", "car"]) == [i for i in (0, 2) if i < nodes.n_objects]


def test_efficientnet_lite0_checks_its_hash(tmp_path: Path, image_dir: Path) -> None:
    encoder = load_efficientnet_lite0()
    image = read_rgb_image(image_dir / list_images(image_dir)[0])
    assert encoder.dim == LITE0_DIM
    assert encoder.encode([image, image.crop((0, 0, 50, 80))]).shape == (2, LITE0_DIM)
    tampered = tmp_path / "efficientnet-lite0-57934424.pth"
    tampered.write_bytes(b"\0" * 1024)
    with pytest.raises(WeightIntegrityError, match="efficientnet-lite0-57934424.pth.*sha256"):
        load_efficientnet_lite0(weights_file=tampered)


def test_torchvision_encoders_fail_clearly_offline() -> None:
    with pytest.raises(ValueError, match="unknown image encoder 'no-such-net'.*vgg16"):
        load_image_encoder("no-such-net")
    cached = Path(torch.hub.get_dir()) / "checkpoints"
    if any(cached.glob("vgg16-*.pth")):
        pytest.skip(f"VGG16 weights are cached in {cached}")
    with pytest.raises(ImageEncoderUnavailableError, match="vgg16.*not available offline"):
        load_image_encoder("vgg16")


def test_torchvision_encoder_from_a_local_weights_file(tmp_path: Path, image_dir: Path) -> None:
    from torchvision import models

    weights_file = tmp_path / "mobilenet_v3_small.pth"
    torch.save(models.get_model("mobilenet_v3_small", weights=None).state_dict(), weights_file)
    encoder = load_image_encoder("mobilenet_v3_small", weights_file=weights_file)
    image = read_rgb_image(image_dir / list_images(image_dir)[0])
    assert encoder.dim == 1024  # input of the last linear layer
    assert encoder.encode([image]).shape == (1, 1024)


def test_missing_detector_weights_fail_without_download(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="YOLO weights file not found.*yolov3u.pt"):
        load_detector(tmp_path / "yolov3u.pt")


def test_nothing_is_written_outside_the_project(image_dir: Path, tmp_path: Path) -> None:
    """Detector + encoder in a fresh process with an empty HOME and working directory: both stay empty."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    script = textwrap.dedent(f"""
        import vmhan_lib
        from vmhan_lib.features.config import ImageNodeConfig
        from vmhan_lib.features.images import ImageNodeExtractor
        extractor = ImageNodeExtractor.of(ImageNodeConfig(detector="yolov8n.yaml", min_confidence=0.0), top_k=3)
        result = extractor.run({str(image_dir)!r}, [{list_images(image_dir)[0]!r}], show_progress=False)
        assert not result.failures, result.failures
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "XDG_"))}
    env.update(HOME=str(home), PYTHONPATH=str(REPO_ROOT))
    completed = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert list(home.rglob("*")) == []
    assert list(work.rglob("*")) == []
