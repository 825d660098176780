"""Multi-currency sample portfolios, for ``sample_data.generate(..., fx_portfolios=K)``.

What the K portfolios add to the single-currency sample:

- portfolios in EUR, EUR, GBP, EUR, EUR, GBP, ... (base currency), ids and clients numbered
  after the USD ones, two accounts each, inception and benchmarks drawn as for those; each
  account holds four USD securities (the single-currency universe, ``SEC*``), four JPY
  securities (``JSEC*``, closes in yen to 1 dp, about 1,000 to 30,000) and cash in its base
  currency, USD and JPY;
- exchange rates ``fx_rates/YYYY.csv`` (date, base, quote, rate, source): EURUSD, GBPUSD and
  USDJPY, so that USD->EUR needs the inverse of EURUSD and EUR->JPY the cross through USD.
  Each is a driftless geometric random walk from a realistic level (1.12, 1.27, 125),
  r_t = r_0 exp(sum -sigma^2/2/252 + sigma/sqrt(252) z) with sigma 7 %, 8 %, 9 %, rounded to
  6 dp, quoted on every business day from the first day of the history (before any
  transaction, so every rate is known from the first transaction on) to the as-of date,
  except 25 December and 1 January (no pair quoted) and a few missing days per pair (at
  least one each); the source is "WM/Reuters 16:00 London", empty on about 1 % of rows;
- one calendar month of events per step, in date order: a DEPOSIT in the base currency
  (the initial one at inception with an explicit 0.00 fee) on the month's first business
  day, then the same day two FX exchanges of part of it into USD and JPY cash (type FX:
  ``amount`` of the base currency out, ``counter_amount`` of ``counter_currency`` in, at
  that day's rate less a 0.15 % spread, rounded down to the cent or the yen); BUYs, SELLs
  (some dated on a Saturday, a few of a whole position) and quarterly DIVIDENDs and bond
  INTEREST drawn by the same functions as the USD portfolios', in the security's currency and
  from or into that currency's cash (commission max(1 USD or 150 JPY, 0.05 %), at most 1 %;
  purchases of at least 100 USD or 15,000 JPY); now and then an FX of USD cash back into the base
  currency, followed by a WITHDRAWAL in the base currency; at month end INTEREST on each
  currency's cash (no security; JPY at 0.1 % a year) and a management FEE in the base
  currency, 0.75 % a year of the account's value in the base currency;
- a booked ``fx_rate`` (units of the base currency for one unit of the row's currency: that
  day's rate +/- 0.3 %, 8 dp) on about a third of the BUYs and SELLs and half of the
  DIVIDEND and INTEREST rows naming a security;
- cash never goes negative in any currency: a purchase costs at most 90 % of the cash of
  its currency, an exchange or withdrawal takes at most the cash of its currency at hand,
  fees at most half the base cash.

Every rate used here is the one the pipeline uses: the last quote dated on or before the day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perf_pipeline.sample_data import (
    _T,
    _WITHDRAWAL_DAYS,
    _Book,
    _Calendar,
    _days,
    _Events,
    _floor_to,
    _forward_filled,
    _income,
    _initial_buys,
    _monthly_buys,
    _portfolios,
    _price_rows,
    _security_closes,
    _security_income,
    _sells,
    _Table,
    _transaction_rows,
)

# (base, quote, level at the start of the history, annual volatility)
PAIRS = (("EUR", "USD", 1.12, 0.07), ("GBP", "USD", 1.27, 0.08), ("USD", "JPY", 125.0, 0.09))
BASES = ("EUR", "EUR", "GBP")  # base currency of the i-th portfolio: BASES[i % 3]
HELD = ("USD", "JPY")  # currencies of the securities; cash columns 1 and 2 (0: the base)
SOURCE = "WM/Reuters 16:00 London"
SLOTS_PER_CURRENCY = 4
SPREAD = 0.0015
JPY_SCALE = 100.0  # yen closes: the securities' random walk levels x 100
_SLOT_COLUMN = np.repeat([1, 2], SLOTS_PER_CURRENCY)  # cash column of each slot's currency
_DECIMALS = np.array([2, 2, 0])  # per cash column: cents, cents, yen
_MIN_FEE = np.array([1.0, 1.0, 150.0])
_MIN_BUDGET = np.array([100.0, 100.0, 15_000.0])
_REPATRIATION_DAY = _WITHDRAWAL_DAYS[0]


@dataclass(frozen=True)
class FxSample:
    """The rows the multi-currency portfolios add, per kind (transactions not yet numbered)."""

    portfolios: _Table
    transactions: _Table
    prices: _Table
    rates: _Table


def multi_currency(
    rng: np.random.Generator,
    cal: _Calendar,
    usd_grid: np.ndarray,
    usd_income: dict[str, np.ndarray],
    usd_ids: list[str],
    usd_port: dict,
    n: int,
) -> FxSample:
    """`n` multi-currency portfolios beside the USD ones (`usd_port`), holding the USD
    securities of `usd_grid` (their closes on every calendar day) and new JPY securities."""
    n_months = len(cal.months)
    port = _portfolios(rng, n, n_months)
    first = len(usd_port["ids"])
    clients = len(set(usd_port["table"]["client_id"].tolist()))
    ids = [f"P{first + i + 1:05d}" for i in range(n)]
    base = np.asarray(BASES)[np.arange(n) % 3]
    table = {
        "portfolio_id": np.asarray(ids),
        "client_id": np.asarray(
            [f"C{int(c[1:]) + clients:04d}" for c in port["table"]["client_id"]]
        ),
        "base_currency": base,
        "benchmark_id": port["table"]["benchmark_id"],
    }
    levels, gaps = _rate_series(rng, cal)
    n_jpy = max(20, n // 2)
    closes, missing, weekend = _security_closes(rng, cal, n_jpy)
    closes = np.round(closes * JPY_SCALE, 1)
    weekend[:, 2] = np.round(weekend[:, 2] * JPY_SCALE, 1)
    jpy_ids = [f"JSEC{i:05d}" for i in range(n_jpy)]
    jpy_income = _security_income(rng, n_jpy)
    n_acct = 2 * n
    acct_base = np.repeat(base, 2)
    # per account, the column of the pair quoting its base currency in USD (EURUSD, GBPUSD)
    usd_pair = {p[0]: i for i, p in enumerate(PAIRS) if p[1] == "USD"}
    sim = _Sim(
        rng,
        np.hstack([usd_grid, _forward_filled(cal, closes, missing, weekend)]),
        _forward_filled(cal, levels, gaps, np.empty((0, 3))),
        _Book(
            _fx_holdings(rng, n_acct, usd_grid.shape[1], n_jpy),
            np.arange(n_acct) % 5 == 4,
            np.column_stack([acct_base, np.full(n_acct, HELD[0]), np.full(n_acct, HELD[1])]),
            _SLOT_COLUMN,
            _MIN_FEE,
            _DECIMALS,
            _MIN_BUDGET,
        ),
        np.asarray([usd_pair[b] for b in acct_base.tolist()]),
    )
    income = {k: np.concatenate([usd_income[k], jpy_income[k]]) for k in usd_income}
    events = sim.run(cal, np.repeat(port["inception"], 2), income)
    transactions = _transaction_rows(cal, events, sim.book, {"ids": ids}, usd_ids + jpy_ids)
    prices = _price_rows(cal, closes, missing, weekend, jpy_ids, currency=HELD[1])
    return FxSample(table, transactions, prices, _rate_rows(rng, cal, levels, gaps))


# --- exchange rates -------------------------------------------------------------------------


def _rate_series(rng: np.random.Generator, cal: _Calendar) -> tuple[np.ndarray, np.ndarray]:
    """Levels of PAIRS on every business day (busdays x pairs) and the mask of days without
    a quote: 25 December, 1 January, about 0.4 % of the others and at least one a pair
    (never the first day)."""
    n = len(cal.busdays)
    start = np.array([p[2] for p in PAIRS])
    sigma = np.array([p[3] for p in PAIRS])
    steps = -(sigma**2) / 2 / 252 + sigma / np.sqrt(252) * rng.standard_normal((n, len(PAIRS)))
    steps[0] = 0.0
    levels = np.round(start * np.exp(np.cumsum(steps, axis=0)), 6)
    dates = cal.origin + cal.busdays
    months = dates.astype("datetime64[M]")
    day = (dates - months.astype("datetime64[D]")).astype(np.int64) + 1
    month = months.astype(np.int64) % 12 + 1
    holiday = ((month == 12) & (day == 25)) | ((month == 1) & (day == 1))
    gaps = holiday[:, None] | (rng.random((n, len(PAIRS))) < 0.004)
    open_days = np.flatnonzero(~holiday & (cal.busdays <= cal.end))
    open_days = open_days[open_days > 0]
    if len(open_days):
        gaps[rng.choice(open_days, len(PAIRS)), np.arange(len(PAIRS))] = True
    gaps[0] = False
    return levels, gaps


def _rate_rows(
    rng: np.random.Generator, cal: _Calendar, levels: np.ndarray, gaps: np.ndarray
) -> _Table:
    """The quoted rates up to the as-of date, ordered by date then pair."""
    d_idx, p_idx = np.nonzero(~gaps & (cal.busdays <= cal.end)[:, None])
    source = np.where(rng.random(len(d_idx)) < 0.01, "", SOURCE)
    return {
        "date": cal.origin + cal.busdays[d_idx],
        "base": np.asarray([p[0] for p in PAIRS])[p_idx],
        "quote": np.asarray([p[1] for p in PAIRS])[p_idx],
        "rate": levels[d_idx, p_idx],
        "source": source,
    }


# --- accounts and their simulation ----------------------------------------------------------


def _fx_holdings(rng: np.random.Generator, n_acct: int, n_usd: int, n_jpy: int) -> np.ndarray:
    """Per account, SLOTS_PER_CURRENCY distinct USD securities then as many JPY ones
    (indices into the USD columns followed by the JPY columns of the price grid)."""
    k = SLOTS_PER_CURRENCY
    usd = np.argpartition(rng.random((n_acct, n_usd)), k, axis=1)[:, :k]
    jpy = n_usd + np.argpartition(rng.random((n_acct, n_jpy)), k, axis=1)[:, :k]
    return np.hstack([usd, jpy])


@dataclass
class _FxEvents(_Events):
    """_Events with the counter side of an FX: its amount and its cash column."""

    def __post_init__(self) -> None:
        self.cols["counter_amount"] = []
        self.cols["counter_col"] = []

    def add(
        self,
        day: np.ndarray | int,
        acct: np.ndarray,
        tx_type: str,
        *,
        counter_amount: np.ndarray | None = None,
        counter_col: int = -1,
        **columns: Any,
    ) -> None:
        """_Events.add, and the counter side (null unless given)."""
        n = len(acct)
        if n == 0:
            return
        super().add(day, acct, tx_type, **columns)
        self.cols["counter_amount"].append(
            np.full(n, np.nan) if counter_amount is None else counter_amount
        )
        self.cols["counter_col"].append(np.full(n, counter_col, np.int64))


@dataclass
class _Sim:
    """The monthly events of the multi-currency accounts, applied to `book` as they are made."""

    rng: np.random.Generator
    grid: np.ndarray  # calendar days x securities (USD, then JPY): last close
    rates: np.ndarray  # calendar days x PAIRS: last quote
    book: _Book  # cash columns: base currency, USD, JPY
    base_pair: np.ndarray  # per account: the column of `rates` quoting its base in USD
    ev: _FxEvents = field(default_factory=_FxEvents)

    def run(
        self, cal: _Calendar, start: np.ndarray, income: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Every month's events, then the booked rates and the counter currencies."""
        rng, book, ev, n = self.rng, self.book, self.ev, len(self.book.cash)
        initial = np.round(np.exp(rng.uniform(np.log(20_000), np.log(500_000), n)), -3)
        monthly = np.round(rng.uniform(200, 3_000, n), -1)
        cash_rate = np.column_stack(
            [rng.uniform(0.01, 0.03, n), rng.uniform(0.02, 0.05, n), np.full(n, 0.001)]
        )
        for m, bds in enumerate(cal.months):
            active, new = start <= m, start == m
            self.deposits(bds, active, new, initial, monthly)
            _initial_buys(rng, ev, book, self.grid, bds, new)
            _monthly_buys(rng, ev, book, self.grid, bds, active & ~new)
            _sells(rng, ev, book, self.grid, bds, active & ~new, forced_acct=None)
            _income(ev, book, self.grid, bds, income, cal.month_numbers[m], active)
            self.withdrawals(bds, active & ~new)
            self.month_end(bds, active, cash_rate)
        table = ev.table()
        counter = table.pop("counter_col")
        acct = table["acct"]
        table["counter_currency"] = np.where(
            counter >= 0, book.currencies[acct, np.maximum(counter, 0)], ""
        )
        table["fx_rate"] = self.booked(table)
        return table

    def to_base(self, idx: np.ndarray, day: np.ndarray | int) -> np.ndarray:
        """(len(idx), 3): units of the base currency for one unit of each cash column's
        currency: 1, 1 / BASEUSD, 1 / (BASEUSD x USDJPY)."""
        b = self.rates[day, self.base_pair[idx]]
        j = self.rates[day, 2]  # USDJPY
        return np.column_stack([np.ones(len(idx)), 1 / b, 1 / (b * j)])

    def booked(self, table: dict[str, np.ndarray]) -> np.ndarray:
        """fx_rate booked on a third of the BUYs and SELLs and half of the income rows
        naming a security, in USD or JPY: the day's rate +/- 0.3 %, 8 dp; NaN elsewhere."""
        acct, day, col, kind = table["acct"], table["day"], table["col"], table["type"]
        trade = np.isin(kind, [_T["BUY"], _T["SELL"]])
        paid = np.isin(kind, [_T["DIVIDEND"], _T["INTEREST"]]) & (table["slot"] >= 0)
        share = np.where(trade, 1 / 3, np.where(paid, 1 / 2, 0.0)) * (col > 0)
        rate = self.to_base(acct, day)[np.arange(len(acct)), col]
        rate = np.round(rate * (1 + self.rng.uniform(-0.003, 0.003, len(acct))), 8)
        return np.where(self.rng.random(len(acct)) < share, rate, np.nan)

    def exchange(self, idx: np.ndarray, day: int, src: int, dst: int, amount: np.ndarray) -> None:
        """FX of `amount` (already in `src`'s decimals) from cash column `src` to `dst`:
        counter = amount x rate(src -> dst) x (1 - SPREAD), rounded down to `dst`'s decimals."""
        x = self.to_base(idx, day)
        counter = _floor_to(amount * x[:, src] / x[:, dst] * (1 - SPREAD), _DECIMALS[dst])
        ok = (amount > 0) & (counter > 0)
        idx, amount, counter = idx[ok], amount[ok], counter[ok]
        self.book.cash[idx, src] -= amount
        self.book.cash[idx, dst] += counter
        self.ev.add(day, idx, "FX", amount=amount, col=src, counter_amount=counter, counter_col=dst)

    def deposits(
        self,
        bds: np.ndarray,
        active: np.ndarray,
        new: np.ndarray,
        initial: np.ndarray,
        monthly: np.ndarray,
    ) -> None:
        """The deposit in the base currency on the first business day, then the same day
        45 % (new accounts; else 30-50 %) of it into USD and 35 % (else 20-40 %) into JPY."""
        idx = np.flatnonzero(active)
        amount = np.where(new, initial, monthly)[idx]
        self.book.cash[idx, 0] += amount
        fee = np.where(new[idx], 0.0, np.nan)
        self.ev.add(bds[0], idx, "DEPOSIT", amount=amount, fee=fee)
        fresh = new[idx]
        for col, (lo, hi), share in ((1, (0.3, 0.5), 0.45), (2, (0.2, 0.4), 0.35)):
            part = np.where(fresh, share, self.rng.uniform(lo, hi, len(idx)))
            out = _floor_to(amount * part)
            go = out >= 50
            self.exchange(idx[go], bds[0], 0, col, out[go])

    def withdrawals(self, bds: np.ndarray, eligible: np.ndarray) -> None:
        """5 % of accounts a month exchange 30-60 % of their USD cash back into the base
        currency; they and 4 % of the others then withdraw 10-50 % of the base cash, in
        hundreds."""
        rng, book = self.rng, self.book
        n = len(book.cash)
        back = _floor_to(book.cash[:, 1] * rng.uniform(0.3, 0.6, n))
        repatriate = eligible & (rng.random(n) < 0.05) & (back >= 100)
        idx = np.flatnonzero(repatriate)
        self.exchange(idx, bds[_REPATRIATION_DAY], 1, 0, back[idx])
        pick = eligible & ((rng.random(n) < 0.04) | repatriate)
        amount = np.floor(book.cash[:, 0] * rng.uniform(0.1, 0.5, n) / 100) * 100
        day = _days(rng, bds, *_WITHDRAWAL_DAYS, n)
        idx = np.flatnonzero(pick & (amount >= 100))
        book.cash[idx, 0] -= amount[idx]
        self.ev.add(day[idx], idx, "WITHDRAWAL", amount=amount[idx])

    def month_end(self, bds: np.ndarray, active: np.ndarray, cash_rate: np.ndarray) -> None:
        """Last business day: interest on each currency's cash (rate / 12, rounded down),
        then the management fee in the base currency, 0.75 % a year of the account's value
        converted at the day's rates, at most half the base cash."""
        book, day = self.book, bds[-1]
        idx = np.flatnonzero(active)
        for col in range(book.cash.shape[1]):
            interest = _floor_to(book.cash[idx, col] * cash_rate[idx, col] / 12, _DECIMALS[col])
            ok = interest > 0
            book.cash[idx[ok], col] += interest[ok]
            self.ev.add(day, idx[ok], "INTEREST", amount=interest[ok], col=col)
        x = self.to_base(idx, day)
        positions = book.units[idx] / 1000 * self.grid[day, book.sec[idx]] * x[:, _SLOT_COLUMN]
        value = positions.sum(axis=1) + (book.cash[idx] * x).sum(axis=1)
        fee = _floor_to(np.minimum(value * 0.0075 / 12, book.cash[idx, 0] * 0.5))
        ok = fee >= 0.01
        book.cash[idx[ok], 0] -= fee[ok]
        self.ev.add(day, idx[ok], "FEE", amount=fee[ok])
