"""The sample-data generator: layout and columns of docs/data.md, determinism, and a
replay of every transaction (independent of the generator) that checks cash and positions."""

from __future__ import annotations

import bisect
import csv
import re
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from perf_pipeline.sample_data import generate

ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
TYPES = {
    "DEPOSIT",
    "WITHDRAWAL",
    "BUY",
    "SELL",
    "DIVIDEND",
    "INTEREST",
    "FEE",
    "TRANSFER_IN",
    "TRANSFER_OUT",
}
TRADES = {"BUY", "SELL", "TRANSFER_IN", "TRANSFER_OUT"}
NEEDS_SECURITY = TRADES | {"DIVIDEND"}
NEEDS_AMOUNT = {"DEPOSIT", "WITHDRAWAL", "DIVIDEND", "INTEREST", "FEE"}
# Columns of docs/data.md, written out here so the test does not read them from the code.
REQUIRED = {
    "portfolios": ["portfolio_id", "client_id", "base_currency", "benchmark_id"],
    "transactions": [
        "transaction_id",
        "portfolio_id",
        "account_id",
        "security_id",
        "trade_date",
        "type",
        "quantity",
        "price",
        "amount",
        "fee",
        "currency",
    ],
    "prices": ["security_id", "date", "close", "currency"],
    "benchmarks": ["benchmark_id", "date", "close"],
}
END = date(2024, 6, 28)


def read_kind(root: Path, kind: str, suffix: str = "csv") -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted((root / kind).rglob(f"*.{suffix}")):
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            assert reader.fieldnames == REQUIRED[kind], path
            rows += [{**r, "_file": str(path.relative_to(root))} for r in reader]
    return rows


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("sample")
    counts = generate(root, portfolios=3, years=1, seed=11, end=END)
    return root, counts


@pytest.fixture(scope="module")
def data(sample) -> dict[str, list[dict[str, str]]]:
    root, _ = sample
    return {kind: read_kind(root, kind) for kind in REQUIRED}


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    generate(tmp_path / "a", portfolios=2, years=0.5, seed=3)
    generate(tmp_path / "b", portfolios=2, years=0.5, seed=3)
    generate(tmp_path / "c", portfolios=2, years=0.5, seed=4)
    a, b, c = (file_bytes(tmp_path / x) for x in "abc")
    assert a and a == b
    assert a != c


def test_layout_matches_data_md(sample, data) -> None:
    root, counts = sample
    assert sorted(p.name for p in root.iterdir()) == sorted(REQUIRED)
    assert (root / "portfolios" / "portfolios.csv").is_file()
    tx_files = sorted((root / "transactions").rglob("*.csv"))
    assert len(tx_files) >= 12  # one per month
    for path in tx_files:
        assert re.fullmatch(r"\d{4}", path.parent.name), path
    for row in data["transactions"]:
        year, month = row["trade_date"][:4], row["trade_date"][:7]
        assert row["_file"] == f"transactions/{year}/{month}.csv"
    assert len(list((root / "prices").rglob("*.csv"))) == 2  # 2023 and 2024
    assert counts == {kind: len(rows) for kind, rows in data.items()}


def test_files_per_kind_splits_each_kind(tmp_path: Path) -> None:
    counts = generate(tmp_path, portfolios=2, years=0.5, files_per_kind=3)
    for kind in ("transactions", "prices", "benchmarks"):
        files = sorted((tmp_path / kind).rglob("*.csv"))
        assert len(files) == 3, kind
        assert all(
            re.fullmatch(r"\d{4}/part-00[123]\.csv", str(f.relative_to(tmp_path / kind)))
            for f in files
        )
        assert len(read_kind(tmp_path, kind)) == counts[kind]


def test_rerun_replaces_previous_files(tmp_path: Path) -> None:
    generate(tmp_path, portfolios=2, years=1)
    generate(tmp_path, portfolios=2, years=0.5, files_per_kind=1)
    assert len(list((tmp_path / "transactions").rglob("*.csv"))) == 1


def test_parquet_has_the_same_rows_typed(tmp_path: Path) -> None:
    csv_counts = generate(tmp_path / "csv", portfolios=2, years=0.5, seed=5)
    pq_counts = generate(tmp_path / "pq", portfolios=2, years=0.5, seed=5, fmt="parquet")
    generate(tmp_path / "pq2", portfolios=2, years=0.5, seed=5, fmt="parquet")
    assert pq_counts == csv_counts
    assert file_bytes(tmp_path / "pq") == file_bytes(tmp_path / "pq2")
    assert not list((tmp_path / "pq").rglob("*.csv"))
    con = duckdb.connect()
    tx = f"read_parquet('{tmp_path / 'pq' / 'transactions'}/**/*.parquet')"
    types = dict(con.execute(f"DESCRIBE SELECT * FROM {tx}").fetchall()[i][:2] for i in range(11))
    assert types["trade_date"] == "DATE"
    assert types["quantity"] == types["amount"] == types["fee"] == "DOUBLE"
    n, deposits, null_fees = con.execute(
        f"SELECT count(*), sum(amount) FILTER (type = 'DEPOSIT'), count(*) FILTER (fee IS NULL)"
        f" FROM {tx}"
    ).fetchone()
    csv_rows = read_kind(tmp_path / "csv", "transactions")
    assert n == len(csv_rows) == csv_counts["transactions"]
    assert deposits == pytest.approx(
        float(sum(Decimal(r["amount"]) for r in csv_rows if r["type"] == "DEPOSIT"))
    )
    assert null_fees == sum(r["fee"] == "" for r in csv_rows)
    ports = f"read_parquet('{tmp_path / 'pq' / 'portfolios'}/*.parquet')"
    no_bench = con.execute(f"SELECT count(*) FROM {ports} WHERE benchmark_id IS NULL").fetchone()
    assert no_bench == (1,)


def test_every_transaction_type_appears(data) -> None:
    assert {r["type"] for r in data["transactions"]} == TYPES


def test_ids_and_value_rules(data) -> None:
    tx = data["transactions"]
    ids = [r["transaction_id"] for r in tx]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"T\d{6}", i) for i in ids)
    for r in tx:
        for col in ("transaction_id", "portfolio_id", "account_id"):
            assert ID.match(r[col]), r
        assert r["security_id"] == "" or ID.match(r["security_id"]), r
        assert r["currency"] == "USD"
        assert date.fromisoformat(r["trade_date"]) <= END
        if r["type"] in NEEDS_SECURITY:
            assert r["security_id"], r
        if r["type"] in TRADES:
            assert Decimal(r["quantity"]) > 0 and Decimal(r["price"]) > 0, r
            assert r["amount"] == "", r
            assert re.fullmatch(r"\d+(\.\d{1,3})?", r["quantity"]), r
            assert re.fullmatch(r"\d+\.\d{4}", r["price"]), r
        else:
            assert r["quantity"] == r["price"] == "", r
        if r["type"] in NEEDS_AMOUNT:
            assert re.fullmatch(r"\d+\.\d{2}", r["amount"]) and Decimal(r["amount"]) > 0, r
        assert r["fee"] == "" or Decimal(r["fee"]) >= 0, r
        if r["type"] in {"BUY", "SELL"}:
            assert r["fee"], r
    for kind, id_cols in (("prices", ["security_id"]), ("benchmarks", ["benchmark_id"])):
        for r in data[kind]:
            assert all(ID.match(r[c]) for c in id_cols), r
            assert Decimal(r["close"]) > 0 and date.fromisoformat(r["date"]) <= END, r


def test_fee_is_null_on_most_non_trade_rows(data) -> None:
    non_trade = [r for r in data["transactions"] if r["type"] not in {"BUY", "SELL"}]
    assert sum(r["fee"] == "" for r in non_trade) > 0.8 * len(non_trade)
    assert any(r["fee"] == "0.00" for r in non_trade)  # an explicit zero as well


def test_portfolios_clients_benchmarks_accounts(data) -> None:
    ports = data["portfolios"]
    assert all(ID.match(p["portfolio_id"]) and ID.match(p["client_id"]) for p in ports)
    assert all(p["base_currency"] == "USD" for p in ports)
    assert len({p["client_id"] for p in ports}) < len(ports)  # a client with 2+ portfolios
    bench_ids = {r["benchmark_id"] for r in data["benchmarks"]}
    assert 1 <= len(bench_ids) <= 2
    named = [p["benchmark_id"] for p in ports if p["benchmark_id"]]
    assert named and set(named) <= bench_ids
    assert any(p["benchmark_id"] == "" for p in ports)
    accounts = defaultdict(set)
    for r in data["transactions"]:
        accounts[r["portfolio_id"]].add(r["account_id"])
    assert set(accounts) == {p["portfolio_id"] for p in ports}
    assert all(len(a) == 2 for a in accounts.values())


def test_a_portfolio_starts_mid_history(data) -> None:
    first = defaultdict(lambda: date.max)
    for r in data["transactions"]:
        first[r["portfolio_id"]] = min(
            first[r["portfolio_id"]], date.fromisoformat(r["trade_date"])
        )
    earliest = min(first.values())
    assert any(d - earliest > timedelta(days=90) for d in first.values())
    seen: set[str] = set()
    for r in sorted(data["transactions"], key=lambda r: (r["trade_date"], r["transaction_id"])):
        if r["account_id"] not in seen:  # each account opens with a deposit
            seen.add(r["account_id"])
            assert r["type"] == "DEPOSIT", r


def test_weekend_rows_and_missing_closes(data) -> None:
    assert any(date.fromisoformat(r["trade_date"]).weekday() == 5 for r in data["transactions"])
    assert any(date.fromisoformat(r["date"]).weekday() >= 5 for r in data["prices"])
    by_sec = defaultdict(set)
    for r in data["prices"]:
        by_sec[r["security_id"]].add(date.fromisoformat(r["date"]))
    business = set()
    d = min(min(s) for s in by_sec.values())
    while d <= END:
        if d.weekday() < 5:
            business.add(d)
        d += timedelta(days=1)
    assert any(business - dates for dates in by_sec.values())  # forward fill will matter


def test_trade_prices_are_the_last_close(data) -> None:
    closes = defaultdict(list)
    for r in sorted(data["prices"], key=lambda r: r["date"]):
        closes[r["security_id"]].append((r["date"], Decimal(r["close"])))
    trades = [r for r in data["transactions"] if r["type"] in TRADES]
    for r in trades:
        series = closes[r["security_id"]]
        i = bisect.bisect_right([d for d, _ in series], r["trade_date"]) - 1
        assert i >= 0, r
        assert Decimal(r["price"]) == series[i][1], r


def replay(tx: list[dict[str, str]]):
    """Cash and positions after each transaction, in (trade_date, transaction_id) order,
    with the flows of docs/methodology.md; yields (row, cash, position or None)."""
    cash: dict[str, Decimal] = defaultdict(Decimal)
    pos: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in sorted(tx, key=lambda r: (r["trade_date"], r["transaction_id"])):
        acct, kind = r["account_id"], r["type"]
        q = Decimal(r["quantity"] or 0)
        p = Decimal(r["price"] or 0)
        amount = Decimal(r["amount"] or 0)
        fee = Decimal(r["fee"] or 0)
        key = (acct, r["security_id"])
        if kind in {"DEPOSIT", "DIVIDEND", "INTEREST"}:
            cash[acct] += amount
        elif kind in {"WITHDRAWAL", "FEE"}:
            cash[acct] -= amount
        elif kind == "BUY":
            cash[acct] -= q * p + fee
            pos[key] += q
        elif kind == "SELL":
            cash[acct] += q * p - fee
            pos[key] -= q
        elif kind == "TRANSFER_IN":
            pos[key] += q
        elif kind == "TRANSFER_OUT":
            pos[key] -= q
        yield r, cash[acct], (pos[key] if kind in TRADES else None)


def test_replay_never_goes_below_zero(data) -> None:
    sold_out = 0
    for r, cash, position in replay(data["transactions"]):
        assert cash >= 0, r
        assert position is None or position >= 0, r
        sold_out += r["type"] == "SELL" and position == 0
    assert sold_out >= 1


def test_sold_out_position_is_not_bought_again(data) -> None:
    tx = data["transactions"]
    closed = {
        (r["account_id"], r["security_id"], r["trade_date"])
        for r, _, position in replay(tx)
        if r["type"] == "SELL" and position == 0
    }
    for acct, sec, day in closed:
        assert not any(
            r["type"] == "BUY"
            and r["account_id"] == acct
            and r["security_id"] == sec
            and r["trade_date"] > day
            for r in tx
        )


def test_transfers_pair_within_a_portfolio(data) -> None:
    tx = data["transactions"]
    outs = [r for r in tx if r["type"] == "TRANSFER_OUT"]
    ins = [r for r in tx if r["type"] == "TRANSFER_IN"]
    assert outs and len(outs) == len(ins)
    for o in outs:
        match = [
            i
            for i in ins
            if (i["portfolio_id"], i["security_id"], i["trade_date"], i["quantity"], i["price"])
            == (o["portfolio_id"], o["security_id"], o["trade_date"], o["quantity"], o["price"])
            and i["account_id"] != o["account_id"]
        ]
        assert len(match) == 1, o


def test_income_and_fees_are_plausible(data) -> None:
    tx = data["transactions"]
    assert any(r["type"] == "INTEREST" and r["security_id"] == "" for r in tx)
    assert any(r["type"] == "INTEREST" and r["security_id"] for r in tx)
    months = {r["trade_date"][:7] for r in tx}
    deposits = {(r["account_id"], r["trade_date"][:7]) for r in tx if r["type"] == "DEPOSIT"}
    fees = {(r["account_id"], r["trade_date"][:7]) for r in tx if r["type"] == "FEE"}
    assert len(fees) >= len(months) * 4  # monthly fees across accounts
    assert len(deposits) >= len(months) * 4


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    for kwargs in ({"portfolios": 0}, {"years": 0}, {"fmt": "xlsx"}, {"files_per_kind": 0}):
        with pytest.raises(ValueError):
            generate(tmp_path, **kwargs)
