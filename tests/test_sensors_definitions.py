"""Sensors and schedule in the code location: default status from the variables, the nightly
schedule's as-of date."""

from datetime import UTC, date, datetime

import pytest
from dagster import DefaultScheduleStatus, DefaultSensorStatus, build_schedule_context

from perf_pipeline.definitions import INPUTS_JOB, PERFORMANCE_JOB, build_definitions
from perf_pipeline.sensors.s3 import S3_SENSOR_NAME
from perf_pipeline.sensors.schedules import NIGHTLY_SCHEDULE_NAME, nightly_as_of
from perf_pipeline.sensors.sqs import SQS_SENSOR_NAME
from perf_pipeline.sensors.stale_partitions import STALE_PARTITIONS_SENSOR_NAME


@pytest.mark.parametrize(
    ("env", "s3_on", "sqs_on"),
    [
        ({}, False, False),
        ({"PERF_INPUT": "data/input"}, False, False),
        ({"PERF_INPUT": "s3://bucket/in"}, True, False),
        ({"PERF_SQS_QUEUE_URL": "http://localhost/000000000000/q"}, False, True),
        # With a queue, the bucket's notifications come through it: one path per object.
        (
            {"PERF_INPUT": "s3://bucket/in", "PERF_SQS_QUEUE_URL": "http://localhost/0/q"},
            False,
            True,
        ),
    ],
)
def test_sensors_are_on_only_when_their_variable_is_set(monkeypatch, env, s3_on, sqs_on):
    for name in ("PERF_INPUT", "PERF_SQS_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    defs = build_definitions("local")
    status = {
        name: defs.resolve_sensor_def(name).default_status
        for name in (S3_SENSOR_NAME, SQS_SENSOR_NAME)
    }
    running = DefaultSensorStatus.RUNNING
    assert status == {
        S3_SENSOR_NAME: running if s3_on else DefaultSensorStatus.STOPPED,
        SQS_SENSOR_NAME: running if sqs_on else DefaultSensorStatus.STOPPED,
    }
    for name in (S3_SENSOR_NAME, SQS_SENSOR_NAME):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.job_name == INPUTS_JOB
        assert "On by default when PERF_" in sensor.description
    nightly = defs.resolve_schedule_def(NIGHTLY_SCHEDULE_NAME)
    assert nightly.default_status == DefaultScheduleStatus.STOPPED
    assert nightly.job_name == INPUTS_JOB
    stale = defs.resolve_sensor_def(STALE_PARTITIONS_SENSOR_NAME)
    assert stale.default_status == running
    assert stale.job_name == PERFORMANCE_JOB  # the job it asks for; it watches inputs_job
    assert stale.required_resource_keys == {"partition_store", "io_manager"}


@pytest.mark.parametrize(
    ("scheduled", "as_of"),
    [
        (date(2024, 6, 28), "2024-06-28"),  # Friday
        (date(2024, 6, 29), "2024-06-28"),  # Saturday (a manual tick) -> Friday
        (date(2024, 6, 30), "2024-06-28"),  # Sunday -> Friday
        (date(2024, 7, 1), "2024-07-01"),  # Monday
    ],
)
def test_nightly_as_of_is_the_last_business_day(scheduled, as_of):
    assert nightly_as_of(scheduled) == as_of


def test_nightly_schedule_runs_weekday_nights_with_as_of_and_run_key():
    nightly = build_definitions("local").resolve_schedule_def(NIGHTLY_SCHEDULE_NAME)
    assert nightly.cron_schedule == "30 22 * * 1-5"
    context = build_schedule_context(
        scheduled_execution_time=datetime(2024, 6, 28, 22, 30, tzinfo=UTC)
    )
    [run] = nightly.evaluate_tick(context).run_requests
    assert run.run_key == "nightly-2024-06-28"
    assert run.run_config == {"resources": {"run_request": {"config": {"as_of": "2024-06-28"}}}}
    assert run.tags["perf/as_of"] == "2024-06-28"  # what the stale_partitions sensor reads
