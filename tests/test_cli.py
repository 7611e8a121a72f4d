"""The command line: every subcommand, and every user error as one line with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vmhan_lib.cli as cli
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
    (["train", "--profile", "tiny", "--variants", "VM-HAN"], "unknown variant(s) ['VM-HAN']; allowed: VM-HAN (Ours);"),
])
def test_user_errors_are_one_line_and_exit_2(capsys, argv, message) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == "" and err.startswith("error: ") and message in err and err.count("\n") == 1


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

    def fake_write_tables(runs_dir, out_dir, table1, table2, more_runs_dir=None):
        seen["tables"] = (Path(runs_dir), Path(out_dir))
        return {}

    monkeypatch.setattr("vmhan_lib.train.runner.run_jobs", fake_run_jobs)
    monkeypatch.setattr("vmhan_lib.analysis.tables.write_tables", fake_write_tables)
    code, out, _ = _run(capsys, "train", "--profile", "tiny", "--variants", "GCN", "--set", "train.epochs=5")
    assert code == 0 and seen["jobs"] == [("GCN", 0)] and seen["epochs"] == 5 and "1 runs complete" in out
    assert seen["tables"][0].parts[-3:] == ("results", "tiny", "runs") and seen["tables"][1].name == "tiny"
    code, _, err = _run(capsys, "tables", "--profile", "tiny", "--readme")
    assert code == 2 and "--readme renders the committed cpu results only" in err


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
