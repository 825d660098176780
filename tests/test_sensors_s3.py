"""The S3 sensor against moto's server and a real (temporary) Dagster instance."""

import datetime as dt
import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import botocore.client
import pytest
from dagster import DagsterInstance, build_sensor_context, instance_for_test

from perf_pipeline.definitions import PERFORMANCE_JOB
from perf_pipeline.resources.input_store import InputObject, InputStore
from perf_pipeline.sensors.runs import (
    DIGEST_TAG,
    KEYS_TAG,
    MAX_TAG_CHARS,
    OBJECTS_TAG,
    keys_tag,
)
from perf_pipeline.sensors.s3 import S3Cursor, S3SensorSettings, build_s3_sensor, scan

BUCKET, PREFIX = "perf-input", "in"
CSV = b"a,b\n1,2\n"


@pytest.fixture
def s3(aws):
    client = boto3.client("s3", endpoint_url=aws)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def instance():
    with instance_for_test() as temporary:
        yield temporary


def put(s3, key: str, body: bytes = CSV) -> str:
    """Upload; returns the ETag (without quotes)."""
    return s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}", Body=body)["ETag"].strip('"')


def digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def upload(s3, key: str, etag: str) -> str:
    """key@etag@LastModified (to the second, UTC), read back from S3 for the run key."""
    modified = s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["LastModified"]
    return f"{key}@{etag}@{modified.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"


def evaluate(
    instance: DagsterInstance,
    cursor: str | None,
    *,
    page_size: int = 1000,
    settings: S3SensorSettings | None = None,
):
    sensor = build_s3_sensor(PERFORMANCE_JOB, settings=settings)
    store = InputStore(root=f"s3://{BUCKET}/{PREFIX}", page_size=page_size)
    with build_sensor_context(
        instance=instance, cursor=cursor, sensor_name=sensor.name, resources={"input_store": store}
    ) as context:
        return sensor.evaluate_tick(context)


def test_new_objects_share_one_run_and_the_rest_is_skipped(s3, instance, capfd):
    etags = {
        key: put(s3, key)
        for key in ["transactions/2024/06/28/batch-7.csv", "prices/p.parquet", "portfolios/p.CSV"]
    }
    for stray in ["transactions/notes.txt", "other/x.csv", "top.csv", "prices/_SUCCESS"]:
        put(s3, stray)
    result = evaluate(instance, None)
    assert len(result.run_requests) == 1
    run = result.run_requests[0]
    expected = digest([f"{key}@{etag}" for key, etag in etags.items()])
    assert run.run_key == f"s3-{digest([upload(s3, k, e) for k, e in etags.items()])}"
    assert run.tags[DIGEST_TAG] == expected
    assert run.tags[OBJECTS_TAG] == "3"
    assert run.tags[KEYS_TAG] == (
        "portfolios/p.CSV, prices/p.parquet, transactions/2024/06/28/batch-7.csv"
    )
    assert run.run_config == {"resources": {"run_request": {"config": {}}}}
    err = capfd.readouterr().err
    assert "S3 object skipped: transactions/notes.txt: not a .csv or .parquet file" in err
    assert "S3 object skipped: other/x.csv: not below one of the input folders" in err
    assert "S3 object skipped: top.csv" in err and "S3 object skipped: prices/_SUCCESS" in err

    again = evaluate(instance, result.cursor)
    assert again.run_requests == []
    assert again.skip_message == "no new or changed input files"
    assert "S3 object skipped" not in capfd.readouterr().err  # reported once


def test_changed_object_same_key_new_etag_is_a_new_run(s3, instance):
    put(s3, "transactions/t.csv")
    put(s3, "prices/p.csv")
    first = evaluate(instance, None)
    new_etag = put(s3, "transactions/t.csv", CSV + b"3,4\n")
    second = evaluate(instance, first.cursor)
    assert [run.run_key for run in second.run_requests] == [
        f"s3-{digest([upload(s3, 'transactions/t.csv', new_etag)])}"
    ]
    assert evaluate(instance, second.cursor).run_requests == []


def test_an_object_rewritten_back_to_earlier_content_runs_again(s3, instance, monkeypatch):
    # Review finding: A -> B -> A gives the first key@etag again; its run key must differ.
    first_etag = put(s3, "transactions/t.csv")
    first = evaluate(instance, None)
    time.sleep(1.1)  # S3 stamps LastModified to the second
    put(s3, "transactions/t.csv", CSV + b"3,4\n")
    second = evaluate(instance, first.cursor)
    time.sleep(1.1)
    assert put(s3, "transactions/t.csv") == first_etag
    third = evaluate(instance, second.cursor)
    keys = [r.run_key for r in first.run_requests + second.run_requests + third.run_requests]
    assert len(keys) == 3 and len(set(keys)) == 3


def test_restart_from_a_saved_cursor_neither_repeats_nor_misses(s3, instance):
    put(s3, "transactions/a.csv")
    saved = evaluate(instance, None).cursor
    stored = json.loads(saved)  # what the instance keeps across a daemon restart
    new_etag = put(s3, "transactions/b.csv")
    with instance_for_test() as restarted:
        after = evaluate(restarted, json.dumps(stored))
        assert [run.tags[KEYS_TAG] for run in after.run_requests] == ["transactions/b.csv"]
        assert after.run_requests[0].tags[DIGEST_TAG] == digest([f"transactions/b.csv@{new_etag}"])
        assert evaluate(restarted, after.cursor).run_requests == []


def test_thousand_objects_over_pages_make_a_few_runs_covering_each_once(s3, instance, monkeypatch):
    keys = [
        f"transactions/2024/06/{day:02d}/batch-{n:04d}.csv"
        for n in range(1000)
        for day in [1 + n % 28]
    ]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: put(s3, key, key.encode()), keys))

    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation, params):
        calls.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    result = evaluate(
        instance, None, page_size=100, settings=S3SensorSettings(max_objects_per_run=300)
    )
    assert calls.count("ListObjectsV2") == 10

    assert [int(run.tags[OBJECTS_TAG]) for run in result.run_requests] == [300, 300, 300, 100]
    # Independently: the listing sorted oldest first, cut into slices of 300.
    listed = [
        item
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for item in page["Contents"]
    ]
    assert len(listed) == 1000
    listed.sort(key=lambda item: (item["LastModified"], item["Key"]))
    lines = [f"{item['Key'][len(PREFIX) + 1 :]}@{item['ETag'].strip(chr(34))}" for item in listed]
    expected = {digest(lines[start : start + 300]) for start in range(0, 1000, 300)}
    assert {run.tags[DIGEST_TAG] for run in result.run_requests} == expected
    assert all(len(run.tags[KEYS_TAG]) <= MAX_TAG_CHARS for run in result.run_requests)
    assert evaluate(instance, result.cursor, page_size=100).run_requests == []


def test_local_root_is_skipped_with_a_reason(instance, tmp_path):
    sensor = build_s3_sensor(PERFORMANCE_JOB)
    with build_sensor_context(
        instance=instance,
        sensor_name=sensor.name,
        resources={"input_store": InputStore(root=str(tmp_path))},
    ) as ctx:
        result = sensor.evaluate_tick(ctx)
    assert result.run_requests == []
    assert "not an s3:// URI" in result.skip_message


def obj(path: str, etag: str, minute: int) -> InputObject:
    return InputObject(
        path,
        "transactions",
        etag,
        1,
        datetime(2024, 6, 28, 12, 0, tzinfo=UTC) + timedelta(minutes=minute),
    )


def test_scan_catches_a_late_upload_inside_the_lookback_and_bounds_the_cursor():
    lookback = timedelta(minutes=10)
    fresh, cursor = scan([obj("t/a.csv", "1", 0), obj("t/b.csv", "1", 30)], S3Cursor(), lookback)
    assert [o.path for o in fresh] == ["t/a.csv", "t/b.csv"]
    assert len(cursor.seen) == 1  # a.csv (12:00) is older than 12:30 - 10 min: dropped
    # c.csv began uploading at 12:25 (before the high-water mark 12:30) and completed later;
    # d.csv at 12:15 is outside the lookback and is the documented miss.
    late = [
        obj("t/a.csv", "1", 0),
        obj("t/b.csv", "1", 30),
        obj("t/c.csv", "1", 25),
        obj("t/d.csv", "1", 15),
    ]
    fresh, cursor = scan(late, S3Cursor.from_json(cursor.to_json()), lookback)
    assert [o.path for o in fresh] == ["t/c.csv"]
    assert cursor.high_water == datetime(2024, 6, 28, 12, 30, tzinfo=UTC)
    assert len(cursor.seen) == 2
    fresh, _ = scan([*late, obj("t/a.csv", "2", 40)], cursor, lookback)
    assert [(o.path, o.version) for o in fresh] == [("t/a.csv", "2")]


def test_malformed_cursor_is_a_clear_error():
    with pytest.raises(ValueError, match="cursor"):
        S3Cursor.from_json('{"high_water": null}')


def test_keys_tag_is_cut_to_the_limit_with_a_count():
    objects = [obj(f"transactions/{n:03d}.csv", "e", 0) for n in range(200)]
    text = keys_tag(objects, limit=100)
    assert len(text) <= 100
    shown = text.split(", ")[:-1]
    assert shown == [f"transactions/{n:03d}.csv" for n in range(len(shown))]
    assert text.endswith(f"... (+{200 - len(shown)} more)")
