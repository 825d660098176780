"""Performance metrics of every entity, calculation date and period.

Partitioned by month like daily_valuations, its shards fanned out the same way
(assets.fanout); a run computes the calculation dates of its range (each month-end business
day in it, and its last day, the as-of date) from the stored daily valuations of each
period's window, and certifies the range (computed_from) with the input
digests its valuations were computed from, when this step sees the same.
"""

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetIn,
    AssetsDefinition,
    BackfillPolicy,
    Failure,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    PartitionsDefinition,
    graph_asset,
    op,
)

from perf_contract.tags import REQUEST_ID_TAG
from perf_pipeline.assets.fanout import (
    Chunk,
    check_result,
    findings,
    partition_outputs,
    run_chunks,
    whole_store_on_last_day,
    written,
)
from perf_pipeline.assets.groups import PERFORMANCE
from perf_pipeline.assets.metadata import (
    FIGURE_DECIMALS,
    FIGURES,
    figures_log,
    portfolio_figures,
)
from perf_pipeline.calc.calendar import (
    month_end_business_days,
    previous_business_day,
)
from perf_pipeline.calc.performance import performance_metrics as compute_metrics
from perf_pipeline.calc.periods import calculation_dates
from perf_pipeline.calc.valuation import ENTITY_COLUMNS, panel_from_frame
from perf_pipeline.increments import DIGEST_COLUMNS, partition_digests
from perf_pipeline.resources.partition_store import PartitionStore, Slice
from perf_pipeline.resources.settings import CalculationSettings, RunRequest

METRIC_KEY = ["id", "calculation_date", "time_period"]
TWR_BOUNDS = (-1.0, 100.0)  # a period return outside these is impossible or implausible
ITD_COLUMNS = [
    "entity_type",
    "entity_id",
    "time_period",
    "calculation_date",
    *(name for name, _, _ in FIGURES),
]
HISTORY_COLUMNS = [
    "date",
    *ENTITY_COLUMNS,
    "market_value",
    "inflow",
    "outflow",
    "daily_return",
    "twr_index",
    "price_age_days",
    "fx_return",
]


def request_id(context: OpExecutionContext, request: RunRequest) -> str:
    """The API request id of the run (config, then run tag), else the Dagster run id."""
    return request.request_id or context.run.tags.get(REQUEST_ID_TAG) or context.run.run_id


def itd_figures(itd: pd.DataFrame | None) -> dict[str, MetadataValue]:
    """The ITD figures of every portfolio as a table (metadata.portfolio_figures), their
    count, and the spread of their ITD TWRs (max - min, in percentage points) to plot."""
    if itd is None or itd.empty:
        return {}
    twr = itd["twr"].astype(float)
    figures = {
        "itd_by_portfolio": portfolio_figures(itd),
        "portfolios": MetadataValue.int(len(itd)),
    }
    if twr.notna().any():
        spread = 100 * (twr.max() - twr.min())
        figures["itd_twr_spread_pct"] = MetadataValue.float(round(float(spread), FIGURE_DECIMALS))
    return figures


def latest_itd(metrics: pd.DataFrame) -> pd.DataFrame:
    """Each portfolio's ITD row at its latest calculation date."""
    itd = metrics.loc[(metrics["entity_type"] == "portfolio") & (metrics["time_period"] == "ITD")]
    latest = itd.sort_values("calculation_date").groupby("entity_id").tail(1)
    return latest.sort_values("entity_id")


def superseded_days(start: pd.Timestamp, first_day: pd.Timestamp) -> tuple[dt.date, ...]:
    """The business day before `start` when it is not a month-end: it was the latest date of
    the run before, and stops being a calculation date once a later day is computed."""
    before = pd.Timestamp(previous_business_day(start))
    if before < first_day or len(month_end_business_days(before, before)):
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


@op(description="Metrics of one chunk of the run's shards on the run's calculation dates.")
def metrics_chunk(
    context: OpExecutionContext,
    chunk: dict,
    portfolios: pd.DataFrame,
    benchmarks: pd.DataFrame,
    input_digests: pd.DataFrame,
    calculation_settings: CalculationSettings,
    run_request: RunRequest,
    partition_store: PartitionStore,
) -> dict:
    """Compute the chunk's metrics from its stored daily valuations, store them (with the keys
    they supersede, for the DynamoDB sink), certify the range (computed_from), and return the
    summary of what it wrote and what the check found."""
    part = Chunk.of(chunk)
    chunk, start, end = part.shards, part.start, part.end
    dates = calculation_dates(start, end)  # the range's month-ends and its last day
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    stamp = {"request_id": request_id(context, run_request), "created_at": now, "updated_at": now}
    used = valued_from(partition_store, input_digests, chunk, start, end)
    history = partition_store.read(
        "daily_valuations", chunk, end=end.date(), columns=HISTORY_COLUMNS
    )
    panel = panel_from_frame(history)
    metrics, mwr_issues = compute_metrics(
        panel,
        portfolios,
        benchmarks,
        risk_free_rate=calculation_settings.annual_risk_free_rate(),
        dates=dates[dates >= panel.dates.min()],
    )
    metrics = metrics.assign(shard=part.shard_column(metrics, partition_store), **stamp)
    where = Slice(chunk, start.date(), end.date(), superseded_days(start, partition_store.start))
    superseded = superseded_rows(partition_store, metrics, where)
    partition_store.replace(SUPERSEDED, superseded, where)
    partition_store.replace("performance_metrics", metrics, where, keep_created_at=METRIC_KEY)
    partition_store.replace("computed_from", used, Slice(chunk, start.date(), end.date()))
    return {
        "rows": len(metrics),
        **written(part, metrics, "calculation_date"),
        "superseded": len(superseded),
        "calculation_dates": len(dates),
        "mwr_without_root": findings(mwr_issues),
        "found": findings(twr_out_of_bounds(metrics)),
    }


@op(
    out={"result": Out(), "performance_metrics_twr_within_bounds": Out()},
    description="The run's metrics summary and check, over every chunk.",
)
def metrics_done(
    context: OpExecutionContext, chunks: list, partition_store: PartitionStore
) -> Iterator[Output | AssetCheckResult]:
    day = whole_store_on_last_day(
        context, partition_store, "performance_metrics", chunks, ITD_COLUMNS
    )
    itd = None if day is None else latest_itd(day)  # every shard's portfolios
    if itd is not None and len(itd):
        context.log.info("latest ITD by portfolio:\n" + figures_log(itd))
    no_root = sum(part["mwr_without_root"]["rows"] for part in chunks)
    if no_root:
        context.log.warning(f"{no_root} MWR windows without a rate")
    run = {
        "run_superseded_rows": MetadataValue.int(sum(part["superseded"] for part in chunks)),
        "run_calculation_dates": MetadataValue.int(
            max((part["calculation_dates"] for part in chunks), default=0)
        ),
        "run_mwr_without_root": MetadataValue.int(no_root),
    }
    yield from partition_outputs(
        context, partition_store, "performance_metrics", chunks, run | itd_figures(itd)
    )
    low, high = TWR_BOUNDS
    yield check_result(
        "performance_metrics",
        "twr_within_bounds",
        AssetCheckSeverity.WARN,
        [part["found"] for part in chunks],
        {"lower": low, "upper": high},
    )


def build_performance_metrics(partitions_def: PartitionsDefinition) -> AssetsDefinition:
    """The performance_metrics asset over `partitions_def` (partitions.MONTHS):
    the run's shards fan out as one metrics_chunk step per chunk (assets.fanout)."""

    @graph_asset(
        group_name=PERFORMANCE,
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        kinds={"pandas", "parquet"},
        ins={"daily_valuations": AssetIn(dagster_type=Nothing)},
        description="TWR, MWR, Modified Dietz and risk metrics per entity, calculation date "
        "and period.",
        check_specs=[
            AssetCheckSpec(
                "twr_within_bounds",
                asset="performance_metrics",
                description="Every period TWR above -100% and below +10,000% (warning).",
            )
        ],
    )
    def performance_metrics(
        daily_valuations, portfolios, benchmarks, transactions, prices, input_digests
    ):
        chunks = run_chunks(transactions, prices, after=daily_valuations)
        done = chunks.map(lambda chunk: metrics_chunk(chunk, portfolios, benchmarks, input_digests))
        return metrics_done(done.collect())

    return performance_metrics


SUPERSEDED = "superseded_metrics"
"""Keys of the metric rows a run replaced without a successor (a calculation date that is
no longer one): the DynamoDB sink deletes their items."""
SUPERSEDED_COLUMNS = ["shard", "calculation_date", "entity_type", "entity_id", "time_period"]


def superseded_rows(store: PartitionStore, metrics: pd.DataFrame, where: Slice) -> pd.DataFrame:
    """The keys of the stored metric rows in `where` that `metrics` does not rewrite."""
    ranges = [(where.start, where.end)] + [(day, day) for day in where.extra_days]
    stored = [
        store.read("performance_metrics", where.shards, first, last, SUPERSEDED_COLUMNS)
        for first, last in ranges
    ]
    stored = [frame for frame in stored if len(frame)]
    if not stored:
        return pd.DataFrame(columns=SUPERSEDED_COLUMNS).astype(
            {"calculation_date": "datetime64[ns]"}
        )
    stored = pd.concat(stored, ignore_index=True)
    key = SUPERSEDED_COLUMNS[1:]
    new = (
        metrics[key]
        .drop_duplicates()
        .assign(calculation_date=lambda f: pd.to_datetime(f["calculation_date"]))
    )
    old = stored.assign(calculation_date=pd.to_datetime(stored["calculation_date"]))
    both = old.merge(new, on=key, how="left", indicator=True)
    return both.loc[both["_merge"] == "left_only", SUPERSEDED_COLUMNS].reset_index(drop=True)


def twr_out_of_bounds(metrics: pd.DataFrame) -> pd.DataFrame:
    """Period TWRs at or below -100%, above +10,000%, or not finite."""
    low, high = TWR_BOUNDS
    twr = metrics["twr"].to_numpy(dtype=float)
    return metrics.loc[(twr <= low) | (twr > high) | ~np.isfinite(twr), [*METRIC_KEY, "twr"]]
