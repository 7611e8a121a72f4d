"""Model and hypergraph configs: validation messages, defaults, sizing to the data (torch-free: tests/test_torch_free.py)."""

from __future__ import annotations

import json

import pytest

from vmhan_lib.config import RunConfig, run_config
from vmhan_lib.config_tree import ConfigError, field_names, from_dict, to_dict
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.variants import variant_config
from vmhan_lib.model.vmhan import build_model

from tests.factories import TINY


def test_errors_name_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="allowed: vhan, hgnn, gcn, gat, vgcn, none"):
        ModelConfig(encoder="transformer")
    with pytest.raises(ValueError, match="deterministic encoders: vhan, hgnn, gcn, gat, none"):
        ModelConfig(encoder="vgcn", variational=False)
    with pytest.raises(ValueError, match="variational encoders: vhan, vgcn, none"):
        ModelConfig(encoder="gat", variational=True)
    with pytest.raises(ValueError, match="must divide"):
        ModelConfig(hidden=10, heads=4)


def test_defaults() -> None:
    default = ModelConfig()
    assert default.dropout == 0.6 and default.encoder == "vhan" and default.variational
    assert TINY.hidden < default.hidden


def test_sizing_fills_the_data_widths_which_no_user_sets() -> None:
    default = ModelConfig()
    assert not default.is_sized
    with pytest.raises(ValueError, match="no input widths"):
        build_model(default)
    sized = default.sized(d_text=384, d_visual=512, num_relations=23)
    assert sized.is_sized and (sized.d_text, sized.d_visual, sized.num_relations) == (384, 512, 23)
    assert TINY.sized(12, 10, 4) == TINY
    for derived in ("model.d_text", "model.d_visual", "model.num_relations"):
        assert derived not in field_names(RunConfig)
        with pytest.raises(ConfigError, match=f"model has no {derived.split('.')[1]!r}"):
            run_config("tiny", overrides={derived: 7})


def test_round_trip_through_json() -> None:
    config = variant_config("w/o Global Hypergraph", TINY)
    assert from_dict(ModelConfig, json.loads(json.dumps(to_dict(config)))) == config
