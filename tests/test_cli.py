"""The command line: every subcommand, and every user error as one line with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vmhan_lib.cli as cli
from vmhan_lib.config_tree import to_dict
from vmhan_lib.cli import main
from vmhan_lib.model.variants import VARIANTS


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_config_prints_the_tree_with_overrides(capsys) -> None:
    code, out, _ = _run(capsys, "config", "--profile", "tiny", "--set", "features.text.model=bert-base-uncased",
                        "--set", "train.epochs=20")
    tree = json.loads(out)
    assert code == 0 and tree["features"]["text"]["model"] == "bert-base-uncased" and tree["train"]["epochs"] == 20
    assert tree["profile"] == "tiny" and tree["data"]["max_instances"] == 200
    code, out, _ = _run(capsys, "config", "--fields")
    assert code == 0 and "features.k_objects" in out.splitlines() and "train.lr" in out.splitlines()


@pytest.mark.parametrize("argv, message", [
    (["config", "--set", "train.epoch=3"], "unknown field 'train.epoch'"),
    (["config", "--set", "train.epochs=many"], "train.epochs: 'many' is not an integer"),
    (["config", "--set", "train.epochs"], "expected name=value"),
    (["config", "--set", "model.encoder=lstm"], "allowed: vhan, hgnn, gcn, gat, vgcn, none"),
    (["train", "--profile", "tiny", "--variants", "VM-HAN"], "unknown or no variant(s) ['VM-HAN']; allowed: VM-HAN (Ours);"),
    (["stats", "--profile", "tiny", "--data-dir", "/nonexistent/mnre"],
     "MNRE data directory not found: /nonexistent/mnre (it is the data_dir parameter, else $VMHAN_DATA"),
    (["train", "--profile", "tiny", "--data-dir", "/nonexistent/mnre"], "MNRE data directory not found"),
    (["config", "--set", "experiment.stale_runs=ignore"], "allowed: refuse, retrain"),
    (["config", "--set", "experiment.executor=dask"], "unknown executor 'dask'; allowed: local, ray"),
    (["train", "--profile", "tiny", "--address", "auto"], "--address applies to the ray executor; add --executor ray"),
    (["train", "--profile", "tiny", "--executor", "ray", "--max-parallel", "0"], "experiment.max_parallel: must be None or an"),
    (["reproduce", "--executor", "ray", "--max-parallel", "two"], "experiment.max_parallel: 'two' is not an integer"),
])
def test_user_errors_are_one_line_and_exit_2(capsys, argv, message) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == "" and err.startswith("error: ") and message in err and err.count("\n") == 1


def test_damaged_data_is_one_line_naming_file_and_line(capsys, tmp_path: Path) -> None:
    from tests.conftest import write_tiny_mnre

    root = write_tiny_mnre(tmp_path / "mnre")
    split = root / "text" / "mnre_test.txt"
    split.write_bytes(split.read_bytes() + b"\xff\n")
    code, _, err = _run(capsys, "stats", "--profile", "tiny", "--data-dir", str(root))
    assert code == 2 and f"{split}:3: not UTF-8 (byte 0xff at column 1)" in err and err.count("\n") == 1
    split.write_text("")
    code, _, err = _run(capsys, "stats", "--profile", "tiny", "--data-dir", str(root))
    assert code == 2 and f"{split}: the test split holds no instance (empty file)" in err


def test_retrain_stale_flag_sets_the_policy(capsys, monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr("vmhan_lib.train.runner.run_jobs",
                        lambda config, jobs, **kwargs: seen.setdefault("policy", config.experiment.stale_runs) and [])
    monkeypatch.setattr("vmhan_lib.analysis.tables.write_tables", lambda *args, **kwargs: {})
    assert _run(capsys, "train", "--profile", "tiny", "--variants", "GCN", "--retrain-stale")[0] == 0
    assert seen["policy"] == "retrain"
    seen.clear()
    assert _run(capsys, "train", "--profile", "tiny", "--variants", "GCN")[0] == 0 and seen["policy"] == "refuse"


def test_debug_shows_the_traceback() -> None:
    with pytest.raises(cli.ConfigError):
        main(["--debug", "config", "--set", "train.epoch=3"])


def test_variants_without_names_is_an_error_and_help_lists_the_names(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["train", "--variants"])
    assert caught.value.code == 2 and "expected at least one argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    assert all(name in help_text for name in VARIANTS) and "results/runs/" in help_text


def test_every_subcommand_has_a_description(capsys) -> None:
    for command in cli.COMMANDS:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert len(text.split("\n\n")[1].strip()) > 40, command  # the description paragraph after usage


def test_train_and_tables_run_the_jobs_of_the_profile(capsys, monkeypatch, tmp_path: Path) -> None:
    seen = {}

    def fake_run_jobs(config, jobs, **kwargs):
        seen["jobs"] = [(j.variant, j.seed) for j in jobs]
        seen["epochs"] = config.train.epochs
        return [{}] * len(jobs)

    def fake_write_tables(runs_dir, out_dir, table1, table2, setting, more_runs_dir=None, name_suffix=""):
        seen["tables"] = (Path(runs_dir), Path(out_dir))
        seen["setting"], seen["suffix"] = setting, name_suffix
        return {}

    monkeypatch.setattr("vmhan_lib.train.runner.run_jobs", fake_run_jobs)
    monkeypatch.setattr("vmhan_lib.analysis.tables.write_tables", fake_write_tables)
    code, out, _ = _run(capsys, "train", "--profile", "tiny", "--variants", "GCN", "--set", "train.epochs=5")
    assert code == 0 and seen["jobs"] == [("GCN", 0)] and seen["epochs"] == 5 and "1 runs complete" in out
    assert seen["tables"][0].parts[-3:] == ("results", "tiny", "runs") and seen["tables"][1].name == "tiny"
    assert seen["setting"] == ("two-stage", "all-MiniLM-L6-v2", "pair") and seen["suffix"] == ""  # the run's own setting
    code, out, _ = _run(capsys, "train", "--profile", "tiny", "--variants", "GCN", "--set", "experiment.training=joint",
                        "--set", "features.text.model=all-mpnet-base-v2")
    assert code == 0 and seen["setting"] == ("joint", "all-mpnet-base-v2", "pair")
    assert seen["suffix"] == "__joint-all-mpnet-base-v2"  # beside the default setting's tables, never over them
    code, out, _ = _run(capsys, "train", "--profile", "tiny", "--variants", "GCN", "--set", "model.hypergraph.scope=sentence")
    assert code == 0 and seen["setting"] == ("two-stage", "all-MiniLM-L6-v2", "sentence")
    assert seen["suffix"] == "__two-stage-all-minilm-l6-v2-sentence"
    code, _, err = _run(capsys, "tables", "--profile", "tiny", "--readme")
    assert code == 2 and "--readme renders the committed cpu results of the default setting only" in err
    code, _, err = _run(capsys, "tables", "--profile", "cpu", "--readme", "--set", "experiment.training=out-of-fold")
    assert code == 2 and "without --set experiment.training" in err


def test_the_stage1_row_alone_trains_stage1_and_prints_its_dev_f1_per_epoch(capsys, monkeypatch) -> None:
    seen = {}
    record = {"run_id": "cpu__two-stage-all-mpnet-base-v2__text-only-fine-tuned-encoder__seed0", "best_epoch": 2,
              "epochs": [{"dev": {"f1": 0.4}}, {"dev": {"f1": 0.5512}}], "dev": {"f1": 0.5512}, "test": {"f1": 0.6}}
    monkeypatch.setattr("vmhan_lib.train.stage1.train_stage1",
                        lambda config: seen.setdefault("model", config.features.text.model) and [record])
    monkeypatch.setattr("vmhan_lib.train.runner.run_jobs", lambda *a, **k: pytest.fail("stage 2 ran"))
    code, out, _ = _run(capsys, "train", "--profile", "tiny", "--variants", "Text-only (fine-tuned encoder)",
                        "--set", "features.text.model=all-mpnet-base-v2")
    assert code == 0 and seen["model"] == "all-mpnet-base-v2"
    assert out == (f"{record['run_id']}: dev F1 by epoch 40.00, 55.12; best epoch 2: dev 55.12, test 60.00\n")
    code, out, err = _run(capsys, "train", "--profile", "tiny", "--variants", "Text-only (fine-tuned encoder)", "GCN")
    assert code == 2 and "trains stage 1 alone; run the other variants in another" in err
    code, out, err = _run(capsys, "train", "--profile", "tiny", "--variants", "Text-only (fine-tuned encoder)", "GCX")
    assert code == 2 and "unknown or no variant(s) ['GCX']" in err
    code, out, err = _run(capsys, "train", "--profile", "tiny", "--variants", "Text-only (fine-tuned encoder)",
                          "--executor", "ray")
    assert code == 2 and "trains in this process" in err and "drop --executor ray" in err


def test_interrupt_says_how_to_resume(capsys, monkeypatch) -> None:
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "train", interrupted)
    code, _, err = _run(capsys, "train", "--profile", "tiny")
    assert code == 130 and "rerun the same command to resume" in err


def test_stats_of_tiny_writes_under_results_tiny(capsys, monkeypatch, tmp_path: Path) -> None:
    written = {}

    def fake_report(data, results_dir, figures_dir):
        written["dirs"] = (Path(results_dir), Path(figures_dir))
        return {"statistics": {"splits": {"test": {"instances": 3, "images": 2, "none_share": 0.5}}}}

    monkeypatch.setattr("vmhan_lib.analysis.data_report.write_data_report", fake_report)
    code, out, _ = _run(capsys, "stats", "--profile", "tiny")
    assert code == 0 and written["dirs"][0].name == "tiny" and "test: 3 instances, 2 images, None 50.0 %" in out


def test_reproduce_passes_overrides_to_the_notebooks(capsys, monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr("vmhan_lib.workbook.reproduce",
                        lambda profile, data_dir, start, overrides: seen.update(profile=profile, overrides=overrides))
    code, _, _ = _run(capsys, "reproduce", "--profile", "tiny", "--set", "train.epochs=3")
    assert code == 0 and seen == {"profile": "tiny", "overrides": {"train.epochs": "3"}}
    code, _, err = _run(capsys, "reproduce", "--profile", "tiny", "--set", "train.epoch=3")
    assert code == 2 and "unknown field" in err


def test_executor_flags_set_the_experiment_fields_of_train_and_reproduce(capsys, monkeypatch) -> None:
    seen = {}

    def fake_run_jobs(config, jobs, **kwargs):
        seen["experiment"] = config.experiment
        return []

    monkeypatch.setattr("vmhan_lib.train.runner.run_jobs", fake_run_jobs)
    monkeypatch.setattr(cli, "_tables", lambda args: 0)
    code, _, _ = _run(capsys, "train", "--profile", "tiny", "--executor", "ray", "--address", "auto",
                      "--max-parallel", "2", "--set", "experiment.max_retries=1")
    experiment = seen["experiment"]
    assert code == 0 and (experiment.executor, experiment.ray_address, experiment.max_parallel,
                          experiment.max_retries) == ("ray", "auto", 2, 1)
    monkeypatch.setattr("vmhan_lib.workbook.reproduce",
                        lambda profile, data_dir, start, overrides: seen.update(overrides=overrides))
    code, _, _ = _run(capsys, "reproduce", "--profile", "tiny", "--executor", "ray", "--max-parallel", "2")
    assert code == 0 and seen["overrides"] == {"experiment.executor": "ray", "experiment.max_parallel": "2"}


def test_a_sweep_with_failed_runs_names_them_in_one_line_and_exits_1(capsys, monkeypatch) -> None:
    from vmhan_lib.train.ray_executor import SweepFailed

    def failing_run_jobs(config, jobs, **kwargs):
        raise SweepFailed({"GCN seed 0": "WorkerCrashedError: the worker died"}, 17, 2)

    monkeypatch.setattr("vmhan_lib.train.runner.run_jobs", failing_run_jobs)
    code, out, err = _run(capsys, "train", "--profile", "tiny", "--executor", "ray")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("sweep incomplete: 1 run(s) failed after 2 retries: GCN seed 0 (WorkerCrashedError")
    assert "17 completed and are recorded: rerun the same command" in err


def test_stats_of_another_data_directory_go_beside_the_default_ones(capsys, monkeypatch, tmp_path: Path) -> None:
    from tests.conftest import write_tiny_mnre

    results, figures = tmp_path / "results", tmp_path / "figures"
    monkeypatch.setattr("vmhan_lib.paths.output_dirs", lambda profile: (results, figures))  # never the repository's
    monkeypatch.setenv("VMHAN_DATA", str(write_tiny_mnre(tmp_path / "default" / "mnre")))
    copy = write_tiny_mnre(tmp_path / "elsewhere" / "mnre-copy")
    assert _run(capsys, "stats", "--profile", "cpu")[0] == 0
    committed = (results / "data_statistics.json").read_text()
    (copy / "text" / "mnre_test.txt").write_text((copy / "text" / "mnre_test.txt").read_text().splitlines()[0] + "\n")
    code, out, _ = _run(capsys, "stats", "--profile", "cpu", "--data-dir", str(copy))
    aside = results / "data_statistics" / "mnre-copy" / "data_statistics.json"
    assert code == 0 and (results / "data_statistics.json").read_text() == committed  # the default's file untouched
    assert f"wrote {aside} and figures in {figures / 'data_statistics' / 'mnre-copy'}" in out
    record = json.loads(aside.read_text())
    assert record["config"]["data"]["data_dir"] == str(copy) and record["statistics"]["splits"]["test"]["instances"] == 1
    assert len(list((figures / "data_statistics" / "mnre-copy").glob("*.png"))) == 2


def test_each_shorthand_is_its_set_and_its_help_names_the_field(capsys, monkeypatch, tmp_path: Path) -> None:
    samples = {"--data-dir": str(tmp_path), "--executor": "local", "--address": "auto", "--max-parallel": "3",
               "--retrain-stale": None}  # a new shorthand needs a sample here (KeyError otherwise)
    base = ["--profile", "tiny", "--set", "experiment.executor=ray", "--set", "train.epochs=4"]
    for flag, shorthand in cli.SHORTHANDS.items():
        value = samples[flag]
        for command in shorthand.commands:
            flagged = [command, *base, flag, *([] if value is None else [value])]
            assigned = [command, *base, "--set", f"{shorthand.field}={shorthand.value or value}"]
            configs = [to_dict(cli._config(cli._parser().parse_args(argv))) for argv in (flagged, assigned)]
            assert configs[0] == configs[1], (command, flag)
            with pytest.raises(SystemExit):
                main([command, "--help"])
            assert f"--set {shorthand.field}=" in " ".join(capsys.readouterr().out.split()), (command, flag)
    tree = to_dict(cli._config(cli._parser().parse_args(["train", "--profile", "tiny", "--retrain-stale",
                                                         "--data-dir", str(tmp_path), "--max-parallel", "2",
                                                         "--executor", "ray", "--set", "experiment.executor=local"])))
    assert (tree["experiment"]["stale_runs"], tree["data"]["data_dir"], tree["experiment"]["max_parallel"],
            tree["experiment"]["executor"]) == ("retrain", str(tmp_path), 2, "ray")  # a shorthand beats --set
    seen = []
    monkeypatch.setattr("vmhan_lib.workbook.reproduce", lambda profile, data_dir, start, overrides: seen.append(
        (data_dir, overrides)))
    for given in (["--data-dir", "somewhere"], ["--set", "data.data_dir=somewhere"]):
        assert _run(capsys, "reproduce", "--profile", "tiny", *given, "--set", "train.epochs=3")[0] == 0
    assert seen == [("somewhere", {"train.epochs": "3"})] * 2  # the notebooks' data_dir parameter, resolved here
