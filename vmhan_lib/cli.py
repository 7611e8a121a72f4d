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
    from vmhan_lib.workbook import NotebookFailed, reproduce

    try:
        reproduce(args.profile, args.data_dir, args.start_from)
    except NotebookFailed as err:
        print(f"reproduction stopped: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
