"""Holdings from transactions: what each transaction does to units, cash and flows, and the
running balances that follow (docs/methodology.md, "External flows" and "Several currencies").

Every amount here is in the transaction's own currency (its ``currency`` column; the counter
leg of an FX exchange in ``counter_currency``). Cash is held per account and currency:

| type | cash of ``currency`` | flow of that cash position |
| --- | --- | --- |
| DEPOSIT / WITHDRAWAL | + / - amount | IN / OUT amount |
| BUY | - (q p + fee) | OUT q p + fee |
| SELL | + (q p - fee) | IN q p - fee |
| DIVIDEND, INTEREST naming a security | + amount | IN amount |
| INTEREST naming no security | + amount | none (the cash position's own return) |
| FEE | - amount | none (a cost the cash position bears) |
| FX | - amount; + counter_amount of counter_currency | OUT amount; IN counter_amount |
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perf_pipeline.calc.calendar import roll_to_business_day

QUANTITY_TYPES = ("BUY", "SELL", "TRANSFER_IN", "TRANSFER_OUT")
TRADE_TYPES = ("BUY", "SELL")
CASH_TYPES = ("DEPOSIT", "WITHDRAWAL", "BUY", "SELL", "DIVIDEND", "INTEREST", "FEE", "FX")
SNAP_ULPS = 64  # a balance this many units of rounding of its turnover, or less, is 0
FX_COLUMNS = {"fx_rate": np.nan, "counter_amount": np.nan, "counter_currency": None}
"""Optional transaction columns (several currencies) and their value when a table has none."""
POSITION_COLUMNS = [
    "portfolio_id",
    "account_id",
    "security_id",
    "currency",
    "date",
    "quantity_change",
    "quantity",
]
LEG_COLUMNS = [
    "tx",
    "portfolio_id",
    "account_id",
    "currency",
    "change",
    "inflow",
    "outflow",
    "counter",
]


def effective_transactions(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The transactions valued up to `as_of`, with their business-day ``effective_date`` and
    every optional column of FX_COLUMNS (filled when a table has none)."""
    effective = roll_to_business_day(pd.DatetimeIndex(transactions["trade_date"]))
    missing = {name: value for name, value in FX_COLUMNS.items() if name not in transactions}
    tx = transactions.assign(
        effective_date=np.asarray(effective, dtype="datetime64[ns]"), **missing
    )
    return tx.loc[tx["effective_date"] <= as_of].reset_index(drop=True)


def _amounts(tx: pd.DataFrame) -> dict[str, np.ndarray]:
    def column(name: str) -> np.ndarray:
        return tx[name].fillna(0.0).to_numpy(dtype=float)

    qty, price = column("quantity"), column("price")
    return {
        "kind": tx["type"].to_numpy(),
        "qty": qty,
        "gross": qty * price,
        "amount": column("amount"),
        "fee": column("fee"),
        "counter": column("counter_amount"),
        "names_security": tx["security_id"].notna().to_numpy(),
    }


def _pick(kind: np.ndarray, cases: dict[str, np.ndarray]) -> np.ndarray:
    return np.select([kind == name for name in cases], list(cases.values()), default=0.0)


def transaction_effects(tx: pd.DataFrame) -> pd.DataFrame:
    """Per transaction, in its currency: quantity_change, and the flows of its account
    (account_in, account_out: the external ones) and of its security position (security_in,
    security_out). Fee on BUY and SELL only (docs/methodology.md, "External flows")."""
    a = _amounts(tx)
    kind, gross, amount, fee = a["kind"], a["gross"], a["amount"], a["fee"]
    return pd.DataFrame(
        {
            "quantity_change": _pick(
                kind,
                {
                    "BUY": a["qty"],
                    "SELL": -a["qty"],
                    "TRANSFER_IN": a["qty"],
                    "TRANSFER_OUT": -a["qty"],
                },
            ),
            "account_in": _pick(kind, {"DEPOSIT": amount, "TRANSFER_IN": gross}),
            "account_out": _pick(kind, {"WITHDRAWAL": amount, "TRANSFER_OUT": gross}),
            "security_in": _pick(kind, {"BUY": gross + fee, "TRANSFER_IN": gross}),
            "security_out": _pick(
                kind,
                {
                    "SELL": gross - fee,
                    "DIVIDEND": amount,
                    "INTEREST": np.where(a["names_security"], amount, 0.0),
                    "TRANSFER_OUT": gross,
                },
            ),
        },
        index=tx.index,
    )


def cash_legs(tx: pd.DataFrame) -> pd.DataFrame:
    """The movements of cash positions (the module's table): LEG_COLUMNS, one row per
    transaction that moves cash (``tx`` its row number in `tx`, in order), then one row per
    FX exchange for its counter leg (``counter`` True); change, inflow and outflow in the
    leg's currency."""
    a = _amounts(tx)
    kind, gross, amount, fee = a["kind"], a["gross"], a["amount"], a["fee"]
    moves = np.isin(kind, CASH_TYPES)
    primary = pd.DataFrame(
        {
            "tx": np.arange(len(tx)),
            "portfolio_id": tx["portfolio_id"].to_numpy(),
            "account_id": tx["account_id"].to_numpy(),
            "currency": tx["currency"].to_numpy(),
            "change": _pick(
                kind,
                {
                    "DEPOSIT": amount,
                    "WITHDRAWAL": -amount,
                    "BUY": -(gross + fee),
                    "SELL": gross - fee,
                    "DIVIDEND": amount,
                    "INTEREST": amount,
                    "FEE": -amount,
                    "FX": -amount,
                },
            ),
            "inflow": _pick(
                kind,
                {
                    "DEPOSIT": amount,
                    "SELL": gross - fee,
                    "DIVIDEND": amount,
                    "INTEREST": np.where(a["names_security"], amount, 0.0),
                },
            ),
            "outflow": _pick(kind, {"WITHDRAWAL": amount, "BUY": gross + fee, "FX": amount}),
            "counter": False,
        }
    ).loc[moves]
    fx = kind == "FX"
    counter = pd.DataFrame(
        {
            "tx": np.flatnonzero(fx),
            "portfolio_id": tx["portfolio_id"].to_numpy()[fx],
            "account_id": tx["account_id"].to_numpy()[fx],
            "currency": tx["counter_currency"].to_numpy()[fx],
            "change": a["counter"][fx],
            "inflow": a["counter"][fx],
            "outflow": 0.0,
            "counter": True,
        }
    )
    legs = pd.concat([primary, counter], ignore_index=True)[LEG_COLUMNS]
    return legs.astype({"tx": np.int64, "counter": bool})


def positions(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Holdings as a change log: one row per account, security or cash currency and effective
    date of a change.

    Columns: POSITION_COLUMNS; security_id is None for cash, whose currency is the cash's
    (a security's is its transactions'); quantity is held from that date until the next row of
    the same key: units of a security, the balance of cash in its currency.
    """
    tx = effective_transactions(transactions, as_of)
    effects = transaction_effects(tx)
    legs = cash_legs(tx)
    keys = ["portfolio_id", "account_id", "security_id", "currency", "date"]
    cash = legs.assign(
        security_id="",
        date=tx["effective_date"].to_numpy()[legs["tx"].to_numpy()],
        quantity_change=legs["change"],
    )
    held = tx["type"].isin(QUANTITY_TYPES).to_numpy()
    units = tx.assign(date=tx["effective_date"], quantity_change=effects["quantity_change"])
    changes = (
        pd.concat([cash, units.loc[held]], ignore_index=True)[[*keys, "quantity_change"]]
        .groupby(keys, sort=True, as_index=False)["quantity_change"]
        .sum()
    )
    running = (
        changes.assign(turnover=changes["quantity_change"].abs())
        .groupby(keys[:4], sort=False)[["quantity_change", "turnover"]]
        .cumsum()
    )
    changes["quantity"] = snap_dust(
        running["quantity_change"].to_numpy(), running["turnover"].to_numpy()
    )
    changes["security_id"] = changes["security_id"].replace("", None)
    return changes[POSITION_COLUMNS]


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


def opening_balance(
    days: np.ndarray, cols: np.ndarray, values: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """(balance, turnover) per column that the changes `values` (on day codes `days`, into
    columns `cols`) leave, unsnapped: each day's changes summed in row order, then the days in
    date order, as `running_balance` sums them in a run from the first change."""
    if len(cols) == 0:
        return np.zeros(width), np.zeros(width)
    pair, pairs = pd.factorize(days.astype(np.int64) * width + cols, sort=True)
    daily = np.bincount(pair, weights=values)  # per (day, column), in row order
    column = (pairs % width).astype(np.int64)  # pairs sorted by day, then column
    return (
        np.bincount(column, weights=daily, minlength=width),
        np.bincount(column, weights=np.abs(daily), minlength=width),
    )
