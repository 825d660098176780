"""Several currencies on the input side (docs/data.md): the fx_rates input, ISO 4217 codes,
FX transactions and their optional columns, one currency per security, transactions in their
security's currency, the rates' freshness metadata.

test_ingest_incremental_rules runs every scenario here a second time through the cached path
(verdicts stored as Parquet, read back and combined) and compares the two results whole.
"""

from __future__ import annotations

import datetime as dt
import io
import json

import handmade
import numpy as np
import pandas as pd
import pytest

from perf_pipeline.ingest import KINDS, RawFile, ValidatedInputs, validate_inputs
from perf_pipeline.ingest.schemas import CURRENCY_CODES, iso_currency

TODAY = dt.date(2026, 11, 30)
TX_COLUMNS = (
    "transaction_id,portfolio_id,account_id,security_id,trade_date,type,quantity,price,"
    "amount,fee,currency"
)
TX_HEADER = TX_COLUMNS + ",fx_rate,counter_amount,counter_currency"
FX_HEADER = "date,base,quote,rate,source"
PRICE_HEADER = "security_id,date,close,currency"
PORTFOLIO_HEADER = "portfolio_id,client_id,base_currency,benchmark_id"
DEPOSIT = "T0,P1,A1,,2024-06-03,DEPOSIT,,,5000,,EUR,,,"
FX = "T1,P1,A1,,2024-06-04,FX,,,1000,,EUR,,1085.5,USD"
BUY = "T2,P1,A1,S1,2024-06-05,BUY,10,100,,1,USD,0.92,,"
GOOD_RATE = "2024-06-03,EUR,USD,1.0851,ECB reference"


def _csv(path: str, kind: str, header: str, *rows: str) -> RawFile:
    return RawFile(path, kind, ("\n".join((header, *rows)) + "\n").encode("utf-8"))


def _tx(*rows: str, path: str = "transactions/t.csv", header: str = TX_HEADER) -> RawFile:
    return _csv(path, "transactions", header, *rows)


def _rates(*rows: str, path: str = "fx_rates/r.csv") -> RawFile:
    return _csv(path, "fx_rates", FX_HEADER, *rows)


def _prices(*rows: str, path: str = "prices/p.csv") -> RawFile:
    return _csv(path, "prices", PRICE_HEADER, *rows)


def _run(*files: RawFile, **kwargs) -> ValidatedInputs:
    result = validate_inputs(list(files), today=TODAY, **kwargs)
    files_table = result.input_files
    assert (
        files_table["rows_read"] == files_table["rows_accepted"] + files_table["rows_rejected"]
    ).all()
    for row in files_table.itertuples():
        assert row.rows_rejected == int((result.rejected_rows["file"] == row.file).sum())
        if row.status == "ok" and row.kind != "portfolios":
            stored = getattr(result, row.kind)
            assert (stored["source_file"] == row.file).sum() == row.rows_accepted - row.duplicates
    return result


def _rejects(result: ValidatedInputs) -> list[tuple[str, int, str, str]]:
    r = result.rejected_rows
    return list(zip(r["file"], r["line"].astype(int), r["rule"], r["column"], strict=True))


# --- ISO 4217 -------------------------------------------------------------------------------

# Refused: wrong case, not ISO, withdrawn (HRK 2023, DEM 2002), not money (metals, units of
# account, testing, "no currency"), look-alikes in other scripts, padding, oversized.
BAD_CODES = [
    "usd", "Usd", "US", "USDD", "ABC", "XXX", "XTS", "XAU", "XDR", "HRK", "DEM",
    "ＵＳＤ", "ÜSD", "USD ", " USD", "U\u200bSD", "U" * 10_000,
]  # fmt: skip
# Accepted: majors, a fund code, a CFA franc and the CFP franc (X-codes that are money).
GOOD_CODES = ["USD", "EUR", "JPY", "GBP", "CHF", "CLF", "XOF", "XPF"]


def test_the_code_list_is_iso_4217_without_what_is_no_money():
    assert set(GOOD_CODES) <= CURRENCY_CODES
    assert not {"XXX", "XTS", "XAU", "XAG", "XPD", "XPT", "XDR", "HRK", "DEM"} & CURRENCY_CODES
    assert 150 <= len(CURRENCY_CODES) <= 190  # ISO 4217 lists about 180 active codes


def test_iso_currency_looks_up_each_distinct_value_once_and_treats_null_as_no_code():
    cells = pd.Series(["EUR", None, "usd", "EUR", "JPY", None] * 50_000, dtype="str")
    got = iso_currency(cells)
    assert got.index.equals(cells.index)
    assert got.tolist() == [True, False, False, True, True, False] * 50_000


def _with_code(where: str, code: str) -> list[RawFile]:
    """A minimal valid input whose currency column ``where`` holds ``code``."""
    if where == "base_currency":
        return [
            _csv("portfolios/p.csv", "portfolios", PORTFOLIO_HEADER, f'P1,C1,"{code}",'),
            _tx(DEPOSIT),
        ]
    if where == "transactions.currency":
        return [_tx(DEPOSIT.replace(",EUR,", f',"{code}",'))]
    if where == "counter_currency":
        return [_tx(FX.replace(",USD", f',"{code}"'))]
    if where == "prices.currency":
        return [_prices(f'S1,2024-06-03,10,"{code}"')]
    row = {"base": f'"{code}",USD', "quote": f'EUR,"{code}"'}[where]
    return [_rates(f"2024-06-03,{row},1.1,")]


WHERES = ["base_currency", "transactions.currency", "counter_currency", "prices.currency",
          "base", "quote"]  # fmt: skip
COLUMN_OF = {"base_currency": "base_currency", "transactions.currency": "currency",
             "counter_currency": "counter_currency", "prices.currency": "currency",
             "base": "base", "quote": "quote"}  # fmt: skip


@pytest.mark.parametrize("where", WHERES)
@pytest.mark.parametrize("code", BAD_CODES, ids=lambda c: c if len(c) < 9 else "oversized")
def test_every_currency_column_refuses_what_is_no_active_iso_code(where, code):
    result = _run(*_with_code(where, code))
    [(_, line, rule, column)] = _rejects(result)
    assert (line, rule, column) == (2, "iso_currency", COLUMN_OF[where])
    message = result.rejected_rows["message"].iloc[0]
    assert "ISO 4217" in message
    assert len(message) < 400  # an oversized cell is shortened in the message
    assert json.loads(result.rejected_rows["row"].iloc[0])[COLUMN_OF[where]] == code


@pytest.mark.parametrize("where", WHERES)
@pytest.mark.parametrize("code", ["CLF", "XOF", "JPY"])
def test_every_currency_column_accepts_an_active_code(where, code):
    if where in ("base", "counter_currency") and code == "USD":
        pytest.skip("the pair would be USD/USD")
    result = _run(*_with_code(where, code))
    assert result.rejected_rows.empty


# --- fx_rates ---------------------------------------------------------------------------------


def test_a_valid_rate_file_gives_typed_rows_sorted_by_key():
    result = _run(
        _rates(
            "2024-06-04,EUR,USD,1.0863,",
            GOOD_RATE,
            "2024-06-03,EUR,JPY,169.1,Börse Frankfurt — 16:00 ✓",
        )
    )
    fx = result.fx_rates
    assert list(fx.columns) == [
        "date", "base", "quote", "rate", "source", "source_file", "source_line",
    ]  # fmt: skip
    assert fx["date"].dtype == "datetime64[ns]" and fx["rate"].dtype == "float64"
    assert fx[["base", "quote"]].values.tolist() == [["EUR", "JPY"], ["EUR", "USD"], ["EUR", "USD"]]
    assert fx["rate"].tolist() == [169.1, 1.0851, 1.0863]
    assert fx["source"].iloc[0] == "Börse Frankfurt — 16:00 ✓"
    assert pd.isna(fx["source"].iloc[2])
    assert fx["source_line"].tolist() == [4, 3, 2]
    assert result.rejected_rows.empty


# (row, rule, column): one rule broken by one rate row.
RATE_CASES = [
    ("2024-06-03,EUR,EUR,1,", "distinct_currencies", "quote"),
    ("2024-06-03,EUR,USD,0,", "positive", "rate"),
    ("2024-06-03,EUR,USD,-1.08,", "positive", "rate"),
    ("2024-06-03,EUR,USD,-0,", "positive", "rate"),
    ("2024-06-03,EUR,USD,NaN,", "finite", "rate"),
    ("2024-06-03,EUR,USD,inf,", "finite", "rate"),
    ("2024-06-03,EUR,USD,-Infinity,", "finite", "rate"),
    ("2024-06-03,EUR,USD,1e400,", "finite", "rate"),
    ('2024-06-03,EUR,USD,"1,08",', "number_format", "rate"),
    ("2024-06-03,EUR,USD,1.08 ,", "number_format", "rate"),
    ("2024-06-03,EUR,USD,١٫٠٨,", "number_format", "rate"),  # Arabic-Indic digits
    ("2024-06-03,EUR,USD,0x10,", "number_format", "rate"),
    ("2024-06-03,EUR,USD,,", "not_null", "rate"),
    ("2024-06-03,,USD,1.08,", "not_null", "base"),
    (",EUR,USD,1.08,", "not_null", "date"),
    ("2024-02-30,EUR,USD,1.08,", "date_format", "date"),
    ("03/06/2024,EUR,USD,1.08,", "date_format", "date"),
    ("1899-12-31,EUR,USD,1.08,", "date_range", "date"),
    ("2026-12-02,EUR,USD,1.08,", "date_range", "date"),
    ("2024-06-03,EUR,USD,1.08," + "x" * 257, "max_length", "source"),
]


@pytest.mark.parametrize(("row", "rule", "column"), RATE_CASES)
def test_a_rate_row_breaking_one_rule_is_rejected_with_rule_column_and_line(row, rule, column):
    result = _run(_rates(GOOD_RATE.replace("2024-06-03", "2024-06-10"), row))
    assert _rejects(result) == [("fx_rates/r.csv", 3, rule, column)]
    assert result.fx_rates["date"].tolist() == [pd.Timestamp("2024-06-10")]


def test_extreme_but_finite_rates_and_a_long_source_within_the_limit_are_accepted():
    result = _run(
        _rates(
            "2024-06-03,EUR,JPY,1e308,",  # > 0 and finite: what the rule asks
            "2024-06-03,JPY,EUR,1e-300,",
            "2024-06-03,EUR,USD,1.08," + "s" * 256,
        )
    )
    assert result.rejected_rows.empty
    assert sorted(result.fx_rates["rate"].tolist()) == [1e-300, 1.08, 1e308]


def test_a_rate_row_breaking_several_rules_lists_them_all_in_rule_order():
    result = _run(_rates("2024-13-01,usd,usd,-1,"))
    [row] = result.rejected_rows.itertuples()
    assert row.rule == "iso_currency; iso_currency; date_format; positive; distinct_currencies"
    assert row.column == "base; quote; date; rate; quote"


def test_the_same_rate_twice_is_one_and_different_rates_for_one_key_reject_every_copy():
    first = _rates(
        "2024-06-03,EUR,USD,1.0851,ECB",
        "2024-06-04,EUR,USD,1.0863,ECB",
        "2024-06-04,GBP,USD,1.27,",
        path="fx_rates/a.csv",
    )
    second = _rates(
        "2024-06-03,EUR,USD,1.08510,WM/Reuters",  # same rate, another source: a duplicate
        "2024-06-04,EUR,USD,1.0870,WM/Reuters",  # a conflict with a.csv line 3
        "2024-06-04,EUR,USD,1.0863,",  # and a third copy of that key
        "2024-06-04,USD,GBP,0.787,",  # the inverse pair is another key
        path="fx_rates/b.csv",
    )
    result = _run(second, first)  # files are taken in path order whatever the order given
    fx = result.fx_rates
    assert fx[["date", "base", "quote", "rate", "source"]].values.tolist() == [
        [pd.Timestamp("2024-06-03"), "EUR", "USD", 1.0851, "ECB"],
        [pd.Timestamp("2024-06-04"), "GBP", "USD", 1.27, fx["source"].iloc[1]],
        [pd.Timestamp("2024-06-04"), "USD", "GBP", 0.787, fx["source"].iloc[2]],
    ]
    assert _rejects(result) == [
        ("fx_rates/a.csv", 3, "duplicate_conflict", "date+base+quote"),
        ("fx_rates/b.csv", 3, "duplicate_conflict", "date+base+quote"),
        ("fx_rates/b.csv", 4, "duplicate_conflict", "date+base+quote"),
    ]
    files = result.input_files.set_index("file")
    assert files.loc["fx_rates/b.csv", ["rows_read", "rows_rejected", "duplicates"]].tolist() == [
        4,
        2,
        1,
    ]


def test_a_rate_file_without_a_required_column_or_over_the_size_limit_is_rejected_whole():
    no_rate = _csv("fx_rates/a.csv", "fx_rates", "date,base,quote,source", "2024-06-03,EUR,USD,x")
    big = _rates(
        *[GOOD_RATE.replace("03", f"{d:02d}") for d in range(1, 29)], path="fx_rates/b.csv"
    )
    result = _run(no_rate, big, max_file_bytes=200)
    reasons = result.rejected_files.set_index("file")["reason"]
    assert reasons["fx_rates/a.csv"] == "missing required column(s): rate"
    assert "200" in reasons["fx_rates/b.csv"]
    assert result.fx_rates.empty and result.rejected_rows.empty


def test_a_parquet_rate_file_with_typed_columns_is_read_like_csv(tmp_path):
    import duckdb

    path = tmp_path / "r.parquet"
    duckdb.sql(
        "SELECT DATE '2024-06-03' AS date, 'EUR' AS base, 'USD' AS quote, 1.0851::DOUBLE AS rate, "
        "NULL::VARCHAR AS source UNION ALL "
        "SELECT DATE '2024-06-04', 'EUR', 'USD', -1.0, 'x'"
    ).write_parquet(str(path))
    result = _run(RawFile("fx_rates/r.parquet", "fx_rates", path.read_bytes()))
    assert result.fx_rates[["date", "rate"]].values.tolist() == [
        [pd.Timestamp("2024-06-03"), 1.0851]
    ]
    assert _rejects(result) == [("fx_rates/r.parquet", 2, "positive", "rate")]


def test_a_large_rate_file_validates_every_row():
    days = pd.bdate_range("1990-01-01", periods=9_000)
    pairs = [("EUR", "USD"), ("GBP", "USD"), ("USD", "JPY"), ("EUR", "CHF"), ("XAU", "USD")]
    body = io.StringIO()
    body.write(FX_HEADER + "\n")
    for base, quote in pairs:
        for i, day in enumerate(days):
            body.write(f"{day:%Y-%m-%d},{base},{quote},{1 + i % 97 / 100},\n")
    result = _run(RawFile("fx_rates/big.csv", "fx_rates", body.getvalue().encode()))
    assert len(result.fx_rates) == 4 * len(days)
    assert set(result.rejected_rows["rule"]) == {"iso_currency"}  # every XAU row
    assert len(result.rejected_rows) == len(days)


# --- transactions ---------------------------------------------------------------------------


def test_an_fx_transaction_and_the_optional_columns_are_kept_typed():
    result = _run(_tx(DEPOSIT, FX, BUY))
    tx = result.transactions.set_index("transaction_id")
    assert result.rejected_rows.empty
    assert tx.loc[
        "T1", ["type", "amount", "currency", "counter_amount", "counter_currency"]
    ].tolist() == [
        "FX",
        1000.0,
        "EUR",
        1085.5,
        "USD",
    ]
    assert tx.loc["T2", "fx_rate"] == 0.92
    assert pd.isna(tx.loc["T0", "fx_rate"]) and pd.isna(tx.loc["T1", "fx_rate"])
    assert pd.isna(tx.loc["T2", "counter_amount"]) and pd.isna(tx.loc["T2", "counter_currency"])
    assert tx["fx_rate"].dtype == "float64" and tx["counter_amount"].dtype == "float64"


def test_a_file_without_the_optional_columns_gets_them_empty():
    old = _tx("T0,P1,A1,,2024-06-03,DEPOSIT,,,5000,,EUR", header=TX_COLUMNS)
    only_rate = _tx(
        "T2,P1,A1,S1,2024-06-05,BUY,10,100,,1,USD,0.92",
        header=TX_COLUMNS + ",fx_rate",
        path="transactions/u.csv",
    )
    result = _run(old, only_rate)
    tx = result.transactions
    assert tx["transaction_id"].tolist() == ["T0", "T2"]
    assert np.isnan(tx["fx_rate"].iloc[0]) and tx["fx_rate"].iloc[1] == 0.92
    assert tx["counter_amount"].isna().all() and tx["counter_currency"].isna().all()
    assert tx["fx_rate"].dtype == "float64" and tx["counter_amount"].dtype == "float64"


def _row(base: str, **changes: str) -> str:
    names = TX_HEADER.split(",")
    values = dict(zip(names, base.split(","), strict=True))
    values.update(changes)
    return ",".join(values[n] for n in names)


# (base row, changes, rule, column)
TX_CASES = [
    (FX, {"counter_amount": ""}, "required_for_type", "counter_amount"),
    (FX, {"counter_currency": ""}, "required_for_type", "counter_currency"),
    (FX, {"amount": ""}, "required_for_type", "amount"),
    (FX, {"counter_amount": "0"}, "positive", "counter_amount"),
    (FX, {"counter_amount": "-5"}, "positive", "counter_amount"),
    (FX, {"amount": "-1000"}, "positive", "amount"),
    (FX, {"counter_amount": "nan"}, "finite", "counter_amount"),
    (FX, {"counter_currency": "EUR"}, "distinct_currencies", "counter_currency"),
    (FX, {"counter_currency": "eur"}, "iso_currency", "counter_currency"),
    (FX, {"type": "fx", "counter_amount": "", "counter_currency": ""}, "type_allowed", "type"),
    (DEPOSIT, {"counter_amount": "5"}, "only_for_type", "counter_amount"),
    (DEPOSIT, {"counter_currency": "USD"}, "only_for_type", "counter_currency"),
    (BUY, {"counter_currency": "EUR"}, "only_for_type", "counter_currency"),
    (BUY, {"fx_rate": "0"}, "positive", "fx_rate"),
    (BUY, {"fx_rate": "-0.92"}, "positive", "fx_rate"),
    (BUY, {"fx_rate": "inf"}, "finite", "fx_rate"),
    (BUY, {"fx_rate": '"0,92"'}, "number_format", "fx_rate"),
]


@pytest.mark.parametrize(("base", "changes", "rule", "column"), TX_CASES)
def test_a_transaction_breaking_one_currency_rule_is_rejected(base, changes, rule, column):
    bad = _row(base, transaction_id="T9", **changes)
    result = _run(_tx(DEPOSIT.replace("T0", "T8"), bad))
    assert _rejects(result) == [("transactions/t.csv", 3, rule, column)]
    assert result.transactions["transaction_id"].tolist() == ["T8"]


def test_security_transactions_must_be_in_the_security_currency_others_in_any():
    prices = _prices("S1,2024-06-03,100,USD", "S2,2024-06-03,5000,JPY")
    tx = _tx(
        DEPOSIT,  # EUR cash: any currency
        "T1,P1,A1,S1,2024-06-04,BUY,10,100,,1,USD,,,",
        "T2,P1,A1,S1,2024-06-04,BUY,10,92,,1,EUR,,,",  # S1 is USD
        "T3,P1,A1,S1,2024-06-05,DIVIDEND,,,12,,EUR,,,",  # S1 is USD
        "T4,P1,A1,S2,2024-06-05,TRANSFER_IN,1,5000,,,USD,,,",  # S2 is JPY
        "T5,P1,A1,S2,2024-06-05,SELL,1,5000,,,JPY,,,",
        "T6,P1,A1,,2024-06-06,FEE,,,3,,GBP,,,",
        "T7,P1,A1,S1,2024-06-06,INTEREST,,,3,,CHF,,,",  # interest is not a security type
        "T8,P1,A1,S9,2024-06-06,BUY,1,10,,,CHF,,,",  # S9 has no price: any currency
    )
    result = _run(prices, tx)
    assert _rejects(result) == [
        ("transactions/t.csv", 4, "currency_matches_security", "currency"),
        ("transactions/t.csv", 5, "currency_matches_security", "currency"),
        ("transactions/t.csv", 6, "currency_matches_security", "currency"),
    ]
    assert result.transactions["transaction_id"].tolist() == ["T0", "T1", "T5", "T6", "T7", "T8"]
    message = result.rejected_rows["message"].iloc[0]
    assert message == 'currency "EUR" differs from the currency of the security\'s prices'


def test_a_portfolio_in_one_currency_accepts_transactions_in_another():
    portfolios = _csv("portfolios/p.csv", "portfolios", PORTFOLIO_HEADER, "P1,C1,GBP,")
    result = _run(portfolios, _tx(DEPOSIT, FX, BUY), _prices("S1,2024-06-05,100,USD"))
    assert result.rejected_rows.empty
    assert len(result.transactions) == 3
    assert result.portfolios["base_currency"].tolist() == ["GBP"]


# --- prices: one currency per security ---------------------------------------------------------


def test_the_minority_currency_of_a_security_is_rejected_across_files_and_decides_trades():
    a = _prices(
        "S1,2024-06-03,100,USD",
        "S1,2024-06-04,101,USD",
        "S1,2024-06-05,93,EUR",
        "S2,2024-06-03,5000,JPY",
        path="prices/a.csv",
    )
    b = _prices(
        "S1,2024-06-06,102,USD",
        "S1,2024-06-07,94,EUR",
        "S1,2024-06-03,100,USD",  # a duplicate counts once
        path="prices/b.csv",
    )
    tx = _tx(
        "T1,P1,A1,S1,2024-06-05,BUY,1,93,,,EUR,,,",
        "T2,P1,A1,S1,2024-06-05,BUY,1,101,,,USD,,,",
    )
    result = _run(a, b, tx)
    assert (
        result.prices.loc[result.prices["security_id"] == "S1", "currency"].tolist() == ["USD"] * 3
    )
    assert _rejects(result) == [
        ("prices/a.csv", 4, "one_currency_per_security", "currency"),
        ("prices/b.csv", 3, "one_currency_per_security", "currency"),
        ("transactions/t.csv", 2, "currency_matches_security", "currency"),
    ]
    assert result.transactions["transaction_id"].tolist() == ["T2"]


def test_a_tie_between_two_currencies_rejects_every_price_of_the_security():
    prices = _prices(
        "S1,2024-06-03,100,USD",
        "S1,2024-06-04,93,EUR",
        "S2,2024-06-03,10,USD",
    )
    tx = _tx("T1,P1,A1,S1,2024-06-05,BUY,1,93,,,GBP,,,")  # S1 has no price left: accepted
    result = _run(prices, tx)
    assert result.prices["security_id"].tolist() == ["S2"]
    assert _rejects(result) == [
        ("prices/p.csv", 2, "one_currency_per_security", "currency"),
        ("prices/p.csv", 3, "one_currency_per_security", "currency"),
    ]
    assert result.transactions["transaction_id"].tolist() == ["T1"]


# --- single currency ----------------------------------------------------------------------------


def test_a_single_currency_input_validates_to_the_rows_it_gave_before():
    files = [
        RawFile(f"{kind}/x.csv", kind, text.encode())
        for kind, text in (
            ("transactions", handmade.TRANSACTIONS),
            ("prices", handmade.PRICES),
            ("benchmarks", handmade.BENCHMARKS),
            ("portfolios", handmade.PORTFOLIOS),
        )
    ]
    result = _run(*files)
    assert result.rejected_rows.empty and result.fx_rates.empty
    expected = pd.read_csv(io.StringIO(handmade.TRANSACTIONS), parse_dates=["trade_date"])
    expected["fee"] = expected["fee"].fillna(0.0)
    got = result.transactions
    old_columns = TX_COLUMNS.split(",")
    assert list(got.columns) == [
        *old_columns, "fx_rate", "counter_amount", "counter_currency", "source_file",
        "source_line",
    ]  # fmt: skip
    pd.testing.assert_frame_equal(
        got[old_columns].astype(object).where(got[old_columns].notna(), None),
        expected[old_columns].astype(object).where(expected[old_columns].notna(), None),
        check_dtype=False,
    )
    assert got[["fx_rate", "counter_amount", "counter_currency"]].isna().all().all()
    prices = pd.read_csv(io.StringIO(handmade.PRICES), parse_dates=["date"])
    assert result.prices[["security_id", "date", "close", "currency"]].values.tolist() == (
        prices.values.tolist()
    )


# --- kinds, sensors and the asset's metadata ---------------------------------------------------


def test_fx_rates_is_an_input_kind_the_sensors_start_runs_for():
    from perf_pipeline.resources.input_store import InputObject
    from perf_pipeline.sensors.runs import skip_reason

    assert "fx_rates" in KINDS
    assert skip_reason(InputObject("fx_rates/2024/r.csv", "fx_rates", "e", 10)) is None
    assert skip_reason(InputObject("fx/r.csv", "fx", "e", 10)) is not None


def test_rate_freshness_in_business_days_by_pair():
    from perf_pipeline.assets.inputs import fx_rates_metadata, rate_freshness

    fx = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-05-30", "2024-05-31", "2024-06-07", "2024-06-11"]),
            "base": ["GBP", "GBP", "EUR", "USD"],
            "quote": ["USD", "USD", "USD", "JPY"],
            "rate": [1.27, 1.28, 1.08, 157.0],
        }
    )
    today = dt.date(2024, 6, 10)  # a Monday
    got = rate_freshness(fx, today)
    # GBP/USD last on Fri 05-31: Fri 31 + Mon 3 .. Fri 7 = 6 business days before Mon 06-10;
    # EUR/USD on Fri 06-07: 1; USD/JPY dated tomorrow: 0.
    assert got[["base", "quote", "age_business_days"]].values.tolist() == [
        ["GBP", "USD", 6],
        ["EUR", "USD", 1],
        ["USD", "JPY", 0],
    ]
    rejected = pd.DataFrame({"kind": ["fx_rates", "prices", "fx_rates"]})
    meta = fx_rates_metadata(fx, rejected, today)
    assert meta["rejected"] == 2 and meta["pairs"] == 3
    assert meta["stalest_pair_age_business_days"] == 6
    assert meta["freshest_pair_age_business_days"] == 0
    assert meta["stalest_pair_latest_date"] == "2024-05-31"
    pairs = [record.data for record in meta["latest_per_pair"].value.records]
    assert pairs[0] == {
        "base": "GBP",
        "quote": "USD",
        "latest_date": "2024-05-31",
        "age_business_days": 6,
    }
