"""The Ray executor: a 2-worker local Ray cluster runs a sweep with the records of the local
executor (predictions byte for byte), a killed worker is reported by name and the rerun completes
it, retries resume a killed run, and the package works without ray.

The sweeps run on synthetic stage-2 inputs (stage 1 is replaced by a function that returns them,
shipped to the workers by value) so they take seconds; the runs' identities hash the files of a tiny
MNRE-shaped directory written here, so no test needs the real data. The real tiny sweep is the README command.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import vmhan_lib.train.jobs as jobs
from tests.conftest import write_tiny_mnre
from tests.factories import TINY, random_split
import vmhan_lib.train.runner as runner
from vmhan_lib.config import run_config
from vmhan_lib.config_tree import ConfigError
from vmhan_lib.data.mnre import RelationVocab
from vmhan_lib.train import ray_executor
from vmhan_lib.train.fit import STATE_FILE, TEST_EXIT_ENV
from vmhan_lib.paths import REPO_ROOT
from vmhan_lib.train.hypergraph_task import BEST_FILE
from vmhan_lib.train.records import (PREDICTIONS_FILE, RECORD_FILE, Prediction, RerunMismatchWarning, is_complete,
                                     read_record, write_run)
from vmhan_lib.train.jobs import Job, RunPaths
from vmhan_lib.train.stage1 import PreparedInputs
from vmhan_lib.train.runner import run_jobs

VOCAB = RelationVocab(("None", "a", "b", "c"))
JOBS = [Job("VM-HAN (Ours)", 0), Job("GCN", 0), Job("Text-only", 0)]
VOLATILE = ("created_utc", "train_wall_s", "epochs")
"""Record fields that differ between two executions of the same run (clock times)."""


def fake_prepare(config, paths, progress=True) -> PreparedInputs:
    """Stage 1 replaced: synthetic node features, the same on every call."""
    data = {"train": random_split(64, 0), "val": random_split(32, 1), "test": random_split(32, 2)}
    return PreparedInputs(data, {"text": {"model": "encoder"}}, {"test": {"n_instances": 32}}, TINY, VOCAB)


def failing_prepare(config, paths, progress=True) -> PreparedInputs:
    raise FileNotFoundError("no encoder here")


def _config(data_dir: Path, executor: str = "local", **experiment):
    config = run_config("tiny", str(data_dir), {"data.captioners": ["qwen"],  # the captions the tiny data has
                                                "features.visual_selection_captioner": "qwen"})
    return replace(config, device="cpu", train=replace(config.train, epochs=2, batch_size=16, lr=1e-2),
                   experiment=replace(config.experiment, executor=executor, **experiment))


def _paths(root: Path) -> RunPaths:
    return RunPaths(root / "runs", root / "ckpt")


def _stable(record: dict) -> dict:
    kept = {k: v for k, v in record.items() if k not in VOLATILE}
    kept["epochs"] = [{k: v for k, v in row.items() if k != "wall_s"} for row in record["epochs"]]
    kept["execution"] = {k: v for k, v in record["execution"].items() if k != "worker"}  # host:pid of the process
    return kept


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MNRE-shaped directory (the tests' runs read only its files' hashes, for their identities)."""
    return write_tiny_mnre(tmp_path_factory.mktemp("data") / "mnre")


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 worker CPUs for the whole module (its start-up costs ~20 s here)."""
    ray = pytest.importorskip("ray", reason="ray is an optional dependency (requirements-ray.txt)")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # fake_prepare reaches the workers
    for attempt in range(3):  # Ray gives its raylet a fixed 30 s to register, which a loaded machine can miss
        try:
            ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir="/tmp/vmhan_ray_tests",
                     logging_level="WARNING")  # "local": never a cluster someone else started here
            break
        except Exception as err:
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(err):
                raise
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The sweep of :data:`JOBS` by the local executor (the reference)."""
    root = tmp_path_factory.mktemp("local")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "prepare_inputs", fake_prepare)
        run_jobs(_config(data_dir), JOBS, paths=_paths(root), progress=False)
    return root


def _assert_same_runs(root: Path, reference: Path, jobs=JOBS) -> None:
    for job in jobs:
        ours, theirs = _paths(root).run_dir("tiny", job), _paths(reference).run_dir("tiny", job)
        assert (ours / PREDICTIONS_FILE).read_bytes() == (theirs / PREDICTIONS_FILE).read_bytes(), job.name
        assert _stable(read_record(ours)) == _stable(read_record(theirs)), job.name


def test_a_two_worker_ray_sweep_writes_the_records_of_the_local_executor(
        ray_cluster, data_dir: Path, local_sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "prepare_inputs", fake_prepare)
    records = run_jobs(_config(data_dir, "ray"), JOBS, paths=_paths(tmp_path), progress=False)
    assert [(r["variant"], r["seed"]) for r in records] == [(j.name, j.seed) for j in JOBS]
    _assert_same_runs(tmp_path, local_sweep)
    assert "executor" not in records[0]["config"]["run"]["experiment"]  # where it ran is not recorded


def test_a_killed_worker_is_reported_by_name_and_the_rerun_completes_the_sweep(
        ray_cluster, data_dir: Path, local_sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "prepare_inputs", fake_prepare)
    monkeypatch.setenv(TEST_EXIT_ENV, "GCN:1")  # the GCN task's process exits after saving epoch 1 of 2
    config, paths = _config(data_dir, "ray", max_retries=0), _paths(tmp_path)
    with pytest.raises(ray_executor.SweepFailed) as failed:
        run_jobs(config, JOBS, paths=paths, progress=False)
    assert list(failed.value.failures) == ["GCN seed 0"] and failed.value.completed == 2
    assert failed.value.failures["GCN seed 0"].startswith("WorkerCrashedError: The worker died unexpectedly")
    assert "GCN seed 0 (WorkerCrashedError" in str(failed.value) and "rerun the same command" in str(failed.value)
    killed = paths.run_dir("tiny", Job("GCN", 0))
    assert not (killed / RECORD_FILE).exists() and not is_complete(killed)
    assert (paths.checkpoint_dir("tiny", Job("GCN", 0)) / STATE_FILE).is_file()  # epoch 1, saved atomically
    assert all(is_complete(paths.run_dir("tiny", job)) for job in JOBS if job.variant != "GCN")

    records = run_jobs(config, JOBS, paths=paths, progress=False)  # trains only GCN, from epoch 2
    assert [r["variant"] for r in records] == [j.name for j in JOBS]
    _assert_same_runs(tmp_path, local_sweep)  # the resumed run equals the uninterrupted one


def test_a_retry_resumes_a_killed_run_within_the_sweep(
        ray_cluster, data_dir: Path, local_sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "prepare_inputs", fake_prepare)
    monkeypatch.setenv(TEST_EXIT_ENV, "GCN:1")
    jobs = JOBS[1:]
    run_jobs(_config(data_dir, "ray", max_retries=1, max_parallel=1), jobs, paths=_paths(tmp_path), progress=False)
    _assert_same_runs(tmp_path, local_sweep, jobs)


def test_a_run_that_raises_is_reported_with_its_exception(ray_cluster, data_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without a GPU: the runs ask for cuda to fail")
    monkeypatch.setattr(runner, "prepare_inputs", fake_prepare)
    config = _config(data_dir, "ray", max_retries=1)
    config = replace(config, device="cuda")  # every run raises in its task
    with pytest.raises(ray_executor.SweepFailed) as failed:
        run_jobs(config, JOBS[1:], paths=_paths(tmp_path), progress=False)
    assert failed.value.completed == 0 and set(failed.value.failures) == {"GCN seed 0", "Text-only seed 0"}
    assert all(error.startswith("ConfigError: device=cuda: torch sees no GPU") for error in failed.value.failures.values())
    assert "after 1 retries" in str(failed.value)


def test_a_needed_model_retrained_aside_on_ray_warns_in_the_driver(ray_cluster, data_dir: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "prepare_inputs", fake_prepare)
    paths, job = _paths(tmp_path), Job("GCN", 0)
    wrong = {"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    write_run(paths.run_dir("tiny", job), {"variant": "GCN", "seed": 0, "test": wrong, "complete": True,
                                           "identity": jobs.job_identity(_config(data_dir, "ray"), job)},
              [Prediction(0, "None", "None", (1.0,))])
    with pytest.warns(RerunMismatchWarning, match="committed record 0.00"):
        records = run_jobs(_config(data_dir, "ray"), [job], need_models=True, paths=paths, progress=False)
    assert records[0]["test"] == wrong and (paths.checkpoint_dir("tiny", job) / BEST_FILE).is_file()


def test_a_failed_stage1_is_reported_and_no_run_starts(ray_cluster, data_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "prepare_inputs", failing_prepare)
    with pytest.raises(ray_executor.SweepFailed, match="stage 1 .*FileNotFoundError: no encoder here"):
        run_jobs(_config(data_dir, "ray", max_retries=0), JOBS, paths=_paths(tmp_path), progress=False)
    assert not (tmp_path / "runs").exists()


def test_without_ray_the_local_executor_works_and_ray_is_a_one_line_error(
        data_dir: Path, local_sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    shutil.copytree(local_sweep, tmp_path / "copy")
    records = run_jobs(_config(data_dir, "ray"), JOBS, paths=_paths(tmp_path / "copy"), progress=False)
    assert len(records) == 3  # all complete
    with pytest.raises(ConfigError, match="needs the optional package ray: .*requirements-ray.txt"):
        run_jobs(_config(data_dir, "ray"), JOBS, paths=_paths(tmp_path / "new"), progress=False)


def test_tasks_import_the_drivers_checkout_and_see_its_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMHAN_DATA", "/data/mnre")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = ray_executor.task_runtime_env()["env_vars"]
    assert env["VMHAN_DATA"] == "/data/mnre" and env["PYTHONPATH"].split(":") == [str(REPO_ROOT), "/elsewhere"]
    with pytest.raises(RuntimeError, match="every node needs the same checkout"):
        ray_executor._check_checkout("/not/this/checkout")
