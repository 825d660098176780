"""Asset checks as functions: they pass on sound data and fail on the fault they look for."""

import datetime as dt

import pandas as pd

from perf_pipeline.assets.inputs import check_input_files_reconcile
from perf_pipeline.assets.valuation import (
    negative_holdings,
    stale_prices,
    stale_rates,
    sums_off,
    unconverted_amounts,
    unpriced_holdings,
    wild_returns,
)
from perf_pipeline.ingest import RawFile, validate_inputs

PORTFOLIOS = b"portfolio_id,client_id,base_currency,benchmark_id\nP1,C1,USD,\nP2,C1,USD,\n"
TRANSACTIONS = (
    b"transaction_id,portfolio_id,account_id,security_id,trade_date,type,quantity,"
    b"price,amount,fee,currency\nT1,P1,A1,,2024-01-02,DEPOSIT,,,100,,USD\n"
    b"T2,P1,A1,,2024-01-03,DEPOSIT,,,oops,,USD\n"
)


def validated():
    return validate_inputs(
        [
            RawFile("portfolios/a.csv", "portfolios", PORTFOLIOS),
            RawFile("portfolios/b.csv", "portfolios", PORTFOLIOS),  # delivered again, identical
            RawFile("transactions/a.csv", "transactions", TRANSACTIONS),
            RawFile("transactions/b.csv", "transactions", TRANSACTIONS),
        ],
        today=dt.date(2026, 1, 1),
    )


def test_reconcile_passes_with_identical_redeliveries():
    result = validated()
    assert len(result.portfolios) == 2 and len(result.transactions) == 1
    check = check_input_files_reconcile(result)
    assert check.passed, check.metadata
    assert check.metadata["observed"].value == 0.0 and check.metadata["threshold"].value == 0.0


def test_reconcile_fails_when_an_accepted_row_goes_missing():
    result = validated()
    lost = result.transactions.iloc[0:0]  # the accepted row vanished between validation and here
    check = check_input_files_reconcile(type(result)(**{**vars(result), "transactions": lost}))
    assert not check.passed
    assert check.metadata["observed"].value == 1.0  # the file the kept copy came from
    assert check.metadata["threshold"].value == 0.0
    shown = check.metadata["offending_rows"].value
    assert [record.data["file"] for record in shown.records] == ["transactions/a.csv"]
    # a.csv: 2 rows read, T2 rejected (amount "oops"), T1 accepted but gone from the table
    assert [(r.data["rows_read"], r.data["rejected"]) for r in shown.records] == [(2, 1)]


def valuations_of_one_day(
    account_value: float = 100.0,
    price_age: float = 0.0,
    security_value: float = 60.0,
    daily_return: float = 0.01,
    cash_rate: float = 1.0,
    rate_age: float = 0.0,
):
    """P (base USD) holds account A: position A:S worth `security_value` and cash position
    A:CASH.USD of 40 (converted at `cash_rate`, `rate_age` days old); 2024-06-14."""
    day = pd.Timestamp("2024-06-14")  # a Friday
    daily = pd.DataFrame(
        {
            "date": [day] * 4,
            "entity_type": ["portfolio", "account", "security", "cash"],
            "entity_id": ["P", "A", "A:S", "A:CASH.USD"],
            "portfolio_id": "P",
            "account_id": [None, "A", "A", "A"],
            "security_id": [None, None, "S", "CASH.USD"],
            "currency": "USD",
            "market_value": [account_value, account_value, security_value, 40.0 * cash_rate],
            "inflow": 0.0,
            "outflow": 0.0,
            "daily_return": daily_return,
            "price_age_days": [None, None, price_age, 0.0],
            "holding": [None, 40.0, 6.0, 40.0],
            "market_value_local": [account_value, account_value, security_value, 40.0],
            "fx_rate": [1.0, 1.0, 1.0, cash_rate],
            "fx_age_days": [0.0, 0.0, 0.0, rate_age],
        }
    )
    held = pd.DataFrame(
        {
            "portfolio_id": "P",
            "account_id": "A",
            "security_id": [None, "S"],
            "currency": "USD",
            "date": [day, day],
            "quantity_change": [40.0, 6.0],
            "quantity": [40.0, 6.0],
        }
    )
    return daily, held


def test_values_add_up_fails_when_an_account_is_not_its_parts():
    assert sums_off(valuations_of_one_day()[0]).empty
    off = sums_off(valuations_of_one_day(security_value=60.001)[0])  # 40 + 60.001 != 100
    assert off["entity_id"].tolist() == ["A"] and off["expected"].iloc[0] == 100.001
    daily = valuations_of_one_day()[0]
    daily.loc[3, "market_value"] = 41.0  # the cash position
    assert sums_off(daily)["entity_id"].tolist() == ["A"]


def test_values_add_up_fails_when_a_portfolio_is_not_its_accounts():
    daily = valuations_of_one_day()[0]
    daily.loc[0, "market_value"] = 100.5
    assert sums_off(daily)["entity_id"].tolist() == ["P"]


def test_every_holding_priced_fails_on_a_value_without_a_price():
    assert unpriced_holdings(valuations_of_one_day()[0]).empty
    found = unpriced_holdings(valuations_of_one_day(security_value=float("nan"))[0])
    assert found["entity_id"].tolist() == ["A:S"]


def test_prices_fresh_counts_business_days():
    # Friday 06-14: a close from Friday 06-07 is 5 business days old (fine), from Thursday
    # 06-06 six (stale), although both are under 9 calendar days.
    assert stale_prices(valuations_of_one_day(price_age=7)[0]).empty
    assert stale_prices(valuations_of_one_day(price_age=8)[0])["entity_id"].tolist() == ["A:S"]


def test_no_negative_holdings_and_returns_within_bounds_warn_on_their_fault():
    daily, held = valuations_of_one_day()
    assert negative_holdings(held).empty
    assert len(negative_holdings(held.assign(quantity=[40.0, -1.0]))) == 1
    assert wild_returns(daily).empty
    assert len(wild_returns(valuations_of_one_day(daily_return=-0.6)[0])) == 4


def test_one_unpriced_holding_is_one_failure_naming_the_security_and_the_day():
    # valued as the pipeline values it: the security, its account and portfolio all unknown
    nan = float("nan")
    daily = valuations_of_one_day(security_value=nan, account_value=nan)[0]
    assert sums_off(daily).empty  # unknown sums are not sums that are off: one cause
    found = unpriced_holdings(daily)
    assert found[["date", "security_id"]].to_numpy().tolist() == [[pd.Timestamp("2024-06-14"), "S"]]
    # a known account beside an unknown portfolio is a sum that is off
    daily.loc[1, "market_value"] = 100.0
    assert sums_off(daily)["entity_id"].tolist() == ["A", "P"]


def test_every_amount_converted_names_the_pair_and_the_day_of_a_missing_rate():
    # the cash is in EUR in a USD portfolio, and no EUR rate is known: its value is unknown
    daily = valuations_of_one_day(cash_rate=float("nan"), account_value=float("nan"))[0]
    daily.loc[3, "currency"] = "EUR"
    assert unconverted_amounts(valuations_of_one_day()[0]).empty
    found = unconverted_amounts(daily)
    assert found[["date", "entity_id", "currency", "base"]].to_numpy().tolist() == [
        [pd.Timestamp("2024-06-14"), "A:CASH.USD", "EUR", "USD"]
    ]
    assert sums_off(daily).empty  # the unknown sums are this check's finding, not that one's
    emptied = daily.assign(market_value_local=[float("nan"), float("nan"), 60.0, 0.0])
    assert unconverted_amounts(emptied).empty  # nothing held, nothing flowing: nothing to convert


def test_rates_fresh_counts_business_days_like_prices():
    assert stale_rates(valuations_of_one_day(rate_age=7)[0]).empty
    assert stale_rates(valuations_of_one_day(rate_age=8)[0])["entity_id"].tolist() == ["A:CASH.USD"]
