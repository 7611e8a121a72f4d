"""Model and hypergraph configs: validation messages, presets, torch-free modules."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import vmhan_lib
from vmhan_lib.model import ModelConfig, model_preset, variant_config

PACKAGE = Path(vmhan_lib.__file__).parent


def test_errors_name_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="allowed: vhan, hgnn, gcn, gat, vgcn, none"):
        ModelConfig(encoder="transformer")
    with pytest.raises(ValueError, match="deterministic encoders: vhan, hgnn, gcn, gat, none"):
        ModelConfig(encoder="vgcn", variational=False)
    with pytest.raises(ValueError, match="variational encoders: vhan, vgcn, none"):
        ModelConfig(encoder="gat", variational=True)
    with pytest.raises(ValueError, match="must divide"):
        ModelConfig(hidden=10, heads=4)
    with pytest.raises(ValueError, match="allowed: tiny, default"):
        model_preset("huge")


def test_presets_and_defaults() -> None:
    default = model_preset("default")
    assert default.dropout == 0.6 and default.encoder == "vhan" and default.variational
    assert default.hypergraph.max_objects == 3
    assert model_preset("tiny").hidden < default.hidden



def test_round_trip_through_json() -> None:
    config = variant_config("w/o Global Hypergraph", model_preset("tiny"))
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("module", ["model/config.py", "model/variants.py", "hypergraph/config.py"])
def test_config_modules_do_not_import_torch(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not any(name.split(".")[0] == "torch" for name in imported)
