"""The notebooks: numbered, clean, with a parameters cell the batch runner can fill; the runner
stops at the first failure and names it."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from vmhan_lib.workbook import NotebookFailed, numbered_notebooks, plan, reproduce

NOTEBOOKS = numbered_notebooks()
NOTEBOOK_DIR = NOTEBOOKS[0].parent


def test_there_are_numbered_notebooks() -> None:
    assert NOTEBOOKS and NOTEBOOKS[0].name.startswith("01_")
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == sorted(set(numbers))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_holds_literals_matching_the_runner(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    names = {}
    for line_no, node in enumerate(ast.parse(tagged[0].source).body, start=1):
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, f"statement {line_no} is not `name = literal`"
        names[node.targets[0].id] = ast.literal_eval(node.value)
    assert {"profile", "data_dir", "overrides"} <= set(names)  # what the runner injects
    for line in tagged[0].source.splitlines():
        assert "#" in line, f"parameter without a comment: {line!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_are_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert set(nb.metadata) <= {"kernelspec", "language_info"}
    assert nb.metadata["kernelspec"]["name"] == "python3"


def _notebook(path: Path, code: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nb.cells = [
        nbformat.v4.new_code_cell('profile = None  # p\ndata_dir = None  # d', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(code),
    ]
    nbformat.write(nb, path)


def test_runner_stops_at_first_failure_and_resumes(tmp_path: Path) -> None:
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    _notebook(notebooks / "01_ok.ipynb", "assert profile == 'tiny'")
    _notebook(notebooks / "02_bad.ipynb", "raise ValueError('boom')")
    _notebook(notebooks / "03_never.ipynb", "x = 1")
    with pytest.raises(NotebookFailed, match=r"02_bad.ipynb failed in cell \[\d\] `raise ValueError\('boom'\)` \(ValueError: boom\).*--from 02"):
        reproduce("tiny", str(tmp_path), notebook_dir=notebooks, output_root=tmp_path / "out")
    executed = tmp_path / "out" / "executed" / "tiny"
    assert sorted(p.name for p in executed.iterdir()) == ["01_ok.ipynb", "02_bad.ipynb"]
    assert [r.source.name for r in plan("tiny", 3, notebooks)] == ["03_never.ipynb"]
    with pytest.raises(ValueError, match="no notebook number 07; available: 01, 02, 03"):
        plan("tiny", 7, notebooks)


def test_nbval_cells_wait_longer_for_output_than_nbvals_hard_coded_5_s() -> None:
    seen: list[float | None] = []

    class Spy:
        @pytest.hookimpl(trylast=True)
        def pytest_collection_modifyitems(self, items: list) -> None:
            seen.extend(getattr(item, "output_timeout", None) for item in items)

    notebook = numbered_notebooks()[0]
    code = pytest.main(["--collect-only", "-q", "--nbval-lax", "-p", "no:cacheprovider", str(notebook)], plugins=[Spy()])
    assert code == 0
    assert len(seen) == sum(c.cell_type == "code" for c in nbformat.read(notebook, as_version=4).cells)
    assert len(set(seen)) == 1 and seen[0] >= 60  # the repository's conftest.py sets it


@pytest.mark.parametrize("notebook, parameters, message", [
    ("04_training.ipynb", {"variants": ["VM-HAN"]}, "unknown or no variant(s) ['VM-HAN']; allowed: VM-HAN (Ours)"),
    ("04_training.ipynb", {"overrides": {"train.epoch": 3}}, "unknown field 'train.epoch'"),
    ("07_analyses.ipynb", {"models": ["GCN", "VM-HAN"]}, "unknown or no variant(s) ['VM-HAN']; allowed: VM-HAN (Ours)"),
    ("07_analyses.ipynb", {"training_modes": ["in-fold"]},
     "unknown or no training mode(s) ['in-fold']; allowed: two-stage, out-of-fold, joint"),
    ("08_case_studies.ipynb", {"seed": -1}, "seed: must be an integer >= 0, got -1"),
    ("08_case_studies.ipynb", {"variant": "VMHAN"}, "unknown or no variant(s) ['VMHAN']; allowed:"),
    ("01_data.ipynb", {"data_dir": "/nonexistent/mnre"}, "MNRE data directory not found: /nonexistent/mnre"),
    ("03_hypergraph.ipynb", {"data_dir": "/nonexistent/mnre"}, "MNRE data directory not found: /nonexistent/mnre"),
    ("02_node_selection.ipynb", {"n_examples": 0}, "n_examples: must be an integer >= 1, got 0"),
    ("03_hypergraph.ipynb", {"example_index": -1}, "example_index: must be an integer >= 0 or None, got -1"),
    ("06_ablations.ipynb", {"resamples": 0}, "resamples: must be an integer >= 1, got 0"),
    ("07_analyses.ipynb", {"calibration_bins": 0}, "calibration_bins: must be an integer >= 1, got 0"),
    ("08_case_studies.ipynb", {"max_test_instances": 0}, "max_test_instances: must be an integer >= 1 or None, got 0"),
    ("08_case_studies.ipynb", {"static_examples": 0}, "static_examples: must be an integer >= 1, got 0"),
    ("02_node_selection.ipynb", {"llm_backend": "embedding"},
     "llm_backend: must be one of smollm2, transformers, openai, got 'embedding'"),
    ("05_main_results.ipynb", {"scope_variants": "VMHAN"}, "unknown or no variant(s) ['VMHAN']; allowed:"),  # one name, not letters
])
def test_bad_parameters_fail_in_the_first_code_cell_naming_what_is_allowed(
        notebook: str, parameters: dict, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cell after ``parameters`` validates every parameter before any work: run only those two
    cells, with one parameter made bad (work would mean training or building features, which these
    stubs refuse)."""
    import vmhan_lib.train.runner as runner

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the parameters were checked")

    monkeypatch.setattr(runner, "prepare_inputs", no_work)
    monkeypatch.setattr(runner, "run_jobs", no_work)
    cells = [c for c in nbformat.read(NOTEBOOK_DIR / notebook, as_version=4).cells if c.cell_type == "code"]
    namespace: dict = {}
    exec(cells[0].source, namespace)
    namespace.update(parameters)
    with pytest.raises(Exception) as raised:
        exec(cells[1].source, namespace)
    assert message in str(raised.value) and not isinstance(raised.value, AssertionError)
