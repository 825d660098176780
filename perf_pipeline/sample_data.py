"""Deterministic, realistic sample input for perf-pipeline, laid out as docs/data.md describes.

`generate` writes one input root::

    <out>/portfolios/portfolios.csv
    <out>/transactions/YYYY/YYYY-MM.csv     one file per month of trade_date
    <out>/prices/YYYY.csv                   one file per year of close date
    <out>/benchmarks/<benchmark_id>.csv     one file per benchmark
    <out>/fx_rates/YYYY.csv                 with fx_portfolios > 0 only: one file per year

(``files_per_kind=N`` instead splits each kind but portfolios, in date order, into N
files ``<kind>/YYYY/part-NNN.csv`` named after the year of their first row.)

What the data contains:

- clients owning one to three portfolios each; base currency USD; two accounts per portfolio
  (``<portfolio_id>-A1``, ``-A2``); every fifth account trades fractional quantities (3 dp);
- securities (``max(50, portfolios)``) with business-day closes from a geometric random walk
  with drift, about 1 % of closes missing (forward fill matters) and a handful of closes dated
  on a Saturday whose following Monday has no close;
- two benchmark index levels; every fourth portfolio and the last one have no benchmark;
- one calendar month of events per step: an initial DEPOSIT at inception, then monthly
  deposits (some dated on the Saturday before the month's first business day), BUYs with a
  commission, SELLs of held quantity only (a few sell the whole position, which is then never
  bought again), quarterly DIVIDENDs (and quarterly INTEREST naming a bond-like security),
  monthly INTEREST on cash naming no security, occasional WITHDRAWALs, a monthly FEE, and per
  transferring portfolio one TRANSFER_OUT / TRANSFER_IN pair between its two accounts at one
  price; some SELLs are dated on a Saturday;
- the second portfolio (and about a fifth of the others) starts mid-history;
- cash never goes negative and no position goes short: a purchase costs at most 90 % of the
  cash at hand, fees and withdrawals at most half of it;
- trade and transfer prices equal the security's last close dated on or before the trade date.

With ``fx_portfolios=K`` K multi-currency portfolios follow (perf_pipeline.sample_fx says what
they hold and do), and the transaction files gain the columns fx_rate, counter_amount and
counter_currency (empty on the rows that have none).

Numbers are rounded as they would be delivered: closes 4 dp, amounts and fees 2 dp,
quantities whole or 3 dp. The fee is empty on every non-trade row except transfers
and initial deposits (explicit ``0.00``). Same arguments give byte-identical files.
"""

from __future__ import annotations

import csv
import itertools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np

KINDS = ("portfolios", "transactions", "prices", "benchmarks", "fx_rates")
FORMATS = ("csv", "parquet")
CURRENCY = "USD"
SLOTS = 10  # securities an account holds
BENCHMARKS = (("IDX-EQUITY", 1000.0, 0.07, 0.16), ("IDX-BALANCED", 100.0, 0.05, 0.10))
TX_TYPES = (
    "DEPOSIT",
    "WITHDRAWAL",
    "BUY",
    "SELL",
    "DIVIDEND",
    "INTEREST",
    "FEE",
    "TRANSFER_IN",
    "TRANSFER_OUT",
    "FX",
)
_T = {name: code for code, name in enumerate(TX_TYPES)}

COLUMNS = {
    "portfolios": ("portfolio_id", "client_id", "base_currency", "benchmark_id"),
    "transactions": (
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
    ),
    "prices": ("security_id", "date", "close", "currency"),
    "benchmarks": ("benchmark_id", "date", "close"),
    "fx_rates": ("date", "base", "quote", "rate", "source"),
}
# transaction columns written only when a multi-currency portfolio is generated
FX_COLUMNS = ("fx_rate", "counter_amount", "counter_currency")
_SQL_TYPES = {
    "trade_date": "DATE",
    "date": "DATE",
    "quantity": "DOUBLE",
    "price": "DOUBLE",
    "amount": "DOUBLE",
    "fee": "DOUBLE",
    "close": "DOUBLE",
    "fx_rate": "DOUBLE",
    "counter_amount": "DOUBLE",
    "rate": "DOUBLE",
}

# Business-day windows (indices into a month's business days) of each event kind, in the
# order the simulation applies them; disjoint, so an account's events come in date order.
_BUY_DAYS = (1, 4)
_SELL_DAYS = (5, 9)
_TRANSFER_DAY = 10
_INCOME_DAYS = (11, 13)
_WITHDRAWAL_DAYS = (14, 16)


# column name -> values: ids as text, dates as datetime64[D], quantities as int thousandths
# (-1 for null), other numbers as float (NaN for null); turned into text file by file.
_Table = dict[str, np.ndarray]


@dataclass(frozen=True)
class _Calendar:
    """Calendar days from `origin` (a Monday) to the end of the last month, as integer
    offsets: offset % 7 is the weekday, Monday = 0."""

    origin: np.datetime64
    end: int  # offset of the as-of date; nothing after it is written
    busdays: np.ndarray  # offsets of Monday..Friday
    months: list[np.ndarray]  # per simulated month, the offsets of its business days
    month_numbers: np.ndarray  # calendar month (1..12) of each simulated month

    @property
    def days(self) -> int:
        return int(self.busdays[-1]) + 1


@dataclass
class _Events:
    """Columns of generated transactions; `batch` orders same-day events of one account,
    `col` is the cash column (currency) of the row's account that the row is in."""

    cols: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {
            k: []
            for k in (
                "day",
                "batch",
                "acct",
                "slot",
                "type",
                "units",
                "price",
                "amount",
                "fee",
                "col",
            )
        }
    )
    batches: int = 0

    def add(
        self,
        day: np.ndarray | int,
        acct: np.ndarray,
        tx_type: str,
        *,
        slot: np.ndarray | None = None,
        units: np.ndarray | None = None,
        price: np.ndarray | None = None,
        amount: np.ndarray | None = None,
        fee: np.ndarray | None = None,
        col: np.ndarray | int = 0,
    ) -> None:
        """Append one batch of same-type events; omitted columns are null."""
        n = len(acct)
        if n == 0:
            return

        def column(values: np.ndarray | None, fill: float, dtype: type) -> np.ndarray:
            return np.full(n, fill, dtype) if values is None else np.asarray(values, dtype)

        self.cols["day"].append(np.broadcast_to(np.asarray(day, np.int64), (n,)).copy())
        self.cols["batch"].append(np.full(n, self.batches, np.int64))
        self.cols["acct"].append(np.asarray(acct, np.int64))
        self.cols["slot"].append(column(slot, -1, np.int64))
        self.cols["type"].append(np.full(n, _T[tx_type], np.int64))
        self.cols["units"].append(column(units, -1, np.int64))
        self.cols["price"].append(column(price, np.nan, float))
        self.cols["amount"].append(column(amount, np.nan, float))
        self.cols["fee"].append(column(fee, np.nan, float))
        self.cols["col"].append(np.broadcast_to(np.asarray(col, np.int64), (n,)).copy())
        self.batches += 1

    def table(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.cols.items()}


@dataclass
class _Book:
    """Simulation state: cash per account and cash column, quantity (thousandths) per
    account and slot. Column c of an account is its cash in `currencies[account, c]`; the
    security of a slot trades in the currency of column `slot_col[slot]`, with a commission
    of at least `min_fee`, amounts to `decimals` places and purchases of at least
    `min_budget` (per column)."""

    sec: np.ndarray  # (accounts, slots) security index held in each slot
    fractional: np.ndarray  # (accounts,) trades in 3 dp quantities
    currencies: np.ndarray  # (accounts, columns) currency code of each cash column
    slot_col: np.ndarray  # (slots,)
    min_fee: np.ndarray  # (columns,)
    decimals: np.ndarray  # (columns,)
    min_budget: np.ndarray  # (columns,)
    cash: np.ndarray = field(init=False)
    units: np.ndarray = field(init=False)
    closed: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.cash = np.zeros(self.currencies.shape)
        self.units = np.zeros(self.sec.shape, np.int64)
        self.closed = np.zeros(self.sec.shape, bool)


def _usd_book(sec: np.ndarray, fractional: np.ndarray) -> _Book:
    """One cash column in USD for every slot: commission at least 1.00, purchases >= 100."""
    n_acct, n_slots = sec.shape
    return _Book(
        sec,
        fractional,
        np.full((n_acct, 1), CURRENCY),
        np.zeros(n_slots, np.int64),
        np.array([1.0]),
        np.array([2]),
        np.array([100.0]),
    )


def generate(
    out_dir: Path | str,
    portfolios: int = 4,
    years: float = 3,
    seed: int = 7,
    end: str | date = "2024-06-28",
    files_per_kind: int | None = None,
    fmt: str = "csv",
    fx_portfolios: int = 0,
) -> dict[str, int]:
    """Write a sample input root to `out_dir`; return the data rows written per kind.

    `years` of history (rounded to whole months) end at `end`, the last date written.
    Existing ``*.csv`` and ``*.parquet`` files under the kind folders of `out_dir` are
    removed first, so a rerun never mixes two layouts or formats. `fmt` "parquet" writes the
    same rows as Parquet through DuckDB (dates as DATE, numbers as DOUBLE, empty as null).
    `fx_portfolios` multi-currency portfolios (see perf_pipeline.sample_fx) come after the
    `portfolios` USD ones, with the ``fx_rates`` kind; with 0 (the default) nothing of
    several currencies is written and the files are those of earlier versions, byte for byte.
    """
    if portfolios < 1:
        raise ValueError(f"portfolios must be >= 1, got {portfolios}")
    if fx_portfolios < 0:
        raise ValueError(f"fx_portfolios must be >= 0, got {fx_portfolios}")
    if years <= 0:
        raise ValueError(f"years must be > 0, got {years}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if files_per_kind is not None and files_per_kind < 1:
        raise ValueError(f"files_per_kind must be >= 1, got {files_per_kind}")
    end_date = date.fromisoformat(end) if isinstance(end, str) else end
    rng = np.random.default_rng(seed)
    cal = _calendar(end_date, years)
    n_sec = max(50, portfolios)
    sec_ids = [f"SEC{i:05d}" for i in range(n_sec)]
    closes, missing, weekend = _security_closes(rng, cal, n_sec)
    grid = _forward_filled(cal, closes, missing, weekend)
    bench_rows = _benchmark_rows(rng, cal)
    port = _portfolios(rng, portfolios, len(cal.months))
    book = _usd_book(*_holdings(rng, portfolios, n_sec))
    income = _security_income(rng, n_sec)
    events = _simulate(rng, cal, grid, book, port, income)
    tx = _transaction_rows(cal, events, book, port, sec_ids)
    price_rows = _price_rows(cal, closes, missing, weekend, sec_ids)
    port_rows = port["table"]
    rate_files = []
    if fx_portfolios:
        # sample_fx builds on this module's helpers, so it is imported here, not at the top
        from perf_pipeline.sample_fx import multi_currency

        fx = multi_currency(
            np.random.default_rng([seed, 17]), cal, grid, income, sec_ids, port, fx_portfolios
        )
        port_rows = {c: np.concatenate([port_rows[c], fx.portfolios[c]]) for c in port_rows}
        tx = _merged(tx, fx.transactions, "trade_date")
        tx["transaction_id"] = _transaction_ids(len(tx["transaction_id"]))
        price_rows = _merged(price_rows, fx.prices, "date")
        rate_files = [("fx_rates", _split(fx.rates, "date", files_per_kind, monthly=False))]
    tables = {
        "portfolios": [("portfolios.csv", port_rows)],
        "transactions": _split(tx, "trade_date", files_per_kind, monthly=True),
        "prices": _split(price_rows, "date", files_per_kind, monthly=False),
        "benchmarks": _split_benchmarks(bench_rows, files_per_kind),
    } | dict(rate_files)
    _write(Path(out_dir), tables, fmt)
    return {kind: sum(len(t[COLUMNS[kind][0]]) for _, t in files) for kind, files in tables.items()}


def fx_split(total: int, fx_share: float) -> tuple[int, int]:
    """(portfolios, fx_portfolios) for `total` portfolios of which a share `fx_share` (0 <= share
    < 1) is multi-currency: fx = round(total x share), at least one USD portfolio left."""
    if not 0 <= fx_share < 1:
        raise ValueError(f"fx_share must be in [0, 1), got {fx_share}")
    fx = min(round(total * fx_share), total - 1)
    return total - fx, fx


# --- calendar and market data -------------------------------------------------------------


def _calendar(end: date, years: float) -> _Calendar:
    """Whole calendar months ending with `end`'s month; history starts 10 days earlier."""
    n_months = max(1, round(years * 12))
    last = end.year * 12 + end.month - 1
    first = last - n_months + 1
    month_starts = np.array(
        [f"{(first + m) // 12:04d}-{(first + m) % 12 + 1:02d}" for m in range(n_months + 1)],
        dtype="datetime64[M]",
    ).astype("datetime64[D]")
    early = month_starts[0] - np.timedelta64(10, "D")
    origin = early - np.timedelta64(int((early.astype(np.int64) + 3) % 7), "D")  # a Monday
    all_days = np.arange(origin, month_starts[-1])
    busdays = np.flatnonzero(np.is_busday(all_days))
    bounds = (month_starts - origin).astype(np.int64)
    months = [busdays[(busdays >= lo) & (busdays < hi)] for lo, hi in itertools.pairwise(bounds)]
    end_offset = int((np.datetime64(end) - origin).astype(np.int64))
    month_numbers = (np.arange(first, first + n_months) % 12) + 1
    return _Calendar(origin, end_offset, busdays, months, month_numbers)


def _security_closes(
    rng: np.random.Generator, cal: _Calendar, n_sec: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Business-day closes (busdays x securities), the missing mask, weekend closes.

    close_t = close_0 exp(sum (mu - sigma^2/2)/252 + sigma/sqrt(252) z), rounded to 4 dp.
    `weekend` rows are (Saturday offset, security, close): the Friday close moved by one
    day's noise; the following Monday's close is then missing.
    """
    n_days = len(cal.busdays)
    mu = rng.uniform(0.0, 0.14, n_sec)
    sigma = rng.uniform(0.12, 0.45, n_sec)
    start = np.exp(rng.uniform(np.log(10.0), np.log(300.0), n_sec))
    steps = (mu - sigma**2 / 2) / 252 + sigma / np.sqrt(252) * rng.standard_normal((n_days, n_sec))
    steps[0] = 0.0
    closes = np.maximum(np.round(start * np.exp(np.cumsum(steps, axis=0)), 4), 0.01)
    missing = rng.random((n_days, n_sec)) < 0.01
    missing[:2] = False
    n_weekend = 5 + n_sec // 200
    fridays = np.flatnonzero(cal.busdays % 7 == 4)
    fridays = fridays[(fridays >= 2) & (cal.busdays[fridays] + 1 <= cal.end)]
    # more weekend closes than Fridays (many securities, a short history): a Friday repeats,
    # each with other securities; otherwise the draw is the one every seed had before
    fri = rng.choice(fridays, n_weekend, replace=n_weekend > len(fridays))
    sec = rng.choice(n_sec, n_weekend, replace=False)
    noise = np.exp(sigma[sec] / np.sqrt(252) * rng.standard_normal(n_weekend))
    weekend = np.column_stack(
        [cal.busdays[fri] + 1, sec, np.maximum(np.round(closes[fri, sec] * noise, 4), 0.01)]
    )
    monday = fri + 1
    in_range = monday < n_days
    missing[monday[in_range], sec[in_range]] = True
    return closes, missing, weekend


def _forward_filled(
    cal: _Calendar, closes: np.ndarray, missing: np.ndarray, weekend: np.ndarray
) -> np.ndarray:
    """Price on every calendar day (days x securities): the last close dated on or before it."""
    grid = np.full((cal.days, closes.shape[1]), np.nan)
    grid[cal.busdays] = np.where(missing, np.nan, closes)
    grid[weekend[:, 0].astype(np.int64), weekend[:, 1].astype(np.int64)] = weekend[:, 2]
    have = ~np.isnan(grid)
    last = np.maximum.accumulate(np.where(have, np.arange(cal.days)[:, None], 0), axis=0)
    return grid[last, np.arange(grid.shape[1])]


def _benchmark_rows(rng: np.random.Generator, cal: _Calendar) -> _Table:
    """Index levels on business days up to the as-of date, a few (not the first) missing;
    same geometric random walk as the securities."""
    days = cal.busdays[cal.busdays <= cal.end]
    dates = cal.origin + days
    parts = []
    for bench_id, level, mu, sigma in BENCHMARKS:
        steps = (mu - sigma**2 / 2) / 252 + sigma / np.sqrt(252) * rng.standard_normal(len(days))
        steps[0] = 0.0
        closes = np.round(level * np.exp(np.cumsum(steps)), 4)
        keep = rng.random(len(days)) >= 0.005
        keep[0] = True
        parts.append((np.full(keep.sum(), bench_id), dates[keep], closes[keep]))
    return {
        col: np.concatenate([p[i] for p in parts]) for i, col in enumerate(COLUMNS["benchmarks"])
    }


def _price_rows(
    cal: _Calendar,
    closes: np.ndarray,
    missing: np.ndarray,
    weekend: np.ndarray,
    sec_ids: list[str],
    currency: str = CURRENCY,
) -> _Table:
    """Price rows (in `currency`) up to the as-of date, ordered by date then security."""
    d_idx, s_idx = np.nonzero(~missing & (cal.busdays <= cal.end)[:, None])
    day = np.concatenate([cal.busdays[d_idx], weekend[:, 0].astype(np.int64)])
    sec = np.concatenate([s_idx, weekend[:, 1].astype(np.int64)])
    close = np.concatenate([closes[d_idx, s_idx], weekend[:, 2]])
    order = np.lexsort((sec, day))
    return {
        "security_id": np.asarray(sec_ids)[sec[order]],
        "date": cal.origin + day[order],
        "close": close[order],
        "currency": np.full(len(order), currency),
    }


# --- portfolios, accounts, holdings -------------------------------------------------------


def _portfolios(rng: np.random.Generator, n: int, n_months: int) -> dict:
    """Ids, clients, benchmarks and inception months of the portfolios.

    Clients own 2, 1, 3, 2, 1, 3, ... portfolios in turn. Portfolio 2 (and about a fifth of
    the others) starts in a later month; every fourth portfolio and the last have no benchmark.
    """
    ids = [f"P{i + 1:05d}" for i in range(n)]
    clients: list[str] = []
    while len(clients) < n:
        clients += [f"C{len(set(clients)) + 1:04d}"] * (2, 1, 3)[len(set(clients)) % 3]
    late = rng.random(n) < 0.2
    inception = np.where(late, rng.integers(1, max(2, int(n_months * 0.8)), n), 0)
    if n > 1:
        inception[1] = int(n_months * 0.4)
    inception[0] = 0
    inception = np.minimum(inception, n_months - 1)
    no_bench = (np.arange(n) % 4 == 3) | ((np.arange(n) == n - 1) & (n > 1))
    bench = ["" if no_bench[i] else BENCHMARKS[i % 4 % 2][0] for i in range(n)]
    table = {
        "portfolio_id": np.asarray(ids),
        "client_id": np.asarray(clients[:n]),
        "base_currency": np.full(n, CURRENCY),
        "benchmark_id": np.asarray(bench),
    }
    transfer = np.where(rng.random(n) < 0.1, rng.integers(inception + 1, n_months + 1), -1)
    transfer[0] = max(1, n_months // 3) if n_months > 1 else -1
    transfer[transfer >= n_months] = -1
    return {"ids": ids, "table": table, "inception": inception, "transfer": transfer}


def _holdings(rng: np.random.Generator, n_port: int, n_sec: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct securities per account; an A2 account's last slot holds its A1's first one."""
    n_acct = 2 * n_port
    cand = np.argpartition(rng.random((n_acct, n_sec)), SLOTS + 1, axis=1)[:, : SLOTS + 1]
    sec = cand[:, :SLOTS].copy()
    a1_first = sec[0::2, 0]
    a2_cand = cand[1::2]
    order = np.argsort(a2_cand == a1_first[:, None], axis=1, kind="stable")
    a2 = np.take_along_axis(a2_cand, order, axis=1)[:, : SLOTS - 1]
    sec[1::2] = np.column_stack([a2, a1_first])
    fractional = np.arange(n_acct) % 5 == 4
    return sec, fractional


def _security_income(rng: np.random.Generator, n_sec: int) -> dict[str, np.ndarray]:
    """Per security: kind (0 none, 1 dividend in Mar/Jun/Sep/Dec, 2 bond interest in
    Feb/May/Aug/Nov), annual yield and the business-day index of its payments."""
    u = rng.random(n_sec)
    kind = np.where(u < 0.1, 2, np.where(u < 0.65, 1, 0))
    yld = np.where(kind == 2, rng.uniform(0.03, 0.05, n_sec), rng.uniform(0.01, 0.04, n_sec))
    day = rng.integers(_INCOME_DAYS[0], _INCOME_DAYS[1] + 1, n_sec)
    return {"kind": kind, "yield": yld, "day": day}


# --- the monthly simulation ---------------------------------------------------------------


def _floor_to(x: np.ndarray, decimals: int | np.ndarray = 2) -> np.ndarray:
    """x rounded down to `decimals` places (cents by default; 0 for yen)."""
    scale = 10.0 ** np.asarray(decimals)
    return np.floor(np.asarray(x) * scale + 1e-9) / scale


def _commission(value: np.ndarray, minimum: np.ndarray, decimals: np.ndarray) -> np.ndarray:
    """max(minimum, 0.05 % of value), never above 1 % of value, rounded down to `decimals`."""
    return _floor_to(np.minimum(np.maximum(minimum, 0.0005 * value), 0.01 * value), decimals)


def _days(rng: np.random.Generator, bds: np.ndarray, lo: int, hi: int, n: int) -> np.ndarray:
    return bds[rng.integers(lo, hi + 1, n)]


def _simulate(
    rng: np.random.Generator,
    cal: _Calendar,
    grid: np.ndarray,
    book: _Book,
    port: dict,
    income: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Apply each month's events to `book` in date order, collecting them as transactions."""
    n_acct = len(book.cash)
    start = np.repeat(port["inception"], 2)
    initial = np.round(np.exp(rng.uniform(np.log(20_000), np.log(500_000), n_acct)), -3)
    monthly = np.round(rng.uniform(200, 3_000, n_acct), -1)
    cash_rate = rng.uniform(0.01, 0.04, n_acct)
    n_months = len(cal.months)
    forced = max(1, n_months // 2) if n_months > 1 else -1  # account 0: sell-out, withdrawal
    ev = _Events()
    for m, bds in enumerate(cal.months):
        active = start <= m
        new = start == m
        _deposits(rng, ev, book, bds, active, new, initial, monthly)
        _initial_buys(rng, ev, book, grid, bds, new)
        _monthly_buys(rng, ev, book, grid, bds, active & ~new)
        _sells(rng, ev, book, grid, bds, active & ~new, forced_acct=0 if m == forced else None)
        _transfers(ev, book, grid, bds, np.flatnonzero(port["transfer"] == m))
        _income(ev, book, grid, bds, income, cal.month_numbers[m], active)
        _withdrawals(rng, ev, book, bds, active & ~new, forced_acct=0 if m == forced else None)
        _month_end(ev, book, grid, bds, active, cash_rate)
    return ev.table()


def _deposits(
    rng: np.random.Generator,
    ev: _Events,
    book: _Book,
    bds: np.ndarray,
    active: np.ndarray,
    new: np.ndarray,
    initial: np.ndarray,
    monthly: np.ndarray,
) -> None:
    """Initial deposit at inception, else the monthly one; those of a month that starts on
    a Monday are dated on the Saturday before for a third of the accounts."""
    idx = np.flatnonzero(active)
    amount = np.where(new, initial, monthly)[idx]
    saturday = ~new[idx] & (rng.random(len(idx)) < 1 / 3) & (bds[0] % 7 == 0)
    day = np.where(saturday, bds[0] - 2, bds[0])
    book.cash[idx, 0] += amount
    fee = np.where(new[idx], 0.0, np.nan)
    ev.add(day, idx, "DEPOSIT", amount=amount, fee=fee)


def _initial_buys(
    rng: np.random.Generator,
    ev: _Events,
    book: _Book,
    grid: np.ndarray,
    bds: np.ndarray,
    new: np.ndarray,
) -> None:
    """A new account spends 90 % of its cash in each currency evenly over the slots of
    that currency."""
    idx = np.flatnonzero(new)
    slots = np.bincount(book.slot_col, minlength=book.cash.shape[1])
    budget = book.cash[idx] * 0.9 / np.maximum(slots, 1)
    for slot, col in enumerate(book.slot_col):
        day = _days(rng, bds, *_BUY_DAYS, len(idx))
        _buy(ev, book, grid, idx, np.full(len(idx), slot), budget[:, col], day)


def _monthly_buys(
    rng: np.random.Generator,
    ev: _Events,
    book: _Book,
    grid: np.ndarray,
    bds: np.ndarray,
    eligible: np.ndarray,
) -> None:
    """Twice: half of the accounts buy into one random slot for 30-90 % of that slot's
    currency's cash."""
    n = len(book.cash)
    acct = np.arange(n)
    for _ in range(2):
        pick = eligible & (rng.random(n) < 0.5)
        slot = rng.integers(0, book.sec.shape[1], n)
        budget = book.cash[acct, book.slot_col[slot]] * rng.uniform(0.3, 0.9, n)
        day = _days(rng, bds, *_BUY_DAYS, n)
        _buy(ev, book, grid, acct[pick], slot[pick], budget[pick], day[pick])


def _buy(
    ev: _Events,
    book: _Book,
    grid: np.ndarray,
    idx: np.ndarray,
    slot: np.ndarray,
    budget: np.ndarray,
    day: np.ndarray,
) -> None:
    """q = floor((budget - fee) / price) (to 3 dp in fractional accounts); cost q p + fee,
    in the slot's currency."""
    col = book.slot_col[slot]
    price = grid[day, book.sec[idx, slot]]
    fee = _commission(budget, book.min_fee[col], book.decimals[col])
    qty = np.maximum(budget - fee, 0) / price
    units = np.where(book.fractional[idx], np.floor(qty * 1000), np.floor(qty) * 1000)
    units = units.astype(np.int64)
    ok = (units > 0) & ~book.closed[idx, slot] & (budget >= book.min_budget[col])
    idx, slot, col, day = idx[ok], slot[ok], col[ok], day[ok]
    units, price, fee = units[ok], price[ok], fee[ok]
    np.add.at(book.cash, (idx, col), -(units / 1000 * price + fee))
    np.add.at(book.units, (idx, slot), units)
    ev.add(day, idx, "BUY", slot=slot, units=units, price=price, fee=fee, col=col)


def _sells(
    rng: np.random.Generator,
    ev: _Events,
    book: _Book,
    grid: np.ndarray,
    bds: np.ndarray,
    eligible: np.ndarray,
    forced_acct: int | None,
) -> None:
    """A third of the accounts sell 20-60 % of one held position, 3 % of them all of it;
    `forced_acct` sells all of its slot 1. Monday sells are dated Saturday 15 % of the time."""
    n = len(book.cash)
    held = book.units > 0
    slot = np.argmax(rng.random(book.units.shape) * held, axis=1)
    pick = eligible & (rng.random(n) < 1 / 3) & held[np.arange(n), slot]
    full = rng.random(n) < 0.03
    frac = rng.uniform(0.2, 0.6, n)
    day = _days(rng, bds, *_SELL_DAYS, n)
    saturday = (day % 7 == 0) & (rng.random(n) < 0.15)
    day = np.where(saturday, day - 2, day)
    if forced_acct is not None and book.units[forced_acct, 1] > 0:
        pick[forced_acct], slot[forced_acct], full[forced_acct] = True, 1, True
    idx = np.flatnonzero(pick)
    slot, full, day = slot[idx], full[idx], day[idx]
    have = book.units[idx, slot]
    part = have * frac[idx]
    part = np.where(book.fractional[idx], np.floor(part), np.floor(part / 1000) * 1000)
    units = np.where(full, have, part).astype(np.int64)
    ok = units > 0
    idx, slot, day, units, full = idx[ok], slot[ok], day[ok], units[ok], full[ok]
    col = book.slot_col[slot]
    price = grid[day, book.sec[idx, slot]]
    value = units / 1000 * price
    fee = _commission(value, book.min_fee[col], book.decimals[col])
    book.cash[idx, col] += value - fee
    book.units[idx, slot] -= units
    book.closed[idx[full], slot[full]] = True
    ev.add(day, idx, "SELL", slot=slot, units=units, price=price, fee=fee, col=col)


def _transfers(
    ev: _Events, book: _Book, grid: np.ndarray, bds: np.ndarray, portfolios: np.ndarray
) -> None:
    """Half (whole units) of A1's first position moves to A2's last slot at that day's price."""
    a1 = 2 * portfolios
    units = (book.units[a1, 0] // 2000) * 1000
    ok = units > 0
    a1, units = a1[ok], units[ok]
    a2 = a1 + 1
    day = np.full(len(a1), bds[_TRANSFER_DAY])
    price = grid[day, book.sec[a1, 0]]
    book.units[a1, 0] -= units
    book.units[a2, SLOTS - 1] += units
    zero = np.zeros(len(a1))
    ev.add(
        day,
        a1,
        "TRANSFER_OUT",
        slot=np.zeros(len(a1), np.int64),
        units=units,
        price=price,
        fee=zero,
    )
    ev.add(
        day, a2, "TRANSFER_IN", slot=np.full(len(a1), SLOTS - 1), units=units, price=price, fee=zero
    )


def _income(
    ev: _Events,
    book: _Book,
    grid: np.ndarray,
    bds: np.ndarray,
    income: dict[str, np.ndarray],
    month_number: int,
    active: np.ndarray,
) -> None:
    """Quarterly income on held positions: q * close * yield / 4, rounded down to the
    currency's decimals."""
    kind = {0: 1, 2: 2}.get(month_number % 3)
    if kind is None:
        return
    sec = book.sec
    pays = (income["kind"][sec] == kind) & (book.units > 0) & active[:, None]
    idx, slot = np.nonzero(pays)
    s = sec[idx, slot]
    col = book.slot_col[slot]
    day = bds[income["day"][s]]
    value = book.units[idx, slot] / 1000 * grid[day, s] * income["yield"][s] / 4
    amount = _floor_to(value, book.decimals[col])
    ok = amount > 0
    idx, slot, col, day, amount = idx[ok], slot[ok], col[ok], day[ok], amount[ok]
    np.add.at(book.cash, (idx, col), amount)
    kind_name = "DIVIDEND" if kind == 1 else "INTEREST"
    ev.add(day, idx, kind_name, slot=slot, amount=amount, col=col)


def _withdrawals(
    rng: np.random.Generator,
    ev: _Events,
    book: _Book,
    bds: np.ndarray,
    eligible: np.ndarray,
    forced_acct: int | None,
) -> None:
    """4 % of accounts a month withdraw 10-50 % of their cash, in hundreds."""
    n = len(book.cash)
    pick = eligible & (rng.random(n) < 0.04)
    amount = np.floor(book.cash[:, 0] * rng.uniform(0.1, 0.5, n) / 100) * 100
    day = _days(rng, bds, *_WITHDRAWAL_DAYS, n)
    if forced_acct is not None:
        pick[forced_acct] = True
    idx = np.flatnonzero(pick & (amount >= 100))
    book.cash[idx, 0] -= amount[idx]
    ev.add(day[idx], idx, "WITHDRAWAL", amount=amount[idx])


def _month_end(
    ev: _Events,
    book: _Book,
    grid: np.ndarray,
    bds: np.ndarray,
    active: np.ndarray,
    cash_rate: np.ndarray,
) -> None:
    """Last business day: interest on cash (rate / 12), then the management fee,
    0.75 % a year of market value, at most half the cash."""
    day = bds[-1]
    idx = np.flatnonzero(active)
    interest = _floor_to(book.cash[idx, 0] * cash_rate[idx] / 12)
    ok = interest >= 0.01
    book.cash[idx[ok], 0] += interest[ok]
    ev.add(day, idx[ok], "INTEREST", amount=interest[ok])
    value = (book.units[idx] / 1000 * grid[day, book.sec[idx]]).sum(axis=1) + book.cash[idx, 0]
    fee = _floor_to(np.minimum(value * 0.0075 / 12, book.cash[idx, 0] * 0.5))
    ok = fee >= 0.01
    book.cash[idx[ok], 0] -= fee[ok]
    ev.add(day, idx[ok], "FEE", amount=fee[ok])


# --- rows and files -----------------------------------------------------------------------


def _fixed(decimals: int) -> Callable[[np.ndarray], list[str]]:
    """Formatter to `decimals` places, empty for NaN."""

    def text(values: np.ndarray) -> list[str]:
        return [f"{v:.{decimals}f}" if v == v else "" for v in values.tolist()]

    return text


def _iso(values: np.ndarray) -> list[str]:
    return np.datetime_as_string(values, unit="D").tolist()


def _quantity(units: np.ndarray) -> list[str]:
    """Thousandths as a decimal without trailing zeros (``12``, ``12.5``); empty when < 0."""

    def text(u: int) -> str:
        if u < 0:
            return ""
        whole, part = divmod(u, 1000)
        return f"{whole}.{part:03d}".rstrip("0") if part else str(whole)

    return [text(u) for u in units.tolist()]


_TEXT = {
    "trade_date": _iso,
    "date": _iso,
    "quantity": _quantity,
    "price": _fixed(4),
    "close": _fixed(4),
    "amount": _fixed(2),
    "fee": _fixed(2),
    "fx_rate": _fixed(8),
    "counter_amount": _fixed(2),
    "rate": _fixed(6),
}


def _transaction_rows(
    cal: _Calendar, ev: _Table, book: _Book, port: dict, sec_ids: list[str]
) -> _Table:
    """Events up to the as-of date in (date, generation) order, numbered T000001, ..., in
    the currency of their cash column; event columns named after FX_COLUMNS pass through."""
    keep = ev["day"] <= cal.end
    ev = {k: v[keep] for k, v in ev.items()}
    order = np.lexsort((ev["slot"], ev["acct"], ev["batch"], ev["day"]))
    ev = {k: v[order] for k, v in ev.items()}
    n = len(order)
    acct, slot = ev["acct"], ev["slot"]
    portfolio = np.asarray(port["ids"])[acct // 2]
    sec = np.where(slot >= 0, book.sec[acct, np.maximum(slot, 0)], -1)
    return {
        "transaction_id": _transaction_ids(n),
        "portfolio_id": portfolio,
        "account_id": np.char.add(portfolio, np.where(acct % 2 == 0, "-A1", "-A2")),
        "security_id": np.where(sec >= 0, np.asarray(sec_ids)[np.maximum(sec, 0)], ""),
        "trade_date": cal.origin + ev["day"],
        "type": np.asarray(TX_TYPES)[ev["type"]],
        "quantity": ev["units"],
        "price": ev["price"],
        "amount": ev["amount"],
        "fee": ev["fee"],
        "currency": book.currencies[acct, ev["col"]],
    } | {c: ev[c] for c in FX_COLUMNS if c in ev}


def _transaction_ids(n: int) -> np.ndarray:
    """T000001 .. Tn, at least 6 digits."""
    width = max(6, len(str(n)))
    return np.char.add("T", np.char.zfill(np.arange(1, n + 1).astype(str), width))


def _merged(first: _Table, second: _Table, date_col: str) -> _Table:
    """The rows of both tables in date order, `first`'s before `second`'s on the same date;
    a column only `second` has is null (NaN or empty) on `first`'s rows."""
    n = len(first[date_col])
    filled = {
        c: first[c] if c in first else np.full(n, np.nan if v.dtype.kind == "f" else "")
        for c, v in second.items()
    }
    order = np.argsort(np.concatenate([first[date_col], second[date_col]]), kind="stable")
    return {c: np.concatenate([filled[c], second[c]])[order] for c in second}


def _slice(table: _Table, lo: int, hi: int) -> _Table:
    return {k: v[lo:hi] for k, v in table.items()}


def _split(
    table: _Table, date_col: str, files_per_kind: int | None, monthly: bool
) -> list[tuple[str, _Table]]:
    """Date-ordered rows into ``YYYY/YYYY-MM.csv`` (monthly) or ``YYYY.csv`` files, or into
    `files_per_kind` near-equal runs ``YYYY/part-NNN.csv`` (YYYY of a run's first row)."""
    dates = table[date_col]
    if files_per_kind is None:
        keys = dates.astype("datetime64[M]" if monthly else "datetime64[Y]")
        cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        bounds = [0, *cuts.tolist(), len(dates)]
        return [
            (
                f"{str(keys[lo])[:4]}/{keys[lo]}.csv" if monthly else f"{keys[lo]}.csv",
                _slice(table, lo, hi),
            )
            for lo, hi in _pairs(bounds)
        ]
    bounds = np.linspace(0, len(dates), files_per_kind + 1).round().astype(int).tolist()
    return [
        (f"{str(dates[lo])[:4]}/part-{k + 1:03d}.csv", _slice(table, lo, hi))
        for k, (lo, hi) in enumerate(_pairs(bounds))
        if hi > lo
    ]


def _pairs(bounds: list[int]) -> list[tuple[int, int]]:
    return list(itertools.pairwise(bounds))


def _split_benchmarks(table: _Table, files_per_kind: int | None) -> list[tuple[str, _Table]]:
    """One file per benchmark, or `files_per_kind` date-ordered runs."""
    if files_per_kind is None:
        ids = table["benchmark_id"]
        return [(f"{b}.csv", {k: v[ids == b] for k, v in table.items()}) for b, *_ in BENCHMARKS]
    order = np.argsort(table["date"], kind="stable")
    return _split({k: v[order] for k, v in table.items()}, "date", files_per_kind, False)


def _write(root: Path, tables: dict[str, list[tuple[str, _Table]]], fmt: str) -> None:
    """Replace the kind folders' data files with `tables` as CSV, or Parquet via DuckDB."""
    for kind in KINDS:
        folder = root / kind
        if folder.exists():
            for old in sorted(folder.rglob("*")):
                if old.suffix in (".csv", ".parquet") and old.is_file():
                    old.unlink()
    with tempfile.TemporaryDirectory() as tmp, duckdb.connect() as con:
        con.execute("SET threads = 1")
        staged = Path(tmp) / "staged.csv"
        for kind, files in tables.items():
            for rel, table in files:
                target = root / kind / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if fmt == "csv":
                    _write_csv(target, kind, table)
                else:
                    _write_csv(staged, kind, table)
                    names = _columns(kind, table)
                    _csv_to_parquet(con, staged, target.with_suffix(".parquet"), names)


def _columns(kind: str, table: _Table) -> tuple[str, ...]:
    """The columns of `kind`, with FX_COLUMNS for transactions that have them."""
    extra = FX_COLUMNS if kind == "transactions" and FX_COLUMNS[0] in table else ()
    return COLUMNS[kind] + extra


def _write_csv(path: Path, kind: str, table: _Table) -> None:
    names = _columns(kind, table)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(names)
        columns = (_TEXT.get(c, np.ndarray.tolist)(table[c]) for c in names)
        writer.writerows(zip(*columns, strict=True))


def _csv_to_parquet(
    con: duckdb.DuckDBPyConnection, source: Path, target: Path, names: tuple[str, ...]
) -> None:
    """Typed copy: dates DATE, numbers DOUBLE, other columns VARCHAR, empty fields null."""

    def quoted(path: Path) -> str:
        return "'" + str(path).replace("'", "''") + "'"

    columns = ", ".join(f"'{c}': '{_SQL_TYPES.get(c, 'VARCHAR')}'" for c in names)
    con.execute(
        f"COPY (SELECT * FROM read_csv({quoted(source)}, header = true, delim = ',', "
        f"quote = '\"', columns = {{{columns}}})) TO {quoted(target)} (FORMAT parquet)"
    )
