"""Notebooks do what the package does, through the package's functions: notebook 03 builds its
nodes with the selectors runs are trained with."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat

from vmhan_lib.workbook import NOTEBOOK_DIR


def _called(notebook: str) -> dict[str, list[ast.Call]]:
    """The calls of a notebook's code cells by the called name (``f(...)`` and ``x.f(...)``)."""
    cells = nbformat.read(Path(NOTEBOOK_DIR) / notebook, as_version=4).cells
    calls: dict[str, list[ast.Call]] = {}
    for cell in (c for c in cells if c.cell_type == "code"):
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                calls.setdefault(name, []).append(node)
    return calls


def test_notebook_03_selects_nodes_as_runs_do() -> None:
    calls = _called("03_hypergraph.ipynb")
    assert "make_node_selector" not in calls
    [made] = calls["make_prompt_selectors"]  # what runner.prepare_inputs and checkpoints build their features with
    assert [ast.unparse(a) for a in made.args] == ["features"] and not made.keywords

