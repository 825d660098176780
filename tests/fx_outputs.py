"""Hand-made output rows of a portfolio in two currencies, for the publication tests.

Portfolio P1 (base EUR, client C1) has account A1 holding 10 S1 (a USD security), 1,000 USD
and 500 GBP. From Thu 2024-06-27 to Fri 2024-06-28 the rate EUR per USD goes 0.90 -> 0.918
(+2 %), S1 closes 100 -> 101 USD (+1 %), and there is no GBP rate at all:
- A1:CASH.USD: 900 -> 918 EUR; local return 0, base 0.02, fx_return 0.02.
- A1:S1: 1,000 -> 1,010 USD = 900 -> 927.18 EUR; local 0.01, base 1.01 x 1.02 - 1 = 0.0302.
- A1:CASH.GBP: 500 GBP and a local return of 0, but no EUR value, base return or fx_return
  (null, never 0): no rate.
- P1: 1,800 -> 1,845.18 EUR, base return 0.0251; local return (900 x 0 + 900 x 0.01) / 1,800
  = 0.005; fx_return 1.0251 / 1.005 - 1 = 0.02. No single local value (null).
ITD metrics on 2024-06-28 obey (1 + twr) = (1 + twr_local)(1 + fx_effect); the GBP cash has
twr_local 0 and null twr and fx_effect.
"""

import math

import pandas as pd

NAN = math.nan
DAY = pd.Timestamp("2024-06-28")


def fx_daily() -> pd.DataFrame:
    """daily_valuations rows of 2024-06-28 with the fields of several currencies."""
    rows = [
        # entity_type, entity_id, security_id, currency, mv, mv_local, r, r_local, fx_r, x
        ("cash", "A1:CASH.USD", "CASH.USD", "USD", 918.0, 1000.0, 0.02, 0.0, 0.02, 0.918),
        ("security", "A1:S1", "S1", "USD", 927.18, 1010.0, 1.01 * 1.02 - 1, 0.01, 0.02, 0.918),
        ("cash", "A1:CASH.GBP", "CASH.GBP", "GBP", NAN, 500.0, NAN, 0.0, NAN, NAN),
        ("portfolio", "P1", None, "EUR", 1845.18, NAN, 0.0251, 0.005, 1.0251 / 1.005 - 1, 1.0),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "entity_type",
            "entity_id",
            "security_id",
            "currency",
            "market_value",
            "market_value_local",
            "daily_return",
            "daily_return_local",
            "fx_return",
            "fx_rate",
        ],
    )
    frame.insert(0, "date", DAY)
    frame.insert(3, "portfolio_id", "P1")
    frame.insert(4, "account_id", ["A1", "A1", "A1", None])
    frame["twr_index"] = [1.02, 1.0302, NAN, 1.0251]
    frame["fx_age_days"] = [0.0, 0.0, NAN, 0.0]
    return frame


def fx_metrics() -> pd.DataFrame:
    """ITD performance_metrics rows of 2024-06-28 with twr_local and fx_effect."""
    rows = [
        # entity_type, entity_id, twr, twr_local, fx_effect
        ("portfolio", "P1", 0.875, 0.25, 0.5),
        ("cash", "A1:CASH.USD", 0.02, 0.0, 0.02),
        ("security", "A1:S1", 1.01 * 1.02 - 1, 0.01, 0.02),
        ("cash", "A1:CASH.GBP", NAN, 0.0, NAN),
    ]
    frame = pd.DataFrame(
        rows, columns=["entity_type", "entity_id", "twr", "twr_local", "fx_effect"]
    )
    frame["id"] = frame["entity_type"] + "#" + frame["entity_id"]
    frame["calculation_date"] = DAY
    frame["portfolio_id"] = "P1"
    frame["client_id"] = "C1"
    frame["time_period"] = "ITD"
    frame["start_date"] = pd.Timestamp("2024-06-27")
    frame["end_date"] = DAY
    frame["partial_period"] = False
    frame["calculation_method"] = "daily"
    frame["request_id"] = "run-fx"
    for name in ("mwr", "volatility", "sharpe_ratio"):  # one day: none of them
        frame[name] = NAN
    frame["max_drawdown"] = [0.0, 0.0, 0.0, NAN]
    return frame
