"""The one job runner: a set of (variant, seed) runs of a profile, trained or reused.

:func:`run_jobs` computes every run's identity once (:mod:`vmhan_lib.train.jobs`), refuses stale
runs before any work, and when every run is complete (and its model at hand where needed) loads
nothing, not even stage 1. Otherwise the inputs are prepared (:mod:`vmhan_lib.train.stage1`) and
each pending run is trained by :func:`train_job`, where ``experiment.executor`` says: ``local`` (one
after the other in this process, or ``experiment.max_parallel`` worker processes of this machine at
once) or ``ray`` (one Ray task per run, :mod:`vmhan_lib.train.ray_executor`), so a record does not
depend on where it was made.
"""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from vmhan_lib.config import RunConfig
from vmhan_lib.identity import digest, refuse_stale
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.variants import TABLE1_VARIANTS, variant_config
from vmhan_lib.train.execution import Execution, run_device
from vmhan_lib.train.fit import FitTask, fit
from vmhan_lib.train.hypergraph_task import HypergraphTask, SplitNodes, best_model_ready
from vmhan_lib.train.jobs import Job, RunPaths, ensure_run, job_identity, run_prefix, setting_record, stage2_data_identity
from vmhan_lib.train.joint_task import JointTask
from vmhan_lib.train.records import read_record, run_differences
from vmhan_lib.train.stage1 import PreparedInputs, prepare_inputs
from vmhan_lib.train.visual_proportion import with_visual_proportion
from vmhan_lib.train.visual_signal import with_visual_signal

ANALYSED_VARIANTS: tuple[str, ...] = TABLE1_VARIANTS
"""The rows whose trained models the analyses load (visual shuffle: Table 1's rows; fit gap: VM-HAN and
Text-only; case studies: VM-HAN): a ``joint`` run exports its model (its encoder: 0.41 GiB for MPNet)
only for these (not for Fig. 5 runs), or when the caller needs it."""


def exports_model(job: Job, need_model: bool) -> bool:
    """Whether a ``joint`` run of ``job`` writes its trained model (:data:`ANALYSED_VARIANTS`)."""
    return need_model or (job.visual_proportion is None and job.variant in ANALYSED_VARIANTS)


def make_task(config: RunConfig, model: ModelConfig, data: dict[str, SplitNodes], inputs: PreparedInputs,
              device: torch.device, export_model: bool = True) -> FitTask:
    """The fit task of one job in ``config``'s training mode (``export_model``: see :func:`exports_model`;
    a two-stage model is a few MB and always exported)."""
    train = config.train
    if config.experiment.training == "joint":
        return JointTask(model, data, inputs.instances, config.features.text, train.batch_size, config.eval_batch_size,
                         train.encoder_lr, device, export_model)
    return HypergraphTask(model, data, train.batch_size, config.eval_batch_size, device)


def train_job(config: RunConfig, job: Job, inputs: PreparedInputs, paths: RunPaths, *, need_model: bool = False,
              progress: bool = True, identity: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (or reuse, see :func:`ensure_run`) one job on prepared inputs; returns its record.
    ``identity``: the job's :func:`~vmhan_lib.train.jobs.job_identity` when the caller has it.

    The per-job code of every executor: the local one calls it in turn, the Ray executor calls it
    inside one Ray task per job (:mod:`vmhan_lib.train.ray_executor`), so a run's record is the
    same wherever it ran.
    """
    prefix = run_prefix(config)
    run_dir, checkpoint_dir = paths.run_dir(prefix, job), paths.checkpoint_dir(prefix, job)
    identity = identity or job_identity(config, job, paths=paths)
    model_ready = need_model and best_model_ready(checkpoint_dir, digest(identity))
    device = run_device(config)
    model = variant_config(job.variant, inputs.model)
    data = inputs.data if job.visual_proportion is None else with_visual_proportion(
        inputs.data, job.visual_proportion, job.seed)
    if job.signal is not None:  # the controlled visual-signal study (semi-synthetic visual nodes)
        data = with_visual_signal(data, job.signal, job.seed)
    # the whole configuration once ("run"), and what the run derived from it: the model sized to the
    # data and the features with the encoder that made them (a checkpoint is rebuilt from these)
    config_record = {"variant": job.name, "seed": job.seed, "model": asdict(model), "features": inputs.features,
                     "run": config.to_record()}
    if job.visual_proportion is not None:
        config_record["visual_proportion"] = job.visual_proportion
    if job.signal is not None:
        config_record["visual_signal"] = asdict(job.signal)

    def train(record_dir: Path) -> dict[str, Any]:
        task = make_task(config, model, data, inputs, device, exports_model(job, need_model))
        return fit(name=job.name, task=task, train_config=config.train,
                   vocab=inputs.vocab, seed=job.seed, run_dir=record_dir, checkpoint_dir=checkpoint_dir,
                   config_record=config_record, identity=identity,
                   extra_record={"identity": identity, "build": inputs.build, **setting_record(config)},
                   progress=progress, execution=Execution.of(config))

    return ensure_run(run_dir, checkpoint_dir, identity, model_ready, need_model, train,
                      "the case studies explain the retrained model")


def run_jobs(config: RunConfig, jobs: Sequence[Job], *, need_models: bool = False, paths: RunPaths | None = None,
             progress: bool = True) -> list[dict[str, Any]]:
    """Run (or reuse) every job of ``jobs``; returns their records in order.

    Where the runs execute is ``config.experiment.executor``: ``local`` trains them one after the
    other in this process; ``ray`` runs each as one Ray task
    (:func:`vmhan_lib.train.ray_executor.run_on_ray`, which raises
    :class:`~vmhan_lib.train.ray_executor.SweepFailed` naming the runs that failed after the others
    completed). Either way every run goes through :func:`train_job`.

    Args:
        need_models: also make sure each job's best model is at hand (the case studies explain it);
            a complete run without it is trained again aside (see :func:`ensure_run`).
    """
    paths = paths or RunPaths.of(config)
    prefix = run_prefix(config)
    run_dirs = [paths.run_dir(prefix, job) for job in jobs]
    data = stage2_data_identity(config) if jobs else None  # the same data for every job, fingerprinted once
    identities = [job_identity(config, job, data, paths) for job in jobs]
    differences = [run_differences(run_dir, identity) for run_dir, identity in zip(run_dirs, identities)]
    refuse_stale([(run_dir.name, said) for run_dir, said in zip(run_dirs, differences)],
                 config.experiment.stale_runs == "retrain")
    # work to do: no finished run of its identity, or its model needed and not at hand
    pending = [d != [] or (need_models and not best_model_ready(paths.checkpoint_dir(prefix, job), digest(i)))
               for job, i, d in zip(jobs, identities, differences)]
    if not any(pending):
        return [read_record(run_dir) for run_dir in run_dirs]
    if config.experiment.executor == "ray":
        from vmhan_lib.train.ray_executor import run_on_ray

        trained = run_on_ray(config, [job for job, todo in zip(jobs, pending) if todo], prepare=prepare_inputs,
                             train=train_job, paths=paths, need_models=need_models, progress=progress)
        return [trained[job] if todo else read_record(run_dir) for job, run_dir, todo in zip(jobs, run_dirs, pending)]
    inputs = prepare_inputs(config, paths, progress)
    if (config.experiment.max_parallel or 1) > 1:
        return _run_in_processes(config, jobs, identities, inputs, paths, need_models, progress)
    return [train_job(config, job, inputs, paths, need_model=need_models, progress=progress, identity=identity)
            for job, identity in tqdm(list(zip(jobs, identities)), desc=f"{config.profile} runs", disable=not progress)]


_worker_inputs: PreparedInputs | None = None


def _keep_inputs(pickled: bytes) -> None:
    """Worker start: the prepared inputs arrive once per worker process, not once per run, as one
    pickled blob: handed over as tensors, every storage would hold an open file descriptor until the
    worker took it (``cpu``'s inputs have more storages than a process may open files)."""
    global _worker_inputs
    _worker_inputs = pickle.loads(pickled)


def _train_in_worker(config: RunConfig, job: Job, paths: RunPaths, need_model: bool,
                     identity: dict[str, Any]) -> dict[str, Any]:
    assert _worker_inputs is not None, "worker started without its inputs"
    return train_job(config, job, _worker_inputs, paths, need_model=need_model, progress=False, identity=identity)


def _run_in_processes(config: RunConfig, jobs: Sequence[Job], identities: Sequence[dict[str, Any]],
                      inputs: PreparedInputs, paths: RunPaths, need_models: bool, progress: bool
                      ) -> list[dict[str, Any]]:
    """The jobs on ``experiment.max_parallel`` fresh worker processes of this machine (``spawn``: no
    state shared with this one), each through :func:`train_job` with the run's own
    ``train.cpu_threads``; a finished run is read back by ``train_job`` itself. Records come back in
    ``jobs``' order; a failed run's error is raised after every other run has ended."""
    workers = min(config.experiment.max_parallel or 1, len(jobs))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_keep_inputs,
                             initargs=(pickle.dumps(inputs, protocol=pickle.HIGHEST_PROTOCOL),)) as pool:
        futures = {pool.submit(_train_in_worker, config, job, paths, need_models, identity): position
                   for position, (job, identity) in enumerate(zip(jobs, identities))}
        records: dict[int, dict[str, Any]] = {}
        for future in tqdm(as_completed(futures), total=len(futures), desc=f"{config.profile} runs, {workers} workers",
                           disable=not progress):
            records[futures[future]] = future.result()
    return [records[position] for position in range(len(jobs))]
