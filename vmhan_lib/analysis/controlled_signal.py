"""The controlled visual-signal study's results (issue 24; semi-synthetic inputs, never mixed with
the real runs): F1 against the strength s per model, where each model first beats Text-only beyond
the seeds' spread, the visual-shuffle drop at each s, V-HAN's attention on the node that carries the
signal, and a paragraph computed from the numbers.

The runs are those of :func:`vmhan_lib.train.signal_study.run_signal_study` (records in
``results/controlled_signal/``). Without a signal the image and object arms are the same inputs, so
the s = 0 runs of a model count for both arms.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from vmhan_lib.config import RunConfig
from vmhan_lib.evaluate.significance import beyond_seed_spread
from vmhan_lib.features.nodes import InstanceNodes
from vmhan_lib.hypergraph.batch import collate_hypergraphs
from vmhan_lib.identity import CODE_VERSIONS
from vmhan_lib.model.config import ModelConfig
from vmhan_lib.model.variants import variant_config
from vmhan_lib.train.jobs import SIGNAL_FOLDER, Job, RunPaths
from vmhan_lib.train.signal_study import BASELINE
from vmhan_lib.train.visual_signal import signal_rows, split_stream

SHUFFLE_FILE = "visual_shuffle.csv"
"""The study's visual-shuffle rows, in its runs folder (``results/controlled_signal/``)."""
ATTENTION_FILE = "attention.csv"
"""The study's V-HAN attention on the signal node (:func:`signal_attention`), beside the shuffle rows."""
SEPARATOR = " @ controlled signal "


def signal_scores(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per (run, arm): model, arm, s, seed, test scores (%), train subsample and epochs; an
    s = 0 run appears in both arms (same inputs) when the model has object-arm runs."""
    object_models = {r["variant"].split(SEPARATOR)[0] for r in records if r["config"]["visual_signal"]["arm"] == "object"}
    rows = []
    for record in records:
        signal, model = record["config"]["visual_signal"], record["variant"].split(SEPARATOR)[0]
        arms = ["image", "object"] if signal["strength"] == 0 and model in object_models else [signal["arm"]]
        scores = {m: 100 * record["test"][m] for m in ("accuracy", "precision", "recall", "f1")}
        rows += [{"model": model, "arm": arm, "s": signal["strength"], "seed": record["seed"], **scores,
                  "train_instances": signal["train_instances"], "epochs": record["config"]["run"]["train"]["epochs"]}
                 for arm in arms]
    return pd.DataFrame(rows)


def signal_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Test F1 mean, sd and seeds per (model, arm, s), in the order the models first appear."""
    summary = scores.groupby(["model", "arm", "s"], sort=False)["f1"].agg(f1="mean", f1_std="std", seeds="count")
    return summary.fillna({"f1_std": 0.0}).reset_index()


def smallest_beating_strength(summary: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Per (model, arm): the smallest s at which the model's mean F1 is above the baseline's (its
    s = 0 runs) by more than the larger of the two seed sds
    (:func:`~vmhan_lib.evaluate.significance.beyond_seed_spread`); NaN where it never is (or one seed)."""
    reference = summary[summary["model"] == baseline].iloc[0]
    rows = []
    for (model, arm), group in summary[summary["model"] != baseline].groupby(["model", "arm"], sort=False):
        beating = [row.s for row in group.sort_values("s").itertuples() if beyond_seed_spread(
            row.f1, row.f1_std, row.seeds, reference.f1, reference.f1_std, reference.seeds)[2] and row.f1 > reference.f1]
        rows.append({"model": model, "arm": arm, "smallest_s": beating[0] if beating else float("nan"),
                     "seeds": int(group["seeds"].min())})
    return pd.DataFrame(rows)


def signal_shuffle(config: RunConfig, jobs: Sequence[Job], permutations: int = 5) -> pd.DataFrame:
    """The visual-shuffle test (:mod:`vmhan_lib.analysis.visual_shuffle`) of every study run, on its
    signal-carrying test split: computed where the model is at hand, else read from
    ``controlled_signal/visual_shuffle.csv`` (:func:`~vmhan_lib.analysis.run_analyses.per_run_rows`);
    with the columns model, arm and s."""
    from vmhan_lib.analysis.run_analyses import per_run_rows
    from vmhan_lib.analysis.visual_shuffle import shuffle_rows

    seeds = tuple(range(permutations))
    path = RunPaths.of(config).runs.parent / SIGNAL_FOLDER / SHUFFLE_FILE
    return _with_signal_columns(per_run_rows([(config, jobs)], path, lambda c, js: shuffle_rows(c, js, seeds),
                                             {"permutations": permutations, "code": CODE_VERSIONS["visual-shuffle"]},
                                             "visual-shuffle test (controlled visual signal)"), jobs)


def _with_signal_columns(table: pd.DataFrame, jobs: Sequence[Job]) -> pd.DataFrame:
    """``table`` (one row per run of ``jobs``) with the columns model, arm and s of each run's signal."""
    signals = {job.name: job.signal for job in jobs}
    return table.assign(model=[n.split(SEPARATOR)[0] for n in table["variant"]],
                        arm=[signals[n].arm for n in table["variant"]], s=[signals[n].strength for n in table["variant"]])


def shuffle_summary(shuffle: pd.DataFrame) -> pd.DataFrame:
    """The visual-shuffle drop (points) per (model, arm, s): mean and sd over the seeds' runs."""
    return shuffle.groupby(["model", "arm", "s"], sort=False)["f1_drop"].agg(
        drop="mean", drop_std="std").fillna({"drop_std": 0.0}).reset_index()


def signal_paragraph(summary: pd.DataFrame, beating: pd.DataFrame, drops: pd.DataFrame,
                     attention: pd.DataFrame | None = None) -> str:
    """What the numbers say, computed from them: where each model first beats Text-only, how they
    stand at the largest s, whether VM-HAN's shuffle drop grows with s, and (``attention``,
    :func:`signal_attention`) how much of V-HAN's attention the signal node draws."""
    from vmhan_lib.model.variants import FULL_MODEL

    reference = summary[summary["model"] == BASELINE].iloc[0]
    lines = [f"Controlled visual signal (semi-synthetic): {BASELINE} scores {reference.f1:.2f} ± {reference.f1_std:.2f} F1."]
    for row in beating.itertuples():
        if row.smallest_s == 0:
            lines.append(f"{row.model} ({row.arm} arm) beats it beyond the seed spread already at s = 0 (no signal).")
        elif row.smallest_s == row.smallest_s:
            lines.append(f"{row.model} ({row.arm} arm) first beats it beyond the seed spread at s = {row.smallest_s:g}.")
        else:
            lines.append(f"{row.model} ({row.arm} arm) " + ("has one seed at some s: no spread to compare with there."
                                                           if row.seeds < 2 else "never beats it beyond the spread."))
    for arm, group in summary[summary["model"] != BASELINE].groupby("arm", sort=False):
        top = group[group["s"] == group["s"].max()].sort_values("f1", ascending=False)
        order = ", ".join(f"{r.model} {r.f1:.2f} ± {r.f1_std:.2f}" for r in top.itertuples())
        lines.append(f"At the largest s of the {arm} arm ({top['s'].iloc[0]:g}): {order}.")
    ours = drops[(drops["model"] == FULL_MODEL) & (drops["arm"] == "image")].sort_values("s")
    if len(ours) > 1:
        spread = max(float(ours["drop_std"].max()), 0.1)
        rises = float(ours["drop"].iloc[-1] - ours["drop"].iloc[0]) > spread
        steady = bool((ours["drop"].diff().dropna() >= -spread).all())
        steps = ", ".join(f"{r.drop:.2f} at s = {r.s:g}" for r in ours.itertuples())
        verdict = ("it grows with s" if steady else "it rises from the smallest to the largest s, not steadily") \
            if rises else "it does not grow with s beyond the spread"
        lines.append(f"{FULL_MODEL}'s visual-shuffle drop (image arm, points): {steps}; {verdict}.")
    if attention is not None and (attention["model"] == FULL_MODEL).any():
        ours = attention[attention["model"] == FULL_MODEL]
        means = ours.groupby(["arm", "s"], sort=True)[["attention_signal", "attention_other_visual"]].mean()
        lines.append(f"{FULL_MODEL}'s last-layer attention on the signal node, as a multiple of a uniform share (other "
                     "visual nodes in brackets): " + "; ".join(
                         f"{arm} s = {s:g}: {r.attention_signal:.2f} ({r.attention_other_visual:.2f})"
                         for (arm, s), r in zip(means.index, means.itertuples())) + ".")
    return " ".join(lines)


def study_results(config: RunConfig, permutations: int = 5) -> dict[str, Any] | None:
    """Everything notebook 07 shows of the study in ``config``'s profile (``None``: the profile has no
    study): the runs trained or read (:func:`~vmhan_lib.train.signal_study.run_signal_study`), their
    ``scores``, ``summary``, ``beating`` (smallest s beating Text-only), ``shuffle`` rows and
    ``drops``, V-HAN's ``attention`` on the signal node, and the ``paragraph`` computed from them."""
    from vmhan_lib.train.signal_study import STUDIES, run_signal_study, study_config, study_jobs

    study = STUDIES.get(config.profile)
    if study is None:
        return None
    jobs = study_jobs(study)
    records = run_signal_study(config, jobs)  # reads every recorded run; trains only missing ones
    scores = signal_scores(records)
    summary = signal_summary(scores)
    beating = smallest_beating_strength(summary)
    shuffle = signal_shuffle(study_config(config, study), jobs, permutations)
    drops = shuffle_summary(shuffle)
    attention = signal_attention(study_config(config, study), jobs)
    return {"study": study, "jobs": jobs, "records": records, "scores": scores, "summary": summary,
            "beating": beating, "shuffle": shuffle, "drops": drops, "attention": attention,
            "paragraph": signal_paragraph(summary, beating, drops, attention)}


def attention_on_signal(model: torch.nn.Module, config: ModelConfig, nodes: list[InstanceNodes],
                        rows: list[int | None], batch_size: int = 64) -> dict[str, float]:
    """V-HAN's last-layer Eq. 5 attention (hyperedge <- node) on the node carrying the signal, as a
    multiple of the uniform weight 1/|e| of each hyperedge e that holds it, averaged over heads, those
    hyperedges and the instances with a signal node (``rows[i]``: its visual row); the same for every
    other visual node. 1 = no preference; above 1 = the node draws more attention than its share."""
    on_signal, on_others = [], []
    model.eval()
    for start in range(0, len(nodes), batch_size):
        batch = collate_hypergraphs(nodes[start:start + batch_size], config.hypergraph)
        with torch.no_grad():
            weights = model(batch, return_attention=True).attention[-1].edge_from_nodes  # [B, K, E, N]
        incidence = batch.incidence > 0  # [B, N, E]
        ratio = weights.mean(dim=1) * incidence.sum(dim=1).unsqueeze(-1)  # [B, E, N]: alpha / (1 / |e|)
        n_text = batch.text_features.shape[1]
        for b, row in enumerate(rows[start:start + batch_size]):
            if row is None:
                continue
            visual = [n_text + r for r in range(int(batch.node_mask[b, n_text:].sum()))]
            for slot in visual:
                values = ratio[b, incidence[b, slot], slot].tolist()  # over the hyperedges holding the node
                (on_signal if slot == n_text + row else on_others).extend(values)
    return {"attention_signal": float(np.mean(on_signal)) if on_signal else float("nan"),
            "attention_other_visual": float(np.mean(on_others)) if on_others else float("nan")}


def attention_rows(config: RunConfig, jobs: Sequence[Job], instances: int) -> list[dict[str, float]]:
    """:func:`attention_on_signal` of every job's dev-selected V-HAN model on its first ``instances``
    signal-carrying test instances (the signal added as in its training)."""
    from vmhan_lib.train.checkpoints import checkpointed_test_splits

    rows = []
    for job, model, model_config, test in checkpointed_test_splits(config, jobs):
        nodes = test.nodes[:instances]
        rows.append(attention_on_signal(model, model_config, nodes,
                                        signal_rows(nodes, job.signal.arm, split_stream(job.seed, "test"))))
    return rows


def signal_attention(config: RunConfig, jobs: Sequence[Job], instances: int = 300) -> pd.DataFrame:
    """:func:`attention_rows` of the V-HAN runs among ``jobs``, computed where the model is at hand,
    else read from ``controlled_signal/attention.csv``; with the columns model, arm and s."""
    from vmhan_lib.analysis.run_analyses import per_run_rows

    vhan = [job for job in jobs if variant_config(job.variant).encoder == "vhan"]
    path = RunPaths.of(config).runs.parent / SIGNAL_FOLDER / ATTENTION_FILE
    return _with_signal_columns(per_run_rows([(config, vhan)], path, lambda c, js: attention_rows(c, js, instances),
                                             {"instances": instances, "code": CODE_VERSIONS["signal-attention"]},
                                             "signal attention"), vhan)
