"""The whole reproduction of a profile timed as one run: stage 1, the node features, then every
stage-2 run of Tables 1-2 and Fig. 5 on ``--workers`` local processes of 1 torch thread each, all
in one ``run_jobs`` call, into a scratch folder (records, checkpoints and feature cache; the
committed records are never touched); then its predictions compared with the committed records.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_reproduction.py --profile cpu [--workers 2] [--scratch DIR]

Reused, not timed: the shipped weights and, where a profile's selectors are LLMs, their cached
answers (``.cache/llm``; the ``cpu`` profile selects by embedding and reads none). Stage 1 and the
features use torch's default threads (this machine's cores). A ``--scratch`` folder that already
holds results resumes them, and the output says ``resumed``: such a time is not a from-scratch time.
Writes ``results/benchmarks/reproduction_<profile>.json`` once stage 1 and the features are ready
(``complete: false``; a stopped invocation keeps that much, its stage-2 records stay in the scratch
folder) and again at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from vmhan_lib.config import RunConfig, run_config
from vmhan_lib.config_tree import parse_assignments
from vmhan_lib.io import atomic_write_json, provenance
from vmhan_lib.paths import RESULTS_DIR
from vmhan_lib.train.jobs import RunPaths, proportion_jobs, run_prefix, table_jobs
from vmhan_lib.train.records import PREDICTIONS_FILE, read_record
from vmhan_lib.train.runner import run_jobs
from vmhan_lib.train.stage1 import prepare_inputs


def scratch_setting(config: RunConfig, scratch: Path, workers: int) -> tuple[RunConfig, RunPaths]:
    """``config`` with its feature cache in ``scratch`` and ``workers`` parallel runs, and the
    scratch records and checkpoints folders."""
    scratched = replace(config, features=replace(config.features, cache_dir=str(scratch / "features")),
                        experiment=replace(config.experiment, max_parallel=workers))
    return scratched, RunPaths(scratch / "runs", scratch / "checkpoints")


def compare_with_committed(config: RunConfig, jobs: list, scratch: RunPaths, committed: RunPaths) -> dict[str, Any]:
    """How many runs predict the test set byte for byte as the committed record does, and the
    largest test-F1 difference (points); runs without a committed record are counted apart."""
    prefix, equal, differences, missing = run_prefix(config), 0, [], []
    for job in jobs:
        ours, theirs = scratch.run_dir(prefix, job), committed.run_dir(prefix, job)
        if not (theirs / PREDICTIONS_FILE).is_file():
            missing.append(theirs.name)
            continue
        equal += (ours / PREDICTIONS_FILE).read_bytes() == (theirs / PREDICTIONS_FILE).read_bytes()
        differences.append(100 * abs(read_record(ours)["test"]["f1"] - read_record(theirs)["test"]["f1"]))
    return {"compared": len(differences), "identical_predictions": equal,
            "largest_test_f1_difference": max(differences, default=None), "without_committed_record": missing}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu", help="profile (default cpu)")
    parser.add_argument("--set", dest="assignments", action="append", default=None, metavar="NAME=VALUE",
                        help="a run-configuration field, as the CLI's --set (repeatable)")
    parser.add_argument("--workers", type=int, default=2, help="parallel stage-2 runs (default 2)")
    parser.add_argument("--scratch", type=Path, default=None, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--output", type=Path, default=None,
                        help="result file (default results/benchmarks/reproduction_<profile>.json)")
    args = parser.parse_args(argv)

    committed_config = run_config(args.profile, overrides=parse_assignments(args.assignments))
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix=f"vmhan_reproduction_{committed_config.profile}_"))
    resumed = scratch.is_dir() and any(scratch.iterdir())
    config, paths = scratch_setting(committed_config, scratch, args.workers)
    jobs = table_jobs(config) + proportion_jobs(config)
    print(f"{len(jobs)} stage-2 runs after stage 1, {args.workers} workers, into {scratch}"
          + (" (resumed: not a from-scratch time)" if resumed else ""), flush=True)
    load_before, started = os.getloadavg(), time.perf_counter()
    prepare_inputs(config, paths, progress=True)  # stage 1 and the features; run_jobs finds them ready
    prepared_s = time.perf_counter() - started
    stage1 = read_record(paths.encoder_run_dir(config))
    output = args.output or RESULTS_DIR / "benchmarks" / f"reproduction_{config.profile}.json"
    result = {
        "profile": config.profile, "workers": args.workers, "scratch": str(scratch), "resumed": resumed,
        "runs": len(jobs), "complete": False, "stage1_train_s": stage1["train_wall_s"],
        "stage1_and_features_s": prepared_s, "stage1_test_f1": 100 * stage1["test"]["f1"],
        "committed_stage1_test_f1": 100 * read_record(RunPaths.of(committed_config).encoder_run_dir(committed_config))["test"]["f1"],
        "load_before": load_before,
    }
    _write(output, result, config)
    records = run_jobs(config, jobs, paths=paths)
    total_s = time.perf_counter() - started
    result.update({
        "complete": True, "total_s": total_s, "stage2_s": total_s - prepared_s,
        "stage2_train_s_summed": sum(record["train_wall_s"] for record in records),
        "comparison": compare_with_committed(config, jobs, paths, RunPaths.of(committed_config)),
        "load_after": os.getloadavg(),
    })
    print(json.dumps({k: v for k, v in result.items() if k != "comparison"}, indent=1))
    print("against the committed records:", json.dumps(result["comparison"]))
    _write(output, result, config)
    return 0


def _write(output: Path, result: dict[str, Any], config: RunConfig) -> None:
    atomic_write_json(output, {**result, "provenance": provenance({"run": config.to_record(), "argv": sys.argv})})
    print(f"wrote {output}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
