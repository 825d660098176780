"""The IO manager of the unpartitioned tables and of op outputs: a materialize round trip
in a temporary folder, and a missing upstream that fails naming itself."""

import pandas as pd
import pytest
from dagster import AssetIn, AssetKey, SourceAsset, asset, materialize

from perf_pipeline.resources.parquet_io_manager import ParquetIOManager

FRAME = pd.DataFrame(
    {
        "portfolio_id": ["P", "Q"],
        "value": [1.5, float("nan")],
        "date": pd.to_datetime(["2024-01-02", "2024-01-03"]),
        "note": [None, "x"],
    }
)
FRAME_TYPES = [("portfolio_id", "string"), ("value", "float"), ("date", "date"), ("note", "string")]


def test_a_table_round_trips_through_materialize_with_its_location(tmp_path):
    @asset(key_prefix=["nested"])
    def holdings() -> pd.DataFrame:
        return FRAME

    @asset(ins={"holdings": AssetIn(key=AssetKey(["nested", "holdings"]))})
    def total(holdings: pd.DataFrame) -> dict:
        return {"rows": len(holdings), "sum": float(holdings["value"].sum())}

    manager = ParquetIOManager(root=str(tmp_path))
    result = materialize([holdings, total], resources={"io_manager": manager})
    assert result.success
    path = tmp_path / "nested" / "holdings.parquet"  # the whole key: no two assets collide
    assert path.read_bytes()[:4] == b"PAR1"
    pd.testing.assert_frame_equal(pd.read_parquet(path), FRAME, check_dtype=False)
    [event] = result.asset_materializations_for_node("nested__holdings")
    assert event.metadata["dagster/row_count"].value == 2
    assert str(path) in event.metadata["dagster/uri"].value
    columns = event.metadata["dagster/column_schema"].value.columns
    assert [(c.name, c.type) for c in columns] == [(name, kind) for name, kind in FRAME_TYPES]
    assert result.output_for_node("total") == {"rows": 2, "sum": 1.5}


def test_a_missing_upstream_is_an_error_that_names_it(tmp_path):
    @asset
    def needs(never_made: pd.DataFrame) -> int:
        return len(never_made)

    manager = ParquetIOManager(root=str(tmp_path))
    with pytest.raises(Exception, match=r"never_made has not been materialized"):
        materialize([SourceAsset("never_made"), needs], resources={"io_manager": manager})
