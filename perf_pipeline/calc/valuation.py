"""Positions and daily valuations of every security position, account and portfolio at once.

Conventions (docs/methodology.md, "Entities and valuation" and "External flows"):

- Business days are Monday to Friday; a transaction dated on a weekend applies on the next
  business day (its *effective date*). Transactions after the as-of date are not valued.
- Price of a security on day t: the last close dated on or before t (a weekend close counts
  from its date); else the price of the last BUY or SELL of that security effective on or
  before t (latest trade_date, then greatest transaction_id). ``price_age_days`` is the number
  of calendar days from the date of that close or trade to t.
- Market value: quantity x price for a security position; cash + its positions for an
  account; the sum of its accounts for a portfolio. A position of quantity 0 is worth 0 even
  without a price; a held position with no price at all is worth NaN (flagged by an asset
  check, never silently 0).
- Flows per entity follow the Flows table: FEE, DIVIDEND and INTEREST are internal to an
  account. A transaction's ``fee`` applies to BUY and SELL only, as the table says.
- Inception is the first business day on which the entity receives an inflow or has a
  non-zero market value (docs/methodology.md, "Inception"; the second clause only matters for an
  entity whose history starts without one, which would otherwise vanish). Rows run from
  inception to the as-of date, also after the entity is emptied.
- Daily returns use the chosen timing (default: inflows at the start of the day, outflows at
  its end) with 0 as the value before inception, and the performance index starts at 1.
- Several currencies (docs/methodology.md, "Several currencies"): every account holds one cash
  position per currency (entity_type ``cash``, id ``{account_id}:CASH.{currency}``, price 1).
  A position's local values and flows are in its currency L; its base values and flows are
  those times x_t, the rate from L into the portfolio's base currency B (`calc.fx`), or the
  transaction's booked ``fx_rate``. An account is the sum of its positions in B, a portfolio
  the sum of its accounts; their flows are the external ones, in B. Every return is split:
  (1 + daily_return) = (1 + daily_return_local)(1 + fx_return).

Everything is computed on dates x entities matrices: one numpy pass over all entities, no
loop per entity or per day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perf_pipeline.calc.asof import day_numbers, last_known
from perf_pipeline.calc.calendar import business_days, next_business_day
from perf_pipeline.calc.fx import DEFAULT_PIVOT, conversion_rates
from perf_pipeline.calc.holdings import (
    TRADE_TYPES,
    cash_legs,
    effective_transactions,
    opening_balance,
    running_balance,
    transaction_effects,
)
from perf_pipeline.calc.returns import (
    NOT_INVESTED_TOLERANCE,
    daily_returns_array,
    performance_index,
    ratio_returns,
    return_terms,
)
from perf_pipeline.calc.segments import scatter_add, sum_columns_by_group

ENTITY_COLUMNS = [
    "entity_type",
    "entity_id",
    "portfolio_id",
    "account_id",
    "security_id",
    "currency",
]
MATRIX_COLUMNS = [
    "market_value",
    "inflow",
    "outflow",
    "daily_return",
    "twr_index",
    "price_age_days",
    "holding",
    "market_value_local",
    "daily_return_local",
    "fx_return",
    "fx_rate",
    "fx_age_days",
]
VALUATION_COLUMNS = ["date", *ENTITY_COLUMNS, *MATRIX_COLUMNS, "inception"]
"""daily_valuations: ``holding`` (units of a security position, the balance of a cash
position, the cash of an account in its base currency, null for a portfolio) and
``inception`` make any day's rows the full state to continue from. ``currency`` is L for a
position and B for an account or portfolio; market_value, inflow, outflow and daily_return
are in B; market_value_local and daily_return_local in L; fx_rate (units of B for one of L)
and fx_age_days (calendar days since that rate's date) are 1 and 0 where L is B."""
POSITION_TYPES = ("security", "cash")
"""The entity types of positions, below an account."""
STATE_COLUMNS = ["inception", "market_value", "market_value_local", "twr_index"]


@dataclass(frozen=True)
class ValuationState:
    """The close of one business day (`date`), per entity: what valuing the next day needs
    besides the transactions up to that day (which give the holdings and their turnover).

    ``entities``: ENTITY_COLUMNS plus inception, market_value, market_value_local, twr_index.
    """

    date: pd.Timestamp
    entities: pd.DataFrame


@dataclass(frozen=True)
class ValuationPanel:
    """Daily valuations as dates x entities matrices.

    ``entities`` has one row per matrix column: entity_type, entity_id, portfolio_id,
    account_id, security_id (None where not applicable), currency and inception (a date in
    ``dates``, or earlier for an entity carried in from an opening state). Cells before an
    entity's inception are 0 (values, flows, holding), NaN (returns) and 1 (index). The
    matrices are the MATRIX_COLUMNS of daily_valuations.
    """

    dates: pd.DatetimeIndex
    entities: pd.DataFrame
    market_value: np.ndarray
    inflow: np.ndarray
    outflow: np.ndarray
    daily_return: np.ndarray
    twr_index: np.ndarray
    price_age_days: np.ndarray
    holding: np.ndarray
    market_value_local: np.ndarray
    daily_return_local: np.ndarray
    fx_return: np.ndarray
    fx_rate: np.ndarray
    fx_age_days: np.ndarray

    def closing_state(self) -> ValuationState:
        """The last business day's close: all that valuing the next business day needs."""
        last = {name: getattr(self, name)[-1] for name in STATE_COLUMNS[1:]}
        return ValuationState(date=self.dates[-1], entities=self.entities.assign(**last))

    def to_frame(self) -> pd.DataFrame:
        """The long daily_valuations table: one row per entity and business day from inception."""
        inception_row = self.dates.searchsorted(self.entities["inception"].to_numpy())
        alive = np.arange(len(self.dates))[:, None] >= inception_row[None, :]
        col, row = np.nonzero(alive.T)
        frame = self.entities.iloc[col][ENTITY_COLUMNS].reset_index(drop=True)
        frame.insert(0, "date", self.dates[row])
        for name in MATRIX_COLUMNS:
            frame[name] = getattr(self, name)[row, col]
        frame["inception"] = self.entities["inception"].to_numpy()[col]
        return frame


def state_from_closing(closing: pd.DataFrame) -> ValuationState:
    """The close of one business day rebuilt from its daily_valuations rows (VALUATION_COLUMNS,
    with holding and inception), to continue valuing from the next business day."""
    entities = closing[ENTITY_COLUMNS].assign(
        inception=pd.DatetimeIndex(closing["inception"]).as_unit("ns"),
        **{name: closing[name].to_numpy(dtype=float) for name in STATE_COLUMNS[1:]},
    )
    return ValuationState(
        date=pd.Timestamp(closing["date"].max()), entities=entities.reset_index(drop=True)
    )


def security_currencies(prices: pd.DataFrame, transactions: pd.DataFrame) -> pd.Series:
    """Per security_id, its currency L: the currency of its prices, else of the transactions
    naming it (validation makes the two agree)."""
    named = transactions.loc[transactions["security_id"].notna()]
    traded = named.drop_duplicates("security_id").set_index("security_id")["currency"]
    if "currency" not in prices:
        return traded
    quoted = prices.drop_duplicates("security_id", keep="last").set_index("security_id")
    return quoted["currency"].combine_first(traded)


def _price_matrix(
    prices: pd.DataFrame, trades: pd.DataFrame, securities: pd.Index, dates: pd.DatetimeIndex
) -> tuple[np.ndarray, np.ndarray]:
    """(price, price_age_days) as (T, U) matrices for `securities` on `dates`: the last close on
    or before each date, else the last BUY/SELL price; age in calendar days from the source's
    own date (`calc.asof.last_known`)."""
    close, close_day = last_known(prices, "security_id", securities, "close", "date", dates)
    trade, trade_day = last_known(
        trades, "security_id", securities, "price", "trade_date", dates, ("transaction_id",)
    )
    has_close = ~np.isnan(close)
    price = np.where(has_close, close, trade)
    source_day = np.where(has_close, close_day, trade_day)
    return price, day_numbers(dates)[:, None] - source_day


def value_entities(
    transactions: pd.DataFrame,
    prices: pd.DataFrame,
    as_of: pd.Timestamp,
    timing: str = "bod_in_eod_out",
    portfolios: Sequence[str] | None = None,
    opening: ValuationState | None = None,
    *,
    base_currencies: pd.Series | None = None,
    fx_rates: pd.DataFrame | None = None,
    fx_pivot: str = DEFAULT_PIVOT,
) -> ValuationPanel:
    """Daily valuations of every security position, cash position, account and portfolio up to
    `as_of`, in each portfolio's base currency B and each position's own currency L.

    `transactions` and `prices` are the validated tables (docs/data.md); only transactions
    effective on or before `as_of` are used. `base_currencies` maps portfolio_id to B
    (default: the currency of the portfolio's first transaction). `fx_rates` is the validated
    exchange-rate table (date, base, quote, rate), converted by `calc.fx` through `fx_pivot`;
    an amount with no rate is NaN, never converted at 1. A flow in L converts at its
    transaction's booked ``fx_rate`` when given (and L is not B), else at the day's rate.
    `portfolios` values only those portfolios (a shard); the trade-price fallback still sees
    every portfolio's trades, as a full run does. `opening` continues from the close of an
    earlier run (its last business day): only the business days after it are valued, from its
    values and index and from the holdings the transactions up to it leave (summed in the
    order a full run sums them, turnover included, so dust snaps alike), and the result equals
    the same days of a run from the first transaction. Returns an empty panel when nothing is
    valued.
    """
    as_of = pd.Timestamp(as_of)
    valued = effective_transactions(transactions, as_of)
    trades = valued.loc[valued["type"].isin(TRADE_TYPES)]
    tx = valued if portfolios is None else valued.loc[valued["portfolio_id"].isin(portfolios)]
    known = _known_entities(opening, portfolios)
    earlier = tx.iloc[0:0]
    if opening is not None:
        earlier = tx.loc[tx["effective_date"] <= opening.date].reset_index(drop=True)
        tx = tx.loc[tx["effective_date"] > opening.date]
        start = next_business_day(pd.Timestamp(opening.date))
    else:
        start = tx["effective_date"].min()
    if (tx.empty and known.empty) or pd.isna(start) or start > as_of:
        return _empty_panel()
    tx = tx.reset_index(drop=True)
    effects, legs, earlier_legs = transaction_effects(tx), cash_legs(tx), cash_legs(earlier)
    dates = business_days(start, as_of)
    n_dates = len(dates)
    row = np.asarray(dates.searchsorted(tx["effective_date"]))
    leg_tx = legs["tx"].to_numpy()
    leg_row = row[leg_tx]

    accounts, sec_keys, cash_keys = _holding_keys(
        pd.concat([earlier, tx]),
        pd.concat([earlier_legs, legs]),
        known,
        security_currencies(prices, valued),
    )
    portfolio_ids = pd.Index(accounts["portfolio_id"].unique())
    bases = _base_currencies(base_currencies, valued, known, portfolio_ids)
    account_ids = pd.Index(accounts["account_id"])
    pos_keys = pd.concat([sec_keys, cash_keys], ignore_index=True)
    entities = _entities(portfolio_ids, accounts, pos_keys, bases)
    carried = _carried(known, entities)
    n_port, n_acc, n_sec, n_cash = (
        len(portfolio_ids),
        len(account_ids),
        len(sec_keys),
        len(cash_keys),
    )
    named = tx["security_id"].notna().to_numpy()
    sec_index = pd.MultiIndex.from_frame(sec_keys[["account_id", "security_id"]])
    sec_col = sec_index.get_indexer(
        pd.MultiIndex.from_frame(tx.loc[named, ["account_id", "security_id"]])
    )
    cash_index = pd.MultiIndex.from_frame(cash_keys[["account_id", "currency"]])
    cash_col = cash_index.get_indexer(pd.MultiIndex.from_frame(legs[["account_id", "currency"]]))

    def at(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, width: int) -> np.ndarray:
        return scatter_add(n_dates, width, rows, cols, np.asarray(values, dtype=float))

    opening_cash, opening_quantity = _opening_balances(earlier, earlier_legs, cash_index, sec_index)
    quantity = running_balance(
        *opening_quantity, at(row[named], sec_col, effects["quantity_change"][named], n_sec)
    )
    balance = running_balance(*opening_cash, at(leg_row, cash_col, legs["change"], n_cash))
    securities = pd.Index(sec_keys["security_id"].unique())
    price, age = _price_matrix(prices, trades, securities, dates)
    sec_price = price[:, securities.get_indexer(sec_keys["security_id"])]
    sec_age = age[:, securities.get_indexer(sec_keys["security_id"])]
    value_local = np.hstack([np.where(quantity == 0, 0.0, quantity * sec_price), balance])

    tx_currency, tx_base = tx["currency"].to_numpy(), bases.reindex(tx["portfolio_id"]).to_numpy()
    pos_currency = pos_keys["currency"].to_numpy()
    pos_base = bases.reindex(pos_keys["portfolio_id"]).to_numpy()
    leg_currency = legs["currency"].to_numpy()
    rates = _Rates(
        fx_rates,
        dates,
        fx_pivot,
        np.concatenate([pos_currency, tx_currency, leg_currency]),
        np.concatenate([pos_base, tx_base, tx_base[leg_tx]]),
    )
    x, fx_age = rates.matrix(pos_currency, pos_base)
    booked = tx["fx_rate"].to_numpy(dtype=float)
    tx_rate = np.where(
        ~np.isnan(booked) & (tx_currency != tx_base),
        booked,
        rates.on(row, tx_currency, tx_base),
    )
    leg_rate = np.where(
        legs["counter"].to_numpy(),
        rates.on(leg_row, leg_currency, tx_base[leg_tx]),
        tx_rate[leg_tx],
    )
    # a security's flow in another currency than its own (INTEREST) is local through the base
    local_rate = np.where(
        tx_currency[named] == pos_currency[sec_col], 1.0, tx_rate[named] / x[row[named], sec_col]
    )

    def security_flows(name: str, rate: np.ndarray) -> np.ndarray:
        amount = effects[name].to_numpy(dtype=float)[named]
        return at(row[named], sec_col, _in_base(amount, rate), n_sec)

    def cash_flows(name: str, rate: np.ndarray | float) -> np.ndarray:
        return at(leg_row, cash_col, _in_base(legs[name].to_numpy(dtype=float), rate), n_cash)

    def account_flows(name: str) -> np.ndarray:
        amount = _in_base(effects[name].to_numpy(dtype=float), tx_rate)
        return at(row, account_ids.get_indexer(tx["account_id"]), amount, n_acc)

    acc_of_pos = account_ids.get_indexer(pos_keys["account_id"])
    market_value = _in_base(value_local, x)
    acc_cash = sum_columns_by_group(market_value[:, n_sec:], acc_of_pos[n_sec:], n_acc)
    acc_mv = acc_cash + sum_columns_by_group(market_value[:, :n_sec], acc_of_pos[:n_sec], n_acc)
    port_of_acc = portfolio_ids.get_indexer(accounts["portfolio_id"])

    def by_level(accounts_matrix: np.ndarray, positions_matrix: np.ndarray) -> np.ndarray:
        portfolios_matrix = sum_columns_by_group(accounts_matrix, port_of_acc, n_port)
        return np.hstack([portfolios_matrix, accounts_matrix, positions_matrix])

    def parents(fill: float) -> np.ndarray:
        return np.full((n_dates, n_port + n_acc), fill)

    return _finish_panel(
        dates,
        entities,
        carried,
        timing,
        (port_of_acc[acc_of_pos], acc_of_pos),
        market_value=by_level(acc_mv, market_value),
        inflow=by_level(
            account_flows("account_in"),
            np.hstack(
                [security_flows("security_in", tx_rate[named]), cash_flows("inflow", leg_rate)]
            ),
        ),
        outflow=by_level(
            account_flows("account_out"),
            np.hstack(
                [security_flows("security_out", tx_rate[named]), cash_flows("outflow", leg_rate)]
            ),
        ),
        market_value_local=value_local,
        inflow_local=np.hstack(
            [security_flows("security_in", local_rate), cash_flows("inflow", 1.0)]
        ),
        outflow_local=np.hstack(
            [security_flows("security_out", local_rate), cash_flows("outflow", 1.0)]
        ),
        price_age=np.hstack([parents(np.nan), sec_age, np.zeros((n_dates, n_cash))]),
        holding=np.hstack([np.full((n_dates, n_port), np.nan), acc_cash, quantity, balance]),
        fx_rate=np.hstack([parents(1.0), x]),
        fx_age=np.hstack([parents(0.0), fx_age]),
    )


class _Rates:
    """The day's rate of each (currency, base) pair a valuation needs (`calc.fx`)."""

    def __init__(
        self,
        fx_rates: pd.DataFrame | None,
        dates: pd.DatetimeIndex,
        pivot: str,
        currencies: np.ndarray,
        bases: np.ndarray,
    ) -> None:
        self.pairs = pd.MultiIndex.from_arrays([currencies, bases]).unique()
        table = pd.DataFrame(
            {
                "source": self.pairs.get_level_values(0),
                "target": self.pairs.get_level_values(1),
            }
        )
        self.rate, self.age = conversion_rates(fx_rates, table, dates, pivot)

    def _columns(self, currencies: np.ndarray, bases: np.ndarray) -> np.ndarray:
        return self.pairs.get_indexer(pd.MultiIndex.from_arrays([currencies, bases]))

    def matrix(self, currencies: np.ndarray, bases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rate, age) as (T, K) matrices for K (currency, base) pairs."""
        cols = self._columns(currencies, bases)
        return self.rate[:, cols], self.age[:, cols]

    def on(self, rows: np.ndarray, currencies: np.ndarray, bases: np.ndarray) -> np.ndarray:
        """The rate of each (currency, base) on its row's day."""
        return self.rate[rows, self._columns(currencies, bases)]


def _in_base(amount: np.ndarray, rate: np.ndarray | float) -> np.ndarray:
    """amount x rate, with a zero amount staying 0 when its rate is unknown (NaN)."""
    with np.errstate(invalid="ignore"):
        return np.where(amount == 0, 0.0, amount * rate)


def _base_currencies(
    given: pd.Series | None,
    transactions: pd.DataFrame,
    known: pd.DataFrame,
    portfolio_ids: pd.Index,
) -> pd.Series:
    """Per portfolio, its base currency: `given`, else the one its opening state carries, else
    the currency of its first transaction."""
    carried = known.loc[known["entity_type"] == "portfolio"].set_index("portfolio_id")["currency"]
    first = transactions.drop_duplicates("portfolio_id").set_index("portfolio_id")["currency"]
    chosen = carried.combine_first(first) if given is None else given.combine_first(carried)
    return chosen.reindex(portfolio_ids)


def _opening_balances(
    earlier: pd.DataFrame,
    earlier_legs: pd.DataFrame,
    cash_index: pd.MultiIndex,
    sec_index: pd.MultiIndex,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((balance, turnover) per cash position, (quantity, turnover) per security position)
    that the `earlier` transactions leave (`calc.holdings.opening_balance`)."""
    day_codes = pd.factorize(earlier["effective_date"], sort=True)[0]
    named = earlier["security_id"].notna().to_numpy()
    cash = opening_balance(
        day_codes[earlier_legs["tx"].to_numpy()],
        cash_index.get_indexer(pd.MultiIndex.from_frame(earlier_legs[["account_id", "currency"]])),
        earlier_legs["change"].to_numpy(dtype=float),
        len(cash_index),
    )
    quantity = opening_balance(
        day_codes[named],
        sec_index.get_indexer(
            pd.MultiIndex.from_frame(earlier.loc[named, ["account_id", "security_id"]])
        ),
        transaction_effects(earlier)["quantity_change"].to_numpy(dtype=float)[named],
        len(sec_index),
    )
    return cash, quantity


def _known_entities(
    opening: ValuationState | None, portfolios: Sequence[str] | None
) -> pd.DataFrame:
    """The entities an opening state carries (of the requested portfolios), possibly none."""
    if opening is None:
        return pd.DataFrame(columns=[*ENTITY_COLUMNS, *STATE_COLUMNS])
    known = opening.entities
    if portfolios is not None:
        known = known.loc[known["portfolio_id"].isin(portfolios)]
    return known


def _holding_keys(
    tx: pd.DataFrame, legs: pd.DataFrame, known: pd.DataFrame, currencies: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Accounts (portfolio_id, account_id), security positions and cash positions
    (portfolio_id, account_id, security_id, currency), each sorted, that the transactions,
    their cash legs or the opening state name. A security's currency is `currencies`'; a cash
    position's security_id is ``CASH.{currency}``."""
    accounts = (
        pd.concat(
            [
                tx[["portfolio_id", "account_id"]],
                known.loc[known["entity_type"] == "account", ["portfolio_id", "account_id"]],
            ]
        )
        .drop_duplicates("account_id")
        .sort_values(["portfolio_id", "account_id"])
    )
    columns = ["portfolio_id", "account_id", "security_id", "currency"]
    named = tx.loc[tx["security_id"].notna(), columns[:3]]
    securities = (
        pd.concat(
            [
                named.assign(currency=currencies.reindex(named["security_id"]).to_numpy()),
                known.loc[known["entity_type"] == "security", columns],
            ]
        )
        .drop_duplicates(["account_id", "security_id"])
        .sort_values(columns[:3])
    )
    cash = (
        pd.concat(
            [
                legs[["portfolio_id", "account_id", "currency"]],
                known.loc[
                    known["entity_type"] == "cash", ["portfolio_id", "account_id", "currency"]
                ],
            ]
        )
        .drop_duplicates(["account_id", "currency"])
        .sort_values(["portfolio_id", "account_id", "currency"])
    )
    cash.insert(2, "security_id", "CASH." + cash["currency"])
    security_type, cash_type = POSITION_TYPES
    return (
        accounts.reset_index(drop=True),
        securities.assign(entity_type=security_type).reset_index(drop=True),
        cash.assign(entity_type=cash_type).reset_index(drop=True),
    )


def _entities(
    portfolio_ids: pd.Index, accounts: pd.DataFrame, positions: pd.DataFrame, bases: pd.Series
) -> pd.DataFrame:
    """The entity table: portfolios, then accounts, then `positions` (security, then cash)."""
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "entity_type": "portfolio",
                    "entity_id": portfolio_ids,
                    "portfolio_id": portfolio_ids,
                    "account_id": None,
                    "security_id": None,
                    "currency": bases.to_numpy(),
                }
            ),
            pd.DataFrame(
                {
                    "entity_type": "account",
                    "entity_id": accounts["account_id"],
                    "portfolio_id": accounts["portfolio_id"],
                    "account_id": accounts["account_id"],
                    "security_id": None,
                    "currency": bases.reindex(accounts["portfolio_id"]).to_numpy(),
                }
            ),
            pd.DataFrame(
                {
                    "entity_type": positions["entity_type"],
                    "entity_id": positions["account_id"] + ":" + positions["security_id"],
                    "portfolio_id": positions["portfolio_id"],
                    "account_id": positions["account_id"],
                    "security_id": positions["security_id"],
                    "currency": positions["currency"],
                }
            ),
        ],
        ignore_index=True,
    )


def _carried(known: pd.DataFrame, entities: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per entity, what the opening state carries: market values (base and local), index,
    inception; for an entity it does not know: 0, 0, 1 and NaT."""
    keys = ["entity_type", "entity_id"]
    table = known.set_index(keys)[STATE_COLUMNS].reindex(pd.MultiIndex.from_frame(entities[keys]))
    inception = pd.DatetimeIndex(table["inception"]).as_unit("ns").to_numpy()
    hit = ~np.isnat(inception)

    def pick(column: str, default: float) -> np.ndarray:
        return np.where(hit, table[column].to_numpy(dtype=float), default)

    return {
        "market_value": pick("market_value", 0.0),
        "market_value_local": pick("market_value_local", 0.0),
        "twr_index": pick("twr_index", 1.0),
        "inception": inception,
    }


def _finish_panel(
    dates: pd.DatetimeIndex,
    entities: pd.DataFrame,
    carried: dict[str, np.ndarray],
    timing: str,
    parents_of_positions: tuple[np.ndarray, np.ndarray],
    **matrices: np.ndarray,
) -> ValuationPanel:
    """Compute returns and the index, drop entities never invested, stamp inception.

    The matrices cover every entity (portfolios, accounts, positions); the local ones
    (market_value_local, inflow_local, outflow_local) the positions only, and
    `parents_of_positions` gives each position's portfolio and account number. A position's
    local return comes from its local values and flows. A parent P (account or portfolio)
    has no one local currency: its local return is its base return less the currency part of
    its positions' returns, weighted by their capital at work D_i (the denominator of the
    timing, in B) over P's own D_P:

        r_P^L = r_P - sum_i D_i (r_i - r_i^L) / D_P

    which adds the positions' currency contributions as the base return adds their
    contributions (sum_i D_i r_i = D_P r_P, movements inside P cancelling). A position whose
    return is not known contributes 0; a parent not invested (|D_P| < 1e-9) gets r_P^L = r_P.
    Every fx_return is (1 + r) / (1 + r^L) - 1. An entity the opening state carries is past
    inception; a new one starts on its first business day with an inflow or a non-zero value.
    """
    market_value, inflow, outflow = (matrices[n] for n in ("market_value", "inflow", "outflow"))
    numerator, capital = return_terms(
        market_value, inflow, outflow, timing, previous_value=carried["market_value"]
    )
    returns = ratio_returns(numerator, capital)
    n_parents = market_value.shape[1] - matrices["market_value_local"].shape[1]
    position_returns_local = daily_returns_array(
        matrices["market_value_local"],
        matrices["inflow_local"],
        matrices["outflow_local"],
        timing=timing,
        previous_value=carried["market_value_local"][n_parents:],
    )
    currency_part = np.nan_to_num(
        capital[:, n_parents:] * (returns[:, n_parents:] - position_returns_local)
    )
    portfolio_of, account_of = parents_of_positions
    n_portfolios = int(np.sum(entities["entity_type"].to_numpy() == "portfolio"))
    parent_part = np.hstack(
        [
            sum_columns_by_group(currency_part, portfolio_of, n_portfolios),
            sum_columns_by_group(currency_part, account_of, n_parents - n_portfolios),
        ]
    )
    parent_capital = capital[:, :n_parents]
    invested = np.abs(parent_capital) >= NOT_INVESTED_TOLERANCE
    parent_returns_local = returns[:, :n_parents] - np.where(
        invested, parent_part / np.where(invested, parent_capital, 1.0), 0.0
    )
    returns_local = np.hstack([parent_returns_local, position_returns_local])
    with np.errstate(invalid="ignore", divide="ignore"):
        fx_return = (1.0 + returns) / (1.0 + returns_local) - 1.0
    fx_return[~np.isfinite(fx_return)] = np.nan

    active = (inflow > 0) | (market_value != 0)
    carried_on = ~np.isnat(carried["inception"])
    ever = active.any(axis=0) | carried_on
    first = dates[np.argmax(active, axis=0)].to_numpy().astype("datetime64[ns]")
    inception = np.where(carried_on, carried["inception"], first)
    entities = entities.loc[ever].reset_index(drop=True)
    entities["inception"] = pd.DatetimeIndex(inception[ever])
    local_value = np.hstack([market_value[:, :n_parents], matrices["market_value_local"]])
    return ValuationPanel(
        dates=dates,
        entities=entities,
        market_value=market_value[:, ever],
        inflow=inflow[:, ever],
        outflow=outflow[:, ever],
        daily_return=returns[:, ever],
        twr_index=performance_index(returns[:, ever], base=carried["twr_index"][ever]),
        price_age_days=matrices["price_age"][:, ever],
        holding=matrices["holding"][:, ever],
        market_value_local=local_value[:, ever],
        daily_return_local=returns_local[:, ever],
        fx_return=fx_return[:, ever],
        fx_rate=matrices["fx_rate"][:, ever],
        fx_age_days=matrices["fx_age"][:, ever],
    )


def _empty_panel() -> ValuationPanel:
    empty = np.zeros((0, 0))
    entities = pd.DataFrame({name: pd.Series(dtype=object) for name in ENTITY_COLUMNS})
    entities["inception"] = pd.Series(dtype="datetime64[ns]")
    return ValuationPanel(pd.DatetimeIndex([]), entities, **dict.fromkeys(MATRIX_COLUMNS, empty))


MATRIX_FILL = {
    "market_value": 0.0,
    "inflow": 0.0,
    "outflow": 0.0,
    "twr_index": 1.0,
    "holding": 0.0,
    "market_value_local": 0.0,
}
"""The value of a matrix cell before an entity's inception (NaN when not listed)."""


def panel_from_frame(frame: pd.DataFrame) -> ValuationPanel:
    """Rebuild a ValuationPanel from a daily_valuations table (the inverse of to_frame); a
    column the table lacks is unknown (its cells hold their fill before inception, else NaN)."""
    if frame.empty:
        return _empty_panel()
    dates = business_days(frame["date"].min(), frame["date"].max())
    codes, n_entities = _entity_codes(frame)
    row = np.asarray(dates.searchsorted(frame["date"]))
    entities = frame.groupby(codes, sort=True).head(1)[ENTITY_COLUMNS].reset_index(drop=True)
    inception = frame["date"].groupby(codes, sort=True).min()
    entities["inception"] = pd.DatetimeIndex(inception.to_numpy()).as_unit("ns")
    shape = (len(dates), n_entities)

    def matrix(name: str) -> np.ndarray:
        out = np.full(shape, MATRIX_FILL.get(name, np.nan))
        if name in frame:
            out[row, codes] = frame[name].to_numpy(dtype=float)
        return out

    return ValuationPanel(dates, entities, **{name: matrix(name) for name in MATRIX_COLUMNS})


def _entity_codes(frame: pd.DataFrame) -> tuple[np.ndarray, int]:
    """Per row, the number of its (entity_type, entity_id) in order of first appearance, and
    the number of entities (a factorization of the pair without building tuples)."""
    type_codes, _ = pd.factorize(frame["entity_type"])
    id_codes, ids = pd.factorize(frame["entity_id"])
    codes, uniques = pd.factorize(type_codes.astype(np.int64) * max(len(ids), 1) + id_codes)
    return codes, len(uniques)
