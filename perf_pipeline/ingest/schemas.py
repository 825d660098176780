"""The input tables of docs/data.md as pandera models, and the names of every rule.

Each kind of input file has one ``DataFrameModel``. A model validates the *parsed* frame:
string columns as they came (null where the cell was empty), date columns as
``datetime64[ns]`` and number columns as ``float64``; a cell whose text could not be parsed
is null there and was already reported by the parse step (rules ``date_format``,
``number_format``, ``finite``). The parse step reads which columns are dates and numbers from
the models' dtypes, so the models are the single place where columns are named.

Naming convention, relied on by :func:`rule_of_check`: a column check's method is named after
its rule (it may cover several columns); a dataframe-level (conditional) check's method is
named ``<rule>__<column>``. Pandera's own ``not_nullable`` check maps to ``not_null``.

Rules, in the order used when one row breaks several of them (``RULES``):

- ``field_count``: a CSV record has a different number of fields than the header.
- ``not_null``: a non-nullable column is empty.
- ``id_pattern``: an id is not 1 to 64 characters of ``A-Z a-z 0-9 . _ -``.
- ``iso_currency``: a currency is not 3 upper-case ASCII letters (the ISO 4217 shape; the
  code is not looked up in the ISO list).
- ``type_allowed``: a transaction type outside ``TRANSACTION_TYPES``.
- ``date_format``: a date is not a real calendar date written ``YYYY-MM-DD``.
- ``number_format``: a number is not a decimal (``[+-]digits[.digits][e[+-]digits]``).
- ``finite``: a number is ``inf``, ``-inf`` or ``nan`` (any case).
- ``date_range``: a date outside ``EARLIEST_DATE`` .. today + 1 day.
- ``positive``: close <= 0; quantity or price <= 0 for ``QUANTITY_TYPES``; amount <= 0
  for ``AMOUNT_TYPES``.
- ``non_negative``: fee < 0.
- ``required_for_type``: security_id missing for ``SECURITY_TYPES``, quantity or price
  missing for ``QUANTITY_TYPES``, amount missing for ``AMOUNT_TYPES``.
- ``duplicate_conflict``: the same key (transaction_id; security_id + date; benchmark_id +
  date; portfolio_id) delivered with different content: every copy is rejected.
- ``currency_matches_portfolio``: a transaction's currency differs from its portfolio's
  base currency.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Final

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from perf_contract.ids import ID_PATTERN

CURRENCY_PATTERN: Final = r"[A-Z]{3}"
DATE_PATTERN: Final = r"\d{4}-\d{2}-\d{2}"
NUMBER_PATTERN: Final = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
NON_FINITE_PATTERN: Final = r"(?i)[+-]?(?:inf|infinity|nan)"
EARLIEST_DATE: Final = dt.date(1900, 1, 1)

TRANSACTION_TYPES: Final = (
    "DEPOSIT", "WITHDRAWAL", "BUY", "SELL", "DIVIDEND", "INTEREST", "FEE",
    "TRANSFER_IN", "TRANSFER_OUT",
)  # fmt: skip
SECURITY_TYPES: Final = ("BUY", "SELL", "DIVIDEND", "TRANSFER_IN", "TRANSFER_OUT")
QUANTITY_TYPES: Final = ("BUY", "SELL", "TRANSFER_IN", "TRANSFER_OUT")
AMOUNT_TYPES: Final = ("DEPOSIT", "WITHDRAWAL", "DIVIDEND", "INTEREST", "FEE")

RULES: Final = (
    "field_count",
    "not_null",
    "id_pattern",
    "iso_currency",
    "type_allowed",
    "date_format",
    "number_format",
    "finite",
    "date_range",
    "positive",
    "non_negative",
    "required_for_type",
    "duplicate_conflict",
    "account_in_one_portfolio",
    "currency_matches_portfolio",
)

RULE_TEXT: Final = {
    "field_count": "the record has a different number of fields than the header",
    "not_null": "is required and empty",
    "id_pattern": "is not 1 to 64 characters of A-Z a-z 0-9 . _ -",
    "iso_currency": "is not an ISO 4217 code of 3 upper-case letters",
    "type_allowed": "is not one of " + ", ".join(TRANSACTION_TYPES),
    "date_format": "is not a calendar date written YYYY-MM-DD",
    "number_format": "is not a decimal number",
    "finite": "is not a finite number",
    "date_range": "is outside 1900-01-01 .. today + 1 day",
    "positive": "must be > 0",
    "non_negative": "must be >= 0",
    "required_for_type": "is required for this transaction type",
    "duplicate_conflict": "the same key was delivered with different content",
    "account_in_one_portfolio": "the account appears under more than one portfolio",
    "currency_matches_portfolio": "differs from the portfolio's base currency",
}

_LATEST_DATE = "latest_date"


def fullmatch(s: pd.Series, pattern: str) -> pd.Series:
    """Boolean Series: does each non-null cell match ``pattern`` whole (null -> False)?

    The regex runs once per distinct value (ids, dates and currencies repeat a lot).
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    matched = pd.Series(uniques, dtype="str").str.fullmatch(pattern).to_numpy(dtype=bool)
    return pd.Series(np.append(matched, False)[codes], index=s.index)


def _ids(s: pd.Series) -> pd.Series:
    return fullmatch(s, ID_PATTERN)


def _in_range(cls: type[pa.DataFrameModel], s: pd.Series) -> pd.Series:
    latest = pd.Timestamp(cls.__config__.metadata[_LATEST_DATE])
    return s.between(pd.Timestamp(EARLIEST_DATE), latest)


def _required(df: pd.DataFrame, col: str, type_col: str, types: tuple[str, ...]) -> pd.Series:
    return ~(df[type_col].isin(types) & df[col].isna())


def _positive_for(df: pd.DataFrame, col: str, type_col: str, types: tuple[str, ...]) -> pd.Series:
    return ~(df[type_col].isin(types) & (df[col] <= 0))


class _Base(pa.DataFrameModel):
    class Config:
        strict = False
        coerce = False
        metadata: ClassVar[dict[str, dt.date]] = {_LATEST_DATE: dt.date.max - dt.timedelta(days=1)}


class PortfoliosModel(_Base):
    """A portfolio: its client, base currency and optional benchmark."""

    portfolio_id: Series[str]
    client_id: Series[str]
    base_currency: Series[str]
    benchmark_id: Series[str] = pa.Field(nullable=True)

    @pa.check("portfolio_id", "client_id", "benchmark_id")
    @classmethod
    def id_pattern(cls, s: pd.Series) -> pd.Series:
        return _ids(s)

    @pa.check("base_currency")
    @classmethod
    def iso_currency(cls, s: pd.Series) -> pd.Series:
        return fullmatch(s, CURRENCY_PATTERN)


class TransactionsModel(_Base):
    """An investment transaction; conditional rules by ``type`` (docs/data.md)."""

    transaction_id: Series[str]
    portfolio_id: Series[str]
    account_id: Series[str]
    security_id: Series[str] = pa.Field(nullable=True)
    trade_date: Series[pa.DateTime]
    type: Series[str]
    quantity: Series[float] = pa.Field(nullable=True)
    price: Series[float] = pa.Field(nullable=True)
    amount: Series[float] = pa.Field(nullable=True)
    fee: Series[float] = pa.Field(nullable=True)
    currency: Series[str]

    @pa.check("transaction_id", "portfolio_id", "account_id", "security_id")
    @classmethod
    def id_pattern(cls, s: pd.Series) -> pd.Series:
        return _ids(s)

    @pa.check("currency")
    @classmethod
    def iso_currency(cls, s: pd.Series) -> pd.Series:
        return fullmatch(s, CURRENCY_PATTERN)

    @pa.check("type")
    @classmethod
    def type_allowed(cls, s: pd.Series) -> pd.Series:
        return s.isin(TRANSACTION_TYPES)

    @pa.check("trade_date")
    @classmethod
    def date_range(cls, s: pd.Series) -> pd.Series:
        return _in_range(cls, s)

    @pa.check("fee")
    @classmethod
    def non_negative(cls, s: pd.Series) -> pd.Series:
        return s >= 0

    @pa.dataframe_check(ignore_na=False)
    @classmethod
    def required_for_type__security_id(cls, df: pd.DataFrame) -> pd.Series:
        return _required(df, cls.security_id, cls.type, SECURITY_TYPES)

    @pa.dataframe_check(ignore_na=False)
    @classmethod
    def required_for_type__quantity(cls, df: pd.DataFrame) -> pd.Series:
        return _required(df, cls.quantity, cls.type, QUANTITY_TYPES)

    @pa.dataframe_check(ignore_na=False)
    @classmethod
    def required_for_type__price(cls, df: pd.DataFrame) -> pd.Series:
        return _required(df, cls.price, cls.type, QUANTITY_TYPES)

    @pa.dataframe_check(ignore_na=False)
    @classmethod
    def required_for_type__amount(cls, df: pd.DataFrame) -> pd.Series:
        return _required(df, cls.amount, cls.type, AMOUNT_TYPES)

    @pa.dataframe_check(ignore_na=False)
    @classmethod
    def positive__quantity(cls, df: pd.DataFrame) -> pd.Series:
        return _positive_for(df, cls.quantity, cls.type, QUANTITY_TYPES)

    @pa.dataframe_check(ignore_na=False)
    @classmethod
    def positive__price(cls, df: pd.DataFrame) -> pd.Series:
        return _positive_for(df, cls.price, cls.type, QUANTITY_TYPES)

    @pa.dataframe_check(ignore_na=False)
    @classmethod
    def positive__amount(cls, df: pd.DataFrame) -> pd.Series:
        return _positive_for(df, cls.amount, cls.type, AMOUNT_TYPES)


class PricesModel(_Base):
    """A closing price of a security on a date."""

    security_id: Series[str]
    date: Series[pa.DateTime]
    close: Series[float]
    currency: Series[str]

    @pa.check("security_id")
    @classmethod
    def id_pattern(cls, s: pd.Series) -> pd.Series:
        return _ids(s)

    @pa.check("date")
    @classmethod
    def date_range(cls, s: pd.Series) -> pd.Series:
        return _in_range(cls, s)

    @pa.check("close")
    @classmethod
    def positive(cls, s: pd.Series) -> pd.Series:
        return s > 0

    @pa.check("currency")
    @classmethod
    def iso_currency(cls, s: pd.Series) -> pd.Series:
        return fullmatch(s, CURRENCY_PATTERN)


class BenchmarksModel(_Base):
    """A benchmark index level on a date."""

    benchmark_id: Series[str]
    date: Series[pa.DateTime]
    close: Series[float]

    @pa.check("benchmark_id")
    @classmethod
    def id_pattern(cls, s: pd.Series) -> pd.Series:
        return _ids(s)

    @pa.check("date")
    @classmethod
    def date_range(cls, s: pd.Series) -> pd.Series:
        return _in_range(cls, s)

    @pa.check("close")
    @classmethod
    def positive(cls, s: pd.Series) -> pd.Series:
        return s > 0


MODELS: Final[dict[str, type[pa.DataFrameModel]]] = {
    "portfolios": PortfoliosModel,
    "transactions": TransactionsModel,
    "prices": PricesModel,
    "benchmarks": BenchmarksModel,
}

KEYS: Final[dict[str, tuple[str, ...]]] = {
    "portfolios": (PortfoliosModel.portfolio_id,),
    "transactions": (TransactionsModel.transaction_id,),
    "prices": (PricesModel.security_id, PricesModel.date),
    "benchmarks": (BenchmarksModel.benchmark_id, BenchmarksModel.date),
}
"""The columns that identify one record of each kind (for ``duplicate_conflict``)."""


def with_latest_date(model: type[pa.DataFrameModel], latest: dt.date) -> type[pa.DataFrameModel]:
    """The model with ``date_range`` bounded above by ``latest`` (today + 1 day)."""
    config = type("Config", (model.Config,), {"metadata": {_LATEST_DATE: latest}})
    return type(model.__name__, (model,), {"Config": config, "__doc__": model.__doc__})


def columns(model: type[pa.DataFrameModel]) -> list[str]:
    """The model's columns in declaration order."""
    return list(model.to_schema().columns)


def required_columns(model: type[pa.DataFrameModel]) -> list[str]:
    """Columns a file must have: the non-nullable ones."""
    return [name for name, col in model.to_schema().columns.items() if not col.nullable]


def columns_of_dtype(model: type[pa.DataFrameModel], kind: str) -> list[str]:
    """Columns whose pandas dtype kind is ``kind`` (``"M"`` dates, ``"f"`` numbers)."""
    return [
        name
        for name, col in model.to_schema().columns.items()
        if pd.api.types.pandas_dtype(str(col.dtype)).kind == kind
    ]


def rule_of_check(check: str, column: str | None) -> tuple[str, str]:
    """Map a pandera failure's (check, column) to this package's (rule, column)."""
    if check == "not_nullable":
        return "not_null", str(column)
    rule, _, check_column = check.partition("__")
    if rule not in RULE_TEXT:
        raise ValueError(f"pandera check {check!r} is not one of the documented rules")
    return rule, check_column or str(column)
