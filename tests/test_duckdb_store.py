"""The local store: the IO manager of the unpartitioned tables, and the partitioned slices."""

import datetime as dt

import duckdb
import pandas as pd
from dagster import AssetExecutionContext, Output, asset, materialize

from perf_pipeline.resources.duckdb_store import DuckDBIOManager, DuckDBStore
from perf_pipeline.resources.partition_store import Slice


def write(store_path, frame: pd.DataFrame) -> pd.DataFrame:
    @asset(name="holdings")
    def holdings(context: AssetExecutionContext):
        return Output(frame)

    io_manager = DuckDBIOManager(store=DuckDBStore(path=str(store_path)))
    assert materialize([holdings], resources={"io_manager": io_manager}).success
    with duckdb.connect(str(store_path), read_only=True) as con:
        return con.execute("SELECT * FROM holdings ORDER BY portfolio_id, value").df()


def test_a_column_null_on_first_write_takes_values_later(tmp_path):
    store = DuckDBStore(path=str(tmp_path / "s.duckdb"))
    day = dt.date(2024, 1, 2)
    first = pd.DataFrame({"shard": ["s00"], "date": [pd.Timestamp(day)], "note": [None]})
    store.replace("computed_from", first, Slice(("s00",), day, day))
    later = pd.DataFrame({"shard": ["s01"], "date": [pd.Timestamp(day)], "note": ["x"]})
    store.replace("computed_from", later, Slice(("s01",), day, day))
    got = store.read("computed_from", ["s00", "s01"]).sort_values("shard")
    assert got["note"].isna().tolist() == [True, False] and got["note"].iloc[1] == "x"


def test_a_full_write_replaces_everything(tmp_path):
    store = tmp_path / "s.duckdb"
    write(store, pd.DataFrame({"portfolio_id": ["P", "Q"], "value": [1.0, 2.0]}))
    got = write(store, pd.DataFrame({"portfolio_id": ["P"], "value": [5.0]}))
    assert list(got["portfolio_id"]) == ["P"]


def metric_rows(shard: str, days: list[str], value: float, created: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "shard": shard,
            "calculation_date": pd.to_datetime(days),
            "id": f"portfolio#{shard}",
            "time_period": "ITD",
            "twr": value,
            "created_at": created,
            "updated_at": created,
        }
    )


def test_a_slice_replaces_only_its_shards_and_days_and_keeps_created_at(tmp_path):
    store = DuckDBStore(path=str(tmp_path / "s.duckdb"))
    days = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    for shard in ("s00", "s01"):
        store.replace(
            "performance_metrics",
            metric_rows(shard, days, 1.0, "t0"),
            Slice((shard,), dt.date(2024, 1, 2), dt.date(2024, 1, 5)),
        )
    # s00 from 01-04 on is recomputed; 01-03 is superseded (an old latest date) and goes.
    store.replace(
        "performance_metrics",
        metric_rows("s00", ["2024-01-04", "2024-01-05"], 2.0, "t1"),
        Slice(
            ("s00",), dt.date(2024, 1, 4), dt.date(2024, 1, 5), extra_days=(dt.date(2024, 1, 3),)
        ),
        keep_created_at=["id", "calculation_date", "time_period"],
    )
    got = store.read("performance_metrics", ["s00", "s01"])
    s00 = got.loc[got["shard"] == "s00"].sort_values("calculation_date")
    assert [d.day for d in s00["calculation_date"]] == [2, 4, 5]
    assert s00["twr"].tolist() == [1.0, 2.0, 2.0]
    assert s00["created_at"].tolist() == ["t0", "t0", "t0"]  # rewritten rows keep theirs
    assert s00["updated_at"].tolist() == ["t0", "t1", "t1"]
    assert (got.loc[got["shard"] == "s01", "twr"] == 1.0).sum() == 4  # the other shard stays
    window = store.read(
        "performance_metrics",
        ["s01"],
        dt.date(2024, 1, 3),
        dt.date(2024, 1, 4),
        columns=["calculation_date"],
    )
    assert list(window.columns) == ["calculation_date"]
    assert [d.day for d in window["calculation_date"]] == [3, 4]


def test_reading_a_table_not_written_yet_gives_no_rows(tmp_path):
    store = DuckDBStore(path=str(tmp_path / "s.duckdb"))
    got = store.read("daily_valuations", ["s00"], columns=["date", "shard"])
    assert got.empty and list(got.columns) == ["date", "shard"]
