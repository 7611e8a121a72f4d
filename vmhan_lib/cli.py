"""Command line: ``python -m vmhan_lib {stats,download,reproduce}``."""

from __future__ import annotations

import argparse
import sys

from vmhan_lib.config import PROFILES, DataConfig, resolve_data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vmhan", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    stats = sub.add_parser("stats", help="MNRE statistics to results/ and figures/")
    stats.add_argument("--data-dir", default=None, help="MNRE directory (default: $VMHAN_DATA, else data/mnre)")
    down = sub.add_parser("download", help="fetch the MNRE files from their public sources, verify sha256")
    down.add_argument("--data-dir", default=None, help="target MNRE directory (default: $VMHAN_DATA, else data/mnre)")
    train = sub.add_parser("train", help="run the Table 1 / Table 2 experiments of a profile (resumable)")
    train.add_argument("--profile", choices=PROFILES, default=None, help="default: $VMHAN_PROFILE, else cpu")
    train.add_argument("--data-dir", default=None)
    train.add_argument("--variants", nargs="*", default=None, help="rows to run (default: all of both tables)")
    tables = sub.add_parser("tables", help="build Tables 1 and 2 from the run records of a profile")
    tables.add_argument("--profile", choices=PROFILES, default=None)
    repro = sub.add_parser("reproduce", help="run every notebook with papermill, in order")
    repro.add_argument("--profile", choices=PROFILES, default=None, help="default: $VMHAN_PROFILE, else cpu")
    repro.add_argument("--data-dir", default=None)
    repro.add_argument("--from", dest="start_from", type=int, default=None, help="resume from notebook NN")
    args = parser.parse_args(argv)

    if args.command == "stats":
        from vmhan_lib.analysis.data_report import write_data_report

        record = write_data_report(DataConfig(data_dir=args.data_dir))
        for split, numbers in record["statistics"]["splits"].items():
            print(f"{split}: {numbers['instances']} instances, {numbers['images']} images, "
                  f"None {100 * numbers['none_share']:.1f} %")
        return 0
    if args.command == "download":
        from vmhan_lib.data.download import DownloadError, download

        target = resolve_data_dir(args.data_dir)
        try:
            status = download(target.parent)
        except DownloadError as err:
            print(f"download failed: {err}", file=sys.stderr)
            return 2
        print(f"{sum(s == 'ok' for s in status.values())}/{len(status)} files verified under {target}")
        return 0
    if args.command in ("train", "tables"):
        from vmhan_lib.analysis.tables import headline_gap, load_runs, render_into_readme, to_markdown, write_tables
        from vmhan_lib.config import REPO_ROOT, output_dirs
        from vmhan_lib.model.variants import TABLE2_VARIANTS
        from vmhan_lib.train.experiment import TABLE1_VARIANTS, experiment_plan, run_experiments

        plan = experiment_plan(args.profile, getattr(args, "data_dir", None))
        if args.command == "train":
            unknown = sorted(set(args.variants or ()) - set(plan.variants))
            if unknown:
                parser.error(f"unknown variant(s) {unknown}; allowed: {', '.join(plan.variants)}")
            run_experiments(plan, args.variants)
        built = write_tables(plan.runs_dir, output_dirs(plan.profile)[0],
                             (*TABLE1_VARIANTS, "Text-only (fine-tuned encoder)"), TABLE2_VARIANTS)
        for name, table in built.items():
            print(f"\n{name}\n{to_markdown(table)}")
        if plan.profile == "cpu":
            runs = load_runs(plan.runs_dir)
            render_into_readme(REPO_ROOT / "README.md", built, (
                f"Profile `cpu`, MNRE-2 test set; built by `python -m vmhan_lib tables --profile cpu` from "
                f"`results/runs/` ({len(runs)} complete runs).\n\n{headline_gap(runs)}"))
        return 0
    from vmhan_lib.workbook import NotebookFailed, reproduce

    try:
        reproduce(args.profile, args.data_dir, args.start_from)
    except NotebookFailed as err:
        print(f"reproduction stopped: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
