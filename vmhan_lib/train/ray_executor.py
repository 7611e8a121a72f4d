"""The Ray executor of the sweeps (``experiment.executor = "ray"``): one Ray task per run.

Why Ray: a maintained scheduler that runs the same code on a laptop and on a cluster, with
resource requests, retries of failed tasks and an object store, instead of a home-made pool.
Ray is an optional dependency (``requirements-ray.txt``): it is imported only here and only when
a sweep asks for it, so the package works without it.

What runs where:

1. stage 1 (the shared text encoder, then the node features of every split;
   :func:`vmhan_lib.train.stage1.prepare_inputs`) is one task that runs first; its result goes
   into Ray's object store once and every run's task receives it from there (no worker re-reads
   or rebuilds the features);
2. every (variant, seed) run that has work to do is one task calling
   :func:`vmhan_lib.train.runner.train_job`, the same per-job code as the local executor, so its
   record is written by the same atomic writer (:func:`vmhan_lib.train.records.write_run`) into
   the same folder; a task asks for one GPU where the cluster has GPUs, else for
   ``train.cpu_threads`` CPUs (1 by default), and runs torch with that many threads.

Faults: a task that raises or whose worker dies is retried ``experiment.max_retries`` times (a
retry resumes from the run's last saved epoch); a run that still fails is reported by name with its
error in :class:`SweepFailed`, raised after every other run has completed. A rerun of the same
sweep trains only what is missing; a killed task leaves at most its atomically saved training
state, never a half-written record (the record is written last, and atomically).

Every node must see the same checkout and the same results folder at the same path (a shared file
system, as on a Slurm allocation): tasks import ``vmhan_lib`` from the driver's checkout
(``PYTHONPATH``) and write their records where the driver reads them.
"""

from __future__ import annotations

import os
import socket
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from tqdm.auto import tqdm

from vmhan_lib.config import RunConfig
from vmhan_lib.config_tree import ConfigError
from vmhan_lib.paths import REPO_ROOT
from vmhan_lib.train.records import RerunMismatchWarning

# The runner calls this module and hands it its per-run functions, jobs, inputs and paths (runner.Job,
# runner.PreparedInputs, runner.RunPaths), which pass through here unopened: typed Any, so no import back.
Job = PreparedInputs = RunPaths = Any

FORWARDED_ENV: tuple[str, ...] = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "YOLO_OFFLINE", "YOLO_AUTOINSTALL",
                                  "YOLO_CONFIG_DIR")
"""Environment variables a task sees as the driver does (besides every ``VMHAN_*`` one: the data
directory, the profile, the test hook of :mod:`vmhan_lib.train.fit`)."""
STAGE1_NAME = "stage 1 (shared text encoder and node features)"


class SweepFailed(RuntimeError):
    """Some runs of a Ray sweep failed after their retries; the others completed and are recorded.

    Attributes:
        failures: run (``"<name> seed <seed>"``) -> its error, one line each.
        completed: how many runs of the sweep completed.
    """

    def __init__(self, failures: dict[str, str], completed: int, retries: int) -> None:
        self.failures, self.completed = dict(failures), completed
        listed = "; ".join(f"{run} ({error})" for run, error in self.failures.items())
        super().__init__(f"{len(self.failures)} run(s) failed after {retries} retries: {listed}; {completed} "
                         "completed and are recorded: rerun the same command to train only what is missing")


def _ray():
    try:
        import ray
    except ImportError as err:
        raise ConfigError("experiment.executor=ray needs the optional package ray: "
                          ".venv/bin/python -m pip install -r requirements-ray.txt") from err
    return ray


def task_runtime_env() -> dict[str, Any]:
    """The runtime environment of every task: ``vmhan_lib`` imported from the driver's checkout,
    and the driver's ``VMHAN_*`` and offline variables."""
    env = {name: value for name, value in os.environ.items()
           if name.startswith("VMHAN_") or name in FORWARDED_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": env}


def _start_hint(address: str | None) -> str:
    port = address.rpartition(":")[2] if address and ":" in address else "6379"
    return (f"start one with `ray start --head --port={port}` on that machine (if it uses token authentication, "
            "export RAY_AUTH_MODE=token), or leave experiment.ray_address unset to start one here")


def check_reachable(address: str | None, timeout_s: float) -> None:
    """Fail fast when nothing answers at a ``HOST:PORT`` (or ``ray://HOST:PORT``) address: Ray itself
    retries an unreachable head for minutes. ``None`` and ``auto`` are left to Ray (found on this machine).

    Raises:
        ConfigError: no connection to ``address`` within ``timeout_s`` seconds (one line: the address,
            why, and how to start a cluster).
    """
    if address is None or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"experiment.ray_address={address!r}: expected auto or HOST:PORT, e.g. 10.0.0.5:6379")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise ConfigError(f"experiment.ray_address={address!r}: no Ray cluster answers there within "
                          f"{timeout_s:g} s ({reason}); {_start_hint(address)}") from err


@contextmanager
def connected(address: str | None, timeout_s: float) -> Iterator[Any]:
    """Ray, connected: the running Ray of this process if there is one (kept running afterwards),
    else ``address`` (``None``: a new Ray instance on this machine, shut down afterwards), checked
    first with :func:`check_reachable` within ``timeout_s`` seconds (``experiment.ray_timeout_s``)."""
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    check_reachable(address, timeout_s)
    try:
        ray.init(address=address or "local", include_dashboard=False, logging_level="WARNING",
                 configure_logging=True)
    except ConnectionError as err:
        raise ConfigError(f"experiment.ray_address={address!r}: no Ray cluster reached ({err}); "
                          f"{_start_hint(address)}") from err
    try:
        yield ray
    finally:
        ray.shutdown()


def _node_cpus(ray: Any) -> int:
    return int(max((node["Resources"].get("CPU", 0) for node in ray.nodes() if node.get("Alive")), default=1)) or 1


def task_resources(ray: Any, device: str, cpu_threads: int | None, *, default_threads: int = 1,
                   gpus: float = 1.0) -> dict[str, Any]:
    """What one task asks for: ``gpus`` of a GPU (``experiment.gpus_per_run``; 0.25: four runs share
    one GPU) and one CPU where the cluster has GPUs and ``device`` is not ``cpu``, else
    ``cpu_threads`` CPUs (``None``: ``default_threads``, at most one node's)."""
    if device != "cpu" and ray.cluster_resources().get("GPU", 0) >= 1:
        return {"num_gpus": gpus, "num_cpus": 1}
    threads = cpu_threads if cpu_threads is not None else default_threads
    return {"num_gpus": 0, "num_cpus": max(1, min(threads, _node_cpus(ray)))}


def _check_checkout(expected_root: str) -> None:
    import vmhan_lib

    here = str(Path(vmhan_lib.__file__).resolve().parent.parent)
    if here != expected_root:
        raise RuntimeError(f"this worker imports vmhan_lib from {here}, the driver from {expected_root}: every "
                           "node needs the same checkout at the same path")


def _use_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _stage1_task(prepare: Callable[..., PreparedInputs], config: RunConfig, paths: RunPaths, threads: int,
                 expected_root: str) -> tuple[dict[str, Any], PreparedInputs]:
    """Stage 1 inside a task: returns a small summary (fetched by the driver) and the prepared
    inputs (left in the object store for the run tasks)."""
    _check_checkout(expected_root)
    _use_threads(threads)
    inputs = prepare(config, paths, progress=False)
    return {"splits": {split: len(part.nodes) for split, part in inputs.data.items()}}, inputs


def _run_task(train: Callable[..., dict[str, Any]], config: RunConfig, job: Job, inputs: PreparedInputs,
              paths: RunPaths, need_model: bool, threads: int, expected_root: str) -> tuple[dict[str, Any], list[str]]:
    """One run inside a task: ``train`` (:func:`vmhan_lib.train.runner.train_job`) with ``threads`` torch threads;
    returns its record and the messages of its :class:`~vmhan_lib.train.records.RerunMismatchWarning`
    (a worker's warnings would not reach the driver; :func:`run_on_ray` warns them again there)."""
    _check_checkout(expected_root)
    _use_threads(threads)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RerunMismatchWarning)
        record = train(config, job, inputs, paths, need_model=need_model, progress=False)
    return record, [str(w.message) for w in caught if issubclass(w.category, RerunMismatchWarning)]


def describe_error(err: BaseException) -> str:
    """One line: the failed task's own exception where Ray kept it, else Ray's error."""
    cause = getattr(err, "cause", None)
    shown = cause if isinstance(cause, BaseException) else err
    lines = [line.strip() for line in str(shown).strip().splitlines() if line.strip()]
    return f"{type(shown).__name__}: {lines[0] if lines else ''}"[:300]


def _run_stage1(ray: Any, options: dict[str, Any], prepare: Callable[..., PreparedInputs], config: RunConfig,
                paths: RunPaths, root: str) -> Any:
    """Run the stage-1 task and wait for it (its resources: :func:`task_resources`, with this machine's
    CPU count as the default threads); returns the object-store reference of its prepared inputs.

    Raises:
        SweepFailed: stage 1 failed after its retries (no run can start).
    """
    resources = task_resources(ray, config.device, None, default_threads=os.cpu_count() or 1)
    stage1 = ray.remote(_stage1_task).options(num_returns=2, **options, **resources)
    summary_ref, inputs_ref = stage1.remote(prepare, config, paths, resources["num_cpus"], root)
    try:
        ray.get(summary_ref)
    except ray.exceptions.RayError as err:
        raise SweepFailed({STAGE1_NAME: describe_error(err)}, 0, options["max_retries"]) from err
    return inputs_ref


def run_on_ray(config: RunConfig, jobs: Sequence[Job], *, prepare: Callable[..., PreparedInputs],
               train: Callable[..., dict[str, Any]], paths: RunPaths, need_models: bool = False,
               progress: bool = True) -> dict[Job, dict[str, Any]]:
    """Run ``jobs`` (each with work to do) as Ray tasks after the one stage-1 task, ``prepare``
    (:func:`~vmhan_lib.train.stage1.prepare_inputs`), each run task calling ``train``
    (:func:`~vmhan_lib.train.runner.train_job`); returns ``job -> record``.

    At most ``experiment.max_parallel`` runs are in flight (``None``: as many as the cluster's
    resources allow); each is retried ``experiment.max_retries`` times.

    Raises:
        SweepFailed: stage 1 failed (no run could start), or some runs failed after their retries
            (raised once every other run has completed).
        ConfigError: ray is not installed, or no cluster answers at ``experiment.ray_address`` within
            ``experiment.ray_timeout_s`` seconds.
    """
    experiment = config.experiment
    retries = experiment.max_retries
    root = str(REPO_ROOT)
    with connected(experiment.ray_address, experiment.ray_timeout_s) as ray:
        options = {"max_retries": retries, "retry_exceptions": True, "runtime_env": task_runtime_env()}
        inputs_ref = _run_stage1(ray, options, prepare, config, paths, root)
        run_resources = task_resources(ray, config.device, config.train.cpu_threads, gpus=experiment.gpus_per_run)
        run_task = ray.remote(_run_task).options(**options, **run_resources)
        queue, in_flight = list(jobs), {}
        records: dict[Job, dict[str, Any]] = {}
        failures: dict[str, str] = {}
        with tqdm(total=len(queue), desc=f"{config.profile} runs on ray", disable=not progress) as bar:
            while queue or in_flight:
                while queue and (experiment.max_parallel is None or len(in_flight) < experiment.max_parallel):
                    job = queue.pop(0)
                    ref = run_task.remote(train, config, job, inputs_ref, paths, need_models, run_resources["num_cpus"], root)
                    in_flight[ref] = job
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    job = in_flight.pop(ref)
                    try:
                        records[job], mismatches = ray.get(ref)
                        for message in mismatches:
                            warnings.warn(RerunMismatchWarning(message), stacklevel=2)
                    except ray.exceptions.RayError as err:
                        failures[f"{job.name} seed {job.seed}"] = describe_error(err)
                    bar.update(1)
        del inputs_ref
    if failures:
        raise SweepFailed(failures, len(records), retries)
    return records
