"""The paper's Table 1 (main results) and Table 2 (ablations), computed from run records only.

Our rows are means ± standard deviations over seeds of the test metrics of complete runs
(``results/runs/*/record.json``); the paper's rows come from ``evaluate/paper_numbers.json`` with
what is known of each (single reported number, selection, reachable on this test set or not).
Significance in Table 2 is a paired bootstrap over test instances of the pooled-seed micro F1
(:func:`vmhan_lib.evaluate.significance.paired_bootstrap_f1_runs`).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from vmhan_lib.evaluate.reachability import reachable
from vmhan_lib.io import atomic_write_text
from vmhan_lib.config import ENCODER_VARIANT, RunConfig
from vmhan_lib.evaluate.significance import SINGLE_SEED_VERDICT, beyond_seed_spread, paired_bootstrap_f1_runs
from vmhan_lib.model.variants import FULL_MODEL
from vmhan_lib.train.records import iter_records, read_predictions, record_setting
from vmhan_lib.analysis.run_notes import fallback_note, row_notes, settings_note
from vmhan_lib.train.jobs import FOLDS_FOLDER, MORE_RUNS_FOLDER, setting_tag

METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1")
SHORT = {"accuracy": "Acc.", "precision": "Prec.", "recall": "Recall", "f1": "F1"}
MNRE_TEST_SIZE, MNRE_TEST_POSITIVES = 1614, 640
MORE_NOTE = "data not reachable here"
NO_MNRE_RUN = "no MNRE run"


def paper_numbers() -> dict[str, Any]:
    """The paper's Tables 1 and 2 (percent) with the notes on what they are."""
    return json.loads(resources.files("vmhan_lib.evaluate").joinpath("paper_numbers.json").read_text())


def paper_mnre_f1() -> dict[str, float]:
    """The paper's Table 1 MNRE F1 (percent) of each model."""
    return {row["model"]: float(row["MNRE"]["f1"]) for row in paper_numbers()["table1"]}


def load_runs(runs_dir: str | Path, setting: tuple[str, str, str] | None = None) -> pd.DataFrame:
    """One row per complete run: variant, seed, training mode, text encoder and hypergraph scope,
    test and dev metrics in percent, wall time, its feature fallbacks and the settings in which it
    differs from its profile's (``settings``, ``""`` when none; the tables' notes say both).

    Args:
        setting: keep only the runs of this (training mode, text encoder, hypergraph scope), e.g.
            ``RunConfig.setting``; ``None`` keeps every run (the tables then refuse a mix).
    """
    rows = []
    for run_dir, record in iter_records(Path(runs_dir)):
        training, encoder, scope = record_setting(record)
        if setting is not None and (training, encoder, scope) != tuple(setting):
            continue
        row = {"run_id": record["run_id"], "run_dir": str(run_dir), "variant": record["variant"], "seed": record["seed"],
               "training": training, "text_encoder": encoder, "scope": scope,
               "dev_f1": 100 * record["dev"]["f1"], "train_wall_s": record["train_wall_s"],
               "best_epoch": record["best_epoch"], "n_parameters": record["n_parameters"], "device": record["device"],
               "fallbacks": fallback_note(record), "settings": settings_note(record)}
        row.update({m: 100 * record["test"][m] for m in METRICS})
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per variant: seeds, mean and std (ddof=1; 0 for one seed) of each metric, per-seed F1, the
    training mode, text encoder and hypergraph scope.

    Raises:
        ValueError: the runs come from several (training mode, text encoder, scope) settings, which
            must not be averaged together (load one with ``load_runs(..., setting=...)``).
    """
    settings = sorted(set(zip(runs["training"], runs["text_encoder"], runs["scope"])))
    if len(settings) > 1:
        raise ValueError(f"the runs come from {len(settings)} settings {settings}; load one with "
                         "load_runs(runs_dir, setting=(training, text_encoder, scope)), e.g. RunConfig.setting")
    grouped = runs.groupby("variant", sort=False)
    summary = grouped[list(METRICS) + ["dev_f1", "train_wall_s"]].mean()
    spread = grouped[list(METRICS)].std(ddof=1).fillna(0.0)
    summary = summary.join(spread.add_suffix("_std"))
    summary["seeds"] = grouped["seed"].apply(lambda s: sorted(s.tolist()))
    summary["f1_per_seed"] = grouped.apply(lambda g: [round(x, 2) for x in g.sort_values("seed")["f1"]])
    summary["training"], summary["text_encoder"] = grouped["training"].first(), grouped["text_encoder"].first()
    summary["scope"] = grouped["scope"].first()
    return summary


def _mean_std(summary: pd.DataFrame, variant: str, metric: str) -> str:
    return f"{summary.loc[variant, metric]:.2f} ± {summary.loc[variant, metric + '_std']:.2f}"


def table1(runs: pd.DataFrame, variants: tuple[str, ...], more_runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Our rows (mean ± std over seeds) above the paper's rows, MNRE test; the MORE columns from
    ``more_runs`` (the records of ``<runs>/more/``) where a variant has them, else marked
    :data:`MORE_NOTE`; a variant run on MORE alone has its MNRE columns marked :data:`NO_MNRE_RUN`."""
    parts = {"MNRE": (runs, NO_MNRE_RUN), "MORE": (more_runs if more_runs is not None else pd.DataFrame(), MORE_NOTE)}
    summaries = {name: summarize(part) if not part.empty else None for name, (part, _) in parts.items()}
    rows = []
    for variant in variants:
        have = [name for name, summary in summaries.items() if summary is not None and variant in summary.index]
        if not have:
            continue
        first, part = summaries[have[0]], parts[have[0]][0]
        row = {"source": "ours", "model": variant, "encoder": first.loc[variant, "text_encoder"],
               "training": first.loc[variant, "training"], "scope": first.loc[variant, "scope"]}
        for name, (_, missing) in parts.items():
            row.update({f"{name} {SHORT[m]}": _mean_std(summaries[name], variant, m) if name in have else missing
                        for m in METRICS})
        row["note"] = "; ".join([f"mean ± std over seeds {first.loc[variant, 'seeds']}, checkpoint chosen on dev F1, "
                                 "test scored once", *row_notes(part, variant)])
        rows.append(row)
    for paper_row in paper_numbers()["table1"]:
        mnre = paper_row["MNRE"]
        reach = reachable(mnre["accuracy"], mnre["precision"], mnre["recall"], MNRE_TEST_SIZE, MNRE_TEST_POSITIVES)
        row = {"source": "paper", "model": paper_row["model"]}
        row.update({f"MNRE {SHORT[m]}": _fmt(mnre[m]) for m in METRICS})
        row.update({f"MORE {SHORT[m]}": _fmt(paper_row["MORE"][m]) for m in METRICS})
        unreachable = [name for name, ok in reach._asdict().items() if not ok]
        row["note"] = "single reported number, selection not stated; " + (
            f"not reachable on MNRE-2 test: {', '.join(unreachable)}" if unreachable else "reachable on MNRE-2 test"
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table2(runs: pd.DataFrame, variants: tuple[str, ...], resamples: int = 2000) -> pd.DataFrame:
    """Each ablation against full VM-HAN: mean ± std, ΔF1, ΔAvg (mean change of the four metrics,
    as the paper's ΔAvg), paired bootstrap p-value and 95 % interval of ΔF1; the paper's F1 and ΔAvg beside."""
    summary = summarize(runs)
    if FULL_MODEL not in summary.index:
        raise ValueError(f"no complete run of {FULL_MODEL!r} in the records; found: {', '.join(summary.index)}")
    predictions = {
        variant: [[p.predicted for p in read_predictions(Path(d))] for d in group.sort_values("seed")["run_dir"]]
        for variant, group in runs.groupby("variant")
    }
    gold = [p.gold for p in read_predictions(Path(runs[runs.variant == FULL_MODEL].iloc[0]["run_dir"]))]
    paper = {row["variant"]: row["MNRE"] for row in paper_numbers()["table2"]}
    paper_full = paper[FULL_MODEL]
    rows = []
    for variant in variants:
        if variant not in summary.index:
            continue
        row: dict[str, Any] = {"variant": variant, "encoder": summary.loc[variant, "text_encoder"],
                               "training": summary.loc[variant, "training"]}
        row.update({SHORT[m]: _mean_std(summary, variant, m) for m in METRICS})
        deltas = [summary.loc[variant, m] - summary.loc[FULL_MODEL, m] for m in METRICS]
        row["ΔF1"] = round(deltas[-1], 2)
        row["ΔAvg"] = round(sum(deltas) / len(deltas), 2)
        if variant != FULL_MODEL:
            test = paired_bootstrap_f1_runs(gold, predictions[FULL_MODEL], predictions[variant], resamples=resamples)
            row["p (bootstrap)"] = round(test.p_value, 4)
            row["ΔF1 95% CI"] = f"[{100 * test.ci_low:.2f}, {100 * test.ci_high:.2f}]"
        if variant in paper:
            row["paper F1"] = paper[variant]["f1"]
            row["paper ΔAvg"] = round(sum(paper[variant][m] - paper_full[m] for m in METRICS) / len(METRICS), 2)
        row["seeds"] = len(summary.loc[variant, "seeds"])
        row["scope"] = summary.loc[variant, "scope"]  # after the figures: notebook 06 reads the first columns
        row["note"] = "; ".join(row_notes(runs, variant))
        rows.append(row)
    return pd.DataFrame(rows)


ENCODER_GAPS = {
    "all-MiniLM-L6-v2": "a 6-layer 384-wide encoder (all-MiniLM-L6-v2) instead of BERT-base",
    "all-mpnet-base-v2": "a BERT-base-size encoder tuned for sentence embeddings (all-mpnet-base-v2) instead of bert-base-uncased",
}


def gap_reasons(training: str, text_encoder: str) -> str:
    """Why runs of this setting may fall short of the paper, as one clause list."""
    reasons = [ENCODER_GAPS[text_encoder]] if text_encoder in ENCODER_GAPS else []
    reasons.append("visual nodes from VLM captions instead of the images")
    if training != "joint":  # two-stage, out-of-fold
        reasons.append("the encoder fine-tuned once and frozen for the hypergraph stage instead of end to end")
    return "; ".join(reasons) + ("; and paper figures that cannot all come from one prediction file on this test set "
                                 "(its accuracy and recall are not reachable)")


def headline_gap(runs: pd.DataFrame, baseline: str = "Text-only") -> str:
    """Plain statement of where our VM-HAN stands: against the paper's reported F1 and against our
    ``baseline`` (is the difference larger than the seeds' spread?), with the reasons for the gap."""
    summary = summarize(runs)
    if FULL_MODEL not in summary.index:
        return f"No complete {FULL_MODEL} run yet."
    ours = summary.loc[FULL_MODEL]
    paper_f1 = paper_mnre_f1()[FULL_MODEL]
    text = (f"{FULL_MODEL} scores test F1 {ours.f1:.2f} ± {ours.f1_std:.2f} over {len(ours.seeds)} seeds, "
            f"{paper_f1 - ours.f1:.2f} points below the paper's {paper_f1:.2f}.")
    if (r := _against(summary, summary, baseline)) is not None:
        verdict = (f"{'more than' if r['beyond_spread'] else 'within'} the larger seed spread ({r['spread']:.2f})"
                   if r["beyond_spread"] is not None else SINGLE_SEED_VERDICT)
        text += (f" Against our {baseline} model ({r['baseline_f1']:.2f} ± {r['baseline_f1_std']:.2f}, "
                 f"{r['baseline_seeds']} seeds) the difference is {r['difference']:+.2f}, {verdict}.")
    return f"{text} Why we are short of the paper: {gap_reasons(ours.training, ours.text_encoder)}."


def _seconds_per_epoch(record: dict[str, Any]) -> float:
    """The mean wall time of a run record's epochs."""
    return sum(epoch["wall_s"] for epoch in record["epochs"]) / len(record["epochs"])


def training_cost(runs_dir: str | Path) -> pd.DataFrame:
    """What training cost, per setting (training mode, text encoder, hypergraph scope) and part, from the records'
    wall times: the stage-1 encoder of all train (listed under ``two-stage``; ``out-of-fold`` shares
    it), the out-of-fold fold encoders (``runs/folds/``), and each stage-2 (or joint) variant: runs,
    epochs per run, mean seconds per epoch, total seconds."""
    rows = []
    for folder, fold_part in ((Path(runs_dir), False), (Path(runs_dir) / FOLDS_FOLDER, True)):
        for _, record in iter_records(folder):
            training, encoder, scope = record_setting(record)
            part = ("stage 1: fold encoders" if fold_part else "stage 1: encoder of all train"
                    if record["variant"] == ENCODER_VARIANT else record["variant"])
            rows.append({"training": training, "encoder": encoder, "scope": scope, "part": part,
                         "epochs": len(record["epochs"]),
                         "epoch_s": _seconds_per_epoch(record), "total_s": record["train_wall_s"]})
    if not rows:
        return pd.DataFrame(columns=["training", "encoder", "scope", "part", "runs", "epochs per run", "s per epoch",
                                     "total s"])
    grouped = pd.DataFrame(rows).groupby(["training", "encoder", "scope", "part"], sort=False)
    return pd.DataFrame({"runs": grouped.size(), "epochs per run": grouped["epochs"].mean(),
                         "s per epoch": grouped["epoch_s"].mean(), "total s": grouped["total_s"].sum()}).reset_index()


def stage1_comparison(runs_dir: str | Path) -> pd.DataFrame:
    """The stage-1 encoders of all train (:data:`~vmhan_lib.config.ENCODER_VARIANT`, one per text
    encoder and recipe) side by side, from their records: the recipe (epochs, batch, lr), dev F1 after
    every epoch, the dev-selected epoch with its dev and test F1 (percent), seconds per epoch."""
    rows = []
    for _, record in iter_records(Path(runs_dir)):
        if record["variant"] != ENCODER_VARIANT:
            continue
        recipe = record["config"]["encoder_train"]
        epochs = record["epochs"]
        rows.append({"encoder": record_setting(record)[1], "epochs": recipe["epochs"], "batch": recipe["batch_size"],
                     "lr": recipe["lr"], "dev_f1_by_epoch": [round(100 * e["dev"]["f1"], 2) for e in epochs],
                     "best_epoch": record["best_epoch"], "dev_f1": 100 * record["dev"]["f1"],
                     "test_f1": 100 * record["test"]["f1"], "s_per_epoch": _seconds_per_epoch(record)})
    return pd.DataFrame(rows, columns=["encoder", "epochs", "batch", "lr", "dev_f1_by_epoch", "best_epoch", "dev_f1",
                                       "test_f1", "s_per_epoch"])


def stage1_sentence(table: pd.DataFrame, reference: str, candidate: str) -> str:
    """Whether ``candidate``'s stage 1 (:func:`stage1_comparison`, its best recipe on dev) beats
    ``reference``'s on dev F1, the test that decides whether its stage-2 rows are run."""
    best = {name: group.loc[group["dev_f1"].idxmax()] for name, group in table.groupby("encoder")}
    if reference not in best or candidate not in best:
        missing = [name for name in (reference, candidate) if name not in best]
        return f"No finished stage-1 run of {' or '.join(missing)} yet."
    ref, new = best[reference], best[candidate]
    verdict = ("above: its stage-2 rows are worth running" if new.dev_f1 > ref.dev_f1
               else "not above: its stage-2 rows are not run")
    return (f"{candidate}'s stage 1 reaches dev F1 {new.dev_f1:.2f} (epoch {new.best_epoch} of {new.epochs}, "
            f"{new.s_per_epoch / 60:.0f} min per epoch; test {new.test_f1:.2f}) against {reference}'s "
            f"{ref.dev_f1:.2f} (epoch {ref.best_epoch} of {ref.epochs}, {ref.s_per_epoch / 60:.0f} min; test "
            f"{ref.test_f1:.2f}): {verdict}.")


def tables_suffix(config: RunConfig) -> str:
    """The file-name suffix of the tables of ``config``'s setting: ``""`` for the default, else
    ``__<training>-<encoder>[-<scope>]`` (:func:`~vmhan_lib.train.jobs.setting_tag`), so the tables of other
    settings stand beside the default's."""
    tag = setting_tag(config)
    return "" if tag is None else f"__{tag}"


def settings_comparison(runs: pd.DataFrame, baseline: str = "Text-only") -> pd.DataFrame:
    """VM-HAN against ``baseline`` in every (training mode, text encoder, hypergraph scope) setting of
    ``runs`` (:func:`load_runs` without a setting) that has complete runs of VM-HAN and of the
    baseline, the baseline's own runs in that setting or, where it has none there, its pair-scope
    runs of the same training mode and encoder (``baseline_scope`` says which): test F1 mean ± std
    and seeds of each, the difference, the larger seed spread, and whether the difference exceeds
    it (``None`` while a side has a single seed)."""
    summaries = {setting: summarize(group) for setting, group in
                 runs.groupby(["training", "text_encoder", "scope"], sort=False)} if not runs.empty else {}
    rows = []
    for (training, encoder, scope), summary in summaries.items():
        base_scope = scope if baseline in summary.index else "pair"
        base = summaries.get((training, encoder, base_scope))
        if base is not None and (row := _against(summary, base, baseline)) is not None:
            rows.append({"training": training, "encoder": encoder, "scope": scope, **row, "baseline_scope": base_scope})
    return pd.DataFrame(rows)


def _against(summary: pd.DataFrame, base_summary: pd.DataFrame, baseline: str) -> dict[str, Any] | None:
    """A :func:`settings_comparison` row (less the setting) of VM-HAN in one setting's :func:`summarize`
    against ``baseline`` in ``base_summary``; None unless both have runs."""
    if FULL_MODEL not in summary.index or baseline not in base_summary.index:
        return None
    ours, base = summary.loc[FULL_MODEL], base_summary.loc[baseline]
    difference, spread, beyond = beyond_seed_spread(ours.f1, ours.f1_std, len(ours.seeds),
                                                    base.f1, base.f1_std, len(base.seeds))
    return {"vm_han_f1": ours.f1, "vm_han_f1_std": ours.f1_std, "vm_han_seeds": len(ours.seeds), "baseline": baseline,
            "baseline_f1": base.f1, "baseline_f1_std": base.f1_std, "baseline_seeds": len(base.seeds),
            "difference": difference, "spread": spread, "beyond_spread": beyond}


def _setting_name(row: Any) -> str:
    """``<training> with <encoder>``, then ``in sentence scope`` where that is the scope."""
    return f"{row.training} with {row.encoder}" + ("" if row.scope == "pair" else f" in {row.scope} scope")


def settings_sentence(table: pd.DataFrame) -> str:
    """Which settings, if any, have VM-HAN above the baseline by more than the seeds' spread, from
    the numbers of :func:`settings_comparison`."""
    if table.empty:
        return "No setting has complete runs of both VM-HAN and the text-only model yet."
    each = "; ".join(
        f"{_setting_name(r)}: {r.vm_han_f1:.2f} ± {r.vm_han_f1_std:.2f} ({r.vm_han_seeds} seeds) against "
        f"{r.baseline_f1:.2f} ± {r.baseline_f1_std:.2f} ({r.baseline_seeds}"
        + ("" if r.baseline_scope == r.scope else f", {r.baseline_scope} scope") + f"), {r.difference:+.2f}, "
        + (f"{'more than' if r.beyond_spread else 'within'} the spread {r.spread:.2f}" if r.beyond_spread is not None
           else "one seed on a side, no spread yet") for r in table.itertuples())
    compared = table[table["beyond_spread"].notna()]
    winners = [_setting_name(r) for r in compared.itertuples() if r.beyond_spread and r.difference > 0]
    baseline = table.baseline.iloc[0]
    if winners:
        verdict = f"VM-HAN beats {baseline} by more than the seeds' spread in: {', '.join(winners)}."
    elif compared.empty:
        verdict = f"No setting has two or more seeds of both VM-HAN and {baseline} yet."
    else:
        verdict = (f"In none of the {len(compared)} setting(s) with two or more seeds a side does VM-HAN beat "
                   f"{baseline} by more than the seeds' spread.")
    return f"{verdict} Test F1 per setting: {each}."


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (every cell as text)."""
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def write_table(table: pd.DataFrame, out_dir: str | Path, name: str, name_suffix: str = "") -> list[Path]:
    """Save one result table as ``<name><name_suffix>.csv`` and ``.md`` in ``out_dir``, together, and
    return both paths: the one writer of the tables, so that a setting's csv and markdown never
    disagree and another setting's (``name_suffix`` = :func:`tables_suffix`) never land over the default's."""
    paths = [Path(out_dir) / f"{name}{name_suffix}.{ext}" for ext in ("csv", "md")]
    atomic_write_text(paths[0], table.to_csv(index=False))
    atomic_write_text(paths[1], to_markdown(table))
    return paths


def write_tables(runs_dir: str | Path, out_dir: str | Path, table1_variants: tuple[str, ...],
                 table2_variants: tuple[str, ...], setting: tuple[str, str, str] | None = None,
                 more_runs_dir: str | Path | None = None, name_suffix: str = "") -> dict[str, pd.DataFrame]:
    """Build both tables from the run records (of ``setting``, see :func:`load_runs`; Table 2 only when
    VM-HAN has a complete run, e.g. not for a setting with its stage-1 encoder alone) and save each
    as CSV and markdown in ``out_dir`` (``<table><name_suffix>.csv``: the tables of other settings
    stand beside the default's, never over them); Table 1's MORE columns come from the records in
    ``more_runs_dir`` (default ``runs_dir/more``)."""
    runs = load_runs(runs_dir, setting)
    more_dir = Path(more_runs_dir) if more_runs_dir is not None else Path(runs_dir) / MORE_RUNS_FOLDER
    more_runs = load_runs(more_dir, setting)
    if runs.empty and more_runs.empty:
        of = "" if setting is None else f" of training {setting[0]!r} with encoder {setting[1]!r} in scope {setting[2]!r}"
        raise FileNotFoundError(f"no complete run records{of} under {Path(runs_dir).resolve()} (MNRE) or "
                                f"{more_dir.resolve()} (MORE); train first")
    tables = {"table1_main_results": table1(runs, table1_variants, more_runs)}
    if not runs.empty and FULL_MODEL in set(runs["variant"]):  # Table 2 is relative to VM-HAN; a stage-1 run alone makes Table 1 only
        tables["table2_ablations"] = table2(runs, table2_variants)
    for name, table in tables.items():
        write_table(table, out_dir, name, name_suffix)
    return tables


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def render_into_readme(readme: str | Path, tables: dict[str, pd.DataFrame], note: str) -> None:
    """Replace the README's results section (between the two markers) with ``tables`` as markdown,
    so the README shows what ``results/`` holds and nothing is retyped."""
    path = Path(readme)
    text = path.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise ValueError(f"{path} has no {README_START} ... {README_END} section")
    body = "\n".join([note, *(f"\n**{name}** (`results/{name}.md`)\n\n{to_markdown(table)}" for name, table in tables.items())])
    head, rest = text.split(README_START, 1)
    atomic_write_text(path, f"{head}{README_START}\n{body}\n{README_END}{rest.split(README_END, 1)[1]}")
