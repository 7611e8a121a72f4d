"""Where and how a run executes (issue 26): the one device, the CUDA random states, the execution
facts of a record, and the execution settings that never enter an identity. No GPU here: a
monkeypatched ``torch.cuda`` stands in for one."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from vmhan_lib.config import RunConfig, run_config
from vmhan_lib.config_tree import ConfigError
from vmhan_lib.paths import CHECKPOINT_DIR
from vmhan_lib.train.execution import Execution, autocast_dtype, execution_facts, restore_rng, rng_states, run_device
from vmhan_lib.train.jobs import Job, RunPaths, job_identity
from vmhan_lib.train.ray_executor import task_resources


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_full_without_a_visible_gpu_says_so_and_needs_device_cpu(no_gpu) -> None:
    with pytest.raises(ConfigError, match=r"^profile full is the paper's setting for a GPU, but torch sees no GPU "
                                          r"\(no GPU, no driver, or a driver older than the CUDA .*set device=cpu"):
        run_device(run_config("full"))
    assert run_device(run_config("full", overrides={"device": "cpu"})) == torch.device("cpu")
    assert run_device(run_config("cpu")) == torch.device("cpu")  # the CPU profiles fall back quietly
    with pytest.raises(ConfigError, match=r"^device=cuda: torch sees no GPU"):
        run_device(run_config("cpu", overrides={"device": "cuda"}))


def test_the_cuda_random_states_are_saved_and_restored_as_cpu_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    generators = [torch.arange(16, dtype=torch.uint8), torch.arange(16, 32, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [g.clone() for g in generators])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: restored.append(states))
    cuda = torch.device("cuda")
    torch.manual_seed(1), random.seed(1), np.random.seed(1)
    states = rng_states(cuda)
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(2), random.seed(2), np.random.seed(2)
    restore_rng(states, cuda)
    assert (torch.rand(3).tolist(), random.random(), np.random.rand()) == (expected[0].tolist(), *expected[1:])
    [[first, second]] = restored
    assert torch.equal(first, generators[0]) and torch.equal(second, generators[1]) and first.device.type == "cpu"
    assert "cuda_rng" not in rng_states(torch.device("cpu"))
    restore_rng({"torch_rng": states["torch_rng"]}, cuda)  # a state saved before the others were kept
    assert len(restored) == 1


def test_a_record_names_the_gpu_the_cuda_version_and_the_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91002)
    cuda = torch.device("cuda")
    assert autocast_dtype("auto", cuda) == torch.bfloat16 and autocast_dtype("fp32", cuda) is None
    assert autocast_dtype("auto", torch.device("cpu")) is None and autocast_dtype("bf16", torch.device("cpu"))
    matmul = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        facts = execution_facts(cuda, torch.bfloat16)
    finally:
        torch.set_float32_matmul_precision(matmul)
    assert facts["device_name"] == "NVIDIA H200" and facts["cuda"] == torch.version.cuda and facts["cudnn"] == 91002
    assert facts["autocast"] == "bfloat16" and facts["tf32"] is True and facts["threads"] == torch.get_num_threads()
    assert ":" in facts["worker"] and facts["torch"] == torch.__version__


def test_execution_settings_never_change_an_identity_or_a_record_configuration(tmp_path: Path, mnre_dir: Path) -> None:
    plain = run_config("tiny", str(mnre_dir), {"device": "cpu"})
    chosen = run_config("tiny", str(mnre_dir), {
        "device": "cpu", "experiment.precision": "bf16", "experiment.keep_states": "true",
        "experiment.checkpoint_dir": str(tmp_path / "scratch"), "experiment.gpus_per_run": "0.25"})
    job = Job("GCN", 0)
    paths = RunPaths(tmp_path / "runs", tmp_path / "ckpt")
    assert job_identity(chosen, job, paths=paths) == job_identity(plain, job, paths=paths)
    assert chosen.to_record() == plain.to_record() and RunConfig.from_dict(chosen.to_record()) == plain
    assert Execution.of(chosen) == Execution("bf16", True) and Execution.of(plain) == Execution("auto", False)
    assert RunPaths.of(chosen).checkpoints == tmp_path / "scratch" / RunPaths.of(plain).checkpoints.relative_to(
        CHECKPOINT_DIR)
    assert RunPaths.of(chosen).runs == RunPaths.of(plain).runs
    for field, value, message in [
        ("experiment.precision", "fp16", "unknown precision 'fp16'; allowed: auto, bf16, fp32"),
        ("experiment.gpus_per_run", "0", "gpus_per_run: must be in (0, 1] or a whole number, got 0"),
        ("experiment.gpus_per_run", "1.5", "gpus_per_run: must be in (0, 1] or a whole number, got 1.5"),
        ("experiment.checkpoint_dir", " ", "checkpoint_dir: must be None or a folder"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            run_config("tiny", overrides={field: value})


class _Cluster:
    def __init__(self, gpus: int) -> None:
        self.gpus = gpus

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 16.0, "GPU": float(self.gpus)}

    def nodes(self) -> list[dict]:
        return [{"Alive": True, "Resources": {"CPU": 16.0}}]


def test_a_run_asks_for_gpus_per_run_of_a_gpu_where_the_cluster_has_gpus() -> None:
    assert task_resources(_Cluster(1), "auto", 1, gpus=0.25) == {"num_gpus": 0.25, "num_cpus": 1}
    assert task_resources(_Cluster(1), "auto", 1) == {"num_gpus": 1.0, "num_cpus": 1}
    assert task_resources(_Cluster(0), "auto", 2, gpus=0.25) == {"num_gpus": 0, "num_cpus": 2}
    assert task_resources(_Cluster(1), "cpu", 1, gpus=0.25)["num_gpus"] == 0


def test_the_prompt_selectors_get_the_runs_device(monkeypatch: pytest.MonkeyPatch, mnre_dir: Path,
                                                  tmp_path: Path) -> None:
    """Issue 26: the embedding selector was always built on the CPU (no device passed), beside a
    caption embedder on the run's device; ``meta`` stands in for the GPU."""
    import vmhan_lib.train.stage1 as stage1

    seen = {}

    class Stop(Exception):
        pass

    def selectors(features, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(stage1, "make_prompt_selectors", selectors)
    monkeypatch.setattr(stage1, "run_device", lambda config: torch.device("meta"))
    config = run_config("tiny", str(mnre_dir), {"experiment.training": "joint"})
    with pytest.raises(Stop):
        stage1.prepare_inputs(config, RunPaths(tmp_path / "runs", tmp_path / "ckpt"), progress=False)
    assert seen == {"device": "meta"}
