"""Several currencies, case by case: every figure below is worked out by hand in the comments.

Rates are given as EUR/USD (USD per EUR) and USD/JPY (JPY per USD), as a market quotes them;
a EUR portfolio converting USD uses the inverse, and JPY the cross through USD.
"""

import numpy as np
import pandas as pd
import pytest

from perf_pipeline.calc import performance_metrics, value_entities
from perf_pipeline.calc.fx import conversion_rates
from perf_pipeline.ingest.schemas import TransactionsModel, columns

COLUMNS = columns(TransactionsModel)
EUR = pd.Series({"P": "EUR"})


def transactions(*rows: tuple) -> pd.DataFrame:
    """Rows of (trade_date, type, security_id, quantity, price, amount, currency) plus
    optional fx_rate, counter_amount, counter_currency."""
    records = []
    for number, row in enumerate(rows, start=1):
        date, kind, security, quantity, price, amount, currency, *fx = row
        optional = (*fx, *(np.nan, np.nan, None)[len(fx) :])
        when = pd.Timestamp(date)
        records.append([f"T{number}", "P", "A", security, when, kind, quantity, price, amount, 0.0])
        records[-1] += [currency, *optional]
    return pd.DataFrame(records, columns=COLUMNS)


def rates(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(
        [(pd.Timestamp(d), b, q, r) for d, b, q, r in rows],
        columns=["date", "base", "quote", "rate"],
    )


def prices(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(
        [("S", pd.Timestamp(d), c, "USD") for d, c in rows],
        columns=["security_id", "date", "close", "currency"],
    )


NO_PRICES = pd.DataFrame(columns=["security_id", "date", "close", "currency"])


def rows_of(panel, entity_id: str) -> pd.DataFrame:
    frame = panel.to_frame()
    return frame.loc[frame["entity_id"] == entity_id].set_index("date")


# A USD security S in EUR portfolio P, Mon 2024-03-04 .. Thu 03-07:
#   EUR/USD 1.25 Mon, 1.6 Tue, none Wed (the gap: Tue's rate, 1 day old), 2.0 Thu
#   -> x (EUR per USD) 0.8, 0.625, 0.625, 0.5
#   Mon DEPOSIT 1,000 USD; BUY 10 S @ 100 USD.     S closes 100, 110, 110, 121 USD
#   Wed DIVIDEND 11 USD on S (to the USD cash).
USD_BOOK = transactions(
    ("2024-03-04", "DEPOSIT", None, np.nan, np.nan, 1000.0, "USD"),
    ("2024-03-04", "BUY", "S", 10.0, 100.0, np.nan, "USD"),
    ("2024-03-06", "DIVIDEND", "S", np.nan, np.nan, 11.0, "USD"),
)
USD_PRICES = prices(
    ("2024-03-04", 100), ("2024-03-05", 110), ("2024-03-06", 110), ("2024-03-07", 121)
)
USD_RATES = rates(
    ("2024-03-04", "EUR", "USD", 1.25),
    ("2024-03-05", "EUR", "USD", 1.6),
    ("2024-03-07", "EUR", "USD", 2.0),
)


@pytest.fixture(scope="module")
def usd_book():
    return value_entities(
        USD_BOOK,
        USD_PRICES,
        pd.Timestamp("2024-03-07"),
        base_currencies=EUR,
        fx_rates=USD_RATES,
    )


def test_a_usd_security_in_a_eur_portfolio_is_valued_in_both_currencies(usd_book):
    s = rows_of(usd_book, "A:S")
    assert (s["currency"] == "USD").all()
    np.testing.assert_allclose(s["market_value_local"], [1000, 1100, 1100, 1210])
    np.testing.assert_allclose(s["fx_rate"], [0.8, 0.625, 0.625, 0.5], rtol=1e-15)
    assert s["fx_age_days"].tolist() == [0, 0, 1, 0]  # Wednesday has Tuesday's rate
    np.testing.assert_allclose(s["market_value"], [800, 687.5, 687.5, 605], rtol=1e-14)
    np.testing.assert_allclose(s["inflow"], [800, 0, 0, 0])  # 1,000 USD at 0.8
    np.testing.assert_allclose(s["outflow"], [0, 0, 6.875, 0])  # 11 USD at 0.625
    # base: 687.5/800-1; (687.5+6.875)/687.5-1; 605/687.5-1.   local: 1100/1000-1; 1111/1100-1...
    np.testing.assert_allclose(s["daily_return"], [0, -0.140625, 0.01, -0.12], atol=1e-15)
    np.testing.assert_allclose(s["daily_return_local"], [0, 0.1, 0.01, 0.1], atol=1e-15)
    # fx: 0.625/0.8-1, no move on the gap, 0.5/0.625-1
    np.testing.assert_allclose(s["fx_return"], [0, -0.21875, 0, -0.2], atol=1e-15)


def test_the_usd_cash_position_earns_the_currency_move(usd_book):
    cash = rows_of(usd_book, "A:CASH.USD")
    assert cash["entity_type"].unique().tolist() == ["cash"]
    assert cash["security_id"].unique().tolist() == ["CASH.USD"]
    # Mon in 1,000 USD out 1,000 USD; Wed dividend 11 USD in (6.875 EUR); Thu 11 USD = 5.5 EUR
    np.testing.assert_allclose(cash["holding"], [0, 0, 11, 11])
    np.testing.assert_allclose(cash["market_value"], [0, 0, 6.875, 5.5])
    np.testing.assert_allclose(cash["inflow"], [800, 0, 6.875, 0])
    np.testing.assert_allclose(cash["outflow"], [800, 0, 0, 0])
    assert cash["daily_return"].iloc[3] == pytest.approx(-0.2, abs=1e-15)
    assert cash["daily_return_local"].iloc[3] == 0.0


def test_the_account_sums_its_positions_and_splits_its_return(usd_book):
    account = rows_of(usd_book, "A")
    assert (account["currency"] == "EUR").all()
    np.testing.assert_allclose(account["market_value"], [800, 687.5, 694.375, 610.5], rtol=1e-14)
    np.testing.assert_allclose(account["inflow"], [800, 0, 0, 0])  # the deposit only: external
    np.testing.assert_allclose(account["outflow"], 0)  # the dividend stays inside the account
    # Thu: base 610.5/694.375-1; local: the account's USD assets 1,111 -> 1,221 = 1221/1111-1
    np.testing.assert_allclose(
        account["daily_return"], [0, -0.140625, 0.01, 610.5 / 694.375 - 1], atol=1e-15
    )
    np.testing.assert_allclose(
        account["daily_return_local"], [0, 0.1, 0.01, 1221 / 1111 - 1], atol=1e-15
    )
    growth = (1 + account["daily_return"]) / (1 + account["daily_return_local"])
    np.testing.assert_allclose(1 + account["fx_return"], growth, rtol=1e-15)


def test_linked_the_split_is_the_security_s_usd_return_and_the_usd_s_fall(usd_book):
    portfolios = pd.DataFrame(
        {
            "portfolio_id": ["P"],
            "client_id": ["C"],
            "base_currency": ["EUR"],
            "benchmark_id": [None],
        }
    )
    benchmarks = pd.DataFrame(columns=["benchmark_id", "date", "close"])
    metrics, _ = performance_metrics(usd_book, portfolios, benchmarks)
    itd = metrics.loc[
        (metrics["time_period"] == "ITD") & (metrics["calculation_date"] == "2024-03-07")
    ].set_index("entity_id")
    # 800 EUR became 610.5 EUR; 1,000 USD became 1,221 USD; the USD went from 0.8 to 0.5 EUR
    for entity in ("P", "A"):
        assert itd.loc[entity, "twr"] == pytest.approx(610.5 / 800 - 1, abs=1e-14)
        assert itd.loc[entity, "twr_local"] == pytest.approx(0.221, abs=1e-14)
        assert itd.loc[entity, "fx_effect"] == pytest.approx(-0.375, abs=1e-14)
    # S alone: 1.1 x 1.01 x 1.1 in USD (its dividend earns on with it, not as 0% cash)
    assert itd.loc["A:S", "twr_local"] == pytest.approx(1.1 * 1.01 * 1.1 - 1, abs=1e-14)
    assert itd.loc["A:S", "fx_effect"] == pytest.approx(-0.375, abs=1e-14)


def test_continuing_from_a_close_gives_the_rows_of_one_run(usd_book):
    first = value_entities(
        USD_BOOK, USD_PRICES, pd.Timestamp("2024-03-05"), base_currencies=EUR, fx_rates=USD_RATES
    )
    rest = value_entities(
        USD_BOOK,
        USD_PRICES,
        pd.Timestamp("2024-03-07"),
        opening=first.closing_state(),
        base_currencies=EUR,
        fx_rates=USD_RATES,
    )
    keys = ["entity_type", "entity_id", "date"]
    whole = usd_book.to_frame().sort_values(keys).reset_index(drop=True)
    joined = pd.concat([first.to_frame(), rest.to_frame()]).sort_values(keys)
    pd.testing.assert_frame_equal(joined.reset_index(drop=True), whole)


def test_an_fx_exchange_moves_cash_between_positions_and_is_no_external_flow():
    # Mon DEPOSIT 1,000 EUR; Tue FX 400 EUR -> 500 USD (EUR/USD 1.25: at the market);
    # Wed EUR/USD 1.0: the 500 USD are worth 500 EUR, the account 600 + 500 = 1,100.
    book = transactions(
        ("2024-03-04", "DEPOSIT", None, np.nan, np.nan, 1000.0, "EUR"),
        ("2024-03-05", "FX", None, np.nan, np.nan, 400.0, "EUR", np.nan, 500.0, "USD"),
    )
    fx = rates(("2024-03-04", "EUR", "USD", 1.25), ("2024-03-06", "EUR", "USD", 1.0))
    panel = value_entities(
        book, NO_PRICES, pd.Timestamp("2024-03-06"), base_currencies=EUR, fx_rates=fx
    )
    eur, usd, account = (rows_of(panel, e) for e in ("A:CASH.EUR", "A:CASH.USD", "A"))
    np.testing.assert_allclose(eur["market_value"], [1000, 600, 600])
    np.testing.assert_allclose(eur["outflow"], [0, 400, 0])
    np.testing.assert_allclose(usd["holding"], [500, 500])  # from Tuesday
    np.testing.assert_allclose(usd["inflow"], [400, 0])  # 500 USD at 0.8
    np.testing.assert_allclose(usd["market_value"], [400, 500])
    np.testing.assert_allclose(usd["daily_return"], [0, 0.25])
    np.testing.assert_allclose(usd["daily_return_local"], [0, 0])
    np.testing.assert_allclose(account["inflow"], [1000, 0, 0])
    np.testing.assert_allclose(account["outflow"], 0)
    np.testing.assert_allclose(account["market_value"], [1000, 1000, 1100])
    np.testing.assert_allclose(account["daily_return"], [0, 0, 0.1])
    # in local terms nothing moved: all of Wednesday's 10% is currency
    np.testing.assert_allclose(account["daily_return_local"], [0, 0, 0], atol=1e-15)
    np.testing.assert_allclose(account["fx_return"], [0, 0, 0.1], atol=1e-15)


def test_a_booked_fx_rate_overrides_the_day_s_rate_for_that_transaction_s_flows():
    # EUR/USD 1.25 (0.8 EUR per USD) all along; the custodian booked the deposit at 0.9 and
    # the purchase at 0.81: the flows use those, the values the day's rate.
    book = transactions(
        ("2024-03-04", "DEPOSIT", None, np.nan, np.nan, 1000.0, "USD", 0.9),
        ("2024-03-05", "BUY", "S", 5.0, 100.0, np.nan, "USD", 0.81),
    )
    fx = rates(("2024-03-04", "EUR", "USD", 1.25))
    closes = prices(("2024-03-04", 100), ("2024-03-05", 100))
    panel = value_entities(
        book, closes, pd.Timestamp("2024-03-05"), base_currencies=EUR, fx_rates=fx
    )
    account, cash, s = (rows_of(panel, e) for e in ("A", "A:CASH.USD", "A:S"))
    assert account["inflow"].iloc[0] == pytest.approx(900)
    assert account["market_value"].iloc[0] == pytest.approx(800)
    assert account["daily_return"].iloc[0] == pytest.approx(800 / 900 - 1)
    assert s["inflow"].iloc[0] == pytest.approx(405)  # 500 USD at the booked 0.81
    assert s["market_value"].iloc[0] == pytest.approx(400)
    assert cash["outflow"].iloc[1] == pytest.approx(405)
    assert s["daily_return_local"].iloc[0] == 0.0  # in USD the purchase made nothing


def test_a_cross_rate_goes_through_the_pivot_with_each_leg_direct_or_inverse():
    # JPY -> EUR: JPY->USD is the inverse of USD/JPY 160; USD->EUR the inverse of EUR/USD 1.25
    book = transactions(("2024-03-04", "DEPOSIT", None, np.nan, np.nan, 16000.0, "JPY"))
    fx = rates(("2024-03-01", "EUR", "USD", 1.25), ("2024-03-04", "USD", "JPY", 160.0))
    panel = value_entities(
        book, NO_PRICES, pd.Timestamp("2024-03-04"), base_currencies=EUR, fx_rates=fx
    )
    cash = rows_of(panel, "A:CASH.JPY")
    assert cash["fx_rate"].iloc[0] == pytest.approx(1 / 160 / 1.25, rel=1e-15)
    assert cash["market_value"].iloc[0] == pytest.approx(80.0, rel=1e-14)
    assert cash["fx_age_days"].iloc[0] == 3  # as old as the older leg (Friday's EUR/USD)


def test_conversion_prefers_the_direct_pair_then_its_inverse_then_the_pivot():
    fx = rates(
        ("2024-03-04", "EUR", "USD", 1.25),
        ("2024-03-04", "USD", "JPY", 160.0),
        ("2024-03-05", "JPY", "EUR", 0.006),  # a direct quote from Tuesday on
    )
    pairs = pd.DataFrame(
        {"source": ["JPY", "USD", "EUR", "GBP"], "target": ["EUR", "EUR", "EUR", "EUR"]}
    )
    rate, age = conversion_rates(fx, pairs, pd.bdate_range("2024-03-04", "2024-03-06"))
    np.testing.assert_allclose(rate[:, 0], [1 / 160 / 1.25, 0.006, 0.006])  # cross, then direct
    np.testing.assert_allclose(rate[:, 1], 0.8)  # the inverse
    np.testing.assert_allclose(rate[:, 2], 1.0)  # its own currency
    assert age[:, 1].tolist() == [0, 1, 2]
    assert np.isnan(rate[:, 3]).all()  # no GBP rate by any route: unknown, never 1


def test_a_missing_rate_leaves_the_amount_unknown_never_converted_at_1():
    # USD cash in a EUR portfolio; EUR/USD is quoted only from Wednesday.
    book = transactions(("2024-03-04", "DEPOSIT", None, np.nan, np.nan, 1000.0, "USD"))
    fx = rates(("2024-03-06", "EUR", "USD", 1.25))
    panel = value_entities(
        book, NO_PRICES, pd.Timestamp("2024-03-06"), base_currencies=EUR, fx_rates=fx
    )
    cash, account = rows_of(panel, "A:CASH.USD"), rows_of(panel, "A")
    assert cash["fx_rate"].isna().tolist() == [True, True, False]
    assert cash["market_value"].isna().tolist() == [True, True, False]
    assert account["market_value"].isna().tolist() == [True, True, False]
    assert cash["market_value_local"].tolist() == [1000, 1000, 1000]
    assert cash["market_value"].iloc[2] == pytest.approx(800)
