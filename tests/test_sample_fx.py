"""The multi-currency sample portfolios (generate(..., fx_portfolios=K)): currencies, FX rows,
booked rates and the rate series checked against the files themselves (rates looked up here,
direct, inverse or through USD, independently of the generator), cash per currency replayed
with Decimal, and the single-currency output unchanged."""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import hashlib
import itertools
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from test_sample_data import REQUIRED

from perf_pipeline.cli import main
from perf_pipeline.sample_data import fx_split, generate

END = dt.date(2024, 6, 28)
BASE_COLUMNS = REQUIRED["transactions"]
FX_COLUMNS = ["fx_rate", "counter_amount", "counter_currency"]
RATE_COLUMNS = ["date", "base", "quote", "rate", "source"]
PAIRS = {("EUR", "USD"), ("GBP", "USD"), ("USD", "JPY")}
SPREAD = Decimal("0.0015")
# sha256 of generate(root, portfolios=2, years=0.5, seed=3) written by the generator before
# several currencies existed (commit ada7040): paths and bytes, see digest()
SINGLE_CURRENCY_DIGEST = "a4c2c00b5864a3e680743c429681501a2b1f1e9c5e3ab64fe70c4179f2c3597b"


def read_kind(root: Path, kind: str) -> tuple[list[str], list[dict[str, str]]]:
    """The header shared by every CSV file of `kind` and all their rows."""
    headers, rows = set(), []
    for path in sorted((root / kind).rglob("*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            headers.add(tuple(reader.fieldnames or ()))
            rows += [{**r, "_file": path.relative_to(root).as_posix()} for r in reader]
    assert len(headers) == 1, (kind, headers)
    return list(headers.pop()), rows


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


class Rates:
    """Last quote on or before a day; C->B direct, else the inverse of B->C, else through
    USD with each leg direct or inverse (the order of the currency contract)."""

    def __init__(self, rows: list[dict[str, str]]) -> None:
        series = defaultdict(list)
        for r in sorted(rows, key=lambda r: r["date"]):
            series[(r["base"], r["quote"])].append((r["date"], Decimal(r["rate"])))
        self.series = dict(series)

    def quote(self, base: str, quote: str, day: str) -> Decimal | None:
        points = self.series.get((base, quote), [])
        i = bisect.bisect_right([d for d, _ in points], day) - 1
        return points[i][1] if i >= 0 else None

    def leg(self, frm: str, to: str, day: str) -> Decimal | None:
        if frm == to:
            return Decimal(1)
        direct = self.quote(frm, to, day)
        if direct is not None:
            return direct
        inverse = self.quote(to, frm, day)
        return 1 / inverse if inverse is not None else None

    def rate(self, frm: str, to: str, day: str) -> Decimal:
        """Units of `to` for one unit of `frm` on `day`; AssertionError when not quoted."""
        found = self.leg(frm, to, day)
        if found is None:
            a, b = self.leg(frm, "USD", day), self.leg("USD", to, day)
            assert a is not None and b is not None, (frm, to, day)
            found = a * b
        return found


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("fx")
    return root, generate(root, portfolios=2, years=1, seed=11, end=END, fx_portfolios=3)


@pytest.fixture(scope="module")
def data(sample) -> dict[str, tuple[list[str], list[dict[str, str]]]]:
    root, _ = sample
    return {k: read_kind(root, k) for k in ("portfolios", "transactions", "prices", "fx_rates")}


@pytest.fixture(scope="module")
def fx_tx(data) -> list[dict[str, str]]:
    """Transactions of the multi-currency portfolios, with their base currency as _base."""
    base = {p["portfolio_id"]: p["base_currency"] for p in data["portfolios"][1]}
    return [
        {**r, "_base": base[r["portfolio_id"]]}
        for r in data["transactions"][1]
        if base[r["portfolio_id"]] != "USD"
    ]


def test_layout_counts_and_columns(sample, data) -> None:
    root, counts = sample
    assert sorted(p.name for p in root.iterdir()) == sorted(
        ["portfolios", "transactions", "prices", "benchmarks", "fx_rates"]
    )
    header, rows = data["fx_rates"]
    assert header == RATE_COLUMNS
    assert sorted({r["_file"] for r in rows}) == ["fx_rates/2023.csv", "fx_rates/2024.csv"]
    assert all(r["_file"] == f"fx_rates/{r['date'][:4]}.csv" for r in rows)
    assert data["transactions"][0] == BASE_COLUMNS + FX_COLUMNS
    assert {k: len(data[k][1]) for k in data} == {k: counts[k] for k in data}


def test_portfolios_in_eur_and_gbp_after_the_usd_ones(data) -> None:
    ports = data["portfolios"][1]
    assert [(p["portfolio_id"], p["base_currency"]) for p in ports] == [
        ("P00001", "USD"),
        ("P00002", "USD"),
        ("P00003", "EUR"),
        ("P00004", "EUR"),
        ("P00005", "GBP"),
    ]
    usd_clients = {p["client_id"] for p in ports[:2]}
    assert not usd_clients & {p["client_id"] for p in ports[2:]}


def test_currencies_of_rows_and_securities(data, fx_tx) -> None:
    sec_currency = {}
    for r in data["prices"][1]:
        assert sec_currency.setdefault(r["security_id"], r["currency"]) == r["currency"], r
    assert set(sec_currency.values()) == {"USD", "JPY"}
    by_type = defaultdict(set)
    for r in fx_tx:
        assert r["currency"] in {r["_base"], "USD", "JPY"}, r
        by_type[r["type"]].add(r["currency"] if r["currency"] in {"USD", "JPY"} else "base")
        if r["security_id"]:
            assert r["currency"] == sec_currency[r["security_id"]], r
    assert by_type["DEPOSIT"] == by_type["WITHDRAWAL"] == by_type["FEE"] == {"base"}
    for kind in ("BUY", "SELL", "DIVIDEND"):
        assert by_type[kind] == {"USD", "JPY"}, kind
    assert by_type["INTEREST"] == {"base", "USD", "JPY"}
    assert by_type["FX"] == {"base", "USD"}  # base out into USD and JPY; USD back into base
    others = [r for r in data["transactions"][1] if r["portfolio_id"] in {"P00001", "P00002"}]
    assert others and all(r["currency"] == "USD" for r in others)


def test_trade_prices_are_the_last_close_in_the_securitys_currency(data, fx_tx) -> None:
    closes = defaultdict(list)
    for r in sorted(data["prices"][1], key=lambda r: r["date"]):
        closes[r["security_id"]].append((r["date"], r["close"]))
    trades = [r for r in fx_tx if r["type"] in {"BUY", "SELL"}]
    assert {r["security_id"][:4] for r in trades} == {"SEC0", "JSEC"}
    for r in trades:
        series = closes[r["security_id"]]
        i = bisect.bisect_right([d for d, _ in series], r["trade_date"]) - 1
        assert i >= 0 and r["price"] == series[i][1], r


def test_fx_rows_have_counter_columns_at_the_days_rate(data, fx_tx) -> None:
    rates = Rates(data["fx_rates"][1])
    fx = [r for r in fx_tx if r["type"] == "FX"]
    pairs = {(r["currency"], r["counter_currency"]) for r in fx}
    assert {("EUR", "USD"), ("EUR", "JPY"), ("GBP", "USD"), ("GBP", "JPY")} <= pairs
    assert any(r["currency"] == "USD" and r["counter_currency"] == r["_base"] for r in fx)
    for r in fx:
        assert r["security_id"] == r["quantity"] == r["price"] == r["fx_rate"] == "", r
        assert r["counter_currency"] != r["currency"], r
        amount, counter = Decimal(r["amount"]), Decimal(r["counter_amount"])
        assert amount > 0 and counter > 0, r
        mid = amount * rates.rate(r["currency"], r["counter_currency"], r["trade_date"])
        # the spread, less a cent or a yen of rounding down
        assert mid * (1 - SPREAD) - 1 <= counter <= mid * (1 - SPREAD), r
    for r in data["transactions"][1]:
        if r["type"] != "FX":
            assert r["counter_amount"] == r["counter_currency"] == "", r


def test_booked_fx_rates_are_close_to_the_days_rate(data, fx_tx) -> None:
    rates = Rates(data["fx_rates"][1])
    booked = [r for r in fx_tx if r["fx_rate"]]
    assert {(r["type"], r["currency"]) for r in booked} >= {
        ("BUY", "USD"),
        ("BUY", "JPY"),
        ("SELL", "USD"),
        ("DIVIDEND", "USD"),
    }
    assert len(booked) < len([r for r in fx_tx if r["type"] in {"BUY", "SELL", "DIVIDEND"}])
    for r in booked:
        day_rate = rates.rate(r["currency"], r["_base"], r["trade_date"])
        assert abs(Decimal(r["fx_rate"]) / day_rate - 1) <= Decimal("0.0031"), r
    assert all(r["fx_rate"] == "" for r in fx_tx if r["currency"] == r["_base"])
    usd = [r for r in data["transactions"][1] if r["portfolio_id"] in {"P00001", "P00002"}]
    assert usd and all(r["fx_rate"] == "" for r in usd)


def test_rate_series_pairs_business_days_gaps_and_holidays(data) -> None:
    rows = data["fx_rates"][1]
    assert {(r["base"], r["quote"]) for r in rows} == PAIRS
    keys = [(r["date"], r["base"], r["quote"]) for r in rows]
    assert len(set(keys)) == len(keys)
    dates = {r["date"] for r in rows}
    assert all(dt.date.fromisoformat(d).weekday() < 5 for d in dates)
    assert all(len(r["rate"].split(".")[1]) == 6 and Decimal(r["rate"]) > 0 for r in rows)
    assert {r["source"] for r in rows} <= {"WM/Reuters 16:00 London", ""}
    first, last = dt.date.fromisoformat(min(dates)), dt.date.fromisoformat(max(dates))
    assert last == END
    business = {
        (first + dt.timedelta(days=i)).isoformat()
        for i in range((last - first).days + 1)
        if (first + dt.timedelta(days=i)).weekday() < 5
    }
    holidays = {d for d in business if d[5:] in {"12-25", "01-01"}}
    assert holidays == {"2023-12-25", "2024-01-01"}  # both on a Monday: a real closure
    assert not holidays & dates
    for pair in PAIRS:
        quoted = {r["date"] for r in rows if (r["base"], r["quote"]) == pair}
        assert business - holidays - quoted, pair  # at least one missing business day


def test_no_rate_is_older_than_five_business_days(data) -> None:
    rows = data["fx_rates"][1]
    for pair in PAIRS:
        quoted = sorted(
            dt.date.fromisoformat(r["date"]) for r in rows if (r["base"], r["quote"]) == pair
        )
        for before, after in itertools.pairwise(quoted):
            skipped = sum(
                (before + dt.timedelta(days=i)).weekday() < 5
                for i in range(1, (after - before).days)
            )
            assert skipped <= 4, (pair, before, after)  # the last quote at most 5 days old


def test_every_needed_rate_is_quoted_on_or_before_each_transaction(data, fx_tx) -> None:
    rates = Rates(data["fx_rates"][1])
    first_quote = min(r["date"] for r in data["fx_rates"][1])
    assert first_quote < min(r["trade_date"] for r in fx_tx)
    for r in fx_tx:
        for frm in (r["currency"], r["counter_currency"] or r["currency"]):
            assert rates.rate(frm, r["_base"], r["trade_date"]) > 0  # raises when not quoted
    for pair in PAIRS:  # and so on every day after: forward fill needs the first quote only
        assert rates.quote(*pair, first_quote) is not None


def test_cash_never_negative_in_any_currency(fx_tx) -> None:
    cash: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    pos: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    seen = set()
    for r in sorted(fx_tx, key=lambda r: (r["trade_date"], r["transaction_id"])):
        acct, kind, ccy = r["account_id"], r["type"], r["currency"]
        q, p = Decimal(r["quantity"] or 0), Decimal(r["price"] or 0)
        amount, fee = Decimal(r["amount"] or 0), Decimal(r["fee"] or 0)
        if kind in {"DEPOSIT", "DIVIDEND", "INTEREST"}:
            cash[acct, ccy] += amount
        elif kind in {"WITHDRAWAL", "FEE"}:
            cash[acct, ccy] -= amount
        elif kind == "BUY":
            cash[acct, ccy] -= q * p + fee
            pos[acct, r["security_id"]] += q
        elif kind == "SELL":
            cash[acct, ccy] += q * p - fee
            pos[acct, r["security_id"]] -= q
        elif kind == "FX":
            cash[acct, ccy] -= amount
            cash[acct, r["counter_currency"]] += Decimal(r["counter_amount"])
        else:
            raise AssertionError(f"unexpected type {kind}")
        seen.add(ccy)
        assert all(v >= 0 for v in cash.values()), r
        assert all(v >= 0 for v in pos.values()), r
    assert seen == {"EUR", "GBP", "USD", "JPY"}
    held = {c for (_, c), v in cash.items() if v > 0}
    assert held == {"EUR", "GBP", "USD", "JPY"}


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate(tmp_path / name, portfolios=1, years=0.5, seed=seed, fx_portfolios=2)
    a, b, c = (digest(tmp_path / name) for name in "abc")
    assert a == b != c


def test_default_output_is_the_single_currency_one(tmp_path: Path) -> None:
    counts = generate(tmp_path, portfolios=2, years=0.5, seed=3)
    assert digest(tmp_path) == SINGLE_CURRENCY_DIGEST
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "benchmarks",
        "portfolios",
        "prices",
        "transactions",
    ]
    assert "fx_rates" not in counts
    header, tx = read_kind(tmp_path, "transactions")
    assert header == BASE_COLUMNS
    assert {r["currency"] for r in tx} == {"USD"}
    assert "FX" not in {r["type"] for r in tx}
    assert {p["base_currency"] for p in read_kind(tmp_path, "portfolios")[1]} == {"USD"}


def test_usd_portfolios_unchanged_by_the_fx_ones(tmp_path: Path) -> None:
    generate(tmp_path / "usd", portfolios=2, years=0.5, seed=3)
    generate(tmp_path / "both", portfolios=2, years=0.5, seed=3, fx_portfolios=3)

    def rows(root: Path, kind: str, keep) -> list[tuple[str, ...]]:
        columns = {"transactions": BASE_COLUMNS[1:]}.get(kind)  # ids renumbered
        return [
            tuple(r[c] for c in (columns or r) if c != "_file")
            for r in read_kind(root, kind)[1]
            if keep(r)
        ]

    usd = {"P00001", "P00002"}
    for kind, keep in (
        ("portfolios", lambda r: r["portfolio_id"] in usd),
        ("transactions", lambda r: r["portfolio_id"] in usd),
        ("prices", lambda r: r["currency"] == "USD"),
        ("benchmarks", lambda r: True),
    ):
        alone = rows(tmp_path / "usd", kind, lambda r: True)
        assert alone and rows(tmp_path / "both", kind, keep) == alone, kind


def test_rerun_without_fx_removes_the_rate_files(tmp_path: Path) -> None:
    generate(tmp_path, portfolios=1, years=0.5, fx_portfolios=1)
    assert list((tmp_path / "fx_rates").glob("*.csv"))
    generate(tmp_path, portfolios=1, years=0.5)
    assert not list((tmp_path / "fx_rates").rglob("*.*"))


def test_parquet_types_of_the_new_columns(tmp_path: Path) -> None:
    counts = generate(tmp_path, portfolios=1, years=0.5, fmt="parquet", fx_portfolios=1)
    con = duckdb.connect()
    tx = f"read_parquet('{tmp_path / 'transactions'}/**/*.parquet')"
    types = {
        name: kind for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {tx}").fetchall()
    }
    assert types["fx_rate"] == types["counter_amount"] == "DOUBLE"
    assert types["counter_currency"] == "VARCHAR"
    fx = f"read_parquet('{tmp_path / 'fx_rates'}/*.parquet')"
    described = con.execute(f"DESCRIBE SELECT * FROM {fx}").fetchall()
    assert [(name, kind) for name, kind, *_ in described] == [
        ("date", "DATE"),
        ("base", "VARCHAR"),
        ("quote", "VARCHAR"),
        ("rate", "DOUBLE"),
        ("source", "VARCHAR"),
    ]
    n, null_counter = con.execute(
        f"SELECT count(*), count(*) FILTER (type <> 'FX' AND counter_amount IS NULL) FROM {tx}"
    ).fetchone()
    n_fx = con.execute(f"SELECT count(*) FROM {tx} WHERE type = 'FX'").fetchone()[0]
    assert n == counts["transactions"] and n_fx > 0 and null_counter == n - n_fx
    assert con.execute(f"SELECT count(*) FROM {fx}").fetchone()[0] == counts["fx_rates"]


def test_files_per_kind_splits_the_rates_too(tmp_path: Path) -> None:
    counts = generate(tmp_path, portfolios=1, years=0.5, files_per_kind=2, fx_portfolios=1)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("fx_rates/*/*"))
    assert [f.split("/")[-1] for f in files] == ["part-001.csv", "part-002.csv"]
    assert len(read_kind(tmp_path, "fx_rates")[1]) == counts["fx_rates"]


def test_cli_writes_three_multi_currency_portfolios_by_default(tmp_path: Path) -> None:
    common = ["--portfolios", "1", "--years", "0.5"]
    assert main(["generate", "--out", str(tmp_path / "fx"), *common]) == 0
    ports = read_kind(tmp_path / "fx", "portfolios")[1]
    assert [p["base_currency"] for p in ports] == ["USD", "EUR", "EUR", "GBP"]
    assert (tmp_path / "fx" / "fx_rates").is_dir()
    assert main(["generate", "--out", str(tmp_path / "usd"), *common, "--fx-portfolios", "0"]) == 0
    assert not (tmp_path / "usd" / "fx_rates").exists()
    assert [p["base_currency"] for p in read_kind(tmp_path / "usd", "portfolios")[1]] == ["USD"]


def test_fx_split() -> None:
    assert fx_split(1000, 0.33) == (670, 330)
    assert fx_split(4, 0.0) == (4, 0)
    assert fx_split(2, 0.9) == (1, 1)  # one USD portfolio is always left
    for share in (-0.1, 1.0):
        with pytest.raises(ValueError, match="fx_share"):
            fx_split(10, share)


def test_rejects_negative_fx_portfolios(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fx_portfolios"):
        generate(tmp_path, fx_portfolios=-1)


def test_generated_files_pass_validation(sample) -> None:
    from perf_pipeline.ingest import RawFile, validate_inputs

    root, counts = sample
    files = [
        RawFile(str(path), path.relative_to(root).parts[0], path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file()
    ]
    validated = validate_inputs(files, END)
    assert validated.rejected_files.empty
    assert validated.rejected_rows.empty, validated.rejected_rows.head().to_dict("records")
    assert len(validated.transactions) == counts["transactions"]
