"""Performance metrics of every entity, calculation date and period.

Partitioned like daily_valuations; a run computes the calculation dates of its range (each
month-end business day in it, and its last day, the as-of date) from the stored daily
valuations of each period's window, and certifies the range (computed_from) with the input
digests its valuations were computed from, when this step sees the same.
"""

import datetime as dt

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    asset,
)

from perf_pipeline.assets.groups import PERFORMANCE
from perf_pipeline.assets.metadata import preview
from perf_pipeline.assets.valuation import portfolio_shards, shard_chunks, shard_column
from perf_pipeline.calc.calendar import (
    month_end_business_days,
    previous_business_day,
)
from perf_pipeline.calc.performance import performance_metrics as compute_metrics
from perf_pipeline.calc.periods import calculation_dates
from perf_pipeline.calc.valuation import panel_from_frame
from perf_pipeline.increments import DIGEST_COLUMNS, partition_digests
from perf_pipeline.partitions import PARTITION_START, daily_shards, partition_scope
from perf_pipeline.resources.partition_store import PartitionStore, Slice
from perf_pipeline.resources.settings import CalculationSettings, RunRequest

REQUEST_TAG = "perf/request_id"
METRIC_KEY = ["id", "calculation_date", "time_period"]
TWR_BOUNDS = (-1.0, 100.0)  # a period return outside these is impossible or implausible
SUMMARY_COLUMNS = [
    "entity_id",
    "calculation_date",
    "twr",
    "twr_annualized",
    "mwr",
    "volatility",
    "sharpe_ratio",
    "max_drawdown",
    "benchmark_twr",
]
HISTORY_COLUMNS = [
    "date",
    "entity_type",
    "entity_id",
    "portfolio_id",
    "account_id",
    "security_id",
    "market_value",
    "inflow",
    "outflow",
    "daily_return",
    "twr_index",
    "price_age_days",
]


def request_id(context: AssetExecutionContext, request: RunRequest) -> str:
    """The API request id of the run (config, then run tag), else the Dagster run id."""
    return request.request_id or context.run.tags.get(REQUEST_TAG) or context.run.run_id


def latest_itd(metrics: pd.DataFrame) -> pd.DataFrame:
    """Each portfolio's ITD row at its latest calculation date."""
    itd = metrics.loc[(metrics["entity_type"] == "portfolio") & (metrics["time_period"] == "ITD")]
    latest = itd.sort_values("calculation_date").groupby("entity_id").tail(1)
    return latest.sort_values("entity_id")


def superseded_days(start: pd.Timestamp) -> tuple[dt.date, ...]:
    """The business day before `start` when it is not a month-end: it was the latest date of
    the run before, and stops being a calculation date once a later day is computed."""
    before = pd.Timestamp(previous_business_day(start))
    if before < PARTITION_START or len(month_end_business_days(before, before)):
        return ()
    return (before.date(),)


def valued_from(
    store: PartitionStore,
    digests: pd.DataFrame,
    shards: tuple[str, ...],
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> pd.DataFrame:
    """The digests the valuations of this range were computed from, when they are the ones
    this step sees; a Failure when the input changed between the two steps (or another run
    rewrote the range): certifying them would hide the change from every later plan."""
    expected = partition_digests(digests, shards, start, end)
    found = store.read("valued_from", shards, start.date(), end.date(), columns=DIGEST_COLUMNS)
    found = found.sort_values(["shard", "date"]).reset_index(drop=True)
    same = (
        len(found) == len(expected)
        and (found["digest"].to_numpy() == expected["digest"].to_numpy()).all()
        and (pd.DatetimeIndex(found["date"]) == pd.DatetimeIndex(expected["date"])).all()
    )
    if not same:
        raise Failure(
            f"the input of shards {', '.join(shards)} changed while this run was "
            f"computing {start:%Y-%m-%d}..{end:%Y-%m-%d} (or another run rewrote "
            "them): nothing is certified, and the next plan recomputes them."
        )
    return expected


@asset(
    group_name=PERFORMANCE,
    partitions_def=daily_shards,
    backfill_policy=BackfillPolicy.single_run(),
    deps=["daily_valuations"],
    ins={
        "portfolios": AssetIn(),
        "benchmarks": AssetIn(),
        "transactions": AssetIn(),
        "input_digests": AssetIn(),
    },
    check_specs=[
        AssetCheckSpec(
            "twr_within_bounds",
            asset="performance_metrics",
            description="Every period TWR above -100% and below +10,000% (warning).",
        )
    ],
)
def performance_metrics(
    context: AssetExecutionContext,
    portfolios: pd.DataFrame,
    benchmarks: pd.DataFrame,
    transactions: pd.DataFrame,
    input_digests: pd.DataFrame,
    calculation_settings: CalculationSettings,
    run_request: RunRequest,
    partition_store: PartitionStore,
):
    """TWR, MWR, Modified Dietz and risk metrics per entity, calculation date and period."""
    shards, start, end = partition_scope(context.partition_keys)
    dates = calculation_dates(start, end)  # the range's month-ends and its last day
    rf = calculation_settings.annual_risk_free_rate()
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    stamp = {"request_id": request_id(context, run_request), "created_at": now, "updated_at": now}
    owners = portfolio_shards(transactions)
    latest, wild, issues, rows = [], [], [], 0
    for chunk, _ in shard_chunks(shards, owners):
        used = valued_from(partition_store, input_digests, chunk, start, end)
        history = partition_store.read(
            "daily_valuations", chunk, end=end.date(), columns=HISTORY_COLUMNS
        )
        panel = panel_from_frame(history)
        metrics, mwr_issues = compute_metrics(
            panel,
            portfolios,
            benchmarks,
            risk_free_rate=rf,
            dates=dates[dates >= panel.dates.min()],
        )
        metrics = metrics.assign(shard=shard_column(metrics, owners), **stamp)
        partition_store.replace(
            "performance_metrics",
            metrics,
            Slice(chunk, start.date(), end.date(), superseded_days(start)),
            keep_created_at=METRIC_KEY,
        )
        partition_store.replace("computed_from", used, Slice(chunk, start.date(), end.date()))
        rows += len(metrics)
        latest.append(latest_itd(metrics))
        wild.append(twr_out_of_bounds(metrics))
        issues.append(mwr_issues)
    latest = pd.concat(latest) if latest else pd.DataFrame(columns=SUMMARY_COLUMNS)
    issues = pd.concat(issues) if issues else pd.DataFrame()
    # Dagster stores this metadata once per (day, shard) partition of the range: it stays
    # small, and the tables go to the run's log instead.
    context.log.info("latest ITD by portfolio:\n" + preview(latest[SUMMARY_COLUMNS], rows=50).value)
    if not issues.empty:
        context.log.warning(f"{len(issues)} MWR windows without a rate:\n" + preview(issues).value)
    yield MaterializeResult(
        metadata={
            "rows": rows,
            "shards": ",".join(shards),
            "calculation_dates": f"{len(dates)} from {dates[0]:%Y-%m-%d} to {dates[-1]:%Y-%m-%d}",
            "mwr_without_root": len(issues),
        }
    )
    yield check_twr_bounded(pd.concat(wild) if wild else pd.DataFrame(columns=METRIC_KEY))


def twr_out_of_bounds(metrics: pd.DataFrame) -> pd.DataFrame:
    """Period TWRs at or below -100%, above +10,000%, or not finite."""
    low, high = TWR_BOUNDS
    twr = metrics["twr"].to_numpy(dtype=float)
    return metrics.loc[(twr <= low) | (twr > high) | ~np.isfinite(twr), [*METRIC_KEY, "twr"]]


def check_twr_bounded(wild: pd.DataFrame) -> AssetCheckResult:
    """Warn on period TWRs outside TWR_BOUNDS."""
    low, high = TWR_BOUNDS
    return AssetCheckResult(
        check_name="twr_within_bounds",
        asset_key="performance_metrics",
        passed=wild.empty,
        severity=AssetCheckSeverity.WARN,
        metadata={"rows": len(wild), "lower": low, "upper": high, "offending_rows": preview(wild)},
    )
