"""The configuration modules and the command line load without torch, transformers or ultralytics.

Checked in a fresh interpreter (this test process has long imported torch), over everything each
import pulls in transitively: a package ``__init__`` that eagerly imports a torch module breaks it
even when the module itself imports no torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "ultralytics")
CONFIG_MODULES = ("vmhan_lib.config", "vmhan_lib.cli", "vmhan_lib.data.config", "vmhan_lib.features.config",
                  "vmhan_lib.hypergraph.config", "vmhan_lib.model.config", "vmhan_lib.model.variants")
RUN_HELP = ("import runpy, sys\nsys.argv = ['vmhan_lib', '--help']\n"
            "try:\n    runpy.run_module('vmhan_lib', run_name='__main__')\nexcept SystemExit as exit:\n"
            "    assert exit.code == 0, exit.code\n")


def _heavy_modules_after(script: str) -> tuple[list[str], str]:
    """The heavy modules loaded once ``script`` ran in a new interpreter on this checkout, and its stdout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO_ROOT), os.environ.get("PYTHONPATH"))))}
    probe = f"{script}\nimport sys\nprint('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    heavy = done.stdout.rsplit("HEAVY=", 1)[1].strip()
    return [m for m in heavy.split(",") if m], done.stdout


@pytest.mark.parametrize("module", CONFIG_MODULES)
def test_importing_a_config_module_loads_no_torch(module: str) -> None:
    heavy, _ = _heavy_modules_after(f"import {module}")
    assert heavy == [], f"importing {module} loads {heavy}"


def test_cli_help_loads_no_torch() -> None:
    heavy, out = _heavy_modules_after(RUN_HELP)
    assert "usage:" in out and "reproduce" in out
    assert heavy == [], f"python -m vmhan_lib --help loads {heavy}"


def test_the_probe_sees_torch_when_it_is_imported() -> None:
    heavy, _ = _heavy_modules_after("import vmhan_lib.model.vmhan")
    assert heavy == ["torch"]
