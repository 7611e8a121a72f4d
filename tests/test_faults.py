"""Faults a user meets, each answered in one line naming what is wrong, nothing half-right recorded:
the 13 trials of issue 22, replayed tiny and fast, each able to fail.

Handled well before: a damaged split line, caption gaps, changed data or settings refused, two
identical runs at once, no network. Mended: a non-finite setting or loss (refused when read; a
diverging run stops, nothing recorded); damaged resumable states, cache entries, checkpoints and
bundles (named, set aside, rebuilt; a bundle falls back to the checkpoint route); a full disk; an
unreachable Ray address (within ``experiment.ray_timeout_s``); a bad notebook parameter under
papermill (one line, no traceback); MORE end to end (train, tables, stats, an empty split); a bad
``data.max_instances`` naming its field; a table row whose settings differ from the profile's.
The readers' fuzz test is ``tests/test_reader_fuzz.py``."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from tests.factories import TINY, random_split
from vmhan_lib.data.mnre import RelationVocab
from vmhan_lib.config import TrainConfig
from vmhan_lib.features.cache import FeatureCache
from vmhan_lib.io import StorageError, atomic_write_text
from vmhan_lib.train.checkpoints import load_best_checkpoint
from vmhan_lib.train.execution import Execution
from vmhan_lib.train.fit import fit
from vmhan_lib.train.hypergraph_task import HypergraphTask, best_model_ready
from vmhan_lib.train.case_study_bundle import load_bundle

VOCAB = RelationVocab(("None", "a", "b", "c"))


def _cut(path: Path) -> None:
    """Half of the file, as after a crash or a full disk elsewhere."""
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _fit(tmp: Path, epochs: int, keep_state: bool = False) -> dict:
    data = {"train": random_split(64, 0), "val": random_split(32, 1), "test": random_split(32, 2)}
    config = TrainConfig(epochs=epochs, batch_size=16, lr=1e-2)
    task = HypergraphTask(TINY, data, config.batch_size, 64, torch.device("cpu"))
    return fit(name="GCN", task=task, train_config=config, vocab=VOCAB, seed=0, run_dir=tmp / "run",
               checkpoint_dir=tmp / "ckpt", config_record={"epochs": epochs}, identity={"run": 1}, progress=False,
               execution=Execution(keep_state=keep_state))


def test_a_damaged_resumable_state_is_set_aside_and_the_run_trains_afresh(tmp_path: Path) -> None:
    reference = _fit(tmp_path / "ref", 2)
    _fit(tmp_path / "cut", 2, keep_state=True)
    state = tmp_path / "cut" / "ckpt" / "state.pt"
    _cut(state)
    (tmp_path / "cut" / "run" / "record.json").unlink()  # an unfinished run with a damaged state
    with pytest.warns(UserWarning, match=r"state\.pt: the resumable training state cannot be read .*set aside as "
                                         r"state\.pt\.unreadable"):
        again = _fit(tmp_path / "cut", 2)
    assert (tmp_path / "cut" / "ckpt" / "state.pt.unreadable").is_file()
    assert again["test"] == reference["test"]  # trained from the start, same seed, same result


def test_a_damaged_best_checkpoint_is_named_and_counts_as_missing(tmp_path: Path) -> None:
    _fit(tmp_path, 1)
    best = tmp_path / "ckpt" / "best.pt"
    digest = torch.load(best, weights_only=False)["digest"]
    _cut(best)
    with pytest.raises(StorageError, match=rf"^{best}: the best checkpoint cannot be read \("):
        load_best_checkpoint(best)
    with pytest.warns(UserWarning, match="set aside as best.pt.unreadable"):
        assert not best_model_ready(best.parent, digest)  # so the run is trained again


def test_a_damaged_cache_entry_is_set_aside_and_computed_again(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    calls = []

    def compute() -> dict:
        calls.append(1)
        return {"x": torch.arange(1000)}

    cache.load_or_compute("text", "val", {"k": 1}, compute)
    [entry] = list(tmp_path.glob("*.pt"))
    _cut(entry)
    with pytest.warns(UserWarning, match="feature-cache entry cannot be read"):
        payload = FeatureCache(tmp_path).load_or_compute("text", "val", {"k": 1}, compute)
    assert len(calls) == 2 and torch.equal(payload["x"], torch.arange(1000))
    assert entry.with_name(entry.name + ".unreadable").is_file()


def test_a_damaged_bundle_is_named(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pt"
    torch.save({"format": "case-study-bundle-1", "x": torch.zeros(1000)}, bundle)
    _cut(bundle)
    with pytest.raises(StorageError, match=r"bundle\.pt: the case-study bundle cannot be read"):
        load_bundle(bundle)


def test_a_full_disk_or_a_folder_that_is_a_file_is_one_line_naming_the_path(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "runs" / "record.json"
    atomic_write_text(target, "old\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StorageError, match=rf"^cannot write {target}: No space left on device$"):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n" and [p.name for p in target.parent.iterdir()] == ["record.json"]
    monkeypatch.undo()
    (tmp_path / "blocked").write_text("a file where a folder should be")
    with pytest.raises(StorageError, match=r"cannot write .*blocked/x\.json"):
        atomic_write_text(tmp_path / "blocked" / "x.json", "{}")


def test_a_damaged_committed_bundle_falls_back_to_the_checkpoint_route_with_a_warning(tmp_path: Path) -> None:
    from vmhan_lib.config import run_config
    from vmhan_lib.train.case_study_bundle import BundleMismatchWarning, _current_bundle
    from vmhan_lib.train.jobs import Job

    bundle = tmp_path / "tiny__vm-han-ours__seed0.pt"
    torch.save({"format": "case-study-bundle-1", "x": torch.zeros(1000)}, bundle)
    _cut(bundle)
    with pytest.warns(BundleMismatchWarning, match=r"the case-study bundle cannot be read .*checkpoint route"):
        found, why = _current_bundle(bundle, run_config("tiny"), Job("VM-HAN (Ours)", 0), 10)
    assert found is None and str(bundle) in why


def test_an_unreachable_ray_address_is_one_line_within_the_timeout(tmp_path: Path) -> None:
    import socket
    import time

    from tests.conftest import write_tiny_mnre
    from vmhan_lib.config import run_config
    from vmhan_lib.config_tree import ConfigError
    from vmhan_lib.train.jobs import Job, RunPaths
    from vmhan_lib.train.runner import run_jobs

    pytest.importorskip("ray", reason="ray is an optional dependency (requirements-ray.txt)")
    with socket.socket() as probe:  # a port where nothing listens once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data_dir = write_tiny_mnre(tmp_path / "mnre")
    config = run_config("tiny", str(data_dir), {"data.captioners": ["qwen"], "features.visual_selection_captioner": "qwen",
                                                "experiment.executor": "ray", "experiment.ray_address": f"127.0.0.1:{port}",
                                                "experiment.ray_timeout_s": 5})
    started = time.monotonic()
    with pytest.raises(ConfigError, match=rf"^experiment.ray_address='127.0.0.1:{port}': no Ray cluster answers there "
                                          rf"within 5 s \(.+\); start one with `ray start --head --port={port}`"):
        run_jobs(config, [Job("GCN", 0)], paths=RunPaths(tmp_path / "runs", tmp_path / "ckpt"), progress=False)
    assert time.monotonic() - started < 40 and not (tmp_path / "runs").exists()


def test_a_table_row_whose_settings_differ_from_the_profile_says_which(tmp_path: Path) -> None:
    """Trial: --retrain-stale with a changed train.lr; the tables used to show the run as the default row."""
    import json
    import shutil

    from vmhan_lib.analysis.tables import write_tables
    from vmhan_lib.paths import REPO_ROOT

    runs = tmp_path / "runs"
    for name in ("cpu__gcn__seed0", "cpu__gcn__seed1"):
        shutil.copytree(REPO_ROOT / "results" / "runs" / name, runs / name)
    record_file = runs / "cpu__gcn__seed1" / "record.json"
    record = json.loads(record_file.read_text())
    assert record["identity"]["train"]["lr"] == 1e-3  # the cpu profile's
    record["identity"]["train"]["lr"] = 1e-2
    record_file.write_text(json.dumps(record))
    [row] = write_tables(runs, tmp_path, ("GCN",), ())["table1_main_results"].query("source == 'ours'").to_dict("records")
    assert row["note"].endswith("no feature fallbacks; seed 1: settings differ from the profile's: train.lr 0.01 (profile: 0.001)")
    record["identity"]["train"]["lr"] = 1e-3
    record_file.write_text(json.dumps(record))
    [row] = write_tables(runs, tmp_path, ("GCN",), ())["table1_main_results"].query("source == 'ours'").to_dict("records")
    assert "settings differ" not in row["note"]


def _cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    from vmhan_lib.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_more_end_to_end_train_tables_stats_and_an_empty_split(mnre_dir: Path, tmp_path: Path, capsys,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Trial: MORE trained, then `tables` looked under runs/images; an empty test file was a traceback;
    `stats` read MNRE's vocabulary."""
    import vmhan_lib.paths as paths
    import vmhan_lib.train.jobs as jobs
    from tests.more_fixture import write_more_fixture

    if not (mnre_dir / "images_sample").is_dir():
        pytest.skip("no sample images")
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(paths, "FIGURES_DIR", tmp_path / "figures")
    monkeypatch.setattr(jobs, "CHECKPOINT_DIR", tmp_path / "results" / "checkpoints")
    more = write_more_fixture(tmp_path / "more", mnre_dir, {"train": 4, "valid": 2, "test": 3})
    argv = ("--profile", "tiny", "--data-dir", str(more), "--set", "data.dataset=more", "--set",
            "features.visual_source=images")
    code, out, err = _cli(capsys, "train", *argv, "--variants", "GCN", "--set", "encoder_train.epochs=1", "--set",
                          "train.epochs=1", "--set", "features.k_objects=1", "--set",
                          f"features.cache_dir={tmp_path / 'cache'}")
    assert code == 0, err
    assert (tmp_path / "results" / "tiny" / "runs" / "more" / "tiny__gcn__seed0" / "record.json").is_file()
    table = (tmp_path / "results" / "tiny" / "table1_main_results__more.md").read_text()
    [gcn] = [line for line in table.splitlines() if line.startswith("| ours | GCN |")]
    assert gcn.count("no MNRE run") == 4 and "data not reachable here" not in gcn and " ± " in gcn
    code, out, err = _cli(capsys, "stats", *argv)
    assert code == 0 and "test: 9 instances, 3 images" in out, err
    (more / "txt" / "test.txt").write_text("")
    code, out, err = _cli(capsys, "stats", *argv)
    assert code == 2 and err == f"error: {more / 'txt' / 'test.txt'}: the test split holds no instance (empty file)\n"
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "fresh")
    code, out, err = _cli(capsys, "train", *argv, "--variants", "GCN", "--set", "encoder_train.epochs=1")
    assert code == 2 and err == f"error: {more / 'txt' / 'test.txt'}: the test split holds no instance (empty file)\n"


# The other trials of issue 22, in its order: damaged split lines, caption gaps, changed data or
# settings refused, two identical runs at once, no network (the five handled well), non-finite
# settings and losses, a bad configuration value, a bad notebook parameter under papermill.

def _sweep_config(data_dir: Path, **overrides):
    from vmhan_lib.config import run_config

    return run_config("tiny", str(data_dir), {"data.captioners": ["qwen"], "features.visual_selection_captioner": "qwen",
                                              "device": "cpu", "train.lr": 1e-2, **overrides})


def test_a_damaged_split_line_is_one_line_naming_file_and_line(tmp_path: Path, capsys) -> None:
    from tests.conftest import write_tiny_mnre

    root = write_tiny_mnre(tmp_path / "mnre")
    split = root / "text" / "mnre_train.txt"
    lines = split.read_text().splitlines()
    split.write_text("\n".join([lines[0], lines[1][: len(lines[1]) // 2], *lines[2:]]) + "\n")  # line 2 cut
    code, out, err = _cli(capsys, "stats", "--profile", "tiny", "--data-dir", str(root))
    assert code == 2 and out == "" and err.startswith(f"error: {split}:2: not a Python-literal dict") and err.count("\n") == 1


def test_caption_gaps_are_images_without_visual_nodes_counted_by_reason(tmp_path: Path) -> None:
    from tests.conftest import write_tiny_mnre
    from vmhan_lib.features.caption_nodes import caption_texts

    root = write_tiny_mnre(tmp_path / "mnre")
    captions = root / "captions" / "qwen_train.txt"
    placeholder = captions.read_text().splitlines()[-1]
    captions.write_text(f"{{'img_id': 'b.jpg', 'text': '  '}}\n{placeholder}\n")  # a.jpg's line gone, b.jpg's blank
    texts, reasons = caption_texts(root, "train", ["a.jpg", "b.jpg", "inf.png"], ["qwen"])
    assert (texts, reasons) == ([[], [], ["placeholder"]], ["no caption line", "empty caption", ""])


def test_changed_data_or_settings_are_refused_naming_what_differs(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import vmhan_lib.train.runner as runner
    from tests.conftest import write_tiny_mnre
    from tests.train.test_ray_executor import fake_prepare
    from vmhan_lib.identity import StaleRunsError
    from vmhan_lib.train.jobs import Job, RunPaths
    from vmhan_lib.train.records import read_record

    monkeypatch.setattr(runner, "prepare_inputs", fake_prepare)
    data_dir = write_tiny_mnre(tmp_path / "mnre")
    paths, job = RunPaths(tmp_path / "runs", tmp_path / "ckpt"), Job("GCN", 0)
    [first] = runner.run_jobs(_sweep_config(data_dir), [job], paths=paths, progress=False)
    with pytest.raises(StaleRunsError, match=r"^1 finished run\(s\) .*tiny__gcn__seed0 \(train.lr: 0.01 -> 0.02\)\. Rerun with --retrain-stale"):
        runner.run_jobs(_sweep_config(data_dir, **{"train.lr": 2e-2}), [job], paths=paths, progress=False)
    with (data_dir / "text" / "mnre_test.txt").open("a") as split:
        split.write("\n")  # a blank line: the same instances, another file
    with pytest.raises(StaleRunsError, match=r"tiny__gcn__seed0 \(data file text/mnre_test.txt changed"):
        runner.run_jobs(_sweep_config(data_dir), [job], paths=paths, progress=False)
    assert read_record(paths.run_dir("tiny", job))["created_utc"] == first["created_utc"]  # nothing replaced


def test_two_identical_runs_at_once_both_finish_with_one_valid_record(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import write_tiny_mnre
    from vmhan_lib.train.records import is_complete, read_record

    write_tiny_mnre(tmp_path / "mnre")  # the data the script reads
    script = (
        "import sys; import vmhan_lib.train.runner as runner; from tests.test_faults import _sweep_config; "
        "from tests.train.test_ray_executor import fake_prepare; from vmhan_lib.train.jobs import Job, RunPaths; "
        "runner.prepare_inputs = fake_prepare; root = __import__('pathlib').Path(sys.argv[1]); "
        "runner.run_jobs(_sweep_config(root / 'mnre'), [Job('GCN', 0)], paths=RunPaths(root / 'runs', root / 'ckpt'), "
        "progress=False)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    runs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    for process in runs:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
    [run_dir] = (tmp_path / "runs").iterdir()
    assert is_complete(run_dir) and read_record(run_dir)["complete"] and run_dir.name == "tiny__gcn__seed0"
    assert not [p for p in run_dir.rglob("*") if p.name.startswith(".")]  # no temporary file left behind


def test_no_network_is_one_line_with_what_to_do(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def unreachable(*args, **kwargs):
        raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))

    monkeypatch.setattr(socket, "create_connection", unreachable)
    code, out, err = _cli(capsys, "download", "--data-dir", "/nonexistent/mnre")
    assert code == 2 and err.startswith("download failed: cannot reach ") and "VMHAN_DATA" in err and err.count("\n") == 1


@pytest.mark.parametrize("assignment, message", [
    ("train.lr=inf", "train.lr: must be a finite number > 0, got inf"),
    ("train.lr=nan", "train.lr: must be a finite number > 0, got nan"),
    ("data.max_instances=0", "data.max_instances: must be >= 1 or None, got 0"),
])
def test_settings_that_cannot_be_meant_are_refused_before_training(capsys, assignment: str, message: str) -> None:
    code, out, err = _cli(capsys, "train", "--profile", "tiny", "--variants", "GCN", "--set", assignment)
    assert (code, out, err) == (2, "", f"error: {message}\n")


@pytest.mark.parametrize("lr, what", [(1e30, r"the (loss|gradient norm) is (nan|inf)"),  # finite, the loss overflows
                                      (1e38, "the optimiser step overflows the parameters' float type")])
def test_a_diverging_run_stops_naming_run_epoch_and_step_and_records_nothing(tmp_path: Path, lr: float, what: str) -> None:
    from vmhan_lib.train.fit import NonFiniteTrainingError

    data = {"train": random_split(64, 0), "val": random_split(32, 1), "test": random_split(32, 2)}
    config = TrainConfig(epochs=2, batch_size=16, lr=lr)
    task = HypergraphTask(TINY, data, config.batch_size, 64, torch.device("cpu"))
    with pytest.raises(NonFiniteTrainingError, match=rf"^GCN seed 0: {what} at step "
                                                     r"\d+ of epoch \d+; likely causes"):
        fit(name="GCN", task=task, train_config=config, vocab=VOCAB, seed=0, run_dir=tmp_path / "run",
            checkpoint_dir=tmp_path / "ckpt", config_record={}, identity={"run": 1}, progress=False)
    assert not (tmp_path / "run" / "record.json").exists()


@pytest.mark.parametrize("notebook, parameters, message", [
    ("06_ablations.ipynb", {"resamples": -5}, "ConfigError: resamples: must be an integer >= 1, got -5"),
    ("05_main_results.ipynb", {"profile": "nope"}, "ConfigError: unknown profile 'nope'; allowed: tiny, cpu, full"),
    ("04_training.ipynb", {"variants": "VM-HAN"}, "ConfigError: unknown or no variant(s) ['VM-HAN']; allowed: "),
])
def test_a_bad_parameter_under_papermill_is_the_first_and_only_line(tmp_path: Path, notebook: str, parameters: dict,
                                                                    message: str) -> None:
    from tests.test_notebook_params import papermill_error

    error, raised = papermill_error(tmp_path, notebook, **parameters)
    assert error.startswith(message) and "\n" not in error  # the cell's whole error output: no traceback
    header = raised.index(next(line for line in raised if line.startswith("Exception encountered at")))
    assert raised[header + 1].startswith(message) and len(raised) == header + 2  # papermill's message: that line alone


def test_a_damaged_run_record_or_prediction_file_is_one_line_naming_it(tmp_path: Path, capsys) -> None:
    import shutil

    from vmhan_lib.analysis.tables import write_tables
    from vmhan_lib.paths import REPO_ROOT
    from vmhan_lib.train.records import read_predictions

    run = tmp_path / "runs" / "cpu__gcn__seed0"
    shutil.copytree(REPO_ROOT / "results" / "runs" / run.name, run)
    _cut(run / "test_predictions.jsonl")
    with pytest.raises(StorageError, match=rf"^{run / 'test_predictions.jsonl'}:\d+: the test predictions cannot be read"):
        read_predictions(run)
    _cut(run / "record.json")
    with pytest.raises(StorageError, match=rf"^{run / 'record.json'}: the run record cannot be read \(.*\); restore it"):
        write_tables(tmp_path / "runs", tmp_path, ("GCN",), ())
