"""The timed reproduction's bookkeeping (``benchmarks/bench_reproduction.py``): its scratch setting
leaves the committed folders alone, and its comparison with the committed records counts what it
should (the timing itself is a benchmark, not a test)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from vmhan_lib.config import run_config
from vmhan_lib.paths import REPO_ROOT
from vmhan_lib.train.jobs import Job, RunPaths, run_prefix
from vmhan_lib.train.records import Prediction, write_run

_spec = importlib.util.spec_from_file_location("bench_reproduction", REPO_ROOT / "benchmarks" / "bench_reproduction.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _run(paths: RunPaths, prefix: str, job: Job, f1: float, predicted: str) -> None:
    write_run(paths.run_dir(prefix, job), {"test": {"f1": f1}, "complete": True},
              [Prediction(0, "/per/loc", predicted, (0.5, 0.5))])


def test_scratch_setting_moves_records_checkpoints_and_features_only(tmp_path: Path) -> None:
    config = run_config("tiny")
    scratched, paths = bench.scratch_setting(config, tmp_path, 2)
    assert paths == RunPaths(tmp_path / "runs", tmp_path / "checkpoints")
    assert scratched.features.cache_dir == str(tmp_path / "features") and scratched.experiment.max_parallel == 2
    assert (scratched.model, scratched.train, scratched.data) == (config.model, config.train, config.data)
    assert run_prefix(scratched) == run_prefix(config)  # the same run names: comparable with the committed ones


def test_comparison_counts_identical_predictions_and_the_largest_f1_difference(tmp_path: Path) -> None:
    config = run_config("tiny")
    prefix = run_prefix(config)
    ours, theirs = RunPaths(tmp_path / "a" / "runs", tmp_path / "a" / "ck"), RunPaths(tmp_path / "b" / "runs", tmp_path / "b" / "ck")
    same, moved, new, proportion = Job("Text-only", 0), Job("GCN", 1), Job("GAT", 0), Job("VM-HAN (Ours)", 0, 0.5)
    for job, (f1_ours, f1_theirs), (p_ours, p_theirs) in [(same, (0.6, 0.6), ("None", "None")),
                                                         (moved, (0.55, 0.58), ("None", "/per/loc")),
                                                         (proportion, (0.5, 0.5), ("None", "None"))]:
        _run(ours, prefix, job, f1_ours, p_ours)
        _run(theirs, prefix, job, f1_theirs, p_theirs)
    _run(ours, prefix, new, 0.4, "None")
    result = bench.compare_with_committed(config, [same, moved, proportion, new], ours, theirs)
    assert result["compared"] == 3 and result["identical_predictions"] == 2
    assert abs(result["largest_test_f1_difference"] - 3.0) < 1e-9
    assert result["without_committed_record"] == [theirs.run_dir(prefix, new).name]
