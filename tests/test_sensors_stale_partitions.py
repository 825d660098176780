"""The stale_partitions sensor against a real local store: inputs_job runs in process, the
planned performance_job ranges run in process, then a changed input is planned again.

Two portfolios in different shards (CRC-32 of the id modulo the shard count, computed here
with zlib):
P1 holds S1, P2 holds S2, so no price or trade of one moves the other's shard.
"""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import boto3
import pandas as pd
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    SkipReason,
    build_run_status_sensor_context,
)

from perf_pipeline.definitions import (
    EXCLUSIVE_TAG,
    INPUTS_JOB,
    PERFORMANCE_JOB,
    build_definitions,
)
from perf_pipeline.job_runs import QUIET
from perf_pipeline.partitions import (
    END_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    SHARDS_TAG,
    START_TAG,
)
from perf_pipeline.resources.parquet_io_manager import ParquetIOManager
from perf_pipeline.resources.parquet_store import ParquetStore, to_parquet
from perf_pipeline.sensors.stale_partitions import (
    PARENT_RUN_TAG,
    PARTITION_RUNS_TAG,
    PLAN_ERROR_TAG,
    STALE_PARTITIONS_SENSOR_NAME,
    read_input_table,
)

SCOPE_TAGS = (RANGE_START_TAG, RANGE_END_TAG, START_TAG, END_TAG, SHARDS_TAG)
SHARD_COUNT = ParquetStore(root=".").shards
TX_HEADER = (
    "transaction_id,portfolio_id,account_id,security_id,trade_date,type,quantity,"
    "price,amount,fee,currency\n"
)
TRANSACTIONS = (
    TX_HEADER
    + """T1,P1,A1,,2024-01-02,DEPOSIT,,,10000,,USD
T2,P1,A1,S1,2024-01-02,BUY,50,100,,0,USD
T3,P2,A2,,2024-01-02,DEPOSIT,,,5000,,USD
T4,P2,A2,S2,2024-01-03,BUY,10,200,,0,USD
"""
)
PRICES = """security_id,date,close,currency
S1,2024-01-02,100,USD
S1,2024-01-03,101,USD
S1,2024-01-08,103,USD
S2,2024-01-03,200,USD
S2,2024-01-08,204,USD
"""
PORTFOLIOS = "portfolio_id,client_id,base_currency,benchmark_id\nP1,C1,USD,\nP2,C2,USD,\n"
BACK_DATED = "T9,P1,A1,,2024-01-06,DEPOSIT,,,500,,USD\n"  # Saturday: effective Monday 01-08
BACK_DATED_2 = "T8,P1,A1,,2024-01-04,DEPOSIT,,,100,,USD\n"


def shard(portfolio_id: str) -> str:
    return f"s{zlib.crc32(portfolio_id.encode()) % SHARD_COUNT:02d}"


def span(request) -> tuple[str, str, str]:
    """(first day, last day, shards) of a requested run, from its tags."""
    return request.tags[START_TAG], request.tags[END_TAG], request.tags[SHARDS_TAG]


def local_store(store: Path) -> ParquetStore:
    """The partition store of the local target whose DuckDB file is `store`."""
    return ParquetStore(root=str(store.with_name(f"{store.stem}_tables")), catalog=str(store))


def write_input(root: Path) -> Path:
    for kind, text in {
        "transactions": TRANSACTIONS,
        "prices": PRICES,
        "portfolios": PORTFOLIOS,
    }.items():
        (root / kind).mkdir(parents=True)
        (root / kind / f"{kind}.csv").write_text(text)
    (root / "benchmarks").mkdir()
    return root


def definitions_for(root: Path, store: Path, env: pytest.MonkeyPatch):
    """The local definitions over `root` and `store` (set in the environment: the resources
    read it when a run starts)."""
    env.setenv("PERF_INPUT", str(root))
    env.setenv("PERF_STORE", str(store))
    return build_definitions("local")


@pytest.fixture(scope="module")
def computed(tmp_path_factory: pytest.TempPathFactory):
    """The input computed once through the sensor's first plan: (folder, its requests)."""
    assert shard("P1") != shard("P2")
    folder = tmp_path_factory.mktemp("computed")
    root, store = write_input(folder / "input"), folder / "perf.duckdb"
    with pytest.MonkeyPatch.context() as env:
        defs, instance = definitions_for(root, store, env), DagsterInstance.ephemeral()
        parent, requests = evaluate(defs, instance, local_store(store))
        compute(defs, instance, requests)
    return folder, parent, requests


@pytest.fixture
def setup(computed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A copy of the computed input and store: (input root, store, definitions, instance)."""
    folder = tmp_path / "copy"
    shutil.copytree(computed[0], folder)
    root, store = folder / "input", folder / "perf.duckdb"
    return (
        root,
        local_store(store),
        definitions_for(root, store, monkeypatch),
        DagsterInstance.ephemeral(),
    )


def evaluate(defs, instance, store, tags=None):
    """Run inputs_job with `tags`, then evaluate the sensor on its success: (run, result)."""
    result = defs.resolve_job_def(INPUTS_JOB).execute_in_process(
        instance=instance, tags=tags, run_config=QUIET
    )
    [success] = [e for e in result.all_events if e.event_type == DagsterEventType.RUN_SUCCESS]
    with build_run_status_sensor_context(
        sensor_name=STALE_PARTITIONS_SENSOR_NAME,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=success,
        resources={"partition_store": store, "io_manager": ParquetIOManager(root=store.root)},
    ) as context:
        answer = defs.resolve_sensor_def(STALE_PARTITIONS_SENSOR_NAME)(context)
    return instance.get_run_by_id(result.run_id), answer


def compute(defs, instance, requests) -> None:
    """Execute each requested range of performance_job (as the daemon would)."""
    job = defs.resolve_job_def(PERFORMANCE_JOB)
    for request in requests:
        assert job.execute_in_process(
            instance=instance, run_config=QUIET, tags={k: request.tags[k] for k in SCOPE_TAGS}
        ).success


def test_the_first_run_covers_every_shard_from_its_first_input_day(computed):
    _, parent, requests = computed
    # Nothing computed yet: both shards from the first input day through the as-of day,
    # the last business day on or before the latest input date (Monday 01-08). A run may
    # span the shards without input between them (they cost nothing).
    covered = set()
    for request in requests:
        day, end, shards = span(request)
        assert (day, end) == ("2024-01-02", "2024-01-08")
        assert request.tags[RANGE_START_TAG] == request.tags[RANGE_END_TAG] == "2024-01"
        shards = shards.split(",")
        first, last = shards[0], shards[-1]
        covered |= set(shards)
        assert request.tags[PARENT_RUN_TAG] == parent.run_id
        assert request.tags["perf/request_id"] == parent.run_id  # none asked: the parent's id
        assert request.tags[EXCLUSIVE_TAG] == f"shards:{first}-{last}"
        assert request.run_key == f"{parent.run_id}:2024-01-02:{first}-{last}"
    assert {shard("P1"), shard("P2")} <= covered
    assert parent.tags[PARTITION_RUNS_TAG] == str(len(requests))


def test_unchanged_input_asks_for_nothing(setup):
    _, store, defs, instance = setup
    parent, answer = evaluate(defs, instance, store)
    assert isinstance(answer, SkipReason)
    assert parent.tags[PARTITION_RUNS_TAG] == "0"


def test_a_back_dated_transaction_recomputes_only_its_shard_from_its_day(setup):
    root, store, defs, instance = setup
    with (root / "transactions" / "transactions.csv").open("a") as out:
        out.write(BACK_DATED_2)
    parent, [request] = evaluate(defs, instance, store)
    assert span(request) == ("2024-01-04", "2024-01-08", shard("P1"))
    assert parent.tags[PARTITION_RUNS_TAG] == "1"
    compute(defs, instance, [request])
    _, answer = evaluate(defs, instance, store)  # done: nothing stale any more
    assert isinstance(answer, SkipReason)


def test_a_transaction_on_a_weekend_marks_its_next_business_day(setup):
    root, store, defs, instance = setup
    with (root / "transactions" / "transactions.csv").open("a") as out:
        out.write(BACK_DATED)
    _, [request] = evaluate(defs, instance, store)
    assert span(request) == ("2024-01-08", "2024-01-08", shard("P1"))


def test_a_request_for_an_up_to_date_portfolio_still_recomputes_from_its_as_of_day(setup):
    _, store, defs, instance = setup
    tags = {
        "perf/portfolio_ids": "P2",
        "perf/as_of": "2024-01-05",
        "perf/request_id": "r-7",
        "perf/requested_by": "alice",
    }
    parent, [request] = evaluate(defs, instance, store, tags=tags)
    # from the as-of day through the shard's last computed day (01-08): a range that ended
    # on 01-05 would leave 01-08 carrying a state it may have changed
    assert span(request) == ("2024-01-05", "2024-01-08", shard("P2"))
    assert {
        k: request.tags[k] for k in ("perf/portfolio_ids", "perf/request_id", "perf/requested_by")
    } == {"perf/portfolio_ids": "P2", "perf/request_id": "r-7", "perf/requested_by": "alice"}
    assert parent.tags[PARTITION_RUNS_TAG] == "1"


def test_a_batch_request_recomputes_its_portfolios_from_its_start(setup):
    _, store, defs, instance = setup
    tags = {"perf/portfolio_ids": "P1,P2", "perf/as_of": "2024-01-08", "perf/start": "2024-01-04"}
    _, requests = evaluate(defs, instance, store, tags=tags)
    # Nothing is stale, yet both shards recompute from the start asked for: one run over
    # both (the shards between them have no input).
    [request] = requests
    day, end, shards = span(request)
    assert (day, end) == ("2024-01-04", "2024-01-08")
    assert {shard("P1"), shard("P2")} <= set(shards.split(","))


@pytest.mark.parametrize(
    ("as_of", "reason"),
    [("2999-01-01", "in the future"), ("not-a-date", "is not a date")],
)
def test_an_unplannable_as_of_tags_the_parent_with_the_reason(setup, as_of, reason):
    _, store, defs, instance = setup
    parent, answer = evaluate(defs, instance, store, tags={"perf/as_of": as_of})
    assert isinstance(answer, SkipReason)
    assert parent.tags[PARTITION_RUNS_TAG] == "0"
    assert reason in parent.tags[PLAN_ERROR_TAG]


def test_read_input_table_reads_both_targets_stores(tmp_path, aws):
    frame = pd.DataFrame({"shard": ["s01"], "date": [pd.Timestamp("2024-01-02")], "digest": [7]})
    boto3.client("s3", endpoint_url=aws).create_bucket(Bucket="perf-stale")
    for manager in (
        ParquetIOManager(root=str(tmp_path / "tables")),
        ParquetIOManager(root="s3://perf-stale/pre/fix", endpoint_url=aws),
    ):
        manager.blobs.put("input_digests.parquet", to_parquet(frame))
        pd.testing.assert_frame_equal(read_input_table(manager, "input_digests"), frame)


def test_the_sensor_adds_the_months_of_its_runs_before_asking_for_them(setup):
    _, store, defs, instance = setup
    tags = {"perf/portfolio_ids": "P1", "perf/as_of": "2024-01-08"}
    _, requests = evaluate(defs, instance, store, tags=tags)
    assert len(requests) == 1
    assert instance.get_dynamic_partitions("months") == ["2024-01"]


def test_an_inputs_run_of_perf_pipeline_run_is_left_to_the_command(setup):
    _, store, defs, instance = setup
    tags = {"perf/portfolio_ids": "P1", "perf/as_of": "2024-01-08", "perf/planner": "cli"}
    parent, answer = evaluate(defs, instance, store, tags=tags)
    assert isinstance(answer, SkipReason) and "started by cli" in answer.skip_message
    assert PARTITION_RUNS_TAG not in parent.tags
    assert instance.get_dynamic_partitions("months") == []
