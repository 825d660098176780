"""Valuation engine: continuing from a carried state, or valuing a shard of portfolios, gives
exactly the rows of one run over everything (the basis of incremental, partitioned runs)."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perf_pipeline.calc.calendar import business_days
from perf_pipeline.calc.holdings import positions
from perf_pipeline.calc.valuation import state_from_closing, value_entities
from perf_pipeline.ingest import KINDS, RawFile, validate_inputs
from perf_pipeline.sample_data import generate

KEYS = ["entity_type", "entity_id", "date"]
FIGURES = ["market_value", "inflow", "outflow", "daily_return", "twr_index", "price_age_days"]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """Validated transactions and prices of a generated 5-portfolio, 14-month history."""
    root = tmp_path_factory.mktemp("input")
    generate(root, portfolios=5, years=14 / 12, seed=11)
    files = [
        RawFile(path=str(p), kind=kind, data=p.read_bytes())
        for kind in KINDS
        for p in sorted(Path(root, kind).rglob("*.csv"))
    ]
    result = validate_inputs(files, today=dt.date(2026, 1, 1))
    assert result.rejected_rows.empty
    as_of = pd.Timestamp(result.transactions["trade_date"].max()).normalize()
    return result.transactions, result.prices, as_of


def frame(panel) -> pd.DataFrame:
    return panel.to_frame().sort_values(KEYS).reset_index(drop=True)


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got = got.sort_values(KEYS).reset_index(drop=True)
    want = want.sort_values(KEYS).reset_index(drop=True)
    labels = [*KEYS, "portfolio_id", "account_id", "security_id"]
    pd.testing.assert_frame_equal(got[labels], want[labels], check_dtype=False)
    for name in FIGURES:
        np.testing.assert_allclose(
            got[name], want[name], rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=name
        )


@pytest.mark.parametrize("splits", [1, 3, 12])
def test_chained_ranges_equal_one_run(book, splits):
    transactions, prices, as_of = book
    full = frame(value_entities(transactions, prices, as_of))
    days = business_days(full["date"].min(), as_of)
    cuts = days[np.linspace(5, len(days) - 2, splits).astype(int)]
    pieces, opening = [], None
    for cut in [*cuts, as_of]:
        panel = value_entities(transactions, prices, cut, opening=opening)
        pieces.append(panel.to_frame())
        opening = panel.closing_state()
    assert_same_rows(pd.concat(pieces, ignore_index=True), full)


def test_one_more_day_needs_only_the_last_close(book):
    transactions, prices, as_of = book
    full = frame(value_entities(transactions, prices, as_of))
    days = business_days(full["date"].min(), as_of)
    yesterday = value_entities(transactions, prices, days[-2])
    today = value_entities(transactions, prices, as_of, opening=yesterday.closing_state())
    assert list(today.dates) == [as_of]
    assert_same_rows(today.to_frame(), full.loc[full["date"] == as_of])


def test_shards_together_equal_one_run(book):
    transactions, prices, as_of = book
    full = frame(value_entities(transactions, prices, as_of))
    portfolio_ids = sorted(transactions["portfolio_id"].unique())
    shards = [portfolio_ids[0::2], portfolio_ids[1::2]]
    parts = [
        value_entities(transactions, prices, as_of, portfolios=shard).to_frame() for shard in shards
    ]
    assert_same_rows(pd.concat(parts, ignore_index=True), full)


def test_sharded_and_chained_together(book):
    transactions, prices, as_of = book
    full = frame(value_entities(transactions, prices, as_of))
    portfolio_ids = sorted(transactions["portfolio_id"].unique())
    middle = business_days(full["date"].min(), as_of)[100]
    parts = []
    for shard in (portfolio_ids[:2], portfolio_ids[2:]):
        first = value_entities(transactions, prices, middle, portfolios=shard)
        rest = value_entities(
            transactions, prices, as_of, portfolios=shard, opening=first.closing_state()
        )
        parts += [first.to_frame(), rest.to_frame()]
    assert_same_rows(pd.concat(parts, ignore_index=True), full)


def test_holdings_follow_the_positions_change_log(book):
    transactions, prices, as_of = book
    panel = value_entities(transactions, prices, as_of)
    log = positions(transactions, as_of)
    entities = panel.entities
    for kind, security in (("account", None), ("security", "first")):
        column = int(np.flatnonzero(entities["entity_type"] == kind)[0])
        account = entities.loc[column, "account_id"]
        rows = log.loc[log["account_id"] == account]
        rows = (
            rows.loc[rows["security_id"].isna()]
            if security is None
            else rows.loc[rows["security_id"] == entities.loc[column, "security_id"]]
        )
        expected = (
            rows.set_index("date")["quantity"].reindex(panel.dates, method="ffill").fillna(0.0)
        )
        np.testing.assert_allclose(panel.holding[:, column], expected.to_numpy(), atol=1e-9)


def test_nothing_to_value_gives_an_empty_panel(book):
    transactions, prices, _ = book
    panel = value_entities(transactions, prices, pd.Timestamp("1990-01-01"))
    assert panel.to_frame().empty
    later = value_entities(transactions.iloc[0:0], prices, pd.Timestamp("2024-01-05"))
    assert later.entities.empty


def test_a_run_continues_from_the_stored_tables(book):
    transactions, prices, as_of = book
    full = frame(value_entities(transactions, prices, as_of))
    middle = business_days(full["date"].min(), as_of)[150]
    stored = value_entities(transactions, prices, middle).to_frame()
    first_day = stored.groupby(["entity_type", "entity_id"])["date"].transform("min")
    assert (stored["inception"] == first_day).all()
    closing = stored.loc[stored["date"] == middle]
    held = positions(transactions, middle).groupby(["account_id", "security_id"])["quantity"]
    units = closing.loc[closing["entity_type"] == "security"].set_index(
        ["account_id", "security_id"]
    )["holding"]
    assert np.allclose(units, held.last().reindex(units.index), rtol=0, atol=1e-9)
    rest = value_entities(
        transactions, prices, as_of, opening=state_from_closing(closing)
    ).to_frame()
    assert_same_rows(rest, full.loc[full["date"] > middle])


def test_float_dust_does_not_keep_an_emptied_position_or_account_invested():
    # Found in review: 4,905.98 + 4,786.05 - 9,692.03 is -1.8e-12 in binary floating point,
    # and 43,078,966.44 + 46,083,842.95 + 46,752,885.84 - 135,915,695.23 is 2.98e-8.
    rows = [
        ("T1", "A", None, "2024-06-03", "DEPOSIT", None, None, 43078966.44),
        ("T2", "A", None, "2024-06-03", "DEPOSIT", None, None, 46083842.95),
        ("T3", "A", None, "2024-06-04", "DEPOSIT", None, None, 46752885.84),
        ("T4", "A", None, "2024-06-05", "WITHDRAWAL", None, None, 135915695.23),
        ("T5", "B", None, "2024-06-03", "DEPOSIT", None, None, 1e7),
        ("T6", "B", "X", "2024-06-03", "BUY", 4905.98, 1000.0, None),
        ("T7", "B", "X", "2024-06-04", "BUY", 4786.05, 1000.0, None),
        ("T8", "B", "X", "2024-06-05", "SELL", 9692.03, 1000.0, None),
    ]
    tx = pd.DataFrame(
        rows,
        columns=[
            "transaction_id",
            "account_id",
            "security_id",
            "trade_date",
            "type",
            "quantity",
            "price",
            "amount",
        ],
    )
    tx = tx.assign(
        portfolio_id="P", fee=0.0, currency="USD", trade_date=pd.to_datetime(tx["trade_date"])
    )
    closes = pd.DataFrame(
        {
            "security_id": "X",
            "currency": "USD",
            "date": pd.bdate_range("2024-06-03", "2024-06-14"),
            "close": 1000.0 * 1.05 ** np.arange(10),
        }
    )
    daily = value_entities(tx, closes, pd.Timestamp("2024-06-14")).to_frame()
    after = daily.loc[daily["date"] > "2024-06-05"]
    for entity in ("A", "B:X"):
        rows = after.loc[after["entity_id"] == entity]
        assert (rows["market_value"] == 0).all(), entity
        assert rows["daily_return"].isna().all(), entity  # not invested: null, links as 0


def test_the_positions_log_snaps_float_dust_too():
    # Even pandas' compensated running sum leaves 1.16e-10 here: 62,717.92 + 825,487.81 units
    # bought, 888,205.73 sold. The positions table must show the sold-out position at 0.
    tx = pd.DataFrame(
        {
            "transaction_id": ["T1", "T2", "T3"],
            "portfolio_id": "P",
            "account_id": "B",
            "security_id": "X",
            "trade_date": pd.to_datetime(["2024-06-03", "2024-06-04", "2024-06-05"]),
            "type": ["BUY", "BUY", "SELL"],
            "quantity": [62717.92, 825487.81, 888205.73],
            "price": 1.0,
            "amount": np.nan,
            "fee": 0.0,
            "currency": "USD",
        }
    )
    log = positions(tx, pd.Timestamp("2024-06-05"))
    units = log.loc[log["security_id"] == "X", "quantity"].tolist()
    assert units == [62717.92, 62717.92 + 825487.81, 0.0]


def tx_rows(rows) -> pd.DataFrame:
    return pd.DataFrame(
        rows,
        columns=[
            "transaction_id",
            "portfolio_id",
            "account_id",
            "security_id",
            "trade_date",
            "type",
            "quantity",
            "price",
            "amount",
        ],
    ).assign(trade_date=lambda f: pd.to_datetime(f["trade_date"]), fee=0.0, currency="USD")


def closes(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["security_id", "date", "close"]).assign(
        date=lambda f: pd.to_datetime(f["date"]), currency="USD"
    )


def chained(transactions, prices, cut, as_of) -> pd.DataFrame:
    first = value_entities(transactions, prices, cut)
    rest = value_entities(transactions, prices, as_of, opening=first.closing_state())
    return pd.concat([first.to_frame(), rest.to_frame()], ignore_index=True)


@pytest.mark.parametrize("later_trade", [True, False])
def test_a_cut_after_a_day_an_account_is_worth_nothing_keeps_its_cash(later_trade):
    # Found in review: a BUY with no deposit leaves cash -100 and a position worth 100, so
    # the account and the portfolio are worth 0 and not yet incepted on the cut day; the
    # continued run must still know the -100 (it was read from the stored rows, which have
    # no row for them: the value came out 100 too high, or the run crashed).
    rows = [("T1", "P", "A", "S", "2024-06-03", "BUY", 10.0, 10.0, None)]
    if later_trade:
        rows.append(("T2", "P", "A", None, "2024-06-06", "DEPOSIT", None, None, 5.0))
    transactions = tx_rows(rows)
    prices = closes([("S", "2024-06-03", 10.0), ("S", "2024-06-05", 11.0)])
    as_of = pd.Timestamp("2024-06-07")
    full = value_entities(transactions, prices, as_of).to_frame()
    got = chained(transactions, prices, pd.Timestamp("2024-06-03"), as_of)
    assert_same_rows(got, full)
    portfolio = full.loc[full["entity_type"] == "portfolio"].set_index("date")["market_value"]
    assert portfolio.loc["2024-06-05"] == pytest.approx(10.0)  # 10 x 11 - 100, by hand


def test_dust_snaps_alike_on_both_sides_of_a_cut():
    # 1,000,000.1 - 999,999.9 - 0.2 is not 0 in binary; a run from the start snaps it against
    # the whole turnover, and so must a run continued after the second trade.
    transactions = tx_rows(
        [
            ("T1", "P", "A", None, "2024-06-03", "DEPOSIT", None, None, 5e7),
            ("T2", "P", "A", "S", "2024-06-03", "BUY", 1_000_000.1, 1.0, None),
            ("T3", "P", "A", "S", "2024-06-04", "SELL", 999_999.9, 1.0, None),
            ("T4", "P", "A", "S", "2024-06-06", "SELL", 0.2, 1.0, None),
        ]
    )
    prices = closes([("S", "2024-06-03", 1.0)])
    as_of = pd.Timestamp("2024-06-07")
    full = value_entities(transactions, prices, as_of).to_frame()
    got = chained(transactions, prices, pd.Timestamp("2024-06-04"), as_of)
    assert_same_rows(got, full)
    position = got.loc[got["entity_type"] == "security"].set_index("date")
    assert position.loc["2024-06-07", "holding"] == 0.0
    assert position.loc["2024-06-07", "market_value"] == 0.0
