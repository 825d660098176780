"""What the store holds: data, never code (nothing is pickled or unpickled), and a store of
the earlier layout is refused with a message that says how to rebuild it."""

import ast
import datetime as dt
from pathlib import Path

import boto3
import duckdb
import pandas as pd
import pytest

from perf_pipeline.planning import PlanError, plan
from perf_pipeline.resources.parquet_store import ParquetStore
from perf_pipeline.resources.partition_store import DATE_COLUMNS, TABLE_COLUMNS, Slice

ROOT = Path(__file__).resolve().parents[1]
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "joblib", "shelve", "marshal", "cloudpickle"}
UNSAFE_NAMES = {
    "read_pickle",
    "S3PickleIOManager",
    "PickledObjectFilesystemIOManager",
    "fs_io_manager",
    "FilesystemIOManager",
    "s3_pickle_io_manager",
}


def python_files() -> list[Path]:
    return sorted(
        path
        for folder in ("perf_pipeline", "lambda_trigger", "scripts")
        for path in (ROOT / folder).rglob("*.py")
    )


def unsafe_uses(source: str) -> list[str]:
    """Imports of a deserializer that runs code, and the names of pickling IO managers."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in UNSAFE_MODULES:
                found.append(node.module)
            found += [a.name for a in node.names if a.name in UNSAFE_NAMES]
        elif isinstance(node, ast.Attribute) and node.attr in UNSAFE_NAMES:
            found.append(node.attr)
        elif isinstance(node, ast.Name) and node.id in UNSAFE_NAMES:
            found.append(node.id)
    return found


def test_the_finder_would_catch_an_unpickling_module():
    assert unsafe_uses("import pickle\npickle.loads(b'')") == ["pickle"]
    assert unsafe_uses("from dagster_aws.s3 import S3PickleIOManager") == ["S3PickleIOManager"]
    assert unsafe_uses("import pandas as pd\npd.read_pickle('x')") == ["read_pickle"]


def test_no_module_of_the_project_unpickles_stored_data():
    offenders = {
        str(path.relative_to(ROOT)): uses
        for path in python_files()
        if (uses := unsafe_uses(path.read_text()))
    }
    assert offenders == {}


def test_what_the_store_writes_is_parquet_not_a_pickle(tmp_path):
    store = ParquetStore(root=str(tmp_path))
    frame = pd.DataFrame({"shard": ["s00"], "date": [pd.Timestamp("2024-01-02")], "v": [1.0]})
    store.replace("computed_from", frame, Slice(("s00",), dt.date(2024, 1, 1)))
    [written] = list(tmp_path.rglob("*.parquet"))
    data = written.read_bytes()
    assert data[:4] == data[-4:] == b"PAR1"


def test_a_duckdb_file_of_the_earlier_layout_is_refused_with_how_to_rebuild(tmp_path):
    catalog = tmp_path / "perf.duckdb"
    with duckdb.connect(str(catalog)) as con:  # the earlier layout: tables inside DuckDB
        con.execute("CREATE TABLE computed_from (shard VARCHAR, date DATE, digest BIGINT)")
    store = ParquetStore(root=str(tmp_path / "perf_tables"), catalog=str(catalog))
    digests = pd.DataFrame({"shard": ["s00"], "date": [pd.Timestamp("2024-01-02")], "digest": [1]})
    with pytest.raises(PlanError, match=r"earlier version.*perf-pipeline run"):
        plan(digests, store, pd.Timestamp("2024-01-02"))


def test_an_s3_store_of_pickled_objects_is_refused_and_never_read(aws):
    s3 = boto3.client("s3", endpoint_url=aws)
    s3.create_bucket(Bucket="old")
    s3.put_object(Bucket="old", Key="assets/computed_from/s00/2024-01.pkl", Body=b"\x80\x05.")
    store = ParquetStore(root="s3://old/assets", endpoint_url=aws)
    digests = pd.DataFrame({"shard": ["s00"], "date": [pd.Timestamp("2024-01-02")], "digest": [1]})
    with pytest.raises(PlanError, match="pickled objects"):
        plan(digests, store, pd.Timestamp("2024-01-02"))
    assert store.read("computed_from", ["s00"]).empty  # a .pkl is never taken for data


def _stored(root: Path, table: str, columns: list[str]) -> ParquetStore:
    """A store whose `table` holds one row (shard s00, 2024-01-02) of exactly `columns`."""
    store = ParquetStore(root=str(root))
    day = DATE_COLUMNS[table]
    row = {name: [pd.Timestamp("2024-01-02") if name == day else None] for name in columns}
    store.replace(table, pd.DataFrame({**row, "shard": ["s00"]}), Slice(("s00",)))
    return store


DIGESTS = pd.DataFrame({"shard": ["s00"], "date": [pd.Timestamp("2024-01-02")], "digest": [1]})


@pytest.mark.parametrize(
    ("table", "dropped"),
    [("daily_valuations", "twr_index"), ("performance_metrics", "twr")],
)
def test_a_table_without_a_column_of_its_schema_is_refused_naming_it(tmp_path, table, dropped):
    columns = [name for name in TABLE_COLUMNS[table] if name != dropped]
    store = _stored(tmp_path, table, columns)
    with pytest.raises(PlanError, match=rf"{table}/s00/2024-01.parquet has no column {dropped}:"):
        plan(DIGESTS, store, pd.Timestamp("2024-01-02"))
    with pytest.raises(PlanError, match=r"earlier version.*perf-pipeline run"):
        plan(DIGESTS, store, pd.Timestamp("2024-01-02"))
    complete = _stored(tmp_path / "complete", table, list(TABLE_COLUMNS[table]))
    complete.check_layout()  # every column there: no error


def test_a_store_from_before_several_currencies_is_refused(tmp_path):
    added = ["currency", "market_value_local", "daily_return_local"]  # by several currencies
    added += ["fx_return", "fx_rate", "fx_age_days"]
    before = [name for name in TABLE_COLUMNS["daily_valuations"] if name not in added]
    store = _stored(tmp_path, "daily_valuations", before)
    with pytest.raises(PlanError, match="has no column currency, market_value_local"):
        plan(DIGESTS, store, pd.Timestamp("2024-01-02"))
