"""Materialization and check metadata shared by the asset modules."""

from __future__ import annotations

import pandas as pd
from dagster import MetadataValue

PREVIEW_ROWS = 20


def preview(frame: pd.DataFrame, rows: int = PREVIEW_ROWS) -> MetadataValue:
    """The first `rows` rows as a Markdown table (the UI renders it)."""
    if frame.empty:
        return MetadataValue.md("_none_")
    more = f"\n\n_{len(frame) - rows} more rows_" if len(frame) > rows else ""
    return MetadataValue.md(frame.head(rows).to_markdown(index=False) + more)


def date_range(column: pd.Series) -> dict[str, str]:
    """first_date and last_date of a date column, for the UI."""
    if column.dropna().empty:
        return {}
    return {
        "first_date": str(pd.Timestamp(column.min()).date()),
        "last_date": str(pd.Timestamp(column.max()).date()),
    }
