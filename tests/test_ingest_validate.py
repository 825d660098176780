"""Validating input files (docs/data.md): every rule, cross-row rules, and the accounting."""

from __future__ import annotations

import csv
import datetime as dt
import json

import duckdb
import pandas as pd
import pytest

from perf_pipeline.ingest import KINDS, RawFile, ValidatedInputs, validate_inputs

TODAY = dt.date(2026, 11, 30)
TX_HEADER = (
    "transaction_id,portfolio_id,account_id,security_id,trade_date,type,quantity,price,"
    "amount,fee,currency"
)
GOOD_BUY = "T1,P1,A1,S1,2024-06-03,BUY,10,100,,1,USD"
GOOD_DEPOSIT = "T0,P1,A1,,2024-06-01,DEPOSIT,,,5000,,USD"


def _csv(path: str, kind: str, header: str, *rows: str) -> RawFile:
    return RawFile(path, kind, ("\n".join((header, *rows)) + "\n").encode("utf-8"))


def _tx(*rows: str, path: str = "transactions/t.csv") -> RawFile:
    return _csv(path, "transactions", TX_HEADER, *rows)


def _run(*files: RawFile, **kwargs) -> ValidatedInputs:
    result = validate_inputs(list(files), today=TODAY, **kwargs)
    _assert_counts_reconcile(result)
    return result


def _assert_counts_reconcile(result: ValidatedInputs) -> None:
    """rows_read = accepted + rejected for every file; rejected rows and tables agree."""
    files = result.input_files
    assert (files["rows_read"] == files["rows_accepted"] + files["rows_rejected"]).all()
    for row in files.itertuples():
        rejected = result.rejected_rows
        assert row.rows_rejected == int((rejected["file"] == row.file).sum())
        if row.status == "ok" and row.kind in KINDS and row.kind != "portfolios":
            stored = getattr(result, row.kind)
            assert (stored["source_file"] == row.file).sum() == row.rows_accepted - row.duplicates
    rejected_files = set(result.rejected_files["file"])
    assert rejected_files == set(files.loc[files["status"] == "rejected", "file"])
    assert (files.loc[files["status"] == "rejected", "rows_read"] == 0).all()


def _tx_row(**changes: str) -> str:
    names = TX_HEADER.split(",")
    values = dict(zip(names, GOOD_BUY.split(","), strict=True))
    values.update(changes)
    return ",".join(values[n] for n in names)


# One row breaking one rule: (changes to a valid BUY, rule, column).
RULE_CASES = [
    ({"transaction_id": ""}, "not_null", "transaction_id"),
    ({"account_id": ""}, "not_null", "account_id"),
    ({"transaction_id": "T 1"}, "id_pattern", "transaction_id"),
    ({"portfolio_id": "P" * 65}, "id_pattern", "portfolio_id"),
    ({"security_id": "S/1"}, "id_pattern", "security_id"),
    ({"currency": "usd"}, "iso_currency", "currency"),
    ({"currency": "US"}, "iso_currency", "currency"),
    ({"type": "buy"}, "type_allowed", "type"),
    ({"trade_date": "2024-13-01"}, "date_format", "trade_date"),
    ({"trade_date": "2024-02-30"}, "date_format", "trade_date"),
    ({"trade_date": "03/06/2024"}, "date_format", "trade_date"),
    ({"trade_date": "2024-6-3"}, "date_format", "trade_date"),
    ({"quantity": "abc"}, "number_format", "quantity"),
    ({"price": '"1,5"'}, "number_format", "price"),
    ({"price": " 100"}, "number_format", "price"),
    ({"quantity": "inf"}, "finite", "quantity"),
    ({"price": "NaN"}, "finite", "price"),
    ({"fee": "-Infinity"}, "finite", "fee"),
    ({"price": "1e400"}, "finite", "price"),
    ({"trade_date": "1899-12-31"}, "date_range", "trade_date"),
    ({"trade_date": "2026-12-02"}, "date_range", "trade_date"),
    ({"quantity": "0"}, "positive", "quantity"),
    ({"price": "-100"}, "positive", "price"),
    ({"fee": "-0.01"}, "non_negative", "fee"),
    ({"security_id": ""}, "required_for_type", "security_id"),
    ({"quantity": ""}, "required_for_type", "quantity"),
    ({"type": "DIVIDEND", "amount": ""}, "required_for_type", "amount"),
    ({"type": "DEPOSIT", "amount": "0"}, "positive", "amount"),
]


@pytest.mark.parametrize(("changes", "rule", "column"), RULE_CASES)
def test_a_row_breaking_one_rule_is_rejected_with_rule_column_line_and_text(changes, rule, column):
    bad = _tx_row(transaction_id="T9", **changes) if "transaction_id" not in changes else None
    bad = bad or _tx_row(**changes)
    result = _run(_tx(GOOD_DEPOSIT, bad))
    rejected = result.rejected_rows
    assert len(rejected) == 1
    got = rejected.iloc[0]
    assert (got["file"], got["kind"], got["line"]) == ("transactions/t.csv", "transactions", 3)
    assert (got["rule"], got["column"]) == (rule, column)
    assert column in got["message"]
    expected_row = dict(zip(TX_HEADER.split(","), next(csv.reader([bad])), strict=True))
    assert json.loads(got["row"]) == expected_row
    assert result.transactions["transaction_id"].tolist() == ["T0"]


def test_accepted_row_types_values_and_fee_default():
    result = _run(_tx(GOOD_BUY, GOOD_DEPOSIT))
    tx = result.transactions
    assert tx["transaction_id"].tolist() == ["T0", "T1"]  # sorted by trade_date
    assert tx["trade_date"].dtype == "datetime64[ns]"
    assert tx["trade_date"].tolist() == [pd.Timestamp("2024-06-01"), pd.Timestamp("2024-06-03")]
    assert tx["fee"].tolist() == [0.0, 1.0]
    assert tx["quantity"].iloc[1] == 10.0
    assert pd.isna(tx["security_id"].iloc[0])
    assert tx["source_line"].tolist() == [3, 2]
    assert result.rejected_rows.empty
    assert result.input_files.iloc[0][["rows_read", "rows_accepted", "status"]].tolist() == [
        2,
        2,
        "ok",
    ]


def test_a_row_breaking_several_rules_lists_them_all_in_rule_order():
    bad = _tx_row(transaction_id="=cmd()", trade_date="2024-13-01", quantity="-1", fee="x")
    result = _run(_tx(bad))
    got = result.rejected_rows.iloc[0]
    assert got["rule"] == "id_pattern; date_format; number_format; positive"
    assert got["column"] == "transaction_id; trade_date; fee; quantity"
    assert got["message"].count("; ") == 3
    assert '"=cmd()"' in got["message"] and '"2024-13-01"' in got["message"]


def test_formula_looking_id_is_rejected_and_kept_verbatim():
    result = _run(_tx('"=HYPERLINK(""http://x"")",P1,A1,S1,2024-06-03,BUY,1,1,,,USD'))
    got = result.rejected_rows.iloc[0]
    assert (got["rule"], got["column"]) == ("id_pattern", "transaction_id")
    assert json.loads(got["row"])["transaction_id"] == '=HYPERLINK("http://x")'


def test_quoted_newlines_keep_line_numbers_of_rejected_rows():
    rows = ['T1,P1,A1,S1,2024-06-03,BUY,10,100,,1,"U\nSD"', GOOD_DEPOSIT, _tx_row(fee="-1")]
    result = _run(_tx(*rows))
    assert result.rejected_rows["line"].tolist() == [2, 5]
    assert json.loads(result.rejected_rows["row"].iloc[0])["currency"] == "U\nSD"


def test_ten_thousand_character_id_is_rejected_and_kept_whole():
    long = "x" * 10_000
    result = _run(_tx(_tx_row(transaction_id=long)))
    got = result.rejected_rows.iloc[0]
    assert got["rule"] == "id_pattern"
    assert json.loads(got["row"])["transaction_id"] == long
    assert len(got["message"]) < 300


def test_extra_columns_are_ignored_and_kept_in_row():
    file = _csv(
        "transactions/t.csv",
        "transactions",
        TX_HEADER + ",note",
        GOOD_BUY + ",hello",
        _tx_row(transaction_id="T2", fee="-1") + ",bye",
    )
    result = _run(file)
    assert "note" not in result.transactions.columns
    assert json.loads(result.rejected_rows["row"].iloc[0])["note"] == "bye"


def test_missing_nullable_columns_read_as_nulls():
    header = "transaction_id,portfolio_id,account_id,trade_date,type,amount,currency"
    result = _run(
        _csv("transactions/t.csv", "transactions", header, "T1,P1,A1,2024-06-01,DEPOSIT,5,USD")
    )
    tx = result.transactions
    assert len(tx) == 1
    assert pd.isna(tx["security_id"].iloc[0]) and pd.isna(tx["quantity"].iloc[0])
    assert tx["fee"].iloc[0] == 0.0


def test_missing_nullable_column_still_breaks_conditional_rules():
    header = "transaction_id,portfolio_id,account_id,trade_date,type,quantity,price,currency"
    result = _run(
        _csv("transactions/t.csv", "transactions", header, "T1,P1,A1,2024-06-01,BUY,1,2,USD")
    )
    assert result.rejected_rows["rule"].tolist() == ["required_for_type"]
    assert result.rejected_rows["column"].tolist() == ["security_id"]


def test_weekend_dates_and_today_plus_one_are_accepted_later_dates_rejected():
    saturday = _tx_row(transaction_id="T1", trade_date="2024-06-01")
    tomorrow = _tx_row(transaction_id="T2", trade_date="2026-12-01")
    after = _tx_row(transaction_id="T3", trade_date="2026-12-02")
    result = _run(_tx(saturday, tomorrow, after))
    assert result.transactions["transaction_id"].tolist() == ["T1", "T2"]
    assert result.rejected_rows["line"].tolist() == [4]
    assert result.rejected_rows["rule"].tolist() == ["date_range"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes(range(256)) * 8, "NUL bytes"),
        (b"\xff\xfe\x00garbage", "NUL bytes"),
        ("transaction_id\ncaf\u00e9\n".encode("cp1252"), "not UTF-8"),
        (b"", "empty file"),
        (b"transaction_id,portfolio_id\nT1,P1\n", "missing required column(s): account_id"),
    ],
)
def test_unreadable_file_is_rejected_whole_and_others_go_on(data, reason):
    bad = RawFile("transactions/bad.csv", "transactions", data)
    result = _run(bad, _tx(GOOD_BUY))
    assert result.rejected_files["file"].tolist() == ["transactions/bad.csv"]
    assert reason in result.rejected_files["reason"].iloc[0]
    assert result.rejected_files["size_bytes"].iloc[0] == len(data)
    assert result.transactions["transaction_id"].tolist() == ["T1"]
    status = result.input_files.set_index("file")["status"]
    assert status.to_dict() == {"transactions/bad.csv": "rejected", "transactions/t.csv": "ok"}


def test_oversized_file_is_rejected():
    small = _tx(GOOD_BUY, path="transactions/small.csv")
    big = _tx(*[_tx_row(transaction_id=f"B{i}") for i in range(50)], path="transactions/big.csv")
    result = _run(small, big, max_file_bytes=len(small.data))
    assert result.rejected_files["file"].tolist() == ["transactions/big.csv"]
    assert "over the limit" in result.rejected_files["reason"].iloc[0]
    assert result.transactions["transaction_id"].tolist() == ["T1"]


def test_unknown_kind_is_a_rejected_file():
    result = _run(RawFile("other/x.csv", "other", b"a\n1\n"), _tx(GOOD_BUY))
    assert "unknown kind" in result.rejected_files["reason"].iloc[0]


def test_header_only_file_is_read_with_zero_rows():
    result = _run(_tx())
    assert result.input_files[["rows_read", "status"]].values.tolist() == [[0, "ok"]]
    assert result.transactions.empty


def test_wrong_field_count_row_is_rejected_and_counted():
    result = _run(_tx(GOOD_BUY, "T2,P1,A1", GOOD_DEPOSIT))
    got = result.rejected_rows.iloc[0]
    assert (got["rule"], got["line"]) == ("field_count", 3)
    assert json.loads(got["row"]) == {
        "transaction_id": "T2",
        "portfolio_id": "P1",
        "account_id": "A1",
    }
    assert result.input_files["rows_read"].tolist() == [3]


def _parquet(tmp_path, path: str, kind: str, select: str) -> RawFile:
    target = tmp_path / "out.parquet"
    duckdb.execute(f"COPY ({select}) TO '{target}' (FORMAT parquet)")
    return RawFile(path, kind, target.read_bytes())


def test_identical_duplicates_across_csv_and_parquet_are_one_transaction(tmp_path):
    parquet = _parquet(
        tmp_path,
        "transactions/again.parquet",
        "transactions",
        "SELECT 'T1' AS transaction_id, 'P1' AS portfolio_id, 'A1' AS account_id, "
        "'S1' AS security_id, DATE '2024-06-03' AS trade_date, 'BUY' AS type, "
        "10.0::DOUBLE AS quantity, 100::DECIMAL(18,4) AS price, NULL::DOUBLE AS amount, "
        "1.0::DOUBLE AS fee, 'USD' AS currency",
    )
    csv_file = _tx(GOOD_BUY, GOOD_BUY.replace(",1,USD", ",1.000,USD"))
    result = _run(csv_file, parquet)
    assert result.transactions["transaction_id"].tolist() == ["T1"]
    assert result.transactions["source_file"].tolist() == ["transactions/again.parquet"]
    assert result.rejected_rows.empty
    files = result.input_files.set_index("file")
    assert files.loc["transactions/t.csv", "duplicates"] == 2
    assert files.loc["transactions/again.parquet", "duplicates"] == 0
    assert (files["rows_accepted"] == files["rows_read"]).all()


def test_null_fee_equals_zero_fee_for_duplicates():
    result = _run(_tx(_tx_row(fee=""), _tx_row(fee="0")))
    assert len(result.transactions) == 1
    assert result.input_files["duplicates"].tolist() == [1]


def test_a_column_absent_from_one_file_still_counts_for_duplicates():
    """The file without `amount` reads it as null: a copy with an amount is a conflict, a copy
    with it empty is a duplicate (every model column is compared, not only shared ones)."""
    header = TX_HEADER.replace(",amount", "")
    row = "T1,P1,A1,S1,2024-06-03,BUY,10,100,1,USD"
    without = _csv("transactions/a.csv", "transactions", header, row)
    differs = _tx("T1,P1,A1,S1,2024-06-03,BUY,10,100,999,1,USD", path="transactions/b.csv")
    result = _run(without, differs)
    assert result.transactions.empty
    assert sorted(result.rejected_rows["file"]) == ["transactions/a.csv", "transactions/b.csv"]
    assert set(result.rejected_rows["rule"]) == {"duplicate_conflict"}
    same = _tx("T1,P1,A1,S1,2024-06-03,BUY,10,100,,1,USD", path="transactions/b.csv")
    result = _run(without, same)
    assert result.transactions["source_file"].tolist() == ["transactions/a.csv"]
    assert result.input_files.set_index("file")["duplicates"].to_dict() == {
        "transactions/a.csv": 0,
        "transactions/b.csv": 1,
    }


def test_conflicting_duplicates_are_all_rejected(tmp_path):
    parquet = _parquet(
        tmp_path,
        "transactions/p.parquet",
        "transactions",
        "SELECT 'T1' AS transaction_id, 'P1' AS portfolio_id, 'A1' AS account_id, "
        "'S1' AS security_id, '2024-06-03' AS trade_date, 'BUY' AS type, "
        "11 AS quantity, 100 AS price, 1 AS fee, 'USD' AS currency",
    )
    result = _run(_tx(GOOD_BUY, GOOD_BUY, GOOD_DEPOSIT), parquet)
    assert result.transactions["transaction_id"].tolist() == ["T0"]
    rejected = result.rejected_rows
    assert sorted(zip(rejected["file"], rejected["line"], strict=True)) == [
        ("transactions/p.parquet", 1),
        ("transactions/t.csv", 2),
        ("transactions/t.csv", 3),
    ]
    assert set(rejected["rule"]) == {"duplicate_conflict"}
    assert set(rejected["column"]) == {"transaction_id"}
    parquet_row = json.loads(
        rejected.loc[rejected["file"] == "transactions/p.parquet", "row"].iloc[0]
    )
    assert parquet_row["quantity"] == 11 and parquet_row["trade_date"] == "2024-06-03"


def test_a_copy_breaking_row_rules_does_not_make_a_conflict():
    result = _run(_tx(GOOD_BUY, _tx_row(fee="-5")))
    assert result.transactions["transaction_id"].tolist() == ["T1"]
    assert result.rejected_rows["rule"].tolist() == ["non_negative"]


PRICE_HEADER = "security_id,date,close,currency"


def test_prices_and_benchmarks_collapse_identical_and_reject_conflicting_copies():
    prices = _csv(
        "prices/p.csv",
        "prices",
        PRICE_HEADER,
        "S1,2024-06-03,10,USD",
        "S1,2024-06-03,10.00,USD",
        "S1,2024-06-04,11,USD",
        "S1,2024-06-04,12,USD",
        "S2,2024-06-04,0,USD",
    )
    benchmarks = _csv(
        "benchmarks/b.csv",
        "benchmarks",
        "benchmark_id,date,close",
        "B1,2024-06-03,100",
        "B1,2024-06-03,101",
        "B1,2024-06-04,100.5",
    )
    result = _run(prices, benchmarks)
    assert result.prices[["security_id", "close"]].values.tolist() == [["S1", 10.0]]
    assert result.benchmarks["close"].tolist() == [100.5]
    by_line = result.rejected_rows.set_index(["kind", "line"])
    assert by_line.loc[("prices", 5), "rule"] == "duplicate_conflict"
    assert by_line.loc[("prices", 5), "column"] == "security_id+date"
    assert by_line.loc[("prices", 6), "rule"] == "positive"
    assert by_line.loc[("benchmarks", 2), "column"] == "benchmark_id+date"
    assert len(result.rejected_rows) == 5  # prices lines 4, 5, 6; benchmarks lines 2, 3


PORTFOLIO_HEADER = "portfolio_id,client_id,base_currency,benchmark_id"


def test_inferred_portfolio_takes_currency_of_earliest_transaction_and_keeps_the_others():
    rows = [
        _tx_row(transaction_id="T2", portfolio_id="P2", trade_date="2024-06-05", currency="EUR"),
        _tx_row(transaction_id="T3", portfolio_id="P2", trade_date="2024-06-04", currency="USD"),
        _tx_row(transaction_id="T1", portfolio_id="P2", trade_date="2024-06-04", currency="GBP"),
    ]
    result = _run(_tx(*rows))
    portfolios = result.portfolios
    assert portfolios.values.tolist() == [
        ["P2", "P2", "GBP", portfolios["benchmark_id"].iloc[0], True]
    ]
    assert pd.isna(portfolios["benchmark_id"].iloc[0])
    # S1 has no prices, so its trades may be in any currency (none in the base one rejected)
    assert result.transactions["transaction_id"].tolist() == ["T1", "T3", "T2"]
    assert result.rejected_rows.empty


def test_given_portfolio_base_currency_decides_and_rejected_portfolio_is_inferred():
    portfolios = _csv(
        "portfolios/p.csv",
        "portfolios",
        PORTFOLIO_HEADER,
        "P1,C1,EUR,B1",
        "P2,C2,usd,",
        "P3,C3,EUR,",
        "P3,C3,EUR,",
    )
    tx = _tx(
        _tx_row(transaction_id="T1", portfolio_id="P1", currency="USD"),
        _tx_row(transaction_id="T2", portfolio_id="P2", account_id="A2", currency="USD"),
    )
    result = _run(portfolios, tx)
    got = result.portfolios.set_index("portfolio_id")
    assert got.loc["P1", ["client_id", "base_currency", "benchmark_id", "inferred"]].tolist() == [
        "C1",
        "EUR",
        "B1",
        False,
    ]
    assert got.loc["P2", ["client_id", "base_currency", "inferred"]].tolist() == ["P2", "USD", True]
    assert not got.loc["P3", "inferred"]
    assert result.transactions["transaction_id"].tolist() == ["T1", "T2"]  # USD in EUR P1 too
    rules = result.rejected_rows.set_index("kind")["rule"]
    assert rules.to_dict() == {"portfolios": "iso_currency"}
    files = result.input_files.set_index("file")
    assert files.loc["portfolios/p.csv", ["rows_read", "rows_rejected", "duplicates"]].tolist() == [
        4,
        1,
        1,
    ]


def test_no_files_gives_empty_tables():
    result = _run()
    for name in ("portfolios", "transactions", "prices", "benchmarks", "rejected_rows"):
        assert getattr(result, name).empty
    assert list(result.rejected_rows.columns) == [
        "file", "kind", "line", "rule", "column", "message", "row",
    ]  # fmt: skip


def test_an_account_under_two_portfolios_is_rejected_whole_not_merged():
    result = _run(
        _tx(
            _tx_row(transaction_id="T1", portfolio_id="P1", account_id="A"),
            _tx_row(transaction_id="T2", portfolio_id="P2", account_id="A"),
            _tx_row(transaction_id="T3", portfolio_id="P1", account_id="B"),
        )
    )
    assert list(result.transactions["transaction_id"]) == ["T3"]
    rejected = result.rejected_rows
    assert list(rejected["rule"]) == ["account_in_one_portfolio"] * 2
    assert list(rejected["line"]) == [2, 3]
    assert set(result.portfolios["portfolio_id"]) == {"P1"}
