"""Positions and daily valuations of every security position, account and portfolio."""

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    Output,
    multi_asset,
)

from perf_pipeline.assets.groups import VALUATION
from perf_pipeline.assets.metadata import date_range, preview
from perf_pipeline.calc.calendar import previous_business_day
from perf_pipeline.calc.valuation import positions as holdings
from perf_pipeline.calc.valuation import value_entities
from perf_pipeline.resources.duckdb_store import replaces
from perf_pipeline.resources.settings import CalculationSettings, RunRequest

SUM_TOLERANCE = 1e-6  # relative to max(1, |value|)
STALE_BUSINESS_DAYS = 5
RETURN_BOUNDS = (-0.5, 1.0)  # a daily return outside these is worth a look


def resolve_as_of(request: RunRequest, transactions: pd.DataFrame,
                  prices: pd.DataFrame) -> pd.Timestamp | None:
    """The requested as-of date, else the last business day on or before the latest input date."""
    if request.as_of:
        return pd.Timestamp(request.as_of)
    latest = pd.concat([transactions["trade_date"], prices["date"]]).max()
    if pd.isna(latest):
        return None
    return pd.Timestamp(previous_business_day(pd.Timestamp(latest) + pd.Timedelta(days=1)))


def requested(frame: pd.DataFrame, request: RunRequest) -> pd.DataFrame:
    """The rows of the requested portfolios (all rows when none are named)."""
    if not request.portfolio_ids:
        return frame
    return frame.loc[frame["portfolio_id"].isin(request.portfolio_ids)]


@multi_asset(
    outs={
        "positions": AssetOut(
            group_name=VALUATION, metadata={"replace_scope": "portfolio_id"},
            description="Holdings as a change log: quantity (cash for security_id null) held "
                        "from each effective date.",
        ),
        "daily_valuations": AssetOut(
            group_name=VALUATION, metadata={"replace_scope": "portfolio_id"},
            io_manager_key="series_io_manager",
            description="One row per entity and business day: market value, flows, daily "
                        "return, performance index, price age.",
        ),
    },
    ins={"transactions": AssetIn(), "prices": AssetIn()},
    check_specs=[
        AssetCheckSpec("no_negative_holdings", asset="positions",
                       description="No position or cash balance below zero (warning)."),
        AssetCheckSpec("every_holding_priced", asset="daily_valuations", blocking=True,
                       description="Every held security has a close or a trade price."),
        AssetCheckSpec("values_add_up", asset="daily_valuations", blocking=True,
                       description="Securities + cash = account; accounts = portfolio (1e-6)."),
        AssetCheckSpec("prices_fresh", asset="daily_valuations",
                       description="No held security priced more than 5 business days ago "
                                   "(warning)."),
        AssetCheckSpec("returns_within_bounds", asset="daily_valuations",
                       description="Daily returns between -50% and +100% (warning)."),
    ],
)
def valuations(
    context: AssetExecutionContext,
    transactions: pd.DataFrame,
    prices: pd.DataFrame,
    calculation_settings: CalculationSettings,
    run_request: RunRequest,
):
    """Value every entity on every business day from inception to the as-of date."""
    as_of = resolve_as_of(run_request, transactions, prices) or pd.Timestamp("1900-01-01")
    held = holdings(requested(transactions, run_request), as_of)
    panel = value_entities(transactions, prices, as_of, timing=calculation_settings.timing,
                           portfolios=run_request.portfolio_ids)
    daily = panel.to_frame()
    context.log.info("valued %d entities over %d business days up to %s",
                     len(panel.entities), len(panel.dates), as_of.date())
    scope = replaces(run_request.portfolio_ids)
    yield Output(held, output_name="positions",
                 metadata={"rows": len(held), **date_range(held["date"]), **scope})
    yield Output(daily, output_name="daily_valuations", metadata={
        "rows": len(daily), "entities": len(panel.entities), "as_of": str(as_of.date()),
        **date_range(daily["date"]), **scope,
    })
    yield check_positions_no_negative_holdings(held)
    yield check_daily_valuations_priced(daily)
    yield check_daily_valuations_add_up(daily, held)
    yield check_daily_valuations_prices_fresh(daily)
    yield check_daily_valuations_returns_bounded(daily)


def check_positions_no_negative_holdings(held: pd.DataFrame) -> AssetCheckResult:
    """Warn on any holding that goes below zero (a short position or an overdraft)."""
    negative = held.loc[held["quantity"] < -SUM_TOLERANCE]
    return AssetCheckResult(
        check_name="no_negative_holdings", asset_key="positions", passed=negative.empty,
        severity=AssetCheckSeverity.WARN,
        metadata={"rows": len(negative), "threshold": 0.0, "offending_rows": preview(negative)},
    )


def check_daily_valuations_priced(daily: pd.DataFrame) -> AssetCheckResult:
    """Fail when a held security has no price at all (its value would be unknown)."""
    unpriced = daily.loc[daily["market_value"].isna()]
    return AssetCheckResult(
        check_name="every_holding_priced", asset_key="daily_valuations",
        passed=unpriced.empty, severity=AssetCheckSeverity.ERROR,
        metadata={"rows": len(unpriced), "offending_rows": preview(unpriced)},
    )


def cash_by_account_day(held: pd.DataFrame, days: pd.DatetimeIndex) -> pd.DataFrame:
    """Each account's cash balance on each of `days` (long: date, account_id, cash)."""
    cash = held.loc[held["security_id"].isna()]
    if cash.empty:
        return pd.DataFrame(columns=["date", "account_id", "cash"])
    wide = cash.pivot_table(index="date", columns="account_id", values="quantity",
                            aggfunc="last")
    wide = wide.reindex(wide.index.union(days)).ffill().fillna(0.0).loc[days]
    wide.index.name = "date"
    return wide.stack().rename("cash").reset_index()


def check_daily_valuations_add_up(daily: pd.DataFrame, held: pd.DataFrame) -> AssetCheckResult:
    """Recompute accounts from securities + cash and portfolios from accounts, to 1e-6."""
    kind = daily["entity_type"]
    columns = ["date", "portfolio_id", "account_id", "market_value"]  # all that is compared
    by_type = {name: daily.loc[kind == name, columns]
               for name in ("portfolio", "account", "security")}
    days = pd.DatetimeIndex(daily["date"].unique()).sort_values()
    securities = (by_type["security"].groupby(["date", "account_id"])["market_value"].sum()
                  .rename("securities").reset_index())
    accounts = (by_type["account"][["date", "account_id", "market_value"]]
                .merge(securities, on=["date", "account_id"], how="left")
                .merge(cash_by_account_day(held, days), on=["date", "account_id"], how="left")
                .fillna({"securities": 0.0, "cash": 0.0}))
    accounts["expected"] = accounts["securities"] + accounts["cash"]
    totals = (by_type["account"].groupby(["date", "portfolio_id"])["market_value"].sum()
              .rename("expected").reset_index())
    portfolios = by_type["portfolio"][["date", "portfolio_id", "market_value"]].merge(
        totals, on=["date", "portfolio_id"], how="left").fillna({"expected": 0.0})
    off = pd.concat([frame.loc[_off(frame)] for frame in (accounts, portfolios)])
    return AssetCheckResult(
        check_name="values_add_up", asset_key="daily_valuations", passed=off.empty,
        severity=AssetCheckSeverity.ERROR,
        metadata={"rows": len(off), "tolerance": SUM_TOLERANCE, "offending_rows": preview(off)},
    )


def _off(frame: pd.DataFrame) -> pd.Series:
    value, expected = frame["market_value"], frame["expected"]
    scale = np.maximum(1.0, np.abs(expected))
    return ~(np.abs(value - expected) <= SUM_TOLERANCE * scale)


def check_daily_valuations_prices_fresh(daily: pd.DataFrame) -> AssetCheckResult:
    """Warn on held securities whose price is older than 5 business days."""
    held = ((daily["entity_type"] == "security") & (daily["market_value"] != 0)
            & daily["price_age_days"].notna()).to_numpy()
    day = daily["date"].to_numpy()[held].astype("datetime64[D]")
    source = day - daily["price_age_days"].to_numpy()[held].astype("timedelta64[D]")
    late = np.zeros(len(daily), dtype=bool)
    late[held] = np.busday_count(source, day) > STALE_BUSINESS_DAYS
    stale = daily.loc[late]  # only the offending rows are copied
    return AssetCheckResult(
        check_name="prices_fresh", asset_key="daily_valuations", passed=stale.empty,
        severity=AssetCheckSeverity.WARN,
        metadata={"rows": len(stale), "threshold_business_days": STALE_BUSINESS_DAYS,
                  "securities": int(stale["security_id"].nunique()),
                  "offending_rows": preview(stale)},
    )


def check_daily_valuations_returns_bounded(daily: pd.DataFrame) -> AssetCheckResult:
    """Warn on daily returns outside RETURN_BOUNDS (likely a bad price or a missing flow)."""
    low, high = RETURN_BOUNDS
    r = daily["daily_return"]
    wild = daily.loc[(r < low) | (r > high)]
    return AssetCheckResult(
        check_name="returns_within_bounds", asset_key="daily_valuations", passed=wild.empty,
        severity=AssetCheckSeverity.WARN,
        metadata={"rows": len(wild), "lower": low, "upper": high,
                  "offending_rows": preview(wild)},
    )
