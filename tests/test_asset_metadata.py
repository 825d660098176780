"""The metadata builders (perf_pipeline.assets.metadata, fanout, valuation): typed values
the UI renders, compared with values worked out by hand."""

import json

import numpy as np
import pandas as pd
from dagster import AssetCheckSeverity

from perf_pipeline.assets.fanout import check_result, findings
from perf_pipeline.assets.metadata import cell, partition_metadata, portfolio_figures
from perf_pipeline.assets.valuation import BOOK_COLUMNS, book_figures


def test_cells_are_null_dates_and_python_scalars():
    assert cell(float("nan")) is None and cell(pd.NaT) is None and cell(None) is None
    assert cell(pd.Timestamp("2024-06-28")) == "2024-06-28"
    assert cell(pd.Timestamp("2024-06-28 13:05")) == "2024-06-28T13:05:00"
    assert cell(np.int64(7)) == 7 and type(cell(np.int64(7))) is int
    assert cell(np.float32(0.5)) == 0.5 and cell(np.bool_(True)) is True


def test_portfolio_figures_are_percentages_with_two_decimals_and_nulls():
    itd = pd.DataFrame(
        {
            "entity_id": ["P1"],
            "calculation_date": pd.to_datetime(["2024-06-28"]),
            "twr": [0.123456],
            "twr_annualized": [float("nan")],
            "twr_local": [0.1],
            "fx_effect": [0.0213],
            "mwr": [-0.0105],
            "mwr_annualized": [float("nan")],
            "volatility": [0.2],
            "sharpe_ratio": [1.23456],
            "max_drawdown": [0.05],
            "benchmark_twr": [0.1],
        }
    )
    value = portfolio_figures(itd).value
    [record] = [r.data for r in value.records]
    assert record["portfolio"] == "P1" and record["as of"] == "2024-06-28"
    assert record["TWR %"] == 12.35  # 0.123456 x 100, rounded to 2 decimals
    assert record["TWR p.a. %"] is None  # null, never the text nan
    assert record["MWR %"] == -1.05 and record["Sharpe"] == 1.23
    assert record["TWR local %"] == 10.0 and record["FX effect %"] == 2.13
    types = {c.name: c.type for c in value.schema.columns}
    assert types == {"portfolio": "string", "as of": "date"} | {
        name: "float" for name in record if name not in ("portfolio", "as of")
    }
    json.dumps(record)  # what the webserver serializes


def offending(days: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=days),
            "entity_id": [f"E{i}" for i in range(days)],
            "daily_return": np.linspace(1.5, 2.0, days),
        }
    )


def test_a_failing_check_shows_its_count_the_threshold_and_the_first_rows_as_a_table():
    # the chunk summaries travel between steps as JSON
    found = [json.loads(json.dumps(findings(frame))) for frame in (offending(25), offending(3))]
    result = check_result("daily_valuations", "x", AssetCheckSeverity.WARN, found, {"upper": 1.0})
    assert not result.passed
    meta = result.metadata
    assert meta["observed"].value == 28.0 and meta["threshold"].value == 0.0
    assert meta["upper"].value == 1.0
    shown = meta["offending_rows"].value
    assert len(shown.records) == 20
    assert shown.records[0].data == {"date": "2024-01-01", "entity_id": "E0", "daily_return": 1.5}
    types = [(c.name, c.type) for c in shown.schema.columns]
    assert types == [("date", "date"), ("entity_id", "string"), ("daily_return", "float")]


def test_a_passing_check_shows_zero_observed_and_no_table():
    found = [findings(offending(0))]
    result = check_result("daily_valuations", "x", AssetCheckSeverity.ERROR, found, {})
    assert result.passed
    assert result.metadata["observed"].value == 0.0 and "offending_rows" not in result.metadata


def test_each_partition_gets_its_rows_and_only_the_last_the_runs_totals():
    chunks = [
        {"rows": 5, "shards": ["s00"], "rows_by_month": {"2024-05": 2, "2024-06": 3},
         "schema": [["date", "date"]], "start": "2024-05-20", "end": "2024-06-28"},
        {"rows": 4, "shards": ["s01", "s02"], "rows_by_month": {"2024-06": 4}, "schema": [],
         "start": "2024-05-20", "end": "2024-06-28"},
    ]  # fmt: skip
    meta = partition_metadata(["2024-05", "2024-06"], chunks, {})
    assert meta["2024-05"]["rows_written"].value == 2
    assert meta["2024-06"]["rows_written"].value == 7
    assert "run_rows" not in meta["2024-05"]
    assert meta["2024-06"]["run_rows"].value == 9 and meta["2024-06"]["run_shards"].value == 3
    assert meta["2024-06"]["run_days"].value == "2024-05-20 .. 2024-06-28"
    assert [c.name for c in meta["2024-05"]["dagster/column_schema"].value.columns] == ["date"]


def valuations(day: str, second_base: str) -> pd.DataFrame:
    """Two portfolios, P2 in `second_base`; A1:S1 held (prices 3 days old, its rate 1 day),
    A1:S2 sold out (9 and 4 days)."""
    return pd.DataFrame(
        {
            "date": pd.to_datetime([day] * 5),
            "entity_type": ["portfolio", "portfolio", "account", "security", "security"],
            "entity_id": ["P1", "P2", "A1", "A1:S1", "A1:S2"],
            "portfolio_id": ["P1", "P2", "P1", "P1", "P1"],
            "market_value": [100.0, 50.0, 100.0, 60.0, 0.0],
            "price_age_days": [np.nan, np.nan, np.nan, 3.0, 9.0],  # S2 no longer held
            "currency": ["USD", second_base, "USD", "USD", "USD"],
            "fx_age_days": [np.nan, np.nan, np.nan, 1.0, 4.0],
        }
    )


def test_book_figures_total_the_portfolios_per_base_currency_and_age_the_held_prices():
    for second_base, expected in [
        ("USD", {"market_value_total": 150.0}),
        ("EUR", {"market_value_total_EUR": 50.0, "market_value_total_USD": 100.0}),
    ]:
        figures = book_figures(valuations("2024-06-28", second_base)[BOOK_COLUMNS])
        totals = {k: v.value for k, v in figures.items() if k.startswith("market_value_total")}
        assert totals == expected
        assert figures["entities"].value == 5 and figures["portfolios"].value == 2
        assert figures["oldest_price_age_days"].value == 3  # S2 (9 days) is not held
        assert figures["oldest_rate_age_days"].value == 1  # S2 (4 days) is not held
