"""Sweep benchmark: the wall time of the same stage-2 runs executed four ways on this machine, in
one invocation: one after the other with 1 torch thread and with 2 threads, on 2 local worker
processes of 1 thread each (``--max-parallel 2``), and on 2 local Ray workers (1 thread each); the
speed-ups against both serial settings, and Ray's own overhead per task.

Every sweep starts from the same state: stage 1 complete and the node features cached (the driver
prepares them once first), no stage-2 run recorded (a fresh records folder per sweep, under
``--scratch``, that links the profile's stage-1 record and encoder). The records of every sweep are checked against those of the
first (test predictions byte for byte). Default runs: ``tiny``, every table row; ``cpu``, the first
6 rows of Table 2, seed 0 (``--variants`` / ``--seeds`` choose others).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_sweep.py --profile cpu [--variants NAME ...] [--set NAME=VALUE]

Prints the figures and writes them to ``results/benchmarks/sweep_<profile>.json`` (with the machine's
load before and after: on a shared machine timings move with it) after every sweep, marked
``complete`` after the last: an interrupted invocation resumes with the next sweep (the sweeps timed
and whose records are still in ``--scratch`` are kept, said so), a complete one starts afresh.
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
from vmhan_lib.train.records import PREDICTIONS_FILE, read_record
from vmhan_lib.model.variants import TABLE2_VARIANTS
from vmhan_lib.train.jobs import Job, RunPaths, run_prefix, table_jobs
from vmhan_lib.train.stage1 import prepare_inputs
from vmhan_lib.train.runner import run_jobs

RAY_TEMP_DIR = "/tmp/vmhan_ray_bench"


def _noop() -> int:
    return 0


def _count(inputs: Any) -> int:
    return sum(len(part.nodes) for part in inputs.data.values())


def _fresh_paths(config: RunConfig, paths: RunPaths) -> None:
    """``paths`` made a records folder without stage-2 runs that shares the profile's stage 1
    (linked, not copied)."""
    real = RunPaths.of(config)
    paths.runs.mkdir(parents=True)
    paths.checkpoints.mkdir(parents=True)
    encoder_run = real.encoder_run_dir(config)
    (paths.runs / encoder_run.name).symlink_to(encoder_run, target_is_directory=True)
    paths.encoder_checkpoint_dir(config).symlink_to(real.encoder_checkpoint_dir(config), target_is_directory=True)


def _timed_sweep(config: RunConfig, jobs: list, paths: RunPaths) -> float:
    shutil.rmtree(paths.runs.parent, ignore_errors=True)  # a sweep cut short earlier starts again from nothing
    _fresh_paths(config, paths)
    started = time.perf_counter()
    run_jobs(config, jobs, paths=paths, progress=False)
    return time.perf_counter() - started


def _sweep_paths(root: Path, position: int) -> RunPaths:
    """The records and checkpoints folders of the sweep at ``position``."""
    return RunPaths(root / str(position) / "runs", root / str(position) / "checkpoints")


def _timed_before(output: Path, result: dict[str, Any], config: RunConfig, jobs: list, root: Path) -> dict[str, Any]:
    """The rows of the sweeps an interrupted invocation of this same sweep (profile, runs) timed and
    whose records are all still in ``root``, by name; nothing after a complete invocation."""
    if not output.is_file():
        return {}
    earlier = json.loads(output.read_text(encoding="utf-8"))
    if earlier.get("complete", True) or (earlier.get("profile"), earlier.get("runs")) != (result["profile"], result["runs"]):
        return {}
    kept = {}
    for name, row in earlier["sweeps"].items():
        paths = _sweep_paths(root, row["position"])
        if all((paths.run_dir(run_prefix(config), job) / PREDICTIONS_FILE).is_file() for job in jobs):
            kept[name] = row
    return kept


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


def _settings(config: RunConfig, workers: int) -> dict[str, RunConfig]:
    """The four ways to run the sweep, by name (threads per run in ``train.cpu_threads``)."""
    def with_(threads: int, **experiment: Any) -> RunConfig:
        return replace(config, train=replace(config.train, cpu_threads=threads),
                       experiment=replace(config.experiment, **experiment))

    return {"serial, 1 thread": with_(1), "serial, 2 threads": with_(2),
            f"{workers} local workers, 1 thread each": with_(1, max_parallel=workers),
            f"{workers} Ray workers, 1 thread each": with_(1, executor="ray")}


def _jobs(config: RunConfig, variants: list[str] | None, seeds: list[int] | None) -> list[Job]:
    if variants is None and config.profile != "tiny":
        variants = list(TABLE2_VARIANTS[:6])
    chosen = table_jobs(config, variants)
    return [job for job in chosen if job.seed in (seeds or ([0] if config.profile != "tiny" else [job.seed]))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="tiny", help="profile of the sweep (default tiny)")
    parser.add_argument("--set", dest="assignments", action="append", default=None, metavar="NAME=VALUE",
                        help="a run-configuration field, as the CLI's --set (repeatable)")
    parser.add_argument("--variants", nargs="+", default=None, help="rows to run (default: see above)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: 0; tiny: its seeds)")
    parser.add_argument("--workers", type=int, default=2, help="parallel workers (default 2)")
    parser.add_argument("--tasks", type=int, default=50, help="empty Ray tasks timed (default 50)")
    parser.add_argument("--output", type=Path, default=None, help="result file (default results/benchmarks/sweep_<profile>.json)")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="the sweeps' records, kept until the last sweep (default: <tmp>/vmhan_bench_sweep_<profile>)")
    args = parser.parse_args(argv)
    import ray

    config = run_config(args.profile, overrides=parse_assignments(args.assignments))
    jobs = _jobs(config, args.variants, args.seeds)
    load_before = os.getloadavg()
    started = time.perf_counter()
    inputs = prepare_inputs(config, RunPaths.of(config), progress=False)  # stage 1 and features, once
    first_prepare_s = time.perf_counter() - started
    result: dict[str, Any] = {"profile": config.profile, "runs": [job.name for job in jobs],
                              "first_prepare_s": first_prepare_s,
                              "pickled_inputs_mb": len(pickle.dumps(inputs)) / 2**20, "sweeps": {}}
    root = args.scratch or Path(tempfile.gettempdir()) / f"vmhan_bench_sweep_{config.profile}"
    output = args.output or RESULTS_DIR / "benchmarks" / f"sweep_{config.profile}.json"
    result["sweeps"] = _timed_before(output, result, config, jobs, root)
    result["kept_from_an_interrupted_invocation"] = list(result["sweeps"])
    for name in result["sweeps"]:
        print(f"{name}: kept from the interrupted invocation ({result['sweeps'][name]['wall_s']:.1f} s)", flush=True)
    for position, (name, setting) in enumerate(_settings(config, args.workers).items()):
        if name in result["sweeps"]:
            continue
        row: dict[str, Any] = {"position": position, "load_before": os.getloadavg()[0]}
        if setting.experiment.executor == "ray":
            started = time.perf_counter()
            ray.init(address="local", num_cpus=args.workers, include_dashboard=False, _temp_dir=RAY_TEMP_DIR,
                     logging_level="WARNING")
            row["ray_init_s"] = time.perf_counter() - started
        try:
            paths = _sweep_paths(root, position)
            row["wall_s"] = _timed_sweep(setting, jobs, paths)
            if setting.experiment.executor == "ray":
                row.update(_ray_overheads(ray, inputs, args.tasks))
        finally:
            if setting.experiment.executor == "ray":
                ray.shutdown()
        row["run_train_s"] = [read_record(paths.run_dir(run_prefix(config), job))["train_wall_s"] for job in jobs]
        row["identical_predictions"] = _same_predictions(config, jobs, _sweep_paths(root, 0), paths)
        result["sweeps"][name] = row
        print(f"{name}: {len(jobs)} runs in {row['wall_s']:.1f} s; predictions identical to the first sweep: "
              f"{row['identical_predictions']}/{len(jobs)}", flush=True)
        atomic_write_json(output, {**result, "complete": False})
    result["load_before"], result["load_after"] = load_before, os.getloadavg()
    _print_table(result, len(jobs))
    atomic_write_json(output, {**result, "complete": True,
                               "provenance": provenance({"run": config.to_record(), "argv": sys.argv})})
    shutil.rmtree(root, ignore_errors=True)
    print(f"wrote {output}")
    return 0


def _print_table(result: dict[str, Any], runs: int) -> None:
    sweeps = result["sweeps"]
    one, two = sweeps["serial, 1 thread"]["wall_s"], sweeps["serial, 2 threads"]["wall_s"]
    best = min(one, two)
    print(f"\n{result['profile']} sweep, {runs} stage-2 runs (stage 1 done, features cached); "
          f"load {result['load_before'][0]:.2f} -> {result['load_after'][0]:.2f}")
    print(f"{'how':<32}{'sweep s':>9}{'vs serial 1 thread':>20}{'vs best serial':>16}")
    for name, row in sweeps.items():
        print(f"{name:<32}{row['wall_s']:>9.1f}{one / row['wall_s']:>19.2f}x{best / row['wall_s']:>15.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
