"""Notebook parameters (issue 22): a bad one is one line naming it and what is allowed; a list
parameter given one name means the list of it. :func:`papermill_error` runs a notebook's first cells
under papermill (used by ``tests/test_faults.py``, which replays the papermill trial)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from vmhan_lib.config_tree import ConfigError
from vmhan_lib.notebook_params import NAMES, notebook_parameters
from vmhan_lib.workbook import NOTEBOOK_DIR


def test_lists_accept_one_name_and_numbers_are_range_checked() -> None:
    config, variants, none, resamples, index = notebook_parameters(
        "tiny", None, {}, variants=("GCN", NAMES), absent=(None, NAMES), resamples=(2000, 1, None),
        example_index=(None, 0, None, None))
    assert (config.profile, variants, none, resamples, index) == ("tiny", ["GCN"], None, 2000, None)
    assert notebook_parameters("tiny", None, {}, models=(("GCN", "GAT"), NAMES))[1] == ["GCN", "GAT"]
    assert notebook_parameters("tiny", None, {}, llm_backend=("openai", ("smollm2", "openai")))[1] == "openai"
    for checks, message in [
        ({"resamples": (-5, 1, None)}, "resamples: must be an integer >= 1, got -5"),
        ({"resamples": (0, 1, None)}, "resamples: must be an integer >= 1, got 0"),
        ({"resamples": (2.5, 1, None)}, "resamples: must be an integer >= 1, got 2.5"),
        ({"resamples": (None, 1, None)}, "resamples: must be an integer >= 1, got None"),
        ({"bins": (True, 1, 9)}, "bins: must be an integer from 1 to 9, got True"),
        ({"index": (-1, 0, None, None)}, "index: must be an integer >= 0 or None, got -1"),
        ({"variants": (["GCN", 3], NAMES)}, "variants: must be a list of names (or one name), got ['GCN', 3]"),
        ({"llm_backend": ("embedding", ("smollm2", "openai"))}, "llm_backend: must be one of smollm2, openai, got 'embedding'"),
    ]:
        with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
            notebook_parameters("tiny", None, {}, **checks)


def papermill_error(tmp_path: Path, notebook: str, **parameters) -> tuple[str, list[str]]:
    """Run the parameters and validation cells of ``notebook`` under papermill (the rest cut, so it
    takes seconds); return the failing cell's error text and papermill's message lines."""
    papermill = pytest.importorskip("papermill")
    cells = nbformat.read(NOTEBOOK_DIR / notebook, as_version=4)
    start = next(i for i, c in enumerate(cells.cells) if "parameters" in c.metadata.get("tags", []))
    cells.cells = cells.cells[: start + 2]
    source = tmp_path / notebook
    nbformat.write(cells, source)
    with pytest.raises(papermill.PapermillExecutionError) as caught:
        papermill.execute_notebook(str(source), str(tmp_path / "out.ipynb"), parameters=parameters, kernel_name="python3",
                                   progress_bar=False, cwd=str(Path.cwd()))
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    [error] = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    return "\n".join(error.traceback), str(caught.value).splitlines()


@pytest.mark.parametrize("notebook", sorted(p.name for p in NOTEBOOK_DIR.glob("[0-9]*.ipynb")))
def test_every_list_and_integer_parameter_goes_through_notebook_parameters(notebook: str) -> None:
    """A notebook's list and integer parameters are checked by :func:`notebook_parameters` in the cell
    after its ``parameters`` cell, so one name given for a list (``-p scope_variants GCN``) means the
    list of it and a number out of range is one line (strings and flags are checked where used)."""
    cells = nbformat.read(NOTEBOOK_DIR / notebook, as_version=4).cells
    start = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    defaults = {m.group(1): ast.literal_eval(m.group(2)) for line in cells[start].source.splitlines()
                if (m := re.match(r"^(\w+) *= *(.*?)(  #.*)?$", line))}
    checked = [name for name, value in defaults.items()
               if isinstance(value, list) or (isinstance(value, int) and not isinstance(value, bool))]
    validation = re.sub(r"\s+", " ", cells[start + 1].source)
    missing = [name for name in checked if not re.search(rf"\b{name}=\({name}, ", validation)]
    assert not missing, f"{notebook}: parameters not checked by notebook_parameters: {missing}"
