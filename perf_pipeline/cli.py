"""`perf-pipeline`: run the pipeline through Dagster, or write a sample input set.

Exit status of `run`: 0 done, 1 the run failed, 2 bad arguments (docs/api.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from perf_pipeline.report.command import add_report_command, run_report

if TYPE_CHECKING:
    from dagster import DagsterInstance
    from dagster._core.execution.job_execution_result import JobExecutionResult

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
TARGET_VARIABLES = {"input": "PERF_INPUT", "store": "PERF_STORE", "target": "PERF_TARGET"}


def iso_date(text: str) -> str:
    """argparse type: a real calendar date written YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date written YYYY-MM-DD: {text!r}") from None


def positive(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of at least 1: {text!r}")
    return int(text)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="perf-pipeline", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="materialize everything the input needs, up to --as-of")
    run.add_argument("--input", help="input root: a folder or s3://bucket/prefix (PERF_INPUT)")
    run.add_argument("--store", help="DuckDB file of the local target (PERF_STORE)")
    run.add_argument("--target", choices=("local", "aws"), help="PERF_TARGET (default local)")
    run.add_argument("--as-of", type=iso_date, help="value up to this date (default: latest)")
    run.add_argument(
        "--workers",
        type=positive,
        default=1,
        help="steps run side by side by Dagster's multiprocess executor (default 1: "
        "the in-process executor)",
    )
    init = commands.add_parser(
        "aws-init", help="create the bucket, table, Timestream table and queue (dev or emulator)"
    )
    init.add_argument("--bucket", help="input bucket (default: the bucket of PERF_INPUT)")
    init.add_argument("--queue", default="perf-pipeline-requests", help="SQS queue name")
    init.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION)")
    gen = commands.add_parser("generate", help="write a deterministic sample input set")
    gen.add_argument("--out", default="data/input", help="input root (default %(default)s)")
    gen.add_argument("--portfolios", type=int, default=4)
    gen.add_argument("--years", type=float, default=3)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--format", choices=("csv", "parquet"), default="csv")
    gen.add_argument(
        "--fx-portfolios",
        type=int,
        default=3,
        help="multi-currency portfolios (EUR, EUR, GBP, ...) after the USD ones "
        "(default %(default)s; 0: USD only, no fx_rates)",
    )
    add_report_command(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "generate":
        return generate(args)
    if args.command == "aws-init":
        return aws_init(args)
    if args.command == "report":
        return run_report(args)
    return run(args)


def aws_init(args: argparse.Namespace) -> int:
    """Create every AWS resource the aws target uses, named by the same variables it reads."""
    from perf_pipeline.resources.aws_setup import create_dev_resources
    from perf_pipeline.resources.deployments import DEFAULTS

    def named(variable: str) -> str:
        return os.environ.get(variable) or DEFAULTS[variable]

    root = os.environ.get("PERF_INPUT", "")
    bucket = args.bucket or (
        root[len("s3://") :].split("/")[0] if root.startswith("s3://") else None
    )
    if not bucket:
        print("perf-pipeline: give --bucket or set PERF_INPUT=s3://bucket/prefix", file=sys.stderr)
        return EXIT_USAGE
    region = (
        args.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    created = create_dev_resources(
        bucket=bucket,
        table=named("PERF_DYNAMODB_TABLE"),
        timestream_database=named("PERF_TIMESTREAM_DATABASE"),
        timestream_table=named("PERF_TIMESTREAM_TABLE"),
        queue_name=args.queue,
        region=region,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
    )
    for name, value in created.items():
        print(f"{name:24} {value}")
    return EXIT_OK


def generate(args: argparse.Namespace) -> int:
    from perf_pipeline.sample_data import generate as write_sample

    counts = write_sample(
        args.out,
        portfolios=args.portfolios,
        years=args.years,
        seed=args.seed,
        fmt=args.format,
        fx_portfolios=args.fx_portfolios,
    )
    print(
        f"wrote sample input to {args.out}: "
        + ", ".join(f"{n:,} {kind}" for kind, n in counts.items())
    )
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """Materialize the inputs, then every stale partition up to the as-of date: one ranged
    run per set of shards with the same stale range, its shard chunks run by Dagster's
    executor (`--workers` side by side)."""
    for option, variable in TARGET_VARIABLES.items():
        if getattr(args, option):
            os.environ[variable] = getattr(args, option)
    root = os.environ.get("PERF_INPUT", "data/input")
    if not root.startswith("s3://") and not Path(root).is_dir():
        print(f"perf-pipeline: input root {root!r} is not a folder", file=sys.stderr)
        return EXIT_USAGE

    from perf_pipeline.definitions import INPUTS_JOB, build_definitions
    from perf_pipeline.job_runs import execute
    from perf_pipeline.partitions import extend_months
    from perf_pipeline.planning import PlanError, default_as_of, plan
    from perf_pipeline.sensors.stale_partitions import PLANNER_TAG, read_input_table

    target = os.environ.get("PERF_TARGET", "local")
    try:
        defs = build_definitions(target)
    except (ValueError, NotImplementedError) as error:
        print(f"perf-pipeline: {error}", file=sys.stderr)
        return EXIT_USAGE
    with _instance() as instance:
        result = execute(instance, INPUTS_JOB, tags={PLANNER_TAG: "cli"})
        if not result.success:
            print_failure(result)
            return EXIT_FAILED
        io_manager = defs.resources["io_manager"].process_config_and_initialize()
        inputs = {
            name: read_input_table(io_manager, name)
            for name in ("input_files", "input_digests", "transactions", "prices")
        }
        as_of = (
            pd.Timestamp(args.as_of)
            if args.as_of
            else default_as_of(inputs["transactions"], inputs["prices"])
        )
        store = defs.resources["partition_store"].process_config_and_initialize()
        try:
            runs = plan(inputs["input_digests"], store, as_of) if as_of is not None else []
        except PlanError as error:
            print(f"perf-pipeline: {error}", file=sys.stderr)
            return EXIT_USAGE
        extend_months(instance, runs)
        results = _execute(instance, runs, args.workers)
        failed = [line for each in results if not each.success for line in failure_lines(each)]
        if failed:
            for message in failed:
                print(message, file=sys.stderr)
            return EXIT_FAILED
        text = summary(result.run_id, inputs["input_files"], runs, store)
        for each in (result, *results):
            instance.report_engine_event(text, each.dagster_run)
    print(text)
    return EXIT_OK


@contextlib.contextmanager
def _instance() -> Iterator[DagsterInstance]:
    """The DAGSTER_HOME instance (its folder created if missing), else a temporary one that
    lives as long as the command (multiprocess steps need an instance on disk)."""
    from dagster import DagsterInstance

    home = os.environ.get("DAGSTER_HOME")
    if home:
        Path(home).mkdir(parents=True, exist_ok=True)
        with DagsterInstance.get() as instance:
            yield instance
        return
    with (
        tempfile.TemporaryDirectory(prefix="perf-dagster-") as temporary,
        DagsterInstance.local_temp(
            temporary, overrides={"telemetry": {"enabled": False}}
        ) as instance,
    ):
        yield instance


def run_partitions(
    instance: DagsterInstance, tags: dict[str, str], workers: int = 1
) -> JobExecutionResult:
    """Run performance_job over one scope (partitions.scope_tags) on `instance`, with
    `workers` steps at once (job_runs.execute); its result."""
    from perf_pipeline.definitions import PERFORMANCE_JOB
    from perf_pipeline.job_runs import execute

    return execute(instance, PERFORMANCE_JOB, tags=tags, workers=workers)


def _execute(instance: DagsterInstance, runs: list, workers: int) -> list[JobExecutionResult]:
    """Run the planned scopes one after another, each with `workers` steps at once; their
    results."""
    from perf_pipeline.partitions import scope_tags

    return [
        run_partitions(instance, scope_tags(run.shards, run.start, run.end), workers)
        for run in runs
    ]


def failure_lines(result) -> list[str]:
    """The failed steps and failed checks of a run, a line each."""
    lines = [f"perf-pipeline: run {result.run_id} failed"]
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            reason = (
                data.user_failure_data.description
                if data.user_failure_data
                else root_cause(data.error)
                if data.error
                else event.message
            )
            lines.append(f"  {event.step_key}: {reason}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if not data.passed and data.severity.value == "ERROR":
                lines.append(
                    f"  check {data.check_name} on {data.asset_key.to_user_string()} failed"
                )
    from perf_pipeline.assets.publication import SINKS

    failed = {e.step_key for e in result.all_events if e.is_step_failure}
    if failed and failed <= set(SINKS):
        lines.append(
            "  the figures are stored and certified; only their publication failed: "
            "re-execute this run from failure (Dagster UI: the run's page, 'Re-execute "
            "from failure'), which publishes them without computing anything again"
        )
    return lines


def root_cause(error) -> str:
    """The innermost message of a Dagster error chain (a retried step wraps its cause)."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def print_failure(result) -> None:
    for line in failure_lines(result):
        print(line, file=sys.stderr)


def summary(run_id: str, files: pd.DataFrame, runs: list, store) -> str:
    """Rows accepted and rejected, the runs, and on the latest day computed (the latest
    calculation date, whatever the as-of date asked for) the entities and each portfolio's
    ITD TWR with its local and currency parts."""
    from perf_pipeline.assets.performance import latest_itd
    from perf_pipeline.planning import last_computed

    shards = store.shard_names()

    lines = [
        f"perf-pipeline: inputs run {run_id} succeeded, then {len(runs)} partition run(s)",
        f"  files read: {len(files):,} ({int((files['status'] != 'ok').sum()):,} rejected whole)",
        f"  rows accepted: {int(files['rows_accepted'].sum()):,}, rejected: "
        f"{int(files['rows_rejected'].sum()):,}",
    ]
    lines += [
        f"  recomputed {', '.join(run.shards)}: {run.start:%Y-%m-%d} .. {run.end:%Y-%m-%d}"
        for run in runs[:10]
    ]
    latest = last_computed(store, shards).max()
    if pd.isna(latest):
        return "\n".join(lines)
    day = pd.Timestamp(latest).date()
    kinds = store.read("daily_valuations", shards, day, day, columns=["entity_type"])
    kinds = kinds["entity_type"].value_counts() if not kinds.empty else pd.Series(dtype=int)
    lines.append(
        f"  entities on {day}: {int(kinds.sum()):,} ({int(kinds.get('portfolio', 0))} "
        f"portfolios, {int(kinds.get('account', 0))} accounts, "
        f"{int(kinds.get('security', 0))} security and {int(kinds.get('cash', 0))} cash "
        "positions)"
    )
    metrics = store.read("performance_metrics", shards, day, day)
    latest = latest_itd(metrics) if not metrics.empty else metrics
    if not latest.empty:
        lines.append("  ITD TWR per portfolio (1 + TWR = (1 + local)(1 + currency)):")
    for row in latest.itertuples():
        annual = "" if pd.isna(row.twr_annualized) else (f"  ({row.twr_annualized:+.2%} a year)")
        lines.append(
            f"    {row.entity_id:<12} {row.start_date:%Y-%m-%d} .. "
            f"{row.end_date:%Y-%m-%d}  {row.twr:+.2%}{annual}  local {row.twr_local:+.2%}, "
            f"currency {row.fx_effect:+.2%}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
