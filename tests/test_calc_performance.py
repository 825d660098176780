"""performance_metrics on small hand-built books: the rules for periods never invested."""

import numpy as np
import pandas as pd

from perf_pipeline.calc import performance_metrics, value_entities


def test_a_period_never_invested_has_twr_0_and_every_other_figure_null():
    # Account A is emptied on 2024-05-29; June (MTD and 1M at 2024-06-28) is never invested.
    tx = pd.DataFrame(
        {
            "transaction_id": ["T1", "T2"],
            "portfolio_id": "P",
            "account_id": "A",
            "security_id": None,
            "trade_date": pd.to_datetime(["2024-05-01", "2024-05-29"]),
            "type": ["DEPOSIT", "WITHDRAWAL"],
            "quantity": np.nan,
            "price": np.nan,
            "amount": [1000.0, 1000.0],
            "fee": 0.0,
            "currency": "USD",
        }
    )
    prices = pd.DataFrame(columns=["security_id", "date", "close", "currency"])
    days = pd.bdate_range("2024-04-01", "2024-06-28")
    benchmarks = pd.DataFrame(
        {"benchmark_id": "B", "date": days, "close": 100 * 1.001 ** np.arange(len(days))}
    )
    portfolios = pd.DataFrame(
        {"portfolio_id": ["P"], "client_id": ["C"], "base_currency": ["USD"], "benchmark_id": ["B"]}
    )
    panel = value_entities(tx, prices, pd.Timestamp("2024-06-28"))
    metrics, _ = performance_metrics(panel, portfolios, benchmarks)
    june = metrics.loc[
        (metrics["calculation_date"] == "2024-06-28")
        & metrics["time_period"].isin(["MTD", "1M"])
        & (metrics["entity_id"] == "A")
    ]
    assert len(june) == 2
    assert (june["twr"] == 0).all()
    figures = [c for c in metrics.columns if metrics[c].dtype == float and c != "twr"]
    assert june[figures].isna().all().all(), june[figures].T
