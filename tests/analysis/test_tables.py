from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from vmhan_lib.analysis.tables import headline_gap, load_runs, summarize, table1, table2
from vmhan_lib.metrics import score
from vmhan_lib.train.records import Prediction, read_predictions, run_id, write_run

LABELS = ["None", "a", "b"]


def _fake_run(runs_dir: Path, variant: str, seed: int, gold: list[str], accuracy: float,
              setting: tuple[str, ...] | None = None) -> dict:
    """A run record; ``setting`` = (training, text_encoder[, scope]) fields, None = a record from
    before they existed (a scope is recorded only when not ``pair``, as the runner does)."""
    rng = np.random.default_rng(zlib.crc32(repr((variant, seed, setting)).encode()))  # not hash(): salted per process
    pred = [g if rng.random() < accuracy else str(rng.choice(LABELS)) for g in gold]
    tag = "" if setting is None else f"__{'-'.join(setting).lower()}"
    run_dir = runs_dir / run_id(f"cpu{tag}", variant, seed)
    scores = score(gold, pred).as_dict()
    fields = {} if setting is None else {"training": setting[0], "text_encoder": setting[1]}
    if setting is not None and len(setting) > 2 and setting[2] != "pair":
        fields["scope"] = setting[2]
    write_run(run_dir, {"run_id": run_dir.name, "variant": variant, "seed": seed, "dev": scores, "test": scores,
                        "train_wall_s": 1.0, "best_epoch": 1, "n_parameters": 10, "device": "cpu", "complete": True,
                        **fields},
              [Prediction(i, g, p, (0.2, 0.3, 0.5)) for i, (g, p) in enumerate(zip(gold, pred))])
    return scores


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    gold = list(np.random.default_rng(0).choice(LABELS, size=300, p=[0.6, 0.25, 0.15]))
    for seed in range(3):
        _fake_run(tmp_path, "VM-HAN (Ours)", seed, gold, 0.85)
        _fake_run(tmp_path, "w/o KL Loss", seed, gold, 0.84)
        _fake_run(tmp_path, "repl. GCN", seed, gold, 0.5)
    (tmp_path / "incomplete").mkdir()
    return tmp_path


def test_summary_means_and_stds_match_numpy(runs_dir: Path) -> None:
    runs = load_runs(runs_dir)
    assert len(runs) == 9
    summary = summarize(runs)
    f1 = runs[runs.variant == "repl. GCN"].sort_values("seed")["f1"].to_numpy()
    assert summary.loc["repl. GCN", "f1"] == pytest.approx(f1.mean())
    assert summary.loc["repl. GCN", "f1_std"] == pytest.approx(f1.std(ddof=1))
    assert summary.loc["repl. GCN", "seeds"] == [0, 1, 2]


def test_table1_has_our_rows_then_paper_rows_with_reachability(runs_dir: Path) -> None:
    table = table1(load_runs(runs_dir), ("VM-HAN (Ours)", "Text-only"))
    ours = table[table.source == "ours"]
    assert ours.model.tolist() == ["VM-HAN (Ours)"]  # no Text-only runs: no row
    assert (ours["MORE F1"] == "data not reachable here").all()
    paper_vmhan = table[(table.source == "paper") & (table.model == "VM-HAN (Ours)")].iloc[0]
    assert paper_vmhan["MNRE F1"] == "85.80" and "not reachable" in paper_vmhan["note"]
    assert "accuracy" in paper_vmhan["note"] and "recall" in paper_vmhan["note"]


def test_feature_fallbacks_reach_the_table_notes(tmp_path: Path) -> None:
    gold = ["None", "a", "b"] * 10
    _fake_run(tmp_path, "VM-HAN (Ours)", 0, gold, 0.9)
    _fake_run(tmp_path, "GCN", 0, gold, 0.9)
    build = {"train": {"split": "train", "n_instances": 30}, "test": {
        "split": "test", "n_instances": 30, "without_image": {"no caption line": 17}, "selection_fallbacks": {"visual": 2}}}
    for variant in ("VM-HAN (Ours)", "GCN"):
        path = tmp_path / run_id("cpu", variant, 0) / "record.json"
        record = json.loads(path.read_text())
        if variant == "GCN":
            record["build"] = build
            record["encoder_dir"] = "ckpt/encoder"  # a joint run exports its encoder too: its fallbacks still count
        path.write_text(json.dumps(record))
    table = table1(load_runs(tmp_path), ("VM-HAN (Ours)", "GCN"))
    notes = table[table.source == "ours"].set_index("model")["note"]
    assert notes["GCN"].endswith("feature fallbacks: test: 17 of 30 instances without visual nodes (no caption line); "
                                 "2 LLM visual answers unusable (embedding ranker instead)")
    assert "feature fallbacks not recorded" in notes["VM-HAN (Ours)"].split("; ")[-1]
    assert table2(load_runs(tmp_path), ("VM-HAN (Ours)", "GCN"), resamples=10).set_index("variant").loc[
        "GCN", "note"].startswith("feature fallbacks: test: 17 of 30")


def test_table2_deltas_and_significance(runs_dir: Path) -> None:
    runs = load_runs(runs_dir)
    table = table2(runs, ("VM-HAN (Ours)", "w/o KL Loss", "repl. GCN"), resamples=500).set_index("variant")
    summary = summarize(runs)
    assert table.loc["repl. GCN", "ΔF1"] == pytest.approx(summary.loc["repl. GCN", "f1"] - summary.loc["VM-HAN (Ours)", "f1"], abs=0.01)
    assert table.loc["repl. GCN", "p (bootstrap)"] < 0.01
    assert table.loc["w/o KL Loss", "p (bootstrap)"] > table.loc["repl. GCN", "p (bootstrap)"]
    assert table.loc["repl. GCN", "paper ΔAvg"] == pytest.approx(-4.42, abs=0.01)
    assert table.loc["VM-HAN (Ours)", "ΔF1"] == 0


def test_readme_section_is_replaced_between_markers(tmp_path: Path) -> None:
    import pandas as pd

    from vmhan_lib.analysis.tables import README_END, README_START, render_into_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold\n{README_END}\noutro\n")
    render_into_readme(readme, {"table1_main_results": pd.DataFrame({"model": ["x"], "F1": ["1.00 ± 0.00"]})}, "note")
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert "| model | F1 |" in text and "| x | 1.00 ± 0.00 |" in text and "note" in text


def test_headline_gap_states_the_distance_to_the_paper_and_to_the_baseline(runs_dir: Path) -> None:
    runs = load_runs(runs_dir)
    summary = summarize(runs)
    ours, gcn = summary.loc["VM-HAN (Ours)"], summary.loc["repl. GCN"]
    text = headline_gap(runs, baseline="repl. GCN")
    assert f"{ours.f1:.2f} ± {ours.f1_std:.2f} over 3 seeds" in text
    assert f"{85.80 - ours.f1:.2f} points below the paper's 85.80" in text
    assert f"difference is {ours.f1 - gcn.f1:+.2f}, more than the larger seed spread" in text
    close = headline_gap(runs, baseline="w/o KL Loss")
    kl = summary.loc["w/o KL Loss"]
    spread = max(ours.f1_std, kl.f1_std)
    assert ("within" if abs(ours.f1 - kl.f1) <= spread else "more than") in close
    assert "Against our" not in headline_gap(runs, baseline="Text-only")  # no such runs
    one_seed = headline_gap(runs[(runs.variant != "repl. GCN") | (runs.seed == 0)], baseline="repl. GCN")
    assert "not yet comparable with a seed spread (one seed on a side)" in one_seed


def test_rows_name_their_setting_and_settings_are_never_averaged(runs_dir: Path) -> None:
    gold = [p.gold for p in read_predictions(runs_dir / "cpu__vm-han-ours__seed0")]
    joint = ("joint", "all-mpnet-base-v2", "pair")
    sentence = ("two-stage", "all-MiniLM-L6-v2", "sentence")
    for seed in range(2):
        _fake_run(runs_dir, "VM-HAN (Ours)", seed, gold, 0.95, joint)
        _fake_run(runs_dir, "VM-HAN (Ours)", seed, gold, 0.9, sentence)
    with pytest.raises(ValueError, match=r"the runs come from 3 settings .*load_runs\(runs_dir, setting="):
        summarize(load_runs(runs_dir))
    old = load_runs(runs_dir, ("two-stage", "all-MiniLM-L6-v2", "pair"))  # records without the fields: the only setting then
    assert len(old) == 9 and set(old.training) == {"two-stage"} and set(old.text_encoder) == {"all-MiniLM-L6-v2"}
    assert set(old.scope) == {"pair"}
    in_sentence = load_runs(runs_dir, sentence)
    assert len(in_sentence) == 2 and table1(in_sentence, ("VM-HAN (Ours)",)).iloc[0]["scope"] == "sentence"
    assert table2(in_sentence, ("VM-HAN (Ours)",), resamples=10).iloc[0]["scope"] == "sentence"
    new = load_runs(runs_dir, joint)
    assert sorted(new.seed) == [0, 1] and set(new.variant) == {"VM-HAN (Ours)"}
    ours = table1(new, ("VM-HAN (Ours)",)).iloc[0]
    assert (ours["encoder"], ours["training"]) == ("all-mpnet-base-v2", "joint")
    row = table2(new, ("VM-HAN (Ours)",), resamples=10).iloc[0]
    assert (row["encoder"], row["training"]) == ("all-mpnet-base-v2", "joint")
    gap = headline_gap(new)
    assert "all-mpnet-base-v2" in gap and "frozen" not in gap  # joint: no two-stage reason
    assert "frozen for the hypergraph stage" in headline_gap(old) and "all-MiniLM-L6-v2" in headline_gap(old)


def test_more_columns_fill_from_the_runs_on_more(runs_dir: Path) -> None:
    gold = list(np.random.default_rng(1).choice(LABELS, size=200, p=[0.5, 0.3, 0.2]))
    scores = [_fake_run(runs_dir / "more", "VM-HAN (Ours)", seed, gold, 0.7) for seed in range(2)]
    table = table1(load_runs(runs_dir), ("VM-HAN (Ours)", "repl. GCN"), load_runs(runs_dir / "more"))
    ours = table[table.source == "ours"].set_index("model")
    f1 = np.array([100 * s["f1"] for s in scores])
    assert ours.loc["VM-HAN (Ours)", "MORE F1"] == f"{f1.mean():.2f} ± {f1.std(ddof=1):.2f}"
    assert ours.loc["repl. GCN", "MORE F1"] == "data not reachable here"  # no run on MORE
    assert len(load_runs(runs_dir)) == 9  # the MORE runs are not MNRE runs


def test_tables_of_another_setting_are_written_beside_the_default_ones(tmp_path: Path) -> None:
    from vmhan_lib.analysis.tables import write_tables

    gold = list(np.random.default_rng(1).choice(LABELS, size=100))
    runs, out = tmp_path / "runs", tmp_path / "out"
    for seed in range(2):
        _fake_run(runs, "VM-HAN (Ours)", seed, gold, 0.8)  # the default setting (older records)
        _fake_run(runs, "VM-HAN (Ours)", seed, gold, 0.5, ("out-of-fold", "all-MiniLM-L6-v2"))
    default = write_tables(runs, out, ("VM-HAN (Ours)",), ("VM-HAN (Ours)",), ("two-stage", "all-MiniLM-L6-v2", "pair"))
    other = write_tables(runs, out, ("VM-HAN (Ours)",), ("VM-HAN (Ours)",), ("out-of-fold", "all-MiniLM-L6-v2", "pair"),
                         name_suffix="__out-of-fold-all-minilm-l6-v2")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{t}{s}.{e}" for t in ("table1_main_results", "table2_ablations") for s in ("", "__out-of-fold-all-minilm-l6-v2")
        for e in ("csv", "md"))
    assert (out / "table1_main_results.csv").read_text() == default["table1_main_results"].to_csv(index=False)
    assert other["table1_main_results"].iloc[0]["training"] == "out-of-fold"
    assert default["table1_main_results"].iloc[0]["training"] == "two-stage"


def test_settings_comparison_tells_each_setting_apart_and_names_the_winners(tmp_path: Path) -> None:
    from vmhan_lib.analysis.tables import settings_comparison, settings_sentence

    gold = list(np.random.default_rng(2).choice(LABELS, size=400, p=[0.5, 0.3, 0.2]))
    oof = ("out-of-fold", "all-MiniLM-L6-v2")
    for seed in range(3):
        _fake_run(tmp_path, "VM-HAN (Ours)", seed, gold, 0.6)
        _fake_run(tmp_path, "Text-only", seed, gold, 0.6)
        _fake_run(tmp_path, "VM-HAN (Ours)", seed, gold, 0.95, oof)
        _fake_run(tmp_path, "Text-only", seed, gold, 0.3, oof)
    _fake_run(tmp_path, "GCN", 0, gold, 0.9, ("joint", "all-MiniLM-L6-v2"))  # no pair of models: no row
    mpnet = ("two-stage", "all-mpnet-base-v2")
    _fake_run(tmp_path, "VM-HAN (Ours)", 0, gold, 0.99, mpnet)  # one seed a side: no verdict, however far apart
    _fake_run(tmp_path, "Text-only", 0, gold, 0.2, mpnet)
    for seed in range(3):  # sentence scope without its own Text-only runs: compared with the pair scope's
        _fake_run(tmp_path, "VM-HAN (Ours)", seed, gold, 0.95, ("two-stage", "all-MiniLM-L6-v2", "sentence"))
    runs = load_runs(tmp_path)
    table = settings_comparison(runs)
    in_sentence = table[table.scope == "sentence"].iloc[0]
    assert in_sentence.baseline_scope == "pair" and in_sentence.difference > 0 and in_sentence.beyond_spread
    assert "two-stage with all-MiniLM-L6-v2 in sentence scope" in settings_sentence(table)
    table = table[table.scope == "pair"]
    single = table[table.encoder == "all-mpnet-base-v2"].iloc[0]
    assert single.beyond_spread is None and single.difference > 10 and single.spread == 0
    assert "two-stage with all-mpnet-base-v2" not in settings_sentence(table).split(" Test F1")[0]
    assert "one seed on a side, no spread yet" in settings_sentence(table)
    assert settings_sentence(table[table.encoder == "all-mpnet-base-v2"]).startswith("No setting has two or more seeds")
    table = table[table.encoder == "all-MiniLM-L6-v2"]
    assert sorted(table["training"]) == ["out-of-fold", "two-stage"]
    row = table.set_index("training").loc["out-of-fold"]
    ours = summarize(runs[(runs.training == "out-of-fold")]).loc["VM-HAN (Ours)"]
    assert row.vm_han_f1 == pytest.approx(ours.f1) and row.vm_han_seeds == 3 and row.beyond_spread
    assert row.difference == pytest.approx(row.vm_han_f1 - row.baseline_f1) and row.difference > 0
    sentence = settings_sentence(table)
    assert sentence.startswith("VM-HAN beats Text-only by more than the seeds' spread in: out-of-fold with all-MiniLM-L6-v2.")
    assert "two-stage with all-MiniLM-L6-v2" in sentence and "setting has complete runs" in settings_sentence(table.iloc[:0])


def test_training_cost_sums_the_recorded_wall_times_per_setting_and_part(tmp_path: Path) -> None:
    from vmhan_lib.analysis.tables import training_cost

    def record(folder: Path, variant: str, seed: int, epochs: list[float], training: str) -> None:
        run_dir = folder / run_id(f"cpu__{training}", variant, seed)
        write_run(run_dir, {"run_id": run_dir.name, "variant": variant, "seed": seed, "complete": True,
                            "epochs": [{"wall_s": s} for s in epochs], "train_wall_s": sum(epochs),
                            "training": training, "text_encoder": "all-MiniLM-L6-v2"}, [Prediction(0, "None", "None", (1.0,))])

    record(tmp_path, "Text-only (fine-tuned encoder)", 0, [100.0, 80.0], "two-stage")
    for fold in range(3):
        record(tmp_path / "folds", f"Text-only (fine-tuned encoder) fold {fold + 1} of 3", 0, [60.0, 40.0], "out-of-fold")
    for seed in range(2):
        record(tmp_path, "VM-HAN (Ours)", seed, [10.0, 20.0, 30.0], "out-of-fold")
    cost = training_cost(tmp_path).set_index(["training", "part"])
    assert cost.loc[("two-stage", "stage 1: encoder of all train"), "total s"] == 180.0
    folds = cost.loc[("out-of-fold", "stage 1: fold encoders")]
    assert (folds["runs"], folds["epochs per run"], folds["s per epoch"], folds["total s"]) == (3, 2.0, 50.0, 300.0)
    vmhan = cost.loc[("out-of-fold", "VM-HAN (Ours)")]
    assert (vmhan["runs"], vmhan["s per epoch"], vmhan["total s"]) == (2, 20.0, 120.0)
    assert training_cost(tmp_path / "none").empty


def test_stage1_comparison_sets_the_encoders_side_by_side_and_says_which_way_it_went(tmp_path: Path) -> None:
    from vmhan_lib.analysis.tables import stage1_comparison, stage1_sentence

    def record(encoder: str, dev: list[float], best: int, test: float, wall_s: float) -> None:
        prefix = "cpu" if encoder == "all-MiniLM-L6-v2" else f"cpu__two-stage-{encoder.lower()}"
        run_dir = tmp_path / run_id(prefix, "Text-only (fine-tuned encoder)", 0)
        write_run(run_dir, {"run_id": run_dir.name, "variant": "Text-only (fine-tuned encoder)", "seed": 0,
                            "complete": True, "training": "two-stage", "text_encoder": encoder, "best_epoch": best,
                            "config": {"encoder_train": {"epochs": len(dev), "batch_size": 32, "lr": 5e-5}},
                            "epochs": [{"dev": {"f1": f}, "wall_s": wall_s} for f in dev],
                            "dev": {"f1": dev[best - 1]}, "test": {"f1": test}}, [Prediction(0, "None", "None", (1.0,))])

    assert stage1_sentence(stage1_comparison(tmp_path), "all-MiniLM-L6-v2", "all-mpnet-base-v2") == \
        "No finished stage-1 run of all-MiniLM-L6-v2 or all-mpnet-base-v2 yet."
    record("all-MiniLM-L6-v2", [0.4085, 0.5556, 0.5798, 0.5826], 4, 0.6242, 480.0)
    record("all-mpnet-base-v2", [0.45, 0.57, 0.5612], 2, 0.60, 2100.0)
    table = stage1_comparison(tmp_path).set_index("encoder")
    assert table.loc["all-mpnet-base-v2", "dev_f1_by_epoch"] == [45.0, 57.0, 56.12]
    assert table.loc["all-mpnet-base-v2", "dev_f1"] == pytest.approx(57.0)
    assert (table.loc["all-MiniLM-L6-v2", "epochs"], table.loc["all-MiniLM-L6-v2", "s_per_epoch"]) == (4, 480.0)
    sentence = stage1_sentence(table.reset_index(), "all-MiniLM-L6-v2", "all-mpnet-base-v2")
    assert sentence == ("all-mpnet-base-v2's stage 1 reaches dev F1 57.00 (epoch 2 of 3, 35 min per epoch; test "
                        "60.00) against all-MiniLM-L6-v2's 58.26 (epoch 4 of 4, 8 min; test 62.42): not above: its "
                        "stage-2 rows are not run.")
    record("all-mpnet-base-v2", [0.45, 0.59, 0.5612], 2, 0.60, 2100.0)
    assert stage1_sentence(stage1_comparison(tmp_path), "all-MiniLM-L6-v2", "all-mpnet-base-v2").endswith(
        "against all-MiniLM-L6-v2's 58.26 (epoch 4 of 4, 8 min; test 62.42): above: its stage-2 rows are worth running.")


def test_a_setting_with_its_stage1_encoder_alone_gets_table1_only(tmp_path: Path) -> None:
    from vmhan_lib.analysis.tables import write_tables

    run_dir = tmp_path / "runs" / run_id("cpu__two-stage-all-mpnet-base-v2", "Text-only (fine-tuned encoder)", 0)
    metrics = {"accuracy": 0.7, "precision": 0.6, "recall": 0.62, "f1": 0.61}
    write_run(run_dir, {"run_id": run_dir.name, "variant": "Text-only (fine-tuned encoder)", "seed": 0, "complete": True,
                        "training": "two-stage", "text_encoder": "all-mpnet-base-v2", "dev": {"f1": 0.56},
                        "test": metrics, "epochs": [], "train_wall_s": 1.0, "best_epoch": 3, "n_parameters": 1,
                        "device": "cpu"}, [Prediction(0, "None", "None", (1.0,))])
    built = write_tables(tmp_path / "runs", tmp_path, ("VM-HAN (Ours)", "Text-only (fine-tuned encoder)"),
                         ("VM-HAN (Ours)",), ("two-stage", "all-mpnet-base-v2", "pair"), name_suffix="__mpnet")
    assert list(built) == ["table1_main_results"] and not (tmp_path / "table2_ablations__mpnet.md").exists()
    row = built["table1_main_results"].iloc[0]
    assert row["model"] == "Text-only (fine-tuned encoder)" and row["encoder"] == "all-mpnet-base-v2"
    assert row["MNRE F1"].startswith("61.00")
