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
- ``iso_currency``: a currency is not an active ISO 4217 code of money (``CURRENCY_CODES``:
  pycountry's list of active codes, case-sensitive, without the codes that are no money).
- ``type_allowed``: a transaction type outside ``TRANSACTION_TYPES``.
- ``date_format``: a date is not a real calendar date written ``YYYY-MM-DD``.
- ``number_format``: a number is not a decimal (``[+-]digits[.digits][e[+-]digits]``).
- ``finite``: a number is ``inf``, ``-inf`` or ``nan`` (any case).
- ``date_range``: a date outside ``EARLIEST_DATE`` .. today + 1 day.
- ``positive``: close <= 0; rate <= 0; fx_rate <= 0 (when given); quantity or price <= 0
  for ``QUANTITY_TYPES``; amount <= 0 for ``AMOUNT_TYPES`` and ``FX``; counter_amount <= 0
  for ``FX``.
- ``non_negative``: fee < 0.
- ``distinct_currencies``: an exchange rate's quote equals its base; an FX transaction's
  counter_currency equals its currency.
- ``required_for_type``: security_id missing for ``SECURITY_TYPES``, quantity or price
  missing for ``QUANTITY_TYPES``, amount missing for ``AMOUNT_TYPES`` and ``FX``,
  counter_amount or counter_currency missing for ``FX``.
- ``only_for_type``: counter_amount or counter_currency given for a type other than ``FX``.
- ``max_length``: a free-text cell (fx_rates.source) longer than ``MAX_TEXT_LENGTH``.
- ``duplicate_conflict``: the same key (``KEYS``) delivered with different content (every
  column but those of ``NOT_COMPARED``): every copy is rejected.
- ``account_in_one_portfolio``: an account appears under several portfolios.
- ``one_currency_per_security``: a security's prices come in several currencies: the rows of
  every currency but the one with most rows are rejected (all of them on a tie).
- ``currency_matches_security``: a transaction of ``SECURITY_TYPES`` is not in the currency
  of its security's prices (a security without prices accepts any currency).
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Final

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pycountry
from pandera.typing import Series

from perf_contract.ids import ID_PATTERN

NOT_MONEY: Final = frozenset(
    {"XAG", "XAU", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA", "XAD", "XTS",
     "XXX"}
)  # fmt: skip
"""ISO 4217 codes in pycountry's active list that name no money an account can hold: the
precious metals, the bond-market and other units of account (SDR, Sucre, ADB, Arab accounting
dinar), the testing code and "no currency"."""
CURRENCY_CODES: Final = frozenset(c.alpha_3 for c in pycountry.currencies) - NOT_MONEY
"""The codes ``iso_currency`` accepts: pycountry's ISO 4217 list (active codes only; withdrawn
ones such as HRK are not in it), fund codes such as CLF included, ``NOT_MONEY`` excluded."""
MAX_TEXT_LENGTH: Final = 256
DATE_PATTERN: Final = r"\d{4}-\d{2}-\d{2}"
NUMBER_PATTERN: Final = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
NON_FINITE_PATTERN: Final = r"(?i)[+-]?(?:inf|infinity|nan)"
EARLIEST_DATE: Final = dt.date(1900, 1, 1)

TRANSACTION_TYPES: Final = (
    "DEPOSIT", "WITHDRAWAL", "BUY", "SELL", "DIVIDEND", "INTEREST", "FEE",
    "TRANSFER_IN", "TRANSFER_OUT", "FX",
)  # fmt: skip
SECURITY_TYPES: Final = ("BUY", "SELL", "DIVIDEND", "TRANSFER_IN", "TRANSFER_OUT")
QUANTITY_TYPES: Final = ("BUY", "SELL", "TRANSFER_IN", "TRANSFER_OUT")
AMOUNT_TYPES: Final = ("DEPOSIT", "WITHDRAWAL", "DIVIDEND", "INTEREST", "FEE")
FX_TYPES: Final = ("FX",)

RULES: Final = (
    "field_count",
    "not_null",
    "id_pattern",
    "iso_currency",
    "max_length",
    "type_allowed",
    "date_format",
    "number_format",
    "finite",
    "date_range",
    "positive",
    "non_negative",
    "distinct_currencies",
    "required_for_type",
    "only_for_type",
    "duplicate_conflict",
    "account_in_one_portfolio",
    "one_currency_per_security",
    "currency_matches_security",
)

RULE_TEXT: Final = {
    "field_count": "the record has a different number of fields than the header",
    "not_null": "is required and empty",
    "id_pattern": "is not 1 to 64 characters of A-Z a-z 0-9 . _ -",
    "iso_currency": "is not an active ISO 4217 currency code (upper case; metals, units of "
    "account, XTS and XXX excluded)",
    "max_length": f"is longer than {MAX_TEXT_LENGTH} characters",
    "type_allowed": "is not one of " + ", ".join(TRANSACTION_TYPES),
    "date_format": "is not a calendar date written YYYY-MM-DD",
    "number_format": "is not a decimal number",
    "finite": "is not a finite number",
    "date_range": "is outside 1900-01-01 .. today + 1 day",
    "positive": "must be > 0",
    "non_negative": "must be >= 0",
    "distinct_currencies": "must differ from the other currency of the row (base; currency)",
    "required_for_type": "is required for this transaction type",
    "only_for_type": "must be empty for this transaction type (it is for FX only)",
    "duplicate_conflict": "the same key was delivered with different content",
    "account_in_one_portfolio": "the account appears under more than one portfolio",
    "one_currency_per_security": "is not the currency of most of this security's prices (every "
    "currency is rejected on a tie)",
    "currency_matches_security": "differs from the currency of the security's prices",
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


def iso_currency(s: pd.Series) -> pd.Series:
    """Boolean Series: is each cell one of ``CURRENCY_CODES`` (exact, case-sensitive; null ->
    False)? Looked up once per distinct value."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    known = np.fromiter((u in CURRENCY_CODES for u in uniques), dtype=bool, count=len(uniques))
    return pd.Series(np.append(known, False)[codes], index=s.index)


def _in_range(cls: type[pa.DataFrameModel], s: pd.Series) -> pd.Series:
    latest = pd.Timestamp(cls.__config__.metadata[_LATEST_DATE])
    return s.between(pd.Timestamp(EARLIEST_DATE), latest)


def _required(df: pd.DataFrame, col: str, type_col: str, types: tuple[str, ...]) -> pd.Series:
    return ~(df[type_col].isin(types) & df[col].isna())


def _positive_for(df: pd.DataFrame, col: str, type_col: str, types: tuple[str, ...]) -> pd.Series:
    return ~(df[type_col].isin(types) & (df[col] <= 0))


def _only_for(df: pd.DataFrame, col: str, type_col: str, types: tuple[str, ...]) -> pd.Series:
    return df[type_col].isin(types) | df[col].isna()


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
        return iso_currency(s)


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
    fx_rate: Series[float] = pa.Field(nullable=True)
    counter_amount: Series[float] = pa.Field(nullable=True)
    counter_currency: Series[str] = pa.Field(nullable=True)

    @pa.check("transaction_id", "portfolio_id", "account_id", "security_id")
    @classmethod
    def id_pattern(cls, s: pd.Series) -> pd.Series:
        return _ids(s)

    @pa.check("currency", "counter_currency")
    @classmethod
    def iso_currency(cls, s: pd.Series) -> pd.Series:
        return iso_currency(s)

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

    @pa.check("fx_rate")
    @classmethod
    def positive(cls, s: pd.Series) -> pd.Series:
        return s > 0

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
        return _required(df, cls.amount, cls.type, AMOUNT_TYPES + FX_TYPES)

    @pa.dataframe_check(ignore_na=False)
    @classmethod
    def required_for_type__counter_amount(cls, df: pd.DataFrame) -> pd.Series:
        return _required(df, cls.counter_amount, cls.type, FX_TYPES)

    @pa.dataframe_check(ignore_na=False)
    @classmethod
    def required_for_type__counter_currency(cls, df: pd.DataFrame) -> pd.Series:
        return _required(df, cls.counter_currency, cls.type, FX_TYPES)

    @pa.dataframe_check(ignore_na=False)
    @classmethod
    def only_for_type__counter_amount(cls, df: pd.DataFrame) -> pd.Series:
        return _only_for(df, cls.counter_amount, cls.type, FX_TYPES)

    @pa.dataframe_check(ignore_na=False)
    @classmethod
    def only_for_type__counter_currency(cls, df: pd.DataFrame) -> pd.Series:
        return _only_for(df, cls.counter_currency, cls.type, FX_TYPES)

    @pa.dataframe_check(ignore_na=False)
    @classmethod
    def distinct_currencies__counter_currency(cls, df: pd.DataFrame) -> pd.Series:
        return df[cls.counter_currency].isna() | (df[cls.counter_currency] != df[cls.currency])

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
        return _positive_for(df, cls.amount, cls.type, AMOUNT_TYPES + FX_TYPES)

    @pa.dataframe_check(ignore_na=False)
    @classmethod
    def positive__counter_amount(cls, df: pd.DataFrame) -> pd.Series:
        return _positive_for(df, cls.counter_amount, cls.type, FX_TYPES)


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
        return iso_currency(s)


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


class FxRatesModel(_Base):
    """An exchange rate on a date: ``rate`` units of ``quote`` for one unit of ``base``."""

    date: Series[pa.DateTime]
    base: Series[str]
    quote: Series[str]
    rate: Series[float]
    source: Series[str] = pa.Field(nullable=True)

    @pa.check("base", "quote")
    @classmethod
    def iso_currency(cls, s: pd.Series) -> pd.Series:
        return iso_currency(s)

    @pa.check("source")
    @classmethod
    def max_length(cls, s: pd.Series) -> pd.Series:
        return s.str.len() <= MAX_TEXT_LENGTH

    @pa.check("date")
    @classmethod
    def date_range(cls, s: pd.Series) -> pd.Series:
        return _in_range(cls, s)

    @pa.check("rate")
    @classmethod
    def positive(cls, s: pd.Series) -> pd.Series:
        return s > 0

    @pa.dataframe_check(ignore_na=False)
    @classmethod
    def distinct_currencies__quote(cls, df: pd.DataFrame) -> pd.Series:
        return df[cls.quote] != df[cls.base]


MODELS: Final[dict[str, type[pa.DataFrameModel]]] = {
    "portfolios": PortfoliosModel,
    "transactions": TransactionsModel,
    "prices": PricesModel,
    "benchmarks": BenchmarksModel,
    "fx_rates": FxRatesModel,
}

KEYS: Final[dict[str, tuple[str, ...]]] = {
    "portfolios": (PortfoliosModel.portfolio_id,),
    "transactions": (TransactionsModel.transaction_id,),
    "prices": (PricesModel.security_id, PricesModel.date),
    "benchmarks": (BenchmarksModel.benchmark_id, BenchmarksModel.date),
    "fx_rates": (FxRatesModel.date, FxRatesModel.base, FxRatesModel.quote),
}
"""The columns that identify one record of each kind (for ``duplicate_conflict``)."""

NOT_COMPARED: Final[dict[str, tuple[str, ...]]] = {"fx_rates": (FxRatesModel.source,)}
"""Columns that do not make two copies of a key differ: the same rate from two sources is one
rate (the first copy, with its source, is kept)."""


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
