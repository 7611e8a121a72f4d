"""Analyses that run trained models, one row per run, kept in a results CSV across machines.

A fresh clone carries the run records, not the checkpoints, so an analysis that needs the models
(the visual-shuffle test, the fit gap) keeps its rows in a committed CSV, each row with the
``run_digest`` of the run's identity (:func:`~vmhan_lib.train.jobs.job_identity`) and the
analysis' own settings. :func:`per_run_rows` computes the rows of the runs whose models are at hand,
reads the stored row of every other run only while its digest and settings are the current ones
(a row of a run trained again since, or made with other settings, is not used, and the run is named),
and writes the file atomically, every stored row kept unless a new row of the same run and settings
replaces it. So a table read from the file never mixes in a row of a run that has changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from vmhan_lib.config import RunConfig
from vmhan_lib.io import atomic_write_text
from vmhan_lib.identity import digest
from vmhan_lib.train.hypergraph_task import best_model_ready
from vmhan_lib.train.records import is_complete
from vmhan_lib.train.jobs import Job, RunPaths, job_identity, run_prefix, table_jobs

RUN_COLUMNS = ("variant", "seed", "training", "encoder", "visual_source", "run_digest")
"""The columns that name a row's run (every row of a per-run analysis has them first)."""

Settings = Sequence[tuple[RunConfig, Sequence[Job]]]
"""Runs to analyse: per configuration (a training mode, encoder, visual source), its jobs."""


def training_settings(config: RunConfig, training_modes: Sequence[str], jobs: Callable[[RunConfig], Sequence[Job]]
                      ) -> list[tuple[RunConfig, list[Job]]]:
    """``config`` in each of ``training_modes`` (``experiment.training``), with ``jobs(config)`` of each."""
    settings = []
    for mode in dict.fromkeys(training_modes):
        moded = config.with_training(mode)
        settings.append((moded, list(jobs(moded))))
    return settings


def recorded_jobs(config: RunConfig, variants: Sequence[str]) -> list[Job]:
    """The table jobs of ``variants`` (every seed) that have a complete run record in ``config``'s setting."""
    paths, prefix = RunPaths.of(config), run_prefix(config)
    return [job for job in table_jobs(config, variants) if is_complete(paths.run_dir(prefix, job))]


def run_columns(config: RunConfig, job: Job) -> dict[str, Any]:
    """The :data:`RUN_COLUMNS` of ``job`` in ``config``."""
    training, encoder, _ = config.setting  # the run digest tells the scopes apart
    return {"variant": job.name, "seed": job.seed, "training": training, "encoder": encoder,
            "visual_source": config.features.visual_source, "run_digest": digest(job_identity(config, job))}


def per_run_rows(
    settings: Settings, path: Path, compute: Callable[[RunConfig, list[Job]], list[dict[str, Any]]],
    analysis: Mapping[str, Any], what: str, ready: Callable[[RunConfig], str | None] = lambda config: None,
) -> pd.DataFrame:
    """The rows of an analysis for every run of ``settings``, computed where the model is at hand,
    else read from ``path``; the whole table written back to ``path`` (atomically) when anything was
    computed.

    Args:
        compute: ``compute(config, jobs)`` -> one row per job (its values; the run columns are added).
        analysis: the analysis' settings (e.g. ``{"permutations": 5, "code": "visual-shuffle-1"}``),
            stored in every row; a stored row counts only with equal values (``code``: the version of
            the analysis' code; rows of another version are dropped from the file when it is written).
        what: the analysis' name in the messages.
        ready: ``ready(config)`` -> ``None`` when ``compute`` can run for ``config``, else why not
            (its stored rows are read instead).
    Returns:
        The rows in ``settings`` order; runs with neither a model nor a current stored row are left out
        (printed, with why).
    """
    stored = _stored_rows(path, what)
    rows: list[dict[str, Any]] = []
    computed = False
    for config, jobs in settings:
        setting_rows, setting_computed = _setting_rows(config, jobs, stored, compute, analysis, what, ready)
        rows += setting_rows
        computed = computed or setting_computed
    columns = list(dict.fromkeys([*RUN_COLUMNS, *analysis, *(k for r in rows for k in r)]))
    table = pd.DataFrame(rows, columns=columns)
    if computed:
        _write_rows(path, rows, stored, analysis, columns)
    elif rows:
        print(f"{what}: no model at hand; the rows are read from {path}")
    return table


def _stored_rows(path: Path, what: str) -> list[dict[str, Any]]:
    """The rows stored in ``path`` (none when it does not exist, or when its rows lack the run
    columns: a file of an older layout, said in a message)."""
    stored = pd.read_csv(path).to_dict("records") if Path(path).is_file() else []
    if stored and not set(RUN_COLUMNS) <= set(stored[0]):
        print(f"{what}: {path} has rows without run identities (an older file); they are not used")
        stored = []
    return stored


def _setting_rows(
    config: RunConfig, jobs: Sequence[Job], stored: list[dict[str, Any]],
    compute: Callable[[RunConfig, list[Job]], list[dict[str, Any]]], analysis: Mapping[str, Any], what: str,
    ready: Callable[[RunConfig], str | None],
) -> tuple[list[dict[str, Any]], bool]:
    """The rows of ``jobs`` in ``config`` (see :func:`per_run_rows`), in ``jobs`` order, and whether
    any was computed: a run whose best model is at hand (and ``ready(config)`` is ``None``) is
    computed, any other takes its stored row of the same digest and settings, or is left out (printed)."""
    paths, prefix = RunPaths.of(config), run_prefix(config)
    named = [run_columns(config, job) for job in jobs]
    blocked = ready(config)
    at_hand = [] if blocked else [
        i for i, job in enumerate(jobs) if best_model_ready(paths.checkpoint_dir(prefix, job), named[i]["run_digest"])]
    results = dict(zip(at_hand, compute(config, [jobs[i] for i in at_hand]), strict=True)) if at_hand else {}
    rows: list[dict[str, Any]] = []
    for i, job in enumerate(jobs):
        if i in results:
            rows.append({**named[i], **analysis, **results[i]})
            continue
        match = next((row for row in stored if str(row["run_digest"]) == named[i]["run_digest"]
                      and _same_settings(row, analysis)), None)
        if match is not None:
            rows.append(match)
            continue
        changed = any(_key(row) == _key(named[i]) for row in stored)
        why = blocked or "no checkpoint at hand"
        print(f"{what}: {job.name} seed {job.seed} ({named[i]['training']}) left out: {why}"
              + ("; its stored row is of another run or other settings" if changed else ""))
    return rows, bool(results)


def _write_rows(path: Path, rows: list[dict[str, Any]], stored: list[dict[str, Any]], analysis: Mapping[str, Any],
                columns: list[str]) -> None:
    """Write ``rows`` and the stored rows that still count to ``path``, atomically.

    A stored row leaves the file when a row of the same run and settings replaces it, or when
    another version of the analysis' code made it (it can never count again).
    """
    replaced = {_key(row) for row in rows}
    others = [row for row in stored
              if not (_key(row) in replaced and _same_settings(row, analysis))
              and ("code" not in analysis or str(row.get("code")) == str(analysis["code"]))]
    atomic_write_text(path, pd.DataFrame([*rows, *others], columns=columns).to_csv(index=False))


def _key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """A row's run, without its digest: variant, seed, training, encoder, visual source."""
    return tuple(str(row[name]) for name in RUN_COLUMNS[:-1])


def _same_settings(row: Mapping[str, Any], analysis: Mapping[str, Any]) -> bool:
    """Whether a stored row was made with the analysis settings ``analysis`` (compared as text, as a
    CSV stores them)."""
    return all(name in row and str(row[name]) == str(value) for name, value in analysis.items())
