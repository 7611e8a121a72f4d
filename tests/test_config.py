"""The run configuration tree: presets, round trips, overrides by dotted name."""

from __future__ import annotations

import json
import re
from dataclasses import fields

import pytest

from vmhan_lib.config_tree import ConfigError, field_names
from vmhan_lib.model.variants import TABLE1_VARIANTS, TABLE2_VARIANTS, VARIANTS
from vmhan_lib.paths import PROFILES
from vmhan_lib.config import EXECUTION_FIELDS, OptimiserConfig, RunConfig, TrainConfig, preset, run_config


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
        run_config("tiny", overrides={"train.device": "tpu"})
    with pytest.raises(ConfigError, match="allowed: embedding, smollm2, transformers, openai"):
        run_config("tiny", overrides={"features.selector": "gpt"})
    with pytest.raises(ConfigError, match="unknown hyperedge type"):
        run_config("tiny", overrides={"model.hypergraph.edge_types": "global,diagonal"})
    with pytest.raises(ConfigError, match="unknown or no variant"):
        run_config("tiny", overrides={"experiment.variants": "VM-HAN"})
    with pytest.raises(ConfigError, match="allowed: tiny, cpu, full"):
        run_config("huge")


def test_stage_one_shares_the_fields_of_stage_two_with_its_own_defaults() -> None:
    stage1 = preset("cpu").encoder_train
    shared = {f.name for f in fields(OptimiserConfig)}
    assert {f.name for f in fields(TrainConfig)} - shared == {"encoder_lr"}  # joint training's encoder group
    assert {f.name for f in fields(stage1)} - shared == {"dropout"}
    assert stage1.cpu_threads is None and TrainConfig().cpu_threads == 1 and stage1.dropout == 0.1


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
        ("experiment.executor", "dask", "experiment: unknown executor 'dask'; allowed: local, ray"),
        ("experiment.max_parallel", 0, "max_parallel must be None or an integer >= 1, got 0"),
        ("experiment.max_retries", -1, "max_retries must be an integer >= 0, got -1"),
        ("experiment.ray_address", " ", "ray_address must be None, 'auto' or HOST:PORT"),
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
    with pytest.raises(ConfigError, match=r"^experiment: unknown training mode 'end-to-end'; allowed: two-stage, out-of-fold, joint$"):
        run_config("cpu", overrides={"experiment.training": "end-to-end"})
    assert run_config("cpu", overrides={"experiment.training": "out-of-fold", "experiment.folds": "3"}).experiment.folds == 3
    with pytest.raises(ConfigError, match=r"folds must be an integer >= 2, got 1"):
        run_config("cpu", overrides={"experiment.folds": 1})
    with pytest.raises(ConfigError, match="encoder_lr must be > 0"):
        run_config("cpu", overrides={"train.encoder_lr": 0})


def test_more_needs_the_images_as_visual_source() -> None:
    with pytest.raises(ConfigError, match="data.dataset=more needs features.visual_source=images"):
        run_config("tiny", overrides={"data.dataset": "more"})
    assert run_config("tiny", overrides={"data.dataset": "more", "features.visual_source": "images"}).data.dataset == "more"
