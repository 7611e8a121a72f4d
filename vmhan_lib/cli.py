"""Command line: ``python -m vmhan_lib {config,stats,download,train,tables,reproduce,case-study}``.

Every command that builds the run configuration takes ``--profile`` and any number of ``--set
name=value`` (a dotted field, e.g. ``--set train.epochs=20``; ``config --fields`` lists them all).
Every other flag that sets a field is a shorthand for its ``--set``, all in one table,
:data:`SHORTHANDS` (each command's help lists its own); a shorthand beats a ``--set`` of its field.
A user error (a bad value, a missing data directory, a malformed data line) prints one line and
exits 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import argparse
import json
import sys
from typing import Callable, Sequence

from vmhan_lib.config_tree import ConfigError, field_names, parse_assignments, to_dict
from vmhan_lib.data.mnre import DataFormatError
from vmhan_lib.model.variants import VARIANTS, check_variants
from vmhan_lib.paths import PROFILES

SET_HELP = ("set a field of the run configuration by its dotted name, e.g. --set train.epochs=20 --set "
            "experiment.training=joint (repeatable; `config --fields` lists every field)")
USER_ERRORS = (ConfigError, DataFormatError, FileNotFoundError)
CONFIG_COMMANDS: tuple[str, ...] = ("config", "stats", "train", "tables", "reproduce", "case-study")
STATS_ASIDE = "data_statistics"  # stats of another data directory: <results>/data_statistics/<its folder name>/


@dataclass(frozen=True)
class Shorthand:
    """A flag that is ``--set field=VALUE`` (``--flag VALUE``), or ``--set field=value`` (a switch)."""

    field: str
    help: str
    metavar: str = "VALUE"
    value: str | None = None
    commands: tuple[str, ...] = ("train", "reproduce")


SHORTHANDS: dict[str, Shorthand] = {
    "--data-dir": Shorthand("data.data_dir", "MNRE directory (default: $VMHAN_DATA, else data/mnre)", "DIR",
                            commands=CONFIG_COMMANDS),
    "--executor": Shorthand("experiment.executor", "where runs execute: local (default) or ray", "local|ray"),
    "--address": Shorthand("experiment.ray_address", "Ray cluster: auto (`ray start` here) or the head's "
                           "HOST:PORT; default: a Ray instance started for the sweep", "auto|HOST:PORT"),
    "--max-parallel": Shorthand("experiment.max_parallel", "at most N runs at once (local: N worker processes here; Ray: in flight)", "N"),
    "--retrain-stale": Shorthand("experiment.stale_runs", "train again finished runs made from other data or "
                                 "settings (default: stop, naming what differs)", value="retrain"),
}  # every flag that sets a configuration field, with its field: the one place flags meet fields
RAY_ONLY: tuple[str, ...] = ("--address",)  # its field needs --executor ray (flag or --set)


SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "config": ("print the run configuration of a profile (JSON), with --set applied",
               "Print the whole run configuration tree of a profile as JSON, after --set; --fields lists every "
               "settable dotted field instead. Writes nothing."),
    "stats": ("MNRE statistics to the profile's results/ and figures/",
              "Compute the statistics of every MNRE split; writes data_statistics.json and two figures under the "
              "profile's results/ and figures/ folders (committed files for cpu, results/tiny/ for tiny); those of "
              "a data directory other than the default one ($VMHAN_DATA, else data/mnre) go to their "
              "data_statistics/<its folder name>/, never over the committed files."),
    "download": ("fetch the MNRE files from their public sources, verify sha256",
                 "Fetch every MNRE file of the manifest into the data directory and verify its sha256; files that "
                 "already match are kept (resumable)."),
    "train": ("run the Table 1 / Table 2 experiments of a profile (resumable)",
              "Train (or reuse, when complete) every run of the chosen rows; writes run records under results/runs/ "
              "(results/tiny/runs/ for tiny), checkpoints under results/checkpoints/, then the tables as `tables` "
              "does. --variants 'Text-only (fine-tuned encoder)' trains stage 1 alone (two-stage and out-of-fold; in "
              "this process, no tables), printing its dev F1 per epoch.\n\nvariants: " + "; ".join(VARIANTS)),
    "tables": ("build Tables 1 and 2 from the run records of a profile",
               "Build Tables 1 and 2 from the profile's run records; writes table1_main_results.{csv,md} and "
               "table2_ablations.{csv,md} under the profile's results folder (a non-default training mode or encoder: "
               "table1_main_results__<setting>.{csv,md}, beside them); --readme also renders them into README.md."),
    "reproduce": ("run every notebook with papermill, in order",
                  "Execute the numbered notebooks in order with papermill, passing the profile, data directory and "
                  "--set fields; executed copies go to results/executed/<profile>/."),
    "case-study": ("write the case-study bundle of one run (notebook 08 starts from it)",
                   "Write one run's dev-selected model and the node features of its first 100 test instances to "
                   "results/case_study/<run id>.pt (results/tiny/case_study/ for tiny; the cpu headline run's is "
                   "committed), training the run's checkpoint first when it is missing."),
}


def _shorthands_of(command: str) -> dict[str, Shorthand]:
    return {flag: shorthand for flag, shorthand in SHORTHANDS.items() if command in shorthand.commands}


def _add_config_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """``--profile``, ``--set`` and the shorthands of ``command``, each helped with the ``--set`` it is."""
    parser.add_argument("--profile", choices=PROFILES, default=None, help="default: $VMHAN_PROFILE, else cpu")
    parser.add_argument("--set", dest="assignments", action="append", metavar="NAME=VALUE", help=SET_HELP)
    for flag, shorthand in _shorthands_of(command).items():
        kind = {"action": "store_true"} if shorthand.value is not None else {"metavar": shorthand.metavar}
        parser.add_argument(flag, **kind, help=f"{shorthand.help} (= --set {shorthand.field}="
                                               f"{shorthand.value or shorthand.metavar})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vmhan_lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {}
    for name, (short, long) in SUBCOMMANDS.items():
        commands[name] = sub.add_parser(name, help=short, description=long,
                                        formatter_class=argparse.RawDescriptionHelpFormatter)
        if name in CONFIG_COMMANDS:
            _add_config_arguments(commands[name], name)
    commands["download"].add_argument("--data-dir", help="where MNRE goes (default: $VMHAN_DATA, else data/mnre)")
    commands["config"].add_argument("--fields", action="store_true", help="list every settable field name")
    commands["train"].add_argument("--variants", nargs="+", metavar="NAME",
                                   help="rows to run (default: experiment.variants, every row of both tables); "
                                        "'Text-only (fine-tuned encoder)' alone: stage 1 only")
    commands["tables"].add_argument("--readme", action="store_true",
                                    help="also render the tables into README.md (cpu profile)")
    commands["reproduce"].add_argument("--from", dest="start_from", type=int, help="resume from notebook NN")
    commands["case-study"].add_argument("--variant", default="VM-HAN (Ours)", help="the run's row (default VM-HAN (Ours))")
    commands["case-study"].add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except USER_ERRORS as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished runs and the last completed epoch of the current run are kept: "
              "rerun the same command to resume", file=sys.stderr)
        return 130


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    """``--set`` assignments, then the assignment of every shorthand given (:data:`SHORTHANDS`)."""
    overrides = parse_assignments(args.assignments)
    for flag, shorthand in _shorthands_of(args.command).items():
        given = getattr(args, flag[2:].replace("-", "_"))
        if given not in (None, False):
            overrides[shorthand.field] = shorthand.value or given
    return overrides


def _config(args: argparse.Namespace):
    from vmhan_lib.config import run_config

    overrides = _overrides(args)
    config = run_config(args.profile, None, overrides)
    given = [flag for flag in RAY_ONLY if SHORTHANDS[flag].field in overrides]
    if given and config.experiment.executor != "ray":
        raise ConfigError(f"{' and '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to the ray executor; "
                          "add --executor ray")
    return config


def _show_config(args: argparse.Namespace) -> int:
    from vmhan_lib.config import RunConfig

    config = _config(args)  # checks every --set, also with --fields
    print("\n".join(field_names(RunConfig)) if args.fields else json.dumps(to_dict(config), indent=2))
    return 0


def _stats(args: argparse.Namespace) -> int:
    from vmhan_lib.analysis.data_report import STATISTICS_FILE, write_data_report
    from vmhan_lib.paths import output_dirs, resolve_data_dir

    config = _config(args)
    results_dir, figures_dir = output_dirs(config.profile)
    if config.data.path != resolve_data_dir():  # another data directory: beside the committed statistics
        results_dir, figures_dir = (d / STATS_ASIDE / config.data.path.name for d in (results_dir, figures_dir))
    record = write_data_report(config.data, results_dir, figures_dir)
    for split, numbers in record["statistics"]["splits"].items():
        print(f"{split}: {numbers['instances']} instances, {numbers['images']} images, "
              f"None {100 * numbers['none_share']:.1f} %")
    print(f"wrote {results_dir / STATISTICS_FILE} and figures in {figures_dir}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from vmhan_lib.data.download import DownloadError, download
    from vmhan_lib.paths import resolve_data_dir

    target = resolve_data_dir(args.data_dir)
    try:
        status = download(target.parent)
    except DownloadError as err:
        print(f"download failed: {err}", file=sys.stderr)
        return 2
    print(f"{sum(s == 'ok' for s in status.values())}/{len(status)} files verified under {target}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from vmhan_lib.config import ENCODER_VARIANT
    from vmhan_lib.train.jobs import table_jobs
    from vmhan_lib.train.ray_executor import SweepFailed
    from vmhan_lib.train.runner import run_jobs
    from vmhan_lib.train.stage1 import train_stage1

    config, variants = _config(args), args.variants
    if variants is not None and ENCODER_VARIANT in variants:  # the stage-1 row alone: no features, no stage 2
        others = [name for name in variants if name != ENCODER_VARIANT]
        if others:
            check_variants(others)  # a misspelt name is named first
            raise ConfigError(f"{ENCODER_VARIANT!r} trains stage 1 alone; run the other variants in another "
                              "`train` command (they train stage 1 first anyway)")
        if config.experiment.executor != "local":
            raise ConfigError(f"{ENCODER_VARIANT!r} trains in this process (one run, or k + 1 for out-of-fold); "
                              "drop --executor ray")
        for record in train_stage1(config):
            per_epoch = ", ".join(f"{100 * e['dev']['f1']:.2f}" for e in record["epochs"])
            print(f"{record['run_id']}: dev F1 by epoch {per_epoch}; best epoch {record['best_epoch']}: "
                  f"dev {100 * record['dev']['f1']:.2f}, test {100 * record['test']['f1']:.2f}")
        return 0
    try:
        records = run_jobs(config, table_jobs(config, check_variants(variants) if variants is not None else None))
    except SweepFailed as err:
        print(f"sweep incomplete: {err}", file=sys.stderr)
        return 1
    print(f"{len(records)} runs complete")
    return _tables(args)


def _tables(args: argparse.Namespace) -> int:
    from vmhan_lib.analysis.tables import headline_gap, load_runs, render_into_readme, tables_suffix, to_markdown
    from vmhan_lib.analysis.tables import write_tables
    from vmhan_lib.config import ENCODER_VARIANT
    from vmhan_lib.model.variants import TABLE1_VARIANTS, TABLE2_VARIANTS
    from vmhan_lib.paths import REPO_ROOT, output_dirs, runs_dir
    from vmhan_lib.train.jobs import MORE_RUNS_FOLDER, inputs_folder

    config = _config(args)
    mnre = replace(config, data=replace(config.data, dataset="mnre"))  # MNRE columns: the runs of these visual inputs
    runs = runs_dir(config.profile) / inputs_folder(mnre)
    folder = inputs_folder(config)  # other visual inputs and MORE: their tables beside the committed ones
    suffix = tables_suffix(config) + (f"__{folder}" if folder else "")
    if getattr(args, "readme", False) and (config.profile != "cpu" or suffix):
        raise ConfigError("--readme renders the committed cpu results of the default setting only; use --profile "
                          "cpu without --set experiment.training / features.text.model / features.visual_source / data.dataset / model.hypergraph.scope")
    built = write_tables(runs, output_dirs(config.profile)[0], (*TABLE1_VARIANTS, ENCODER_VARIANT), TABLE2_VARIANTS,
                         config.setting, more_runs_dir=runs_dir(config.profile) / MORE_RUNS_FOLDER, name_suffix=suffix)
    for name, table in built.items():
        print(f"\n{name}\n{to_markdown(table)}")
    if getattr(args, "readme", False):
        render_into_readme(REPO_ROOT / "README.md", built, (
            f"Profile `cpu`, MNRE-2 test set; built by `python -m vmhan_lib tables --profile cpu --readme` from "
            f"`results/runs/` ({len(load_runs(runs, config.setting))} complete runs).\n\n"
            f"{headline_gap(load_runs(runs, config.setting))}"))
        print(f"rendered the tables into {REPO_ROOT / 'README.md'}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from vmhan_lib.workbook import NotebookFailed, reproduce

    config = _config(args)  # a bad --set fails here, before any notebook runs
    overrides = {name: value for name, value in _overrides(args).items() if name != "data.data_dir"}
    try:  # the data directory reaches the notebooks as their data_dir parameter, resolved from here
        reproduce(config.profile, config.data.data_dir, args.start_from, overrides=overrides)
    except NotebookFailed as err:
        print(f"reproduction stopped: {err}", file=sys.stderr)
        return 1
    return 0


def _case_study(args: argparse.Namespace) -> int:
    from vmhan_lib.train.case_study_bundle import write_bundle
    from vmhan_lib.train.checkpoints import ensure_best_checkpoint
    from vmhan_lib.train.jobs import Job

    config = _config(args)
    job = Job(args.variant, args.seed)
    path = write_bundle(config, job, ensure_best_checkpoint(config, job, train_if_missing=True))
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "config": _show_config, "stats": _stats, "download": _download, "train": _train, "tables": _tables,
    "reproduce": _reproduce, "case-study": _case_study,
}


if __name__ == "__main__":
    raise SystemExit(main())
