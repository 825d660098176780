"""Performance metrics of every entity, calculation date and period."""

import datetime as dt

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    Output,
    asset,
)

from perf_pipeline.assets.groups import PERFORMANCE
from perf_pipeline.assets.metadata import preview
from perf_pipeline.assets.valuation import requested
from perf_pipeline.calc.performance import performance_metrics as compute_metrics
from perf_pipeline.calc.valuation import panel_from_frame
from perf_pipeline.resources.duckdb_store import replaces
from perf_pipeline.resources.settings import CalculationSettings, RunRequest

REQUEST_TAG = "perf/request_id"
METRIC_KEY = ["id", "calculation_date", "time_period"]
TWR_BOUNDS = (-1.0, 100.0)  # a period return outside these is impossible or implausible
SUMMARY_COLUMNS = ["entity_id", "calculation_date", "twr", "twr_annualized", "mwr",
                   "volatility", "sharpe_ratio", "max_drawdown", "benchmark_twr"]


def request_id(context: AssetExecutionContext, request: RunRequest) -> str:
    """The API request id of the run (config, then run tag), else the Dagster run id."""
    return request.request_id or context.run.tags.get(REQUEST_TAG) or context.run.run_id


def latest_itd(metrics: pd.DataFrame) -> pd.DataFrame:
    """Each portfolio's ITD row at its latest calculation date."""
    itd = metrics.loc[(metrics["entity_type"] == "portfolio") & (metrics["time_period"] == "ITD")]
    latest = itd.sort_values("calculation_date").groupby("entity_id").tail(1)
    return latest.sort_values("entity_id")


@asset(
    group_name=PERFORMANCE,
    io_manager_key="metrics_io_manager",
    metadata={"replace_scope": "portfolio_id", "keep_created_at": METRIC_KEY},
    check_specs=[AssetCheckSpec(
        "twr_within_bounds", asset="performance_metrics",
        description="Every period TWR above -100% and below +10,000% (warning).",
    )],
)
def performance_metrics(
    context: AssetExecutionContext,
    daily_valuations: pd.DataFrame,
    portfolios: pd.DataFrame,
    benchmarks: pd.DataFrame,
    calculation_settings: CalculationSettings,
    run_request: RunRequest,
):
    """TWR, MWR, Modified Dietz and risk metrics per entity, calculation date and period."""
    panel = panel_from_frame(requested(daily_valuations, run_request))
    metrics, mwr_issues = compute_metrics(
        panel, portfolios, benchmarks,
        risk_free_rate=calculation_settings.annual_risk_free_rate(),
    )
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    metrics = metrics.assign(request_id=request_id(context, run_request), created_at=now,
                             updated_at=now)
    latest = latest_itd(metrics)
    meta = {
        **replaces(run_request.portfolio_ids),
        "rows": len(metrics),
        "entities": int(metrics["id"].nunique()),
        "latest_itd_by_portfolio": preview(latest[SUMMARY_COLUMNS], rows=50),
        "mwr_without_root": len(mwr_issues),
        "mwr_issues": preview(mwr_issues),
    }
    for row in latest.itertuples():
        meta[f"itd_twr/{row.entity_id}"] = MetadataValue.float(float(row.twr))
    yield Output(metrics, metadata=meta)
    yield check_performance_metrics_twr_bounded(metrics)


def check_performance_metrics_twr_bounded(metrics: pd.DataFrame) -> AssetCheckResult:
    """Warn on period TWRs at or below -100% or above +10,000%."""
    low, high = TWR_BOUNDS
    twr = metrics["twr"].to_numpy(dtype=float)
    wild = metrics.loc[(twr <= low) | (twr > high) | ~np.isfinite(twr)]
    return AssetCheckResult(
        check_name="twr_within_bounds", asset_key="performance_metrics", passed=wild.empty,
        severity=AssetCheckSeverity.WARN,
        metadata={"rows": len(wild), "lower": low, "upper": high,
                  "offending_rows": preview(wild[[*METRIC_KEY, "twr"]])},
    )
