"""Materialization and check metadata, typed so the Dagster UI renders it: tables with a
schema (never Markdown of a frame), numbers it plots (MetadataValue.int/float), dates as
dates (``YYYY-MM-DD``), a missing value as null (never the text ``nan``).

Shared by the asset modules and the IO manager; every stored table's materialization carries
``dagster/column_schema``, and its location as ``dagster/uri`` (and ``dagster/table_name``,
its DuckDB view, on the local target).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

PREVIEW_ROWS = 20
"""Rows shown of a check's offending rows (their count is given apart)."""

Cell = str | int | float | bool | None


def column_type(values: pd.Series) -> str:
    """The TableColumn type of a column: int, float, bool, date (timestamps at midnight),
    datetime, or string."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        stamps = pd.DatetimeIndex(values.dropna())
        return "date" if (stamps == stamps.normalize()).all() else "datetime"
    return "string"


def table_schema(frame: pd.DataFrame) -> TableSchema:
    """The columns of `frame` with their types (column_type)."""
    return schema_of(schema_pairs(frame))


def schema_of(columns: Sequence[Sequence[str]]) -> TableSchema:
    """A TableSchema from (name, type) pairs (a schema carried between steps as JSON)."""
    return TableSchema(columns=[TableColumn(name=name, type=kind) for name, kind in columns])


def schema_pairs(frame: pd.DataFrame) -> list[list[str]]:
    """[name, type] of each column of `frame`: its schema as JSON for another step."""
    return [[str(name), column_type(frame[name])] for name in frame.columns]


def cell(value: Any) -> Cell:
    """A value as a table cell: None for NaN/NaT/None, ``YYYY-MM-DD`` for a date (ISO date and
    time when it has one), Python scalars for numpy ones, text for anything else."""
    if value is None or (not isinstance(value, str | bytes) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime | np.datetime64):
        stamp = pd.Timestamp(value)
        return f"{stamp:%Y-%m-%d}" if stamp == stamp.normalize() else stamp.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer | int):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value)
    return str(value)


def records(frame: pd.DataFrame) -> list[dict[str, Cell]]:
    """The rows of `frame` as dicts of cells (JSON-serializable)."""
    columns = [str(name) for name in frame.columns]
    return [
        dict(zip(columns, (cell(value) for value in row), strict=True))
        for row in frame.itertuples(index=False, name=None)
    ]


def table(rows: Sequence[Mapping[str, Cell]] | pd.DataFrame, schema: TableSchema) -> MetadataValue:
    """A MetadataValue.table of `rows` (a frame, or cells from `records`) under `schema`."""
    cells = records(rows) if isinstance(rows, pd.DataFrame) else rows
    return MetadataValue.table(records=[TableRecord(dict(row)) for row in cells], schema=schema)


def preview(frame: pd.DataFrame) -> MetadataValue:
    """The first PREVIEW_ROWS rows of `frame` as a typed table (the count is given apart)."""
    return table(frame.head(PREVIEW_ROWS), table_schema(frame))


def date_range(column: pd.Series) -> dict[str, MetadataValue]:
    """first_date and last_date of a date column (nothing when it has none)."""
    if column.dropna().empty:
        return {}
    return {
        "first_date": MetadataValue.text(f"{pd.Timestamp(column.min()):%Y-%m-%d}"),
        "last_date": MetadataValue.text(f"{pd.Timestamp(column.max()):%Y-%m-%d}"),
    }


def location(uri: str) -> MetadataValue:
    """A store location the UI makes clickable: a URL for s3://, else a local path."""
    return MetadataValue.url(uri) if uri.startswith("s3://") else MetadataValue.path(uri)


def location_metadata(uri: str, table_name: str | None = None) -> dict[str, MetadataValue]:
    """Where a table is stored: ``dagster/uri`` and, when it has one, its DuckDB view as
    ``dagster/table_name``."""
    meta = {"dagster/uri": location(uri)}
    if table_name:
        meta["dagster/table_name"] = MetadataValue.text(table_name)
    return meta


def stored_table(frame: pd.DataFrame, uri: str, table_name: str | None = None) -> dict[str, Any]:
    """The metadata of a stored table: its location (location_metadata), its columns
    (``dagster/column_schema``) and its rows (``dagster/row_count``, the one row count)."""
    return {
        **location_metadata(uri, table_name),
        "dagster/column_schema": MetadataValue.table_schema(table_schema(frame)),
        "dagster/row_count": MetadataValue.int(len(frame)),
    }


def check_metadata(
    offending: int, head: TableSchema | None, shown: Sequence[Mapping[str, Cell]], **limits: float
) -> dict[str, Any]:
    """A check's metadata: ``observed`` (its offending rows) against ``threshold`` (the most
    it allows: 0), the rule's own limits (floats, e.g. ``tolerance``), and the first
    offending rows as a table (``offending_rows``) when there are any."""
    meta: dict[str, Any] = {
        "observed": MetadataValue.float(float(offending)),
        "threshold": MetadataValue.float(0.0),
        **{name: MetadataValue.float(float(value)) for name, value in limits.items()},
    }
    if offending and head is not None:
        meta["offending_rows"] = table(shown, head)
    return meta


FIGURES = (  # (metric column, label in the UI, scale: 100 for a percentage, 1 for a ratio)
    ("twr", "TWR %", 100),
    ("twr_annualized", "TWR p.a. %", 100),
    ("twr_local", "TWR local %", 100),
    ("fx_effect", "FX effect %", 100),
    ("mwr", "MWR %", 100),
    ("mwr_annualized", "MWR p.a. (XIRR) %", 100),
    ("volatility", "volatility %", 100),
    ("sharpe_ratio", "Sharpe", 1),
    ("max_drawdown", "max drawdown %", 100),
    ("benchmark_twr", "benchmark TWR %", 100),
)
"""The ITD figures of each portfolio the performance_metrics materialization shows."""
FIGURE_DECIMALS = 2


def _scaled_figures(itd: pd.DataFrame) -> pd.DataFrame:
    """``portfolio``, ``as of`` and each FIGURES column under its label, scaled."""
    shown = pd.DataFrame({"portfolio": itd["entity_id"], "as of": itd["calculation_date"]})
    for name, label, scale in FIGURES:
        shown[label] = itd[name].astype(float) * scale
    return shown


def portfolio_figures(itd: pd.DataFrame) -> MetadataValue:
    """Each portfolio's ITD row (entity_id, calculation_date and the FIGURES columns) as a
    table: ``portfolio``, ``as of`` (a date), then each figure, percentages as float percent
    (x 100) rounded to FIGURE_DECIMALS, ratios rounded likewise; a missing figure is null."""
    columns = [
        TableColumn("portfolio", "string", "Portfolio id."),
        TableColumn("as of", "date", "Calculation date of the ITD figures."),
    ] + [
        TableColumn(
            label,
            "float",
            f"{name} x 100, in percent." if scale == 100 else f"{name} (a ratio).",
        )
        for name, label, scale in FIGURES
    ]
    return table(_scaled_figures(itd).round(FIGURE_DECIMALS), TableSchema(columns=columns))


def figures_log(itd: pd.DataFrame) -> str:
    """The same figures as a Markdown table for the run log: the same labels and scales,
    FIGURE_DECIMALS decimals, a missing figure blank."""
    shown = _scaled_figures(itd)
    text = shown[["portfolio"]].assign(**{"as of": shown["as of"].dt.strftime("%Y-%m-%d")})
    for _, label, _ in FIGURES:
        text[label] = shown[label].map(lambda v: "" if pd.isna(v) else f"{v:,.{FIGURE_DECIMALS}f}")
    return text.to_markdown(index=False)


def rows_by_month(days: pd.Series) -> dict[str, int]:
    """Rows per month (``YYYY-MM``, the partition keys) of a day column."""
    counts = pd.to_datetime(days).dt.to_period("M").value_counts()
    return {f"{month:%Y-%m}": int(rows) for month, rows in counts.items()}


def partition_metadata(
    partition_keys: Sequence[str],
    chunks: Sequence[Mapping[str, Any]],
    stored: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    """The metadata of each partition (month) a ranged run materializes, from its chunk
    steps' summaries (``rows``, ``rows_by_month``, ``schema``):

    - every partition: ``rows_written`` (the rows this run wrote in that month: the whole
      month's rows when the run covers every shard and day of it), the table's
      ``dagster/column_schema`` and `stored` (its location);
    - the run's last partition only, once per run: ``run_rows``, ``run_chunks``,
      ``run_shards`` (what the whole run wrote, over how many steps and shards) and
      ``run_days`` (its first and last business day).

    No partition repeats the run's totals as if they were its own."""
    months: dict[str, int] = dict.fromkeys(partition_keys, 0)
    for part in chunks:
        for month, rows in part["rows_by_month"].items():
            if month in months:
                months[month] += rows
    schema = next((part["schema"] for part in chunks if part["rows"]), None)
    every = dict(stored)
    if schema:
        every["dagster/column_schema"] = MetadataValue.table_schema(schema_of(schema))
    meta = {key: {**every, "rows_written": MetadataValue.int(rows)} for key, rows in months.items()}
    if partition_keys:
        meta[partition_keys[-1]] |= {
            "run_rows": MetadataValue.int(sum(part["rows"] for part in chunks)),
            "run_chunks": MetadataValue.int(len(chunks)),
            "run_shards": MetadataValue.int(sum(len(part["shards"]) for part in chunks)),
        }
        if chunks:  # every chunk covers the run's days
            first, last = chunks[0]["start"], chunks[0]["end"]
            meta[partition_keys[-1]]["run_days"] = MetadataValue.text(f"{first} .. {last}")
    return meta


def frame_check_metadata(offending: pd.DataFrame, **limits: float) -> dict[str, Any]:
    """check_metadata of a check whose offending rows are all in `offending`."""
    return check_metadata(
        len(offending), table_schema(offending), records(offending.head(PREVIEW_ROWS)), **limits
    )
