"""Several currencies over a generated book (EUR and GBP portfolios holding USD and JPY
securities and cash, rates with gaps and holidays): the identities that hold for every entity,
day and period, checked on every row."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perf_pipeline.calc import performance_metrics, value_entities
from perf_pipeline.ingest import KINDS, RawFile, validate_inputs
from perf_pipeline.sample_data import generate


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    root = tmp_path_factory.mktemp("fx_input")
    generate(root, portfolios=2, years=1, seed=3, fx_portfolios=3)
    files = [
        RawFile(path=str(p), kind=kind, data=p.read_bytes())
        for kind in KINDS
        for p in sorted(Path(root, kind).rglob("*.csv"))
    ]
    result = validate_inputs(files, today=dt.date(2026, 1, 1))
    assert result.rejected_rows.empty, result.rejected_rows.head()
    as_of = pd.Timestamp(result.transactions["trade_date"].max()).normalize()
    panel = value_entities(
        result.transactions,
        result.prices,
        as_of,
        base_currencies=result.portfolios.set_index("portfolio_id")["base_currency"],
        fx_rates=result.fx_rates,
    )
    metrics, _ = performance_metrics(panel, result.portfolios, result.benchmarks)
    return result, panel.to_frame(), metrics


def test_the_book_holds_several_currencies_and_every_amount_is_converted(book):
    result, daily, _ = book
    bases = set(result.portfolios["base_currency"])
    assert {"EUR", "GBP"} <= bases
    held = set(daily.loc[daily["entity_type"] == "security", "currency"])
    assert {"USD", "JPY"} <= held
    assert daily["market_value"].notna().all() and daily["fx_rate"].notna().all()


def test_every_daily_return_splits_exactly(book):
    _, daily, _ = book
    r, local, fx = (
        daily[c].to_numpy() for c in ("daily_return", "daily_return_local", "fx_return")
    )
    known = ~np.isnan(r)
    assert (~np.isnan(local[known])).all() and (~np.isnan(fx[known])).all()
    np.testing.assert_allclose(1 + r[known], (1 + local[known]) * (1 + fx[known]), rtol=1e-12)


def test_a_position_s_currency_part_is_its_rate_s_move_on_a_day_without_flows(book):
    # independent of the split's own formula: held from the day before with nothing flowing,
    # a position's currency part is x_t / x_{t-1} - 1, whatever its local return
    _, daily, _ = book
    positions = daily.loc[daily["entity_type"].isin(["security", "cash"])]
    positions = positions.sort_values(["entity_id", "date"])
    same = positions["entity_id"].eq(positions["entity_id"].shift())
    before = positions.shift()
    quiet = (
        same
        & (positions["inflow"] == 0)
        & (positions["outflow"] == 0)
        & (before["market_value_local"] > 0)
        & (positions["market_value_local"] > 0)
    )
    moved = positions["fx_rate"] / before["fx_rate"] - 1
    assert quiet.sum() > 1000 and (moved[quiet].abs() > 1e-6).sum() > 100  # rates do move
    np.testing.assert_allclose(positions.loc[quiet, "fx_return"], moved[quiet], atol=1e-12)


def test_every_period_splits_exactly_and_a_base_currency_entity_has_no_currency_part(book):
    result, _, metrics = book
    invested = metrics["twr_local"].notna()
    assert invested.mean() > 0.9
    m = metrics.loc[invested]
    np.testing.assert_allclose(
        1 + m["twr"], (1 + m["twr_local"]) * (1 + m["fx_effect"]), rtol=1e-12, atol=1e-12
    )
    usd = set(result.portfolios.loc[result.portfolios["base_currency"] == "USD", "portfolio_id"])
    single = m.loc[m["portfolio_id"].isin(usd)]
    assert len(single) and (single["fx_effect"] == 0).all()
    assert (single["twr_local"] == single["twr"]).all()


def test_accounts_are_the_sum_of_their_positions_in_the_base_currency(book):
    _, daily, _ = book
    accounts = daily.loc[daily["entity_type"] == "account"].set_index(["date", "account_id"])
    positions = daily.loc[daily["entity_type"].isin(["security", "cash"])]
    total = positions.groupby(["date", "account_id"])["market_value"].sum()
    np.testing.assert_allclose(
        accounts["market_value"], total.reindex(accounts.index), rtol=1e-9, atol=1e-6
    )
    converted = positions["market_value_local"] * positions["fx_rate"]
    np.testing.assert_allclose(positions["market_value"], converted, rtol=1e-12, atol=1e-9)
