"""`perf-pipeline report [--portfolio ID ...] [--as-of DATE] [--out DIR] [--pdf] [--force]`.

Materializes the portfolio_reports asset through Dagster (so the UI shows the run, its
summary and the index's location), rebuilding the reports of the portfolios whose figures
changed, and prints where the index is. Exit status: 0 done, 1 the run failed, 2 bad
arguments (as `perf-pipeline run`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date written YYYY-MM-DD: {text!r}") from None


def add_report_command(commands: Any) -> None:
    """Add `report` to the CLI's subcommands (an argparse subparsers object)."""
    report = commands.add_parser(
        "report", help="write the reports of the portfolios whose figures changed, and the index"
    )
    report.add_argument(
        "--portfolio",
        action="append",
        default=[],
        metavar="ID",
        help="only this portfolio (repeat)",
    )
    report.add_argument("--as-of", type=_date, help="report as of this date (default: latest)")
    report.add_argument(
        "--out", help="folder or s3://bucket/prefix (default: 'reports' beside the store)"
    )
    report.add_argument("--pdf", action="store_true", help="also print each report to PDF")
    report.add_argument("--force", action="store_true", help="rebuild unchanged reports too")
    report.add_argument("--store", help="DuckDB file of the local target (PERF_STORE)")
    report.add_argument("--target", choices=("local", "aws"), help="PERF_TARGET (default local)")


def run_report(args: argparse.Namespace) -> int:
    """Run the reports job in this process and print what it wrote."""
    for option, variable in (("store", "PERF_STORE"), ("target", "PERF_TARGET")):
        if getattr(args, option):
            os.environ[variable] = getattr(args, option)
    from dagster import DagsterInstance

    from perf_pipeline.assets.reports import REPORTS_JOB
    from perf_pipeline.definitions import build_definitions

    try:
        defs = build_definitions(os.environ.get("PERF_TARGET", "local"))
    except (ValueError, NotImplementedError) as error:
        print(f"perf-pipeline: {error}", file=sys.stderr)
        return EXIT_USAGE
    config = {
        "location": args.out or "",
        "portfolio_ids": list(args.portfolio),
        "as_of": args.as_of or "",
        "pdf": bool(args.pdf),
        "force": bool(args.force),
    }
    home = os.environ.get("DAGSTER_HOME")
    instance = DagsterInstance.get() if home else DagsterInstance.ephemeral()
    result = defs.resolve_job_def(REPORTS_JOB).execute_in_process(
        run_config={
            "ops": {"portfolio_reports": {"config": config}},
            "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        },
        instance=instance,
        raise_on_error=False,
    )
    if not result.success:
        from perf_pipeline.cli import failure_lines

        for line in failure_lines(result):
            print(line, file=sys.stderr)
        return EXIT_FAILED
    metadata = result.asset_materializations_for_node("portfolio_reports")[0].metadata
    rebuilt, unchanged = metadata["rebuilt"].value, metadata["unchanged"].value
    print(
        f"perf-pipeline: wrote {rebuilt} report(s) of {rebuilt + unchanged} portfolio(s) "
        f"({unchanged} unchanged); index: {metadata['index'].value}"
    )
    return EXIT_OK
