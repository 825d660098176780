"""`perf-pipeline`: run the pipeline through Dagster, or write a sample input set.

Exit status of `run`: 0 done, 1 the run failed, 2 bad arguments (interfaces.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
TARGET_VARIABLES = {"input": "PERF_INPUT", "store": "PERF_STORE", "target": "PERF_TARGET"}


def iso_date(text: str) -> str:
    """argparse type: a real calendar date written YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date written YYYY-MM-DD: {text!r}") from None


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="perf-pipeline", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="materialize everything the input needs, up to --as-of")
    run.add_argument("--input", help="input root: a folder or s3://bucket/prefix (PERF_INPUT)")
    run.add_argument("--store", help="DuckDB file of the local target (PERF_STORE)")
    run.add_argument("--target", choices=("local", "aws"), help="PERF_TARGET (default local)")
    run.add_argument("--as-of", type=iso_date, help="value up to this date (default: latest)")
    init = commands.add_parser(
        "aws-init", help="create the bucket, table, Timestream table and queue (dev or emulator)")
    init.add_argument("--bucket", help="input bucket (default: the bucket of PERF_INPUT)")
    init.add_argument("--queue", default="perf-pipeline-requests", help="SQS queue name")
    init.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION)")
    gen = commands.add_parser("generate", help="write a deterministic sample input set")
    gen.add_argument("--out", default="data/input", help="input root (default %(default)s)")
    gen.add_argument("--portfolios", type=int, default=4)
    gen.add_argument("--years", type=float, default=3)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--format", choices=("csv", "parquet"), default="csv")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "generate":
        return generate(args)
    if args.command == "aws-init":
        return aws_init(args)
    return run(args)


def aws_init(args: argparse.Namespace) -> int:
    """Create every AWS resource the aws target uses, named by the same variables it reads."""
    from perf_pipeline.resources.aws_setup import create_dev_resources
    from perf_pipeline.resources.deployments import DEFAULTS

    def named(variable: str) -> str:
        return os.environ.get(variable) or DEFAULTS[variable]

    root = os.environ.get("PERF_INPUT", "")
    bucket = args.bucket or (root[len("s3://"):].split("/")[0] if root.startswith("s3://")
                             else None)
    if not bucket:
        print("perf-pipeline: give --bucket or set PERF_INPUT=s3://bucket/prefix",
              file=sys.stderr)
        return EXIT_USAGE
    region = (args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
              or "us-east-1")
    created = create_dev_resources(
        bucket=bucket, table=named("PERF_DYNAMODB_TABLE"),
        timestream_database=named("PERF_TIMESTREAM_DATABASE"),
        timestream_table=named("PERF_TIMESTREAM_TABLE"), queue_name=args.queue, region=region,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
    )
    for name, value in created.items():
        print(f"{name:24} {value}")
    return EXIT_OK


def generate(args: argparse.Namespace) -> int:
    from perf_pipeline.sample_data import generate as write_sample

    counts = write_sample(args.out, portfolios=args.portfolios, years=args.years,
                          seed=args.seed, fmt=args.format)
    print(f"wrote sample input to {args.out}: "
          + ", ".join(f"{n:,} {kind}" for kind, n in counts.items()))
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    for option, variable in TARGET_VARIABLES.items():
        if getattr(args, option):
            os.environ[variable] = getattr(args, option)
    root = os.environ.get("PERF_INPUT", "data/input")
    if not root.startswith("s3://") and not Path(root).is_dir():
        print(f"perf-pipeline: input root {root!r} is not a folder", file=sys.stderr)
        return EXIT_USAGE

    from dagster import DagsterInstance

    from perf_pipeline.definitions import PERFORMANCE_JOB, build_definitions

    try:
        defs = build_definitions(os.environ.get("PERF_TARGET", "local"))
    except (ValueError, NotImplementedError) as error:
        print(f"perf-pipeline: {error}", file=sys.stderr)
        return EXIT_USAGE
    run_config = {
        "resources": {"run_request": {"config": {"as_of": args.as_of}}},
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
    }
    home = os.environ.get("DAGSTER_HOME")
    if home:
        Path(home).mkdir(parents=True, exist_ok=True)
    instance = DagsterInstance.get() if home else DagsterInstance.ephemeral()
    result = defs.resolve_job_def(PERFORMANCE_JOB).execute_in_process(
        run_config=run_config, instance=instance, raise_on_error=False)
    if not result.success:
        print_failure(result)
        return EXIT_FAILED
    print(summary(result))
    return EXIT_OK


def print_failure(result) -> None:
    print(f"perf-pipeline: run {result.run_id} failed", file=sys.stderr)
    for event in result.all_events:
        if event.is_failure or event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if event.is_failure:
                print(f"  {event.step_key}: {event.message}", file=sys.stderr)
            elif not data.passed:
                print(f"  check {data.check_name} on {data.asset_key.to_user_string()} failed",
                      file=sys.stderr)


def summary(result) -> str:
    """Entities, rows accepted and rejected, and the ITD TWR of each portfolio."""
    from perf_pipeline.assets.performance import latest_itd

    files = result.output_for_node("inputs", "input_files")
    daily = result.output_for_node("valuations", "daily_valuations")
    metrics = result.output_for_node("performance_metrics")
    kinds = daily.drop_duplicates(["entity_type", "entity_id"])["entity_type"].value_counts()
    lines = [
        f"perf-pipeline: run {result.run_id} succeeded",
        f"  files read: {len(files):,} ({int((files['status'] != 'ok').sum()):,} rejected whole)",
        f"  rows accepted: {int(files['rows_accepted'].sum()):,}, rejected: "
        f"{int(files['rows_rejected'].sum()):,}",
        f"  entities: {int(kinds.sum()):,} ({int(kinds.get('portfolio', 0))} portfolios, "
        f"{int(kinds.get('account', 0))} accounts, {int(kinds.get('security', 0))} positions)",
    ]
    latest = latest_itd(metrics)
    if not latest.empty:
        lines.append("  ITD TWR per portfolio:")
    for row in latest.itertuples():
        annual = "" if pd.isna(row.twr_annualized) else (
            f"  ({row.twr_annualized:+.2%} a year)")
        lines.append(f"    {row.entity_id:<12} {row.start_date:%Y-%m-%d} .. "
                     f"{row.end_date:%Y-%m-%d}  {row.twr:+.2%}{annual}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
