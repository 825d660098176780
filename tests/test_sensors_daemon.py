"""The real ``dagster-daemon`` with the S3 sensor on, against moto's server, for a bounded time.

The hand-made input is put into the bucket; the daemon (temporary DAGSTER_HOME and workspace,
local target, DuckDB store in a temp folder, sensor every 5 s) must turn it into exactly one
successful inputs_job run, and the stale_partitions sensor into the partition runs it tags
the inputs run with, whose performance_metrics are in the store.
"""

import math
import os
import time
from pathlib import Path

import boto3
import duckdb
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import SENSOR_NAME_TAG
from dagster_services import BIN, start, stop, write_instance, write_workspace
from handmade import P1_R, write_input

from perf_pipeline.definitions import PERFORMANCE_JOB
from perf_pipeline.sensors.runs import OBJECTS_TAG
from perf_pipeline.sensors.s3 import S3_SENSOR_NAME
from perf_pipeline.sensors.stale_partitions import PARENT_RUN_TAG, PARTITION_RUNS_TAG

BUCKET, PREFIX = "perf-input", "in"
INTERVAL_SECONDS = 5
DEADLINE_SECONDS = 180
WORKSPACE_MODULE = f"""
from perf_pipeline.definitions import build_definitions
from perf_pipeline.sensors.s3 import S3SensorSettings

defs = build_definitions("local", s3_settings=S3SensorSettings(
    minimum_interval_seconds={INTERVAL_SECONDS}))
"""


def wait_for(condition, deadline: float, what: str, log: Path):
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(
        f"timed out waiting for {what}; daemon log:\n" + log.read_text(errors="replace")[-4000:]
    )


def sensor_ticks(instance: DagsterInstance):
    states = [
        state
        for state in instance.all_instigator_state()
        if state.instigator_name == S3_SENSOR_NAME
    ]
    if not states:
        return []
    return instance.get_ticks(states[0].instigator_origin_id, states[0].selector_id, limit=20)


def test_daemon_turns_dropped_objects_into_one_successful_run(aws, tmp_path):
    s3 = boto3.client("s3", endpoint_url=aws)
    s3.create_bucket(Bucket=BUCKET)
    root = write_input(tmp_path / "input")
    files = sorted(root.rglob("*.csv"))
    for path in files:
        s3.upload_file(str(path), BUCKET, f"{PREFIX}/{path.relative_to(root).as_posix()}")

    home = write_instance(tmp_path / "dagster_home")
    (tmp_path / "location.py").write_text(WORKSPACE_MODULE)
    workspace = write_workspace(
        tmp_path / "workspace.yaml",
        module="location",
        location="perf_pipeline",
        working_directory=tmp_path,
    )
    store = tmp_path / "perf.duckdb"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PERF_TARGET": "local",
        "PERF_INPUT": f"s3://{BUCKET}/{PREFIX}",
        "PERF_STORE": str(store),
        "AWS_ENDPOINT_URL": aws,
    }
    env.pop("PERF_SQS_QUEUE_URL", None)
    log = tmp_path / "daemon.log"
    process = start([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], env, log)
    try:
        instance = DagsterInstance.from_config(str(home))
        deadline = time.monotonic() + DEADLINE_SECONDS

        def finished_runs():
            runs = instance.get_runs(filters=RunsFilter(tags={SENSOR_NAME_TAG: S3_SENSOR_NAME}))
            return runs if runs and all(run.is_finished for run in runs) else None

        [run] = wait_for(finished_runs, deadline, "the sensor's run to finish", log)
        assert run.status == DagsterRunStatus.SUCCESS, log.read_text()[-4000:]
        assert run.tags[OBJECTS_TAG] == str(len(files))

        def finished_partition_runs():
            promised = instance.get_run_by_id(run.run_id).tags.get(PARTITION_RUNS_TAG)
            found = instance.get_runs(filters=RunsFilter(tags={PARENT_RUN_TAG: run.run_id}))
            done = promised and len(found) == int(promised) and all(r.is_finished for r in found)
            return found if done else None

        parts = wait_for(finished_partition_runs, deadline, "the partition runs", log)
        assert parts and all(p.status == DagsterRunStatus.SUCCESS for p in parts), log.read_text()[
            -4000:
        ]
        assert {p.job_name for p in parts} == {PERFORMANCE_JOB}
        # A tick that began after the run ended saw nothing new: still exactly one run.
        ended = instance.get_run_record_by_id(run.run_id).end_time
        wait_for(
            lambda: any(
                tick.timestamp > ended and tick.status.value == "SKIPPED"
                for tick in sensor_ticks(instance)
            ),
            deadline,
            "a later sensor tick",
            log,
        )
        assert (
            len(instance.get_runs(filters=RunsFilter(tags={SENSOR_NAME_TAG: S3_SENSOR_NAME}))) == 1
        )
    finally:
        stop(process)

    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute(
            "SELECT calculation_date, twr, request_id FROM performance_metrics "
            "WHERE entity_type = 'portfolio' AND entity_id = 'P1' AND time_period = 'ITD' "
            "ORDER BY calculation_date DESC LIMIT 1"
        ).fetchall()
    [(calculation_date, twr, request_id)] = rows
    # The latest input date is Saturday 01-06: valued up to Friday 01-05 (four hand returns).
    assert str(calculation_date)[:10] == "2024-01-05"
    assert math.isclose(twr, math.prod(1 + r for r in P1_R[:4]) - 1, rel_tol=1e-9)
    assert request_id == run.run_id  # the partition runs carry the inputs run's id
