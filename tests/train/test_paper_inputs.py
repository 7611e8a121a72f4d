"""Tiny training runs on the paper's inputs, end to end through the one runner: visual nodes from the
real sample images (MNRE), and a MORE fixture (tail = an annotated object cropped from the image).

The detector is built from ``yolov8n.yaml`` (seeded random weights): no detector weights can be had here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.more_fixture import OBJECTS, write_more_fixture
from vmhan_lib.config import RunConfig, run_config
from vmhan_lib.hypergraph.batch import collate_hypergraphs
from vmhan_lib.train.jobs import RunPaths, table_jobs
from vmhan_lib.train.stage1 import prepare_inputs
from vmhan_lib.train.runner import run_jobs

LITE0, MINILM = 1280, 384
TINY_RUN = {"experiment.variants": "VM-HAN (Ours)", "encoder_train.epochs": 1, "train.epochs": 1, "features.visual_source": "images"}


def _config(tmp_path: Path, data_dir: Path, **overrides) -> RunConfig:
    """The tiny profile, one VM-HAN run of one epoch on images, its feature cache in ``tmp_path``."""
    return run_config("tiny", data_dir=str(data_dir),
                      overrides={**TINY_RUN, "features.cache_dir": str(tmp_path / "cache"), **overrides})


def test_tiny_run_on_visual_nodes_from_the_sample_images(mnre_dir: Path, tmp_path: Path) -> None:
    if not (mnre_dir / "images_sample").is_dir():
        pytest.skip("no sample images")
    config = _config(tmp_path, mnre_dir, **{"data.max_instances": 16, "data.image_instances": "first",
                                            "features.images.detector": "yolov8n.yaml",
                                            "features.images.min_confidence": 0.0})
    paths = RunPaths(tmp_path / "runs", tmp_path / "ckpt")
    [record] = run_jobs(config, table_jobs(config), paths=paths, progress=False)
    build = record["build"]
    assert record["complete"] and 0.0 <= record["test"]["f1"] <= 1.0
    assert RunConfig.from_dict(record["config"]["run"]) == config
    assert record["config"]["features"]["visual_source"] == "images"
    assert record["config"]["features"]["images"]["detector"] == "yolov8n.yaml"
    for split, report in build.items():
        assert report["visual_source"] == "images" and report["n_instances"] == 16
    assert sum(build["train"]["without_image"].values()) < 16  # some train instances have their image
    assert build["val"]["without_image"] == {"image file not found": 16}  # no sample image is a val image: counted
    assert build["val"]["n_failed_images"] > 0 and "image file not found" in build["val"]["failed_images"][0]

    inputs = prepare_inputs(config, paths, progress=False)  # the rerun: stage 1 reused, every split a cache hit
    assert all(report["cache_misses"] == 0 for report in inputs.build.values())
    node = next(n for n in inputs.data["train"].nodes if n.has_image)
    assert node.visual_features.shape == (1 + node.n_objects + node.n_visual_llm, LITE0 + MINILM)
    assert 1 <= node.n_objects <= 3 and node.n_visual_llm > 0  # the embedding ranker's visual nodes, from the caption
    objects, llm = node.visual_features[1:1 + node.n_objects], node.visual_features[1 + node.n_objects:]
    assert float(objects[:, LITE0:].abs().sum()) == 0 and float(llm[:, :LITE0].abs().sum()) == 0  # one block each
    assert inputs.model.d_visual == LITE0 + MINILM and record["config"]["model"]["d_visual"] == LITE0 + MINILM


def test_tiny_run_on_a_more_fixture(mnre_dir: Path, tmp_path: Path) -> None:
    if not (mnre_dir / "images_sample").is_dir():
        pytest.skip("no sample images")
    more = write_more_fixture(tmp_path / "more", mnre_dir)
    config = _config(tmp_path, more, **{"data.dataset": "more", "features.k_objects": 1})
    paths = RunPaths(tmp_path / "runs", tmp_path / "ckpt")
    [record] = run_jobs(config, table_jobs(config), paths=paths, progress=False)
    assert record["complete"] and 0.0 <= record["test"]["f1"] <= 1.0
    assert record["config"]["run"]["data"]["dataset"] == "more"
    assert all(report["without_image"] == {} for report in record["build"].values())

    inputs = prepare_inputs(config, paths, progress=False)
    instances_per_image = len(OBJECTS)
    for position, node in enumerate(inputs.data["train"].nodes[:instances_per_image]):
        tail = list(OBJECTS)[position]
        assert node.visual_names[:2] == ["<image>", tail]  # the tail's own object first, then k = 1 other
        assert node.n_objects == 2 and node.visual_features.shape == (3, LITE0 + MINILM)  # MORE: no caption, no visual-LLM node
        assert node.text_names[1] == tail and node.tail_visual_row == 1
    batch = collate_hypergraphs(inputs.data["train"].nodes[:instances_per_image], inputs.model.hypergraph)
    assert batch.tail_source.tolist() == [batch.num_text_slots + 1] * instances_per_image  # the tail slot = its object node
