"""Batch reproduction: run the numbered notebooks in order with papermill.

Executed copies go to ``results/executed/<profile>/`` (the source notebooks stay clean). The run
stops at the first failing notebook and names it and the failing cell; ``start_from`` resumes
from a given notebook number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmhan_lib.paths import REPO_ROOT, RESULTS_DIR, resolve_data_dir, resolve_profile

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOK_PATTERN = re.compile(r"^(\d{2})_[\w-]+\.ipynb$")


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names the notebook and the failing cell."""


@dataclass(frozen=True)
class NotebookRun:
    number: int
    source: Path
    output: Path


def numbered_notebooks(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The workbook's notebooks (``NN_name.ipynb``) in reading order."""
    return sorted(p for p in notebook_dir.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))


def plan(
    profile: str, start_from: int | None = None, notebook_dir: Path = NOTEBOOK_DIR, output_root: Path = RESULTS_DIR
) -> list[NotebookRun]:
    """Which notebooks run, in order, and where each executed copy goes."""
    notebooks = numbered_notebooks(notebook_dir)
    numbers = [int(NOTEBOOK_PATTERN.match(p.name).group(1)) for p in notebooks]
    if start_from is not None and start_from not in numbers:
        raise ValueError(f"no notebook number {start_from:02d}; available: {', '.join(f'{n:02d}' for n in numbers)}")
    out_dir = output_root / "executed" / profile
    return [NotebookRun(n, p, out_dir / p.name) for n, p in zip(numbers, notebooks)
            if start_from is None or n >= start_from]


def reproduce(profile: str | None = None, data_dir: str | None = None, start_from: int | None = None,
              notebook_dir: Path = NOTEBOOK_DIR, output_root: Path = RESULTS_DIR,
              overrides: dict[str, Any] | None = None) -> list[Path]:
    """Execute the notebooks in order; returns the executed copies.

    ``overrides`` (dotted config field -> value) reaches every notebook's ``overrides`` parameter.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    profile = resolve_profile(profile)
    parameters = {"profile": profile, "data_dir": str(resolve_data_dir(data_dir)), "overrides": dict(overrides or {})}
    done = []
    for run in plan(profile, start_from, notebook_dir, output_root):
        run.output.parent.mkdir(parents=True, exist_ok=True)
        print(f"[{run.number:02d}] {run.source.name} -> {run.output}", flush=True)
        try:
            papermill.execute_notebook(str(run.source), str(run.output), parameters=parameters, kernel_name="python3",
                                       cwd=str(run.source.parent), progress_bar=False)
        except PapermillExecutionError as err:
            first_line = ((err.source or "").strip().splitlines() or [""])[0]
            raise NotebookFailed(
                f"{run.source.name} failed in cell [{err.exec_count}] `{first_line}` ({err.ename}: {err.evalue}); "
                f"executed copy with the traceback: {run.output}; resume with --from {run.number:02d}") from err
        done.append(run.output)
    return done
