"""The S3 sensor: every new or changed input object (key + ETag) starts exactly one run.

Cursor (JSON): ``{"high_water": <latest LastModified seen, ISO 8601>, "seen": [<id>, ...]}``
where each id is a 64-bit BLAKE2b digest of ``key@etag`` for the objects modified after
``high_water - lookback``. On each tick the whole root is listed (paginated), and an object is
new when it was modified after that floor and its id is not in ``seen``:

- a changed object has a new ETag, hence a new id, whatever its key (the gap of dagster-aws's
  ``get_s3_keys(since_key=...)``, which skips objects whose key was seen before);
- an upload that completes late keeps the LastModified of its start, possibly before the
  high-water mark; it is still caught while it lies inside the lookback window;
- the cursor holds only the objects of that window, 17 characters each, so its size is bounded
  by the upload rate, not by the size of the bucket; it uses S3's clock only.

Dagster commits the cursor with the tick's run requests, and resumes a tick that was cut off
after its runs were recorded, so a restart neither repeats nor misses an object; the run key
(digest of the keys and ETags) makes a re-evaluated tick ask for the same runs again.
An object modified more than ``lookback`` before the newest one already seen when its upload
completes is missed: keep the lookback above the longest upload.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from perf_pipeline.resources.input_store import InputObject, InputStore
from perf_pipeline.sensors.runs import chunks, objects_run_request, skip_reason

S3_SENSOR_NAME = "s3_input_sensor"


@dataclass(frozen=True)
class S3SensorSettings:
    """How often the S3 sensor looks, how many objects one run covers, how far back it looks."""

    minimum_interval_seconds: int = 30
    max_objects_per_run: int = 500
    lookback_seconds: int = 3600


def object_id(obj: InputObject) -> str:
    """16 hex characters of BLAKE2b over ``key@etag``: one object version in the cursor."""
    return hashlib.blake2b(f"{obj.path}@{obj.version}".encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class S3Cursor:
    """High-water mark of LastModified and the ids of the object versions seen after
    ``high_water - lookback``."""

    high_water: datetime | None = None
    seen: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_json(cls, text: str | None) -> S3Cursor:
        """The cursor Dagster stored (None or "" on the first tick); ValueError if malformed."""
        if not text:
            return cls()
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("seen"), list):
            raise ValueError(f"S3 sensor cursor is not {{'high_water', 'seen'}}: {text[:200]!r}")
        mark = data.get("high_water")
        return cls(datetime.fromisoformat(mark) if mark else None, frozenset(data["seen"]))

    def to_json(self) -> str:
        mark = self.high_water.isoformat() if self.high_water else None
        return json.dumps({"high_water": mark, "seen": sorted(self.seen)})


def scan(
    objects: Iterable[InputObject], cursor: S3Cursor, lookback: timedelta
) -> tuple[list[InputObject], S3Cursor]:
    """(objects new since the cursor, the next cursor); every object needs ``modified``."""
    listed = list(objects)
    floor = cursor.high_water - lookback if cursor.high_water else None
    fresh = [
        obj
        for obj in listed
        if (floor is None or obj.modified > floor) and object_id(obj) not in cursor.seen
    ]
    high_water = max(
        [obj.modified for obj in listed] + ([cursor.high_water] if cursor.high_water else []),
        default=None,
    )
    if high_water is None:
        return fresh, cursor
    next_floor = high_water - lookback
    seen = frozenset(object_id(obj) for obj in listed if obj.modified > next_floor)
    return fresh, S3Cursor(high_water, seen)


def plan_runs(
    fresh: Sequence[InputObject],
    max_objects_per_run: int,
    log: logging.Logger | logging.LoggerAdapter,
) -> list[RunRequest]:
    """Run requests for the input files among ``fresh`` (the rest logged as skipped), oldest
    first, at most ``max_objects_per_run`` objects each."""
    wanted = []
    for obj in fresh:
        reason = skip_reason(obj)
        if reason:
            log.info(f"S3 object skipped: {reason}")
        else:
            wanted.append(obj)
    wanted.sort(key=lambda obj: (obj.modified, obj.path))
    return [objects_run_request(chunk) for chunk in chunks(wanted, max_objects_per_run)]


def build_s3_sensor(
    job_name: str,
    *,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    settings: S3SensorSettings | None = None,
) -> SensorDefinition:
    """The S3 sensor on the input_store resource's root, asking for runs of ``job_name``."""
    settings = settings or S3SensorSettings()
    lookback = timedelta(seconds=settings.lookback_seconds)

    @sensor(
        name=S3_SENSOR_NAME,
        job_name=job_name,
        minimum_interval_seconds=settings.minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Watches the s3:// input root (PERF_INPUT): the input files (portfolios, "
            "transactions, prices, benchmarks; .csv or .parquet) that are new or changed "
            "(key + ETag) since the last tick start one run per "
            f"{settings.max_objects_per_run} objects; other objects are skipped with a reason. "
            "On by default when PERF_INPUT is an s3:// URI and no PERF_SQS_QUEUE_URL is set "
            "(with a queue, bucket notifications arrive through the SQS sensor)."
        ),
    )
    def s3_input_sensor(context: SensorEvaluationContext, input_store: InputStore):
        if not input_store.is_s3:
            return SkipReason(f"the input root {input_store.root!r} is not an s3:// URI")
        fresh, cursor = scan(
            input_store.list_s3_root(), S3Cursor.from_json(context.cursor), lookback
        )
        requests = plan_runs(fresh, settings.max_objects_per_run, context.log)
        if not requests:
            return SensorResult(
                skip_reason=SkipReason("no new or changed input files"), cursor=cursor.to_json()
            )
        context.log.info(f"{len(fresh)} new or changed objects -> {len(requests)} runs")
        return SensorResult(run_requests=requests, cursor=cursor.to_json())

    return s3_input_sensor
