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
  that day's rate less a 0.15 % spread, rounded down to the cent or the yen); BUYs and SELLs
  of the USD and JPY securities in their currency, paid from and into that currency's cash,
  commission max(1 USD or 150 JPY, 0.05 %), at most 1 %; quarterly DIVIDENDs and bond
  INTEREST in the security's currency; now and then an FX of USD cash back into the base
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

import numpy as np

from perf_pipeline.sample_data import (
    _BUY_DAYS,
    _SELL_DAYS,
    _WITHDRAWAL_DAYS,
    _Book,
    _Calendar,
    _commission,
    _days,
    _Events,
    _floor_to,
    _forward_filled,
    _portfolios,
    _price_rows,
    _security_closes,
    _security_income,
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
    rates = _forward_filled(cal, levels, gaps, np.empty((0, 3)))
    n_jpy = max(20, n // 2)
    closes, missing, weekend = _security_closes(rng, cal, n_jpy)
    closes = np.round(closes * JPY_SCALE, 1)
    weekend[:, 2] = np.round(weekend[:, 2] * JPY_SCALE, 1)
    jpy_ids = [f"JSEC{i:05d}" for i in range(n_jpy)]
    grid = np.hstack([usd_grid, _forward_filled(cal, closes, missing, weekend)])
    jpy_income = _security_income(rng, n_jpy)
    income = {k: np.concatenate([usd_income[k], jpy_income[k]]) for k in usd_income}
    n_acct = 2 * n
    book = _FxBook(_fx_holdings(rng, n_acct, usd_grid.shape[1], n_jpy), np.arange(n_acct) % 5 == 4)
    acct_base = np.repeat(base, 2)
    # per account, the column of the pair quoting its base currency in USD (EURUSD, GBPUSD)
    usd_pair = {p[0]: i for i, p in enumerate(PAIRS) if p[1] == "USD"}
    acct_pair = np.asarray([usd_pair[b] for b in acct_base.tolist()])
    codes = np.column_stack([acct_base, np.full(n_acct, HELD[0]), np.full(n_acct, HELD[1])])
    sim = _Sim(rng, grid, rates, book, acct_pair, codes)
    events = sim.run(cal, np.repeat(port["inception"], 2), income)
    transactions = _transaction_rows(cal, events, book, {"ids": ids}, usd_ids + jpy_ids)
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
class _FxBook(_Book):
    """_Book with cash per account and cash column (base currency, USD, JPY)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cash = np.zeros((len(self.sec), 1 + len(HELD)))


@dataclass
class _FxEvents(_Events):
    """_Events with each row's currency, booked fx_rate and the counter side of an FX."""

    def __post_init__(self) -> None:
        for name in ("currency", "fx_rate", "counter_amount", "counter_currency"):
            self.cols[name] = []

    def add_in(
        self,
        currency: np.ndarray,
        day: np.ndarray | int,
        acct: np.ndarray,
        tx_type: str,
        *,
        fx_rate: np.ndarray | None = None,
        counter_amount: np.ndarray | None = None,
        counter_currency: np.ndarray | None = None,
        **columns: np.ndarray,
    ) -> None:
        """_Events.add for rows in `currency` (one code a row); omitted columns are null."""
        n = len(acct)
        if n == 0:
            return
        self.add(day, acct, tx_type, **columns)
        self.cols["currency"].append(np.asarray(currency, str))
        for name, values in (("fx_rate", fx_rate), ("counter_amount", counter_amount)):
            self.cols[name].append(np.full(n, np.nan) if values is None else values)
        self.cols["counter_currency"].append(
            np.full(n, "") if counter_currency is None else np.asarray(counter_currency, str)
        )


@dataclass
class _Sim:
    """The monthly events of the multi-currency accounts, applied to `book` as they are made."""

    rng: np.random.Generator
    grid: np.ndarray  # calendar days x securities (USD, then JPY): last close
    rates: np.ndarray  # calendar days x PAIRS: last quote
    book: _FxBook
    base_pair: np.ndarray  # per account: index of its base currency's pair with USD
    codes: np.ndarray  # per account and cash column: the currency code
    ev: _FxEvents = field(default_factory=_FxEvents)

    def run(
        self, cal: _Calendar, start: np.ndarray, income: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        rng, n = self.rng, len(self.book.cash)
        acct = np.arange(n)
        initial = np.round(np.exp(rng.uniform(np.log(20_000), np.log(500_000), n)), -3)
        monthly = np.round(rng.uniform(200, 3_000, n), -1)
        cash_rate = np.column_stack(
            [rng.uniform(0.01, 0.03, n), rng.uniform(0.02, 0.05, n), np.full(n, 0.001)]
        )
        for m, bds in enumerate(cal.months):
            active, new = start <= m, start == m
            self.deposits(bds, active, new, initial, monthly)
            self.initial_buys(bds, new)
            for _ in range(2):
                pick = active & ~new & (rng.random(n) < 0.5)
                slot = rng.integers(0, len(_SLOT_COLUMN), n)
                budget = self.book.cash[acct, _SLOT_COLUMN[slot]] * rng.uniform(0.3, 0.9, n)
                day = _days(rng, bds, *_BUY_DAYS, n)
                self.buy(acct[pick], slot[pick], budget[pick], day[pick])
            self.sells(bds, active & ~new)
            self.income(bds, income, cal.month_numbers[m], active)
            self.withdrawals(bds, active & ~new)
            self.month_end(bds, active, cash_rate)
        return self.ev.table()

    def to_base(self, idx: np.ndarray, day: np.ndarray | int) -> np.ndarray:
        """(len(idx), 3): units of the base currency for one unit of each cash column's
        currency: 1, 1 / BASEUSD, 1 / (BASEUSD x USDJPY)."""
        b = self.rates[day, self.base_pair[idx]]
        j = self.rates[day, 2]
        return np.column_stack([np.ones(len(idx)), 1 / b, 1 / (b * j)])

    def booked(self, idx: np.ndarray, day: np.ndarray, col: np.ndarray, share: float) -> np.ndarray:
        """A booked fx_rate on `share` of the rows (the day's rate +/- 0.3 %, 8 dp), else NaN."""
        rate = self.to_base(idx, day)[np.arange(len(idx)), col]
        rate = np.round(rate * (1 + self.rng.uniform(-0.003, 0.003, len(idx))), 8)
        return np.where(self.rng.random(len(idx)) < share, rate, np.nan)

    def exchange(self, idx: np.ndarray, day: int, src: int, dst: int, amount: np.ndarray) -> None:
        """FX of `amount` (already in `src`'s decimals) from cash column `src` to `dst`:
        counter = amount x rate(src -> dst) x (1 - SPREAD), rounded down to `dst`'s decimals."""
        x = self.to_base(idx, day)
        counter = _floor_to(amount * x[:, src] / x[:, dst] * (1 - SPREAD), _DECIMALS[dst])
        ok = (amount > 0) & (counter > 0)
        idx, amount, counter = idx[ok], amount[ok], counter[ok]
        self.book.cash[idx, src] -= amount
        self.book.cash[idx, dst] += counter
        self.ev.add_in(
            self.codes[idx, src],
            day,
            idx,
            "FX",
            amount=amount,
            counter_amount=counter,
            counter_currency=self.codes[idx, dst],
        )

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
        self.ev.add_in(self.codes[idx, 0], bds[0], idx, "DEPOSIT", amount=amount, fee=fee)
        fresh = new[idx]
        for col, (lo, hi), share in ((1, (0.3, 0.5), 0.45), (2, (0.2, 0.4), 0.35)):
            part = np.where(fresh, share, self.rng.uniform(lo, hi, len(idx)))
            out = _floor_to(amount * part)
            go = out >= 50
            self.exchange(idx[go], bds[0], 0, col, out[go])

    def initial_buys(self, bds: np.ndarray, new: np.ndarray) -> None:
        """A new account spends 90 % of its USD and of its JPY cash evenly over the slots of
        that currency."""
        idx = np.flatnonzero(new)
        budget = self.book.cash[idx] * 0.9 / SLOTS_PER_CURRENCY
        for slot, col in enumerate(_SLOT_COLUMN):
            day = _days(self.rng, bds, *_BUY_DAYS, len(idx))
            self.buy(idx, np.full(len(idx), slot), budget[:, col], day)

    def buy(self, idx: np.ndarray, slot: np.ndarray, budget: np.ndarray, day: np.ndarray) -> None:
        """q = floor((budget - fee) / price) (3 dp in fractional accounts), in the slot's
        currency; cost q p + fee from that currency's cash."""
        book = self.book
        col = _SLOT_COLUMN[slot]
        price = self.grid[day, book.sec[idx, slot]]
        fee = _commission(budget, _MIN_FEE[col], _DECIMALS[col])
        qty = np.maximum(budget - fee, 0) / price
        units = np.where(book.fractional[idx], np.floor(qty * 1000), np.floor(qty) * 1000)
        units = units.astype(np.int64)
        ok = (units > 0) & ~book.closed[idx, slot] & (budget >= _MIN_BUDGET[col])
        idx, slot, col, day = idx[ok], slot[ok], col[ok], day[ok]
        units, price, fee = units[ok], price[ok], fee[ok]
        np.add.at(book.cash, (idx, col), -(units / 1000 * price + fee))
        np.add.at(book.units, (idx, slot), units)
        self.ev.add_in(
            self.codes[idx, col],
            day,
            idx,
            "BUY",
            slot=slot,
            units=units,
            price=price,
            fee=fee,
            fx_rate=self.booked(idx, day, col, 1 / 3),
        )

    def sells(self, bds: np.ndarray, eligible: np.ndarray) -> None:
        """A third of the accounts sell 20-60 % of one held position, 3 % of them all of it
        (never bought again); proceeds less the fee into that currency's cash."""
        rng, book = self.rng, self.book
        n = len(book.cash)
        held = book.units > 0
        slot = np.argmax(rng.random(book.units.shape) * held, axis=1)
        pick = eligible & (rng.random(n) < 1 / 3) & held[np.arange(n), slot]
        full = rng.random(n) < 0.03
        frac = rng.uniform(0.2, 0.6, n)
        day = _days(rng, bds, *_SELL_DAYS, n)
        idx = np.flatnonzero(pick)
        slot, full, day = slot[idx], full[idx], day[idx]
        have = book.units[idx, slot]
        part = have * frac[idx]
        part = np.where(book.fractional[idx], np.floor(part), np.floor(part / 1000) * 1000)
        units = np.where(full, have, part).astype(np.int64)
        ok = units > 0
        idx, slot, day, units, full = idx[ok], slot[ok], day[ok], units[ok], full[ok]
        col = _SLOT_COLUMN[slot]
        price = self.grid[day, book.sec[idx, slot]]
        value = units / 1000 * price
        fee = _commission(value, _MIN_FEE[col], _DECIMALS[col])
        book.cash[idx, col] += value - fee
        book.units[idx, slot] -= units
        book.closed[idx[full], slot[full]] = True
        self.ev.add_in(
            self.codes[idx, col],
            day,
            idx,
            "SELL",
            slot=slot,
            units=units,
            price=price,
            fee=fee,
            fx_rate=self.booked(idx, day, col, 1 / 3),
        )

    def income(
        self, bds: np.ndarray, income: dict[str, np.ndarray], month_number: int, active: np.ndarray
    ) -> None:
        """Quarterly income on held positions, q x close x yield / 4 rounded down to the
        currency's decimals, into that currency's cash."""
        kind = {0: 1, 2: 2}.get(month_number % 3)
        if kind is None:
            return
        book = self.book
        pays = (income["kind"][book.sec] == kind) & (book.units > 0) & active[:, None]
        idx, slot = np.nonzero(pays)
        s = book.sec[idx, slot]
        col = _SLOT_COLUMN[slot]
        day = bds[income["day"][s]]
        value = book.units[idx, slot] / 1000 * self.grid[day, s] * income["yield"][s] / 4
        amount = _floor_to(value, _DECIMALS[col])
        ok = amount >= 10.0 ** -_DECIMALS[col]
        idx, slot, col, day, amount = idx[ok], slot[ok], col[ok], day[ok], amount[ok]
        np.add.at(book.cash, (idx, col), amount)
        self.ev.add_in(
            self.codes[idx, col],
            day,
            idx,
            "DIVIDEND" if kind == 1 else "INTEREST",
            slot=slot,
            amount=amount,
            fx_rate=self.booked(idx, day, col, 1 / 2),
        )

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
        self.ev.add_in(self.codes[idx, 0], day[idx], idx, "WITHDRAWAL", amount=amount[idx])

    def month_end(self, bds: np.ndarray, active: np.ndarray, cash_rate: np.ndarray) -> None:
        """Last business day: interest on each currency's cash (rate / 12, rounded down),
        then the management fee in the base currency, 0.75 % a year of the account's value
        converted at the day's rates, at most half the base cash."""
        book, day = self.book, bds[-1]
        idx = np.flatnonzero(active)
        for col in range(book.cash.shape[1]):
            interest = _floor_to(book.cash[idx, col] * cash_rate[idx, col] / 12, _DECIMALS[col])
            ok = interest >= 10.0 ** -_DECIMALS[col]
            book.cash[idx[ok], col] += interest[ok]
            self.ev.add_in(self.codes[idx[ok], col], day, idx[ok], "INTEREST", amount=interest[ok])
        x = self.to_base(idx, day)
        positions = book.units[idx] / 1000 * self.grid[day, book.sec[idx]] * x[:, _SLOT_COLUMN]
        value = positions.sum(axis=1) + (book.cash[idx] * x).sum(axis=1)
        fee = _floor_to(np.minimum(value * 0.0075 / 12, book.cash[idx, 0] * 0.5))
        ok = fee >= 0.01
        book.cash[idx[ok], 0] -= fee[ok]
        self.ev.add_in(self.codes[idx[ok], 0], day, idx[ok], "FEE", amount=fee[ok])
