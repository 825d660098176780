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

Everything is computed on dates x entities matrices: one numpy pass over all entities, no
loop per entity or per day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perf_pipeline.calc.calendar import business_days, next_business_day, roll_to_business_day
from perf_pipeline.calc.returns import daily_returns_array, performance_index
from perf_pipeline.calc.segments import (
    forward_fill_positions,
    gather_rows,
    scatter_add,
    sum_columns_by_group,
)

ENTITY_COLUMNS = ["entity_type", "entity_id", "portfolio_id", "account_id", "security_id"]
VALUATION_COLUMNS = [
    "date",
    *ENTITY_COLUMNS,
    "market_value",
    "inflow",
    "outflow",
    "daily_return",
    "twr_index",
    "price_age_days",
    "holding",
    "inception",
]
"""daily_valuations: ``holding`` (units of a position, cash of an account, null for a
portfolio) and ``inception`` make any day's rows the full state to continue from."""
POSITION_COLUMNS = [
    "portfolio_id",
    "account_id",
    "security_id",
    "date",
    "quantity_change",
    "quantity",
]
QUANTITY_TYPES = ("BUY", "SELL", "TRANSFER_IN", "TRANSFER_OUT")
TRADE_TYPES = ("BUY", "SELL")
SNAP_ULPS = 64  # a balance this many units of rounding of its turnover, or less, is 0


STATE_COLUMNS = ["inception", "market_value", "twr_index"]


@dataclass(frozen=True)
class ValuationState:
    """The close of one business day (`date`), per entity: what valuing the next day needs
    besides the transactions up to that day (which give the holdings and their turnover).

    ``entities``: ENTITY_COLUMNS plus inception, market_value and twr_index.
    """

    date: pd.Timestamp
    entities: pd.DataFrame


@dataclass(frozen=True)
class ValuationPanel:
    """Daily valuations as dates x entities matrices.

    ``entities`` has one row per matrix column: entity_type, entity_id, portfolio_id,
    account_id, security_id (None where not applicable) and inception (a date in ``dates``,
    or earlier for an entity carried in from an opening state). Cells before an entity's
    inception are 0 (values, flows, holding), NaN (returns) and 1 (index). ``holding`` is the
    units of a security position and the cash of an account (NaN for a portfolio).
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

    def closing_state(self) -> ValuationState:
        """The last business day's close: all that valuing the next business day needs."""
        last = {name: getattr(self, name)[-1] for name in ("market_value", "twr_index")}
        return ValuationState(date=self.dates[-1], entities=self.entities.assign(**last))

    def to_frame(self) -> pd.DataFrame:
        """The long daily_valuations table: one row per entity and business day from inception."""
        inception_row = self.dates.searchsorted(self.entities["inception"].to_numpy())
        alive = np.arange(len(self.dates))[:, None] >= inception_row[None, :]
        col, row = np.nonzero(alive.T)
        frame = self.entities.iloc[col][ENTITY_COLUMNS].reset_index(drop=True)
        frame.insert(0, "date", self.dates[row])
        for name in VALUATION_COLUMNS[6:-1]:
            frame[name] = getattr(self, name)[row, col]
        frame["inception"] = self.entities["inception"].to_numpy()[col]
        return frame


def state_from_closing(closing: pd.DataFrame) -> ValuationState:
    """The close of one business day rebuilt from its daily_valuations rows (VALUATION_COLUMNS,
    with holding and inception), to continue valuing from the next business day."""
    entities = closing[ENTITY_COLUMNS].assign(
        inception=pd.DatetimeIndex(closing["inception"]).as_unit("ns"),
        **{name: closing[name].to_numpy(dtype=float) for name in ("market_value", "twr_index")},
    )
    return ValuationState(
        date=pd.Timestamp(closing["date"].max()), entities=entities.reset_index(drop=True)
    )


def effective_transactions(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The transactions valued up to `as_of`, with their business-day ``effective_date``."""
    effective = roll_to_business_day(pd.DatetimeIndex(transactions["trade_date"]))
    tx = transactions.assign(effective_date=np.asarray(effective, dtype="datetime64[ns]"))
    return tx.loc[tx["effective_date"] <= as_of].reset_index(drop=True)


def transaction_effects(tx: pd.DataFrame) -> pd.DataFrame:
    """Per transaction, its effect on cash, quantity and the flows of each entity level.

    Columns: cash_change, quantity_change, account_in, account_out, security_in,
    security_out (docs/methodology.md, "External flows"; fee on BUY and SELL only).
    """
    kind = tx["type"].to_numpy()
    qty = tx["quantity"].fillna(0.0).to_numpy(dtype=float)
    price = tx["price"].fillna(0.0).to_numpy(dtype=float)
    amount = tx["amount"].fillna(0.0).to_numpy(dtype=float)
    fee = tx["fee"].fillna(0.0).to_numpy(dtype=float)
    gross = qty * price
    names_security = tx["security_id"].notna().to_numpy()

    def pick(cases: dict[str, np.ndarray]) -> np.ndarray:
        return np.select([kind == name for name in cases], list(cases.values()), default=0.0)

    return pd.DataFrame(
        {
            "cash_change": pick(
                {
                    "DEPOSIT": amount,
                    "WITHDRAWAL": -amount,
                    "BUY": -(gross + fee),
                    "SELL": gross - fee,
                    "DIVIDEND": amount,
                    "INTEREST": amount,
                    "FEE": -amount,
                }
            ),
            "quantity_change": pick(
                {
                    "BUY": qty,
                    "SELL": -qty,
                    "TRANSFER_IN": qty,
                    "TRANSFER_OUT": -qty,
                }
            ),
            "account_in": pick({"DEPOSIT": amount, "TRANSFER_IN": gross}),
            "account_out": pick({"WITHDRAWAL": amount, "TRANSFER_OUT": gross}),
            "security_in": pick({"BUY": gross + fee, "TRANSFER_IN": gross}),
            "security_out": pick(
                {
                    "SELL": gross - fee,
                    "DIVIDEND": amount,
                    "INTEREST": np.where(names_security, amount, 0.0),
                    "TRANSFER_OUT": gross,
                }
            ),
        },
        index=tx.index,
    )


def positions(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Holdings as a change log: one row per account, security and effective date of a change.

    Columns: portfolio_id, account_id, security_id (None for cash), date (effective),
    quantity_change, quantity (held from that date until the next row of the same key).
    Cash is the account's cash balance; a security's quantity is in units.
    """
    tx = effective_transactions(transactions, as_of)
    effects = transaction_effects(tx)
    keys = ["portfolio_id", "account_id", "security_id", "date"]
    cash = pd.DataFrame(
        {
            "portfolio_id": tx["portfolio_id"],
            "account_id": tx["account_id"],
            "security_id": "",
            "date": tx["effective_date"],
            "quantity_change": effects["cash_change"],
        }
    )
    held = tx["type"].isin(QUANTITY_TYPES).to_numpy()
    units = pd.DataFrame(
        {
            "portfolio_id": tx["portfolio_id"],
            "account_id": tx["account_id"],
            "security_id": tx["security_id"],
            "date": tx["effective_date"],
            "quantity_change": effects["quantity_change"],
        }
    ).loc[held]
    changes = (
        pd.concat([cash, units], ignore_index=True)
        .groupby(keys, sort=True, as_index=False)["quantity_change"]
        .sum()
    )
    running = (
        changes.assign(turnover=changes["quantity_change"].abs())
        .groupby(keys[:3], sort=False)[["quantity_change", "turnover"]]
        .cumsum()
    )
    changes["quantity"] = snap_dust(
        running["quantity_change"].to_numpy(), running["turnover"].to_numpy()
    )
    changes["security_id"] = changes["security_id"].replace("", None)
    return changes[POSITION_COLUMNS]


def _price_matrix(
    prices: pd.DataFrame, trades: pd.DataFrame, securities: pd.Index, dates: pd.DatetimeIndex
) -> tuple[np.ndarray, np.ndarray]:
    """(price, price_age_days) as (T, U) matrices for `securities` on `dates`.

    The last close on or before each date, else the last BUY/SELL price; age in calendar days
    from the source's own date. A close before the first date seeds the fill.
    """
    n_dates, n_sec = len(dates), len(securities)
    day = dates.to_numpy().astype("datetime64[D]").astype(np.int64)

    def last_by_row(source: pd.DataFrame, value: str, order: list[str]) -> tuple:
        src = source.loc[source["security_id"].isin(securities)]
        src = src.loc[src["when"] <= dates[-1]].sort_values(order, kind="stable")
        rows = np.asarray(dates.searchsorted(roll_to_business_day(pd.DatetimeIndex(src["when"]))))
        cols = securities.get_indexer(src["security_id"])
        last = ~pd.Series(rows * n_sec + cols).duplicated(keep="last").to_numpy()
        rows, cols, src = rows[last], cols[last], src.loc[last]
        value_m = np.full((n_dates, n_sec), np.nan)
        day_m = np.zeros((n_dates, n_sec), dtype=np.int64)
        value_m[rows, cols] = src[value].to_numpy(dtype=float)
        day_m[rows, cols] = src["when"].to_numpy().astype("datetime64[D]").astype(np.int64)
        filled = forward_fill_positions(~np.isnan(value_m))
        return gather_rows(value_m, filled), gather_rows(day_m.astype(float), filled)

    closes = prices.rename(columns={"date": "when"})
    close, close_day = last_by_row(closes, "close", ["when"])
    trade_rows = trades.rename(columns={"trade_date": "when"})
    trade, trade_day = last_by_row(trade_rows, "price", ["when", "transaction_id"])
    has_close = ~np.isnan(close)
    price = np.where(has_close, close, trade)
    source_day = np.where(has_close, close_day, trade_day)
    return price, day[:, None] - source_day


def value_entities(
    transactions: pd.DataFrame,
    prices: pd.DataFrame,
    as_of: pd.Timestamp,
    timing: str = "bod_in_eod_out",
    portfolios: Sequence[str] | None = None,
    opening: ValuationState | None = None,
) -> ValuationPanel:
    """Daily valuations of every security position, account and portfolio up to `as_of`.

    `transactions` and `prices` are the validated tables (docs/data.md); only transactions
    effective on or before `as_of` are used. `portfolios` values only those portfolios (a
    shard); the trade-price fallback still sees every portfolio's trades, as a full run does.
    `opening` continues from the close of an earlier run (its last business day): only the
    business days after it are valued, from its values and index and from the holdings the
    transactions up to it leave (summed in the order a full run sums them, turnover
    included, so dust snaps alike), and the result equals the same days of a run from the
    first transaction. Returns an empty panel when nothing is valued.
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
    effects = transaction_effects(tx)
    dates = business_days(start, as_of)
    n_dates = len(dates)
    row = np.asarray(dates.searchsorted(tx["effective_date"]))

    accounts, pos_keys = _holding_keys(pd.concat([earlier, tx]), known)
    portfolio_ids = pd.Index(accounts["portfolio_id"].unique())
    account_ids = pd.Index(accounts["account_id"])
    acc_col = account_ids.get_indexer(tx["account_id"])
    named = tx["security_id"].notna().to_numpy()
    pos_index = pd.MultiIndex.from_frame(pos_keys[["account_id", "security_id"]])
    pos_col = pos_index.get_indexer(
        pd.MultiIndex.from_frame(tx.loc[named, ["account_id", "security_id"]])
    )
    n_pos, n_acc, n_port = len(pos_keys), len(account_ids), len(portfolio_ids)
    entities = _entities(portfolio_ids, accounts, pos_keys)
    carried = _carried(known, entities)

    def at(rows: np.ndarray, cols: np.ndarray, values: pd.Series, width: int) -> np.ndarray:
        return scatter_add(n_dates, width, rows, cols, values.to_numpy(dtype=float))

    opening_cash, opening_quantity = _opening_balances(earlier, account_ids, pos_index)
    quantity = running_balance(
        *opening_quantity, at(row[named], pos_col, effects["quantity_change"][named], n_pos)
    )
    securities = pd.Index(pos_keys["security_id"].unique())
    price, age = _price_matrix(prices, trades, securities, dates)
    sec_of_pos = securities.get_indexer(pos_keys["security_id"])
    pos_price = price[:, sec_of_pos]
    pos_mv = np.where(quantity == 0, 0.0, quantity * pos_price)
    pos_age = np.where(np.isnan(pos_price), np.nan, age[:, sec_of_pos])

    acc_of_pos = account_ids.get_indexer(pos_keys["account_id"])
    cash = running_balance(*opening_cash, at(row, acc_col, effects["cash_change"], n_acc))
    acc_mv = cash + sum_columns_by_group(pos_mv, acc_of_pos, n_acc)
    acc_in = at(row, acc_col, effects["account_in"], n_acc)
    acc_out = at(row, acc_col, effects["account_out"], n_acc)
    port_of_acc = portfolio_ids.get_indexer(accounts["portfolio_id"])

    def by_level(accounts_matrix: np.ndarray, positions_matrix: np.ndarray) -> np.ndarray:
        portfolios_matrix = sum_columns_by_group(accounts_matrix, port_of_acc, n_port)
        return np.hstack([portfolios_matrix, accounts_matrix, positions_matrix])

    return _finish_panel(
        dates,
        entities,
        carried,
        timing,
        market_value=by_level(acc_mv, pos_mv),
        inflow=by_level(acc_in, at(row[named], pos_col, effects["security_in"][named], n_pos)),
        outflow=by_level(acc_out, at(row[named], pos_col, effects["security_out"][named], n_pos)),
        price_age=np.hstack([np.full((n_dates, n_port + n_acc), np.nan), pos_age]),
        holding=np.hstack([np.full((n_dates, n_port), np.nan), cash, quantity]),
    )


def snap_dust(balance: np.ndarray, turnover: np.ndarray) -> np.ndarray:
    """`balance` with float dust snapped to 0: the one rule for every holding and cash balance.

    Decimal quantities are not exact in binary: buying 4,905.98 and 4,786.05 units and selling
    9,692.03 leaves -1.8e-12, which would keep a sold-out position (or an emptied account)
    "invested". A balance within SNAP_ULPS units of rounding of the turnover that produced it
    (the sum of the absolute changes, and of the opening balance) is 0.
    """
    return np.where(np.abs(balance) <= SNAP_ULPS * np.finfo(float).eps * turnover, 0.0, balance)


def running_balance(
    opening: np.ndarray, opening_turnover: np.ndarray, changes: np.ndarray
) -> np.ndarray:
    """The running sum of `changes` along axis 0 from `opening`, dust snapped (`snap_dust`)
    against the running sum of |changes| from `opening_turnover`; summed in the same order
    as one running sum from the first change (a continued run gives the same bits)."""
    balance = np.cumsum(np.vstack([opening, changes]), axis=0)[1:]
    turnover = np.cumsum(np.vstack([opening_turnover, np.abs(changes)]), axis=0)[1:]
    return snap_dust(balance, turnover)


def _opening_balances(
    earlier: pd.DataFrame, account_ids: pd.Index, pos_index: pd.MultiIndex
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((cash, turnover) per account, (quantity, turnover) per position) that the `earlier`
    transactions leave, unsnapped: each day's changes summed in row order, then the days in
    date order, as `running_balance` sums them in a run from the first transaction."""
    effects = transaction_effects(earlier)
    named = earlier["security_id"].notna().to_numpy()
    day_codes = pd.factorize(earlier["effective_date"], sort=True)[0]

    def total(days: np.ndarray, cols: np.ndarray, values: np.ndarray, width: int):
        if len(cols) == 0:
            return np.zeros(width), np.zeros(width)
        pair, pairs = pd.factorize(days.astype(np.int64) * width + cols, sort=True)
        daily = np.bincount(pair, weights=values)  # per (day, column), in row order
        column = (pairs % width).astype(np.int64)  # pairs sorted by day, then column
        return (
            np.bincount(column, weights=daily, minlength=width),
            np.bincount(column, weights=np.abs(daily), minlength=width),
        )

    cash = total(
        day_codes,
        account_ids.get_indexer(earlier["account_id"]),
        effects["cash_change"].to_numpy(dtype=float),
        len(account_ids),
    )
    cols = pos_index.get_indexer(
        pd.MultiIndex.from_frame(earlier.loc[named, ["account_id", "security_id"]])
    )
    quantity = total(
        day_codes[named],
        cols,
        effects["quantity_change"].to_numpy(dtype=float)[named],
        len(pos_index),
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


def _holding_keys(tx: pd.DataFrame, known: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accounts (portfolio_id, account_id) and positions (+ security_id), sorted, that the
    transactions or the opening state name."""
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
    position_columns = ["portfolio_id", "account_id", "security_id"]
    positions = (
        pd.concat(
            [
                tx.loc[tx["security_id"].notna(), position_columns],
                known.loc[known["entity_type"] == "security", position_columns],
            ]
        )
        .drop_duplicates(["account_id", "security_id"])
        .sort_values(position_columns)
    )
    return accounts.reset_index(drop=True), positions.reset_index(drop=True)


def _entities(
    portfolio_ids: pd.Index, accounts: pd.DataFrame, positions: pd.DataFrame
) -> pd.DataFrame:
    """The entity table: portfolios, then accounts, then security positions."""
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "entity_type": "portfolio",
                    "entity_id": portfolio_ids,
                    "portfolio_id": portfolio_ids,
                    "account_id": None,
                    "security_id": None,
                }
            ),
            pd.DataFrame(
                {
                    "entity_type": "account",
                    "entity_id": accounts["account_id"],
                    "portfolio_id": accounts["portfolio_id"],
                    "account_id": accounts["account_id"],
                    "security_id": None,
                }
            ),
            pd.DataFrame(
                {
                    "entity_type": "security",
                    "entity_id": positions["account_id"] + ":" + positions["security_id"],
                    "portfolio_id": positions["portfolio_id"],
                    "account_id": positions["account_id"],
                    "security_id": positions["security_id"],
                }
            ),
        ],
        ignore_index=True,
    )


def _carried(known: pd.DataFrame, entities: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per entity, what the opening state carries: market value, index, inception; for an
    entity it does not know: 0, 1 and NaT."""
    keys = ["entity_type", "entity_id"]
    table = known.set_index(keys)[STATE_COLUMNS].reindex(pd.MultiIndex.from_frame(entities[keys]))
    inception = pd.DatetimeIndex(table["inception"]).as_unit("ns").to_numpy()
    hit = ~np.isnat(inception)

    def pick(column: str, default: float) -> np.ndarray:
        return np.where(hit, table[column].to_numpy(dtype=float), default)

    return {
        "market_value": pick("market_value", 0.0),
        "twr_index": pick("twr_index", 1.0),
        "inception": inception,
    }


def _finish_panel(
    dates: pd.DatetimeIndex,
    entities: pd.DataFrame,
    carried: dict[str, np.ndarray],
    timing: str,
    **matrices: np.ndarray,
) -> ValuationPanel:
    """Drop entities never invested, stamp inception, compute returns and the index.

    An entity the opening state carries is past inception; a new one starts on its first
    business day with an inflow or a non-zero value.
    """
    market_value, inflow = matrices["market_value"], matrices["inflow"]
    active = (inflow > 0) | (market_value != 0)
    carried_on = ~np.isnat(carried["inception"])
    ever = active.any(axis=0) | carried_on
    first = dates[np.argmax(active, axis=0)].to_numpy().astype("datetime64[ns]")
    inception = np.where(carried_on, carried["inception"], first)
    entities = entities.loc[ever].reset_index(drop=True)
    entities["inception"] = pd.DatetimeIndex(inception[ever])
    kept = {name: matrix[:, ever] for name, matrix in matrices.items()}
    returns = daily_returns_array(
        kept["market_value"],
        kept["inflow"],
        kept["outflow"],
        timing=timing,
        previous_value=carried["market_value"][ever],
    )
    return ValuationPanel(
        dates=dates,
        entities=entities,
        market_value=kept["market_value"],
        inflow=kept["inflow"],
        outflow=kept["outflow"],
        daily_return=returns,
        twr_index=performance_index(returns, base=carried["twr_index"][ever]),
        price_age_days=kept["price_age"],
        holding=kept["holding"],
    )


def _empty_panel() -> ValuationPanel:
    empty = np.zeros((0, 0))
    entities = pd.DataFrame({name: pd.Series(dtype=object) for name in ENTITY_COLUMNS})
    entities["inception"] = pd.Series(dtype="datetime64[ns]")
    return ValuationPanel(
        pd.DatetimeIndex([]), entities, empty, empty, empty, empty, empty, empty, empty
    )


def panel_from_frame(frame: pd.DataFrame) -> ValuationPanel:
    """Rebuild a ValuationPanel from a daily_valuations table (the inverse of to_frame)."""
    if frame.empty:
        return _empty_panel()
    dates = business_days(frame["date"].min(), frame["date"].max())
    codes, n_entities = _entity_codes(frame)
    row = np.asarray(dates.searchsorted(frame["date"]))
    entities = frame.groupby(codes, sort=True).head(1)[ENTITY_COLUMNS].reset_index(drop=True)
    inception = frame["date"].groupby(codes, sort=True).min()
    entities["inception"] = pd.DatetimeIndex(inception.to_numpy()).as_unit("ns")
    shape = (len(dates), n_entities)

    def matrix(name: str, fill: float) -> np.ndarray:
        out = np.full(shape, fill)
        out[row, codes] = frame[name].to_numpy(dtype=float)
        return out

    return ValuationPanel(
        dates=dates,
        entities=entities,
        market_value=matrix("market_value", 0.0),
        inflow=matrix("inflow", 0.0),
        outflow=matrix("outflow", 0.0),
        daily_return=matrix("daily_return", np.nan),
        twr_index=matrix("twr_index", 1.0),
        price_age_days=matrix("price_age_days", np.nan),
        holding=np.full(shape, np.nan),
    )


def _entity_codes(frame: pd.DataFrame) -> tuple[np.ndarray, int]:
    """Per row, the number of its (entity_type, entity_id) in order of first appearance, and
    the number of entities (a factorization of the pair without building tuples)."""
    type_codes, _ = pd.factorize(frame["entity_type"])
    id_codes, ids = pd.factorize(frame["entity_id"])
    codes, uniques = pd.factorize(type_codes.astype(np.int64) * max(len(ids), 1) + id_codes)
    return codes, len(uniques)
