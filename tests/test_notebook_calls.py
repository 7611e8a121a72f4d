"""Notebooks do what the package does, through the package's functions: notebook 03 builds its
nodes with the selectors runs are trained with, notebook 06 writes Table 2 with the one table
writer (the file names of the run's setting, csv and markdown together)."""

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


def test_notebook_06_writes_table2_through_the_one_table_writer() -> None:
    calls = _called("06_ablations.ipynb")
    assert not {"to_csv", "atomic_write_text", "write_text"} & set(calls)  # no file written by hand
    [written] = calls["write_table"]
    assert [ast.unparse(a) for a in written.args][2:] == ["'table2_ablations'", "suffix"]
    assert "tables_suffix" in calls  # the suffix of the run's setting
    [figure] = calls["save_figure"]
    assert "suffix" in ast.unparse(figure.args[1])  # the figure of another setting stands beside the default's too
