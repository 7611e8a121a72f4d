"""Ray executor benchmark: the wall time of a profile's sweep (default: every table run of ``tiny``)
with the local executor and with 1 and 2 Ray workers, and Ray's own overhead per task.

Every sweep starts from the same state: stage 1 complete and the node features cached (the driver
prepares them once first), no stage-2 run recorded (a fresh temporary records folder that links the
profile's stage-1 record and encoder). Per Ray cluster size it also measures: the start of the
local cluster (``ray.init``), the round trip of an empty task (one at a time, and many at once),
and the two ways to ship the prepared inputs to a task: putting them in the object store once and
fetching them in a task, against every task loading them from the feature cache
(``prepare_inputs`` with everything cached); the executor uses the object store. The records of
each Ray sweep are checked against those of the local sweep (test predictions byte for byte).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_ray.py --profile tiny [--workers 1 2] [--set NAME=VALUE]

Prints the figures and writes them to ``results/benchmarks/ray_sweep.json`` (with the machine's load
before and after: on a shared 2-core machine timings move with it).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
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
from vmhan_lib.train.records import PREDICTIONS_FILE
from vmhan_lib.train.jobs import RunPaths, run_prefix, table_jobs
from vmhan_lib.train.stage1 import prepare_inputs
from vmhan_lib.train.runner import run_jobs

OUTPUT = RESULTS_DIR / "benchmarks" / "ray_sweep.json"
RAY_TEMP_DIR = "/tmp/vmhan_ray_bench"


def _noop() -> int:
    return 0


def _count(inputs: Any) -> int:
    return sum(len(part.nodes) for part in inputs.data.values())


def _fresh_paths(config: RunConfig, root: Path) -> RunPaths:
    """A records folder without stage-2 runs that shares the profile's stage 1 (linked, not copied)."""
    real = RunPaths.of(config)
    paths = RunPaths(root / "runs", root / "checkpoints")
    paths.runs.mkdir(parents=True)
    paths.checkpoints.mkdir(parents=True)
    encoder_run = real.encoder_run_dir(config)
    (paths.runs / encoder_run.name).symlink_to(encoder_run, target_is_directory=True)
    paths.encoder_checkpoint_dir(config).symlink_to(real.encoder_checkpoint_dir(config), target_is_directory=True)
    return paths


def _timed_sweep(config: RunConfig, jobs: list, root: Path) -> tuple[float, RunPaths]:
    paths = _fresh_paths(config, root)
    started = time.perf_counter()
    run_jobs(config, jobs, paths=paths, progress=False)
    return time.perf_counter() - started, paths


def _same_predictions(config: RunConfig, jobs: list, a: RunPaths, b: RunPaths) -> int:
    return sum((a.run_dir(run_prefix(config), j) / PREDICTIONS_FILE).read_bytes()
               == (b.run_dir(run_prefix(config), j) / PREDICTIONS_FILE).read_bytes() for j in jobs)


def _ray_overheads(ray: Any, inputs: Any, tasks: int) -> dict[str, float]:
    from vmhan_lib.train.ray_executor import task_runtime_env

    options = {"num_cpus": 1, "runtime_env": task_runtime_env()}
    noop, count = ray.remote(_noop).options(**options), ray.remote(_count).options(**options)
    ray.get([noop.remote() for _ in range(4)])  # workers of this runtime env started
    started = time.perf_counter()
    for _ in range(tasks):
        ray.get(noop.remote())
    sequential = (time.perf_counter() - started) / tasks
    started = time.perf_counter()
    ray.get([noop.remote() for _ in range(tasks)])
    batched = (time.perf_counter() - started) / tasks
    started = time.perf_counter()
    ref = ray.put(inputs)
    put_s = time.perf_counter() - started
    fetches = []
    for _ in range(3):
        started = time.perf_counter()
        ray.get(count.remote(ref))
        fetches.append(time.perf_counter() - started)
    return {"empty_task_round_trip_ms": 1e3 * sequential, "empty_task_ms_when_batched": 1e3 * batched,
            "put_inputs_s": put_s, "task_fetching_inputs_s": min(fetches)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="tiny", help="profile of the sweep (default tiny)")
    parser.add_argument("--set", dest="assignments", action="append", default=None, metavar="NAME=VALUE",
                        help="a run-configuration field, as the CLI's --set (repeatable)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray cluster sizes (default 1 2)")
    parser.add_argument("--tasks", type=int, default=50, help="empty tasks timed per cluster (default 50)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"result file (default {OUTPUT})")
    args = parser.parse_args(argv)
    import ray

    config = run_config(args.profile, overrides=parse_assignments(args.assignments))
    jobs = table_jobs(config)
    load_before = os.getloadavg()
    started = time.perf_counter()
    inputs = prepare_inputs(config, RunPaths.of(config), progress=False)  # stage 1 and features, once
    first_prepare_s = time.perf_counter() - started
    started = time.perf_counter()
    inputs = prepare_inputs(config, RunPaths.of(config), progress=False)
    cached_prepare_s = time.perf_counter() - started
    result: dict[str, Any] = {"profile": config.profile, "runs": len(jobs), "first_prepare_s": first_prepare_s,
                              "prepare_from_feature_cache_s": cached_prepare_s,
                              "pickled_inputs_mb": len(pickle.dumps(inputs)) / 2**20, "sweeps": {}}
    with tempfile.TemporaryDirectory(prefix="vmhan_bench_ray_") as tmp:
        root = Path(tmp)
        local_s, local_paths = _timed_sweep(config, jobs, root / "local")
        result["sweeps"]["local"] = {"wall_s": local_s}
        print(f"local executor: {len(jobs)} runs in {local_s:.1f} s", flush=True)
        for workers in args.workers:
            ray_config = replace(config, experiment=replace(config.experiment, executor="ray"))
            started = time.perf_counter()
            ray.init(address="local", num_cpus=workers, include_dashboard=False, _temp_dir=RAY_TEMP_DIR,
                     logging_level="WARNING")
            init_s = time.perf_counter() - started
            try:
                sweep_s, paths = _timed_sweep(ray_config, jobs, root / f"ray{workers}")
                overheads = _ray_overheads(ray, inputs, args.tasks)
            finally:
                ray.shutdown()
            same = _same_predictions(config, jobs, local_paths, paths)
            result["sweeps"][f"ray_{workers}_workers"] = {"wall_s": sweep_s, "ray_init_s": init_s,
                                                          "identical_predictions": same, **overheads}
            print(f"ray, {workers} worker(s): {len(jobs)} runs in {sweep_s:.1f} s (+ {init_s:.1f} s cluster start); "
                  f"predictions identical to local: {same}/{len(jobs)}", flush=True)
        shutil.rmtree(root, ignore_errors=True)
    result["load_before"], result["load_after"] = load_before, os.getloadavg()
    print(f"\n{config.profile} sweep, {len(jobs)} runs (stage 1 done, features cached); "
          f"load {load_before[0]:.2f} -> {result['load_after'][0]:.2f}")
    print(f"{'executor':<20}{'sweep s':>9}{'vs local':>10}{'init s':>8}{'task ms':>9}{'batched ms':>12}")
    for name, row in result["sweeps"].items():
        print(f"{name:<20}{row['wall_s']:>9.1f}{row['wall_s'] / local_s:>9.2f}x{row.get('ray_init_s', 0):>8.1f}"
              f"{row.get('empty_task_round_trip_ms', 0):>9.1f}{row.get('empty_task_ms_when_batched', 0):>12.1f}")
    shipped = "; ".join(f"{n.split('_')[1]} worker(s) {r['put_inputs_s']:.2f} / {r['task_fetching_inputs_s']:.2f} s"
                        for n, r in result["sweeps"].items() if n != "local")
    print(f"shipping the prepared inputs ({result['pickled_inputs_mb']:.1f} MB pickled) to a task: loading them from "
          f"the feature cache {cached_prepare_s:.2f} s per task; the object store (put once / fetch in a task): {shipped}")
    atomic_write_json(args.output, {**result, "provenance": provenance(
        {"run": config.to_record(), "argv": sys.argv})})
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
