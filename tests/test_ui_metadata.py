"""What the Dagster UI shows of the demo (issue 15): typed metadata, read back through the
webserver's GraphQL API.

One dagster-webserver + dagster-daemon pair (tests/dagster_services.py) serves a small
generated demo (3 portfolios, one year, local target). inputs_job is launched through
GraphQL; the daemon's stale_partitions sensor launches the partition runs. Every figure the
metadata shows is compared with the rows read from the store through its own API
(ParquetStore.read), never with the code that builds the metadata.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from dagster_services import PIPELINE_ENV, DagsterServices, dagster_services

from perf_pipeline.resources.parquet_store import ParquetStore
from perf_pipeline.sample_data import generate

pytestmark = pytest.mark.slow

AS_OF = dt.date(2024, 6, 28)  # the last day the demo generates
PORTFOLIOS = 3
DEADLINE_S = 300.0
POLL_S = 1.0
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
REPOSITORY = "__repository__"
STALE_SENSOR = "stale_partitions"

ENTRY = """
  __typename label
  ... on IntMetadataEntry { intValue }
  ... on FloatMetadataEntry { floatValue }
  ... on TextMetadataEntry { text }
  ... on PathMetadataEntry { path }
  ... on TableMetadataEntry { table { records schema { columns { name type description } } } }
  ... on TableSchemaMetadataEntry { schema { columns { name type } } }
"""
MATERIALIZATIONS_QUERY = f"""
query Materializations($key: AssetKeyInput!, $partitions: [String!], $limit: Int) {{
  assetNodeOrError(assetKey: $key) {{
    ... on AssetNode {{
      assetMaterializations(partitions: $partitions, limit: $limit) {{
        runId partition metadataEntries {{ {ENTRY} }}
      }}
    }}
  }}
}}
"""
CHECK_QUERY = f"""
query Check($key: AssetKeyInput!, $check: String!) {{
  assetCheckExecutions(assetKey: $key, checkName: $check, limit: 1) {{
    status evaluation {{ success metadataEntries {{ {ENTRY} }} }}
  }}
}}
"""
ASSET_NODES_QUERY = """
query Nodes { assetNodes { assetKey { path } kinds groupName } }
"""
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
  }
}
"""
RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    ... on Runs { results { runId jobName status tags { key value } } }
  }
}
"""
TICKS_QUERY = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { ticks(limit: 1) { status } } }
  }
}
"""


@dataclass
class Demo:
    services: DagsterServices
    store: ParquetStore
    input_files: int


def runs(services: DagsterServices, tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
    filter_ = {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
    found = services.graphql(RUNS_QUERY, {"filter": filter_})["runsOrError"]["results"]
    return [{**run, "tags": {t["key"]: t["value"] for t in run["tags"]}} for run in found]


def wait_until(services: DagsterServices, what: str, done) -> Any:
    """Poll `done()` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        found = done()
        if found:
            return found
        services.check_alive()
        time.sleep(POLL_S)
    pytest.fail(f"{what} not within {DEADLINE_S:.0f} s\n{services.log_tails()}")


def launch_inputs_and_wait(services: DagsterServices) -> None:
    """Launch inputs_job once the stale_partitions sensor has ticked; wait until it and
    every partition run the sensor launched for it succeeded."""
    selector = {
        "repositoryLocationName": services.location,
        "repositoryName": REPOSITORY,
        "sensorName": STALE_SENSOR,
    }
    wait_until(
        services,
        "a first stale_partitions tick",
        lambda: (
            services.graphql(TICKS_QUERY, {"selector": selector})["sensorOrError"]
            .get("sensorState", {})
            .get("ticks")
        ),
    )
    params = {
        "selector": {
            "repositoryLocationName": services.location,
            "repositoryName": REPOSITORY,
            "jobName": "inputs_job",
        },
        "runConfigData": {},
    }
    launched = services.graphql(LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    parent_id = launched["run"]["runId"]

    def children() -> list[dict[str, Any]] | None:
        [parent] = [run for run in runs(services) if run["runId"] == parent_id]
        assert parent["status"] not in {"FAILURE", "CANCELED"}, services.log_tails()
        expected = parent["tags"].get("perf/partition_runs")
        found = runs(services, {"perf/parent_run": parent_id})
        if expected is None or len(found) < int(expected):
            return None
        return found if all(run["status"] in TERMINAL for run in found) else None

    found = wait_until(services, "the partition runs", children)
    assert [run["status"] for run in found] == ["SUCCESS"] * len(found), services.log_tails()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("ui-metadata")
    generate(root / "input", portfolios=PORTFOLIOS, years=1, end=AS_OF)
    files = sum(1 for path in (root / "input").rglob("*.csv"))
    env = {
        "PERF_TARGET": "local",
        "PERF_INPUT": str(root / "input"),
        "PERF_STORE": str(root / "perf.duckdb"),
    }
    # the tables the services write beside PERF_STORE, read through the store's own API
    store = ParquetStore(root=str(root / "perf_tables"), shards=int(PIPELINE_ENV["PERF_SHARDS"]))
    with dagster_services(root, env) as services:
        launch_inputs_and_wait(services)
        yield Demo(services, store, files)


def materializations(
    demo: Demo, asset: str, partitions: list[str] | None = None, limit: int | None = 1
) -> list[dict[str, Any]]:
    variables = {"key": {"path": [asset]}, "partitions": partitions, "limit": limit}
    node = demo.services.graphql(MATERIALIZATIONS_QUERY, variables)["assetNodeOrError"]
    return node["assetMaterializations"]


def entries(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The metadata entries of an event by label (asserting no label is repeated)."""
    labels = [entry["label"] for entry in event["metadataEntries"]]
    assert len(labels) == len(set(labels)), labels
    return {entry["label"]: entry for entry in event["metadataEntries"]}


def on_day(store: ParquetStore, table: str, day: dt.date) -> pd.DataFrame:
    return store.read(table, store.shard_names(), day, day)


def test_performance_metrics_shows_each_portfolios_itd_figures_as_the_store_holds_them(
    demo: Demo,
):
    [latest] = materializations(demo, "performance_metrics")
    assert latest["partition"] == f"{AS_OF:%Y-%m}"  # the run's last month carries its figures
    meta = entries(latest)
    table = meta["itd_by_portfolio"]
    assert table["__typename"] == "TableMetadataEntry"
    columns = {c["name"]: c["type"] for c in table["table"]["schema"]["columns"]}
    assert columns["portfolio"] == "string" and columns["as of"] == "date"
    assert columns["TWR %"] == columns["MWR %"] == columns["Sharpe"] == "float"
    shown = pd.DataFrame([json.loads(record) for record in table["table"]["records"]])

    stored = on_day(demo.store, "performance_metrics", AS_OF)
    itd = stored.loc[(stored["entity_type"] == "portfolio") & (stored["time_period"] == "ITD")]
    itd = itd.set_index("entity_id").sort_index()
    assert list(shown["portfolio"]) == list(itd.index) and len(itd) == PORTFOLIOS
    assert set(shown["as of"]) == {AS_OF.isoformat()}
    for label, column, scale in [
        ("TWR %", "twr", 100),
        ("MWR %", "mwr", 100),
        ("volatility %", "volatility", 100),
        ("max drawdown %", "max_drawdown", 100),
        ("benchmark TWR %", "benchmark_twr", 100),
        ("Sharpe", "sharpe_ratio", 1),
        ("TWR p.a. %", "twr_annualized", 100),  # null under a year: shown as null, not nan
        ("TWR local %", "twr_local", 100),
        ("FX effect %", "fx_effect", 100),
    ]:
        expected = itd[column].to_numpy(dtype=float) * scale
        got = shown[label].to_numpy(dtype=float)  # None -> nan
        assert np.array_equal(np.isnan(got), np.isnan(expected)), label
        assert np.allclose(got, expected, atol=0.005, equal_nan=True), label  # 2 decimals

    twr = itd["twr"].to_numpy(dtype=float)
    spread = meta["itd_twr_spread_pct"]
    assert spread["__typename"] == "FloatMetadataEntry"
    assert spread["floatValue"] == pytest.approx(100 * (twr.max() - twr.min()), abs=0.005)
    assert meta["portfolios"] == {"__typename": "IntMetadataEntry", "label": "portfolios",
                                  "intValue": PORTFOLIOS}  # fmt: skip
    schema = meta["dagster/column_schema"]
    assert schema["__typename"] == "TableSchemaMetadataEntry"
    assert [c["name"] for c in schema["schema"]["columns"]] == list(stored.columns)
    assert meta["dagster/uri"]["path"] == f"{demo.store.root}/performance_metrics"
    assert meta["dagster/table_name"]["text"] == "performance_metrics"
    assert meta["run_rows"]["__typename"] == "IntMetadataEntry"
    assert not {"rows", "table_rows", "dagster/row_count"} & set(meta)


def test_an_earlier_partition_shows_only_the_rows_each_run_wrote_in_its_month(demo: Demo):
    month = "2024-05"
    events = materializations(demo, "performance_metrics", partitions=[month], limit=None)
    assert events
    for event in events:
        meta = entries(event)
        assert meta["rows_written"]["__typename"] == "IntMetadataEntry"
        assert not {"run_rows", "itd_by_portfolio", "market_value_total"} & set(meta)
    stored = demo.store.read(
        "performance_metrics", demo.store.shard_names(), dt.date(2024, 5, 1), dt.date(2024, 5, 31)
    )
    # each shard is written by one partition run: together they wrote the month's rows
    assert sum(entries(e)["rows_written"]["intValue"] for e in events) == len(stored)


def test_daily_valuations_plots_the_books_value_entities_and_oldest_price(demo: Demo):
    [latest] = materializations(demo, "daily_valuations")
    assert latest["partition"] == f"{AS_OF:%Y-%m}"
    meta = entries(latest)
    day = on_day(demo.store, "daily_valuations", AS_OF)
    portfolios = day.loc[day["entity_type"] == "portfolio", "market_value"]
    held = day.loc[(day["entity_type"] == "security") & (day["market_value"] != 0)]
    assert meta["market_value_total"]["__typename"] == "FloatMetadataEntry"
    assert meta["market_value_total"]["floatValue"] == pytest.approx(portfolios.sum(), rel=1e-12)
    assert meta["entities"]["intValue"] == len(day)
    assert meta["portfolios"]["intValue"] == PORTFOLIOS
    assert meta["oldest_price_age_days"]["intValue"] == held["price_age_days"].max()


def test_input_tables_count_their_rows_once_and_input_files_plots_rejects(demo: Demo):
    [transactions] = materializations(demo, "transactions")
    labels = [entry["label"] for entry in transactions["metadataEntries"]]
    assert labels.count("dagster/row_count") == 1
    assert not {"rows", "table_rows"} & set(labels)
    meta = entries(transactions)
    assert meta["dagster/row_count"]["__typename"] == "IntMetadataEntry"
    assert meta["dagster/column_schema"]["__typename"] == "TableSchemaMetadataEntry"
    types = {c["name"]: c["type"] for c in meta["dagster/column_schema"]["schema"]["columns"]}
    assert types["trade_date"] == "date" and types["portfolio_id"] == "string"

    [files] = materializations(demo, "input_files")
    meta = entries(files)
    assert meta["files"]["intValue"] == demo.input_files  # the CSV files generate wrote
    assert meta["rows_rejected"] == {"__typename": "IntMetadataEntry",
                                     "label": "rows_rejected", "intValue": 0}  # fmt: skip
    assert meta["dagster/row_count"]["intValue"] == demo.input_files


def test_every_asset_has_kinds_and_positions_sits_with_the_inputs(demo: Demo):
    nodes = demo.services.graphql(ASSET_NODES_QUERY)["assetNodes"]
    by_name = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    assert all(node["kinds"] for node in nodes), [n for n in nodes if not n["kinds"]]
    for name in ("transactions", "positions", "daily_valuations", "performance_metrics"):
        assert {"pandas", "parquet", "duckdb"} <= set(by_name[name]["kinds"]), name
    assert by_name["positions"]["groupName"] == by_name["transactions"]["groupName"] == "inputs"


def test_a_checks_observed_value_and_threshold_are_numbers(demo: Demo):
    variables = {"key": {"path": ["daily_valuations"]}, "check": "prices_fresh"}
    [execution] = demo.services.graphql(CHECK_QUERY, variables)["assetCheckExecutions"]
    evaluation = execution["evaluation"]
    meta = entries(evaluation)
    for label in ("observed", "threshold", "max_business_days"):
        assert meta[label]["__typename"] == "FloatMetadataEntry", label
    assert meta["threshold"]["floatValue"] == 0.0
    assert meta["max_business_days"]["floatValue"] == 5.0
    observed = meta["observed"]["floatValue"]
    assert evaluation["success"] == (observed == 0)
    if observed:
        shown = meta["offending_rows"]["table"]["records"]
        assert len(shown) == min(observed, 20)
