"""The local store's IO manager through `materialize`: scoped replace and column types."""

import duckdb
import pandas as pd
from dagster import AssetExecutionContext, Output, asset, materialize

from perf_pipeline.resources.duckdb_store import DuckDBIOManager, DuckDBStore, replaces


def write(store_path, frame: pd.DataFrame, portfolio_ids=None) -> pd.DataFrame:
    @asset(name="holdings", metadata={"replace_scope": "portfolio_id"})
    def holdings(context: AssetExecutionContext):
        return Output(frame, metadata=replaces(portfolio_ids))

    io_manager = DuckDBIOManager(store=DuckDBStore(path=str(store_path)))
    assert materialize([holdings], resources={"io_manager": io_manager}).success
    with duckdb.connect(str(store_path), read_only=True) as con:
        return con.execute("SELECT * FROM holdings ORDER BY portfolio_id, value").df()


def test_a_column_null_on_first_write_takes_values_later(tmp_path):
    store = tmp_path / "s.duckdb"
    write(store, pd.DataFrame({"portfolio_id": ["P"], "value": [1.0], "note": [None]}))
    got = write(store, pd.DataFrame({"portfolio_id": ["Q"], "value": [2.0], "note": ["x"]}),
                portfolio_ids=["Q"])
    assert got["note"].isna().tolist() == [True, False] and got["note"].iloc[1] == "x"


def test_a_scoped_write_replaces_the_requested_scope_even_when_it_has_no_rows(tmp_path):
    store = tmp_path / "s.duckdb"
    write(store, pd.DataFrame({"portfolio_id": ["P", "P", "Q"], "value": [1.0, 2.0, 3.0]}))
    got = write(store, pd.DataFrame({"portfolio_id": ["P"], "value": [9.0]}),
                portfolio_ids=["P", "R"])
    assert list(zip(got["portfolio_id"], got["value"], strict=True)) == [("P", 9.0), ("Q", 3.0)]
    # Q asked for, with nothing left to write: its old rows go.
    got = write(store, pd.DataFrame({"portfolio_id": pd.Series([], dtype=object),
                                     "value": pd.Series([], dtype=float)}), portfolio_ids=["Q"])
    assert list(got["portfolio_id"]) == ["P"]


def test_a_full_write_replaces_everything(tmp_path):
    store = tmp_path / "s.duckdb"
    write(store, pd.DataFrame({"portfolio_id": ["P", "Q"], "value": [1.0, 2.0]}))
    got = write(store, pd.DataFrame({"portfolio_id": ["P"], "value": [5.0]}))
    assert list(got["portfolio_id"]) == ["P"]
