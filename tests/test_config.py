"""The run configuration tree: presets, round trips, overrides by dotted name."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from vmhan_lib.config_tree import ConfigError, field_names, to_dict
from vmhan_lib.model.variants import TABLE1_VARIANTS, TABLE2_VARIANTS, VARIANTS
from vmhan_lib.paths import PROFILES
from vmhan_lib.config import (EXECUTION_FIELDS, STAGE1_HEAD_DROPOUT, RunConfig, preset, run_config,
                              stage1_train_config)
from vmhan_lib.features.config import SelectorConfig


@pytest.mark.parametrize("profile", PROFILES)
def test_every_preset_round_trips_through_json(profile: str) -> None:
    config = preset(profile)
    assert config.profile == profile
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_presets_hold_each_profiles_settings() -> None:
    tiny, cpu, full = preset("tiny"), preset("cpu"), preset("full")
    assert tiny.data.max_instances == 200 and cpu.data.max_instances is None
    assert (tiny.encoder_train.epochs, tiny.train.epochs, tiny.experiment.seeds) == (1, 2, (0,))
    assert (cpu.encoder_train.epochs, cpu.encoder_train.lr, cpu.train.epochs, cpu.train.batch_size) == (4, 5e-5, 8, 32)
    assert len(cpu.experiment.seeds_of("VM-HAN (Ours)")) == 5 and len(cpu.experiment.seeds_of("repl. GAT")) == 3
    assert (full.encoder_train.lr, full.encoder_train.batch_size, full.train.batch_size) == (2e-5, 16, 16)
    assert set(cpu.experiment.variants) == set(TABLE1_VARIANTS) | set(TABLE2_VARIANTS) <= set(VARIANTS)


def test_paper_hyperparameters_have_one_knob_each() -> None:
    names = field_names(RunConfig)
    homes = {"k_objects": "features", "m_text_nodes": "features", "n_visual_nodes": "features",
             "lambda_c": "model", "lambda_rec": "model", "lambda_kl": "model", "hidden": "model", "heads": "model"}
    for knob, home in homes.items():
        assert [n for n in names if n.split(".")[-1] == knob] == [f"{home}.{knob}"]
    assert not [n for n in names if "max_objects" in n or "max_text_llm" in n or "max_visual_llm" in n]


def test_overrides_reach_any_field_and_errors_name_allowed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VMHAN_PROFILE", raising=False)
    config = run_config("tiny", "/x/mnre", {"features.text.model": "bert-base-uncased", "train.epochs": "20",
                                            "model.hypergraph.edge_types": "global,visual", "features.k_objects": 5})
    assert config.features.text.model == "bert-base-uncased" and config.train.epochs == 20
    assert config.model.hypergraph.edge_types == ("global", "visual") and config.features.k_objects == 5
    assert config.data.data_dir == "/x/mnre" and str(config.data.path) == "/x/mnre"
    with pytest.raises(ConfigError, match="allowed: auto, cpu, cuda"):
        run_config("tiny", overrides={"device": "tpu"})
    with pytest.raises(ConfigError, match="allowed: embedding, smollm2, transformers, openai"):
        run_config("tiny", overrides={"features.selectors.visual": "gpt"})
    with pytest.raises(ConfigError, match="unknown hyperedge type"):
        run_config("tiny", overrides={"model.hypergraph.edge_types": "global,diagonal"})
    with pytest.raises(ConfigError, match="unknown or no variant"):
        run_config("tiny", overrides={"experiment.variants": "VM-HAN"})
    with pytest.raises(ConfigError, match="allowed: tiny, cpu, full"):
        run_config("huge")


def test_stage_one_trains_with_stage_two_adamw_settings_and_its_own_schedule() -> None:
    config = run_config("cpu", overrides={"train.weight_decay": 0.05, "encoder_train.lr": 3e-5})
    stage1 = stage1_train_config(config)
    assert (stage1.epochs, stage1.batch_size, stage1.lr) == (4, 32, 3e-5)
    assert (stage1.weight_decay, stage1.warmup_ratio, stage1.max_grad_norm) == (0.05, 0.1, 1.0)
    assert stage1.cpu_threads is None and config.train.cpu_threads == 1 and STAGE1_HEAD_DROPOUT == 0.1


def test_the_configuration_has_at_most_70_fields_and_one_device() -> None:
    names = field_names(RunConfig)
    assert len(names) <= 70, len(names)
    assert [n for n in names if n.endswith("device")] == ["device"]
    assert [n for n in names if n.endswith("batch_size")] == [
        "eval_batch_size", "features.batch_size", "encoder_train.batch_size", "train.batch_size"]


def test_old_configuration_trees_read_through_the_one_translation() -> None:
    old = to_dict(preset("cpu"))
    old.pop("device"), old.pop("eval_batch_size")
    old["train"].update(device="cuda", eval_batch_size=256)
    old["encoder_train"].update(device="auto", eval_batch_size=64, cpu_threads=None, dropout=0.1, weight_decay=0.01,
                                warmup_ratio=0.1, max_grad_norm=1.0)
    old["features"]["text"].update(batch_size=32, device="cpu")
    old["features"].pop("selectors"), old["features"].pop("batch_size")
    old["features"].update(selector="smollm2", visual_selector="embedding", object_selector=None, selector_model=None,
                           selector_base_url=None, selector_max_new_tokens=48, use_cache=True, show_progress=True)
    old["features"]["captions"].update(max_phrase_words=3, max_caption_tokens=256, batch_size=64, device="cpu")
    old["model"]["variant"] = "VM-HAN (Ours)"
    read = RunConfig.from_dict(old)
    assert read.device == "cuda" and read.eval_batch_size == 256 and read.features.batch_size == 32
    assert read.features.selectors == SelectorConfig(text="smollm2", visual="embedding")
    assert replace(read, device="auto", eval_batch_size=64, features=replace(read.features, batch_size=64,
                   selectors=SelectorConfig())) == preset("cpu")


def test_executor_settings_are_fields_that_run_records_leave_out() -> None:
    config = run_config("tiny", overrides={"experiment.executor": "ray", "experiment.ray_address": "auto",
                                           "experiment.max_parallel": "2", "experiment.max_retries": 0})
    experiment = config.experiment
    assert (experiment.executor, experiment.ray_address, experiment.max_parallel, experiment.max_retries) == (
        "ray", "auto", 2, 0)
    assert preset("cpu").experiment.executor == "local" and preset("cpu").experiment.max_retries == 2
    recorded = config.to_record()
    assert not set(EXECUTION_FIELDS) & set(recorded["experiment"]) and "executor" in config.to_dict()["experiment"]
    assert RunConfig.from_dict(recorded) == run_config("tiny")  # where a run executed does not change what it is
    for field, value, message in [
        ("experiment.executor", "dask", "experiment.executor: unknown executor 'dask'; allowed: local, ray"),
        ("experiment.max_parallel", 0, "experiment.max_parallel: must be None or an integer >= 1, got 0"),
        ("experiment.max_retries", -1, "experiment.max_retries: must be an integer >= 0, got -1"),
        ("experiment.ray_address", " ", "experiment.ray_address: must be None, 'auto' or HOST:PORT"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            run_config("tiny", overrides={field: value})


def test_training_mode_is_validated_and_the_full_preset_trains_jointly() -> None:
    assert preset("cpu").experiment.training == preset("tiny").experiment.training == "two-stage"
    full = preset("full")
    assert (full.experiment.training, full.features.text.model) == ("joint", "all-mpnet-base-v2")
    assert (full.train.encoder_lr, full.train.weight_decay, full.model.dropout, full.train.batch_size) == (2e-5, 0.01, 0.6, 16)
    assert full.train.lr == 1e-3  # the freshly initialised part
    joint = run_config("cpu", overrides={"experiment.training": "joint", "features.text.model": "all-mpnet-base-v2",
                                         "train.encoder_lr": "3e-5"})
    assert (joint.experiment.training, joint.features.text.model, joint.train.encoder_lr) == ("joint", "all-mpnet-base-v2", 3e-5)
    with pytest.raises(ConfigError, match=r"^experiment.training: unknown training mode 'end-to-end'; allowed: two-stage, out-of-fold, joint$"):
        run_config("cpu", overrides={"experiment.training": "end-to-end"})
    assert run_config("cpu", overrides={"experiment.training": "out-of-fold", "experiment.folds": "3"}).experiment.folds == 3
    with pytest.raises(ConfigError, match=r"^experiment.folds: must be an integer >= 2, got 1$"):
        run_config("cpu", overrides={"experiment.folds": 1})
    with pytest.raises(ConfigError, match="train.encoder_lr: must be a finite number > 0"):
        run_config("cpu", overrides={"train.encoder_lr": 0})


def test_more_needs_the_images_as_visual_source() -> None:
    with pytest.raises(ConfigError, match="data.dataset=more needs features.visual_source=images"):
        run_config("tiny", overrides={"data.dataset": "more"})
    assert run_config("tiny", overrides={"data.dataset": "more", "features.visual_source": "images"}).data.dataset == "more"
