"""The nightly schedule: every weekday night, everything up to that day's business date."""

from __future__ import annotations

from datetime import date

import numpy as np
from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from perf_pipeline.calc.calendar import last_business_day_on_or_before
from perf_pipeline.sensors.runs import AS_OF_TAG, run_request_config

NIGHTLY_SCHEDULE_NAME = "nightly_performance"
NIGHTLY_CRON = "30 22 * * 1-5"


def nightly_as_of(scheduled: date) -> str:
    """The last business day on or before the scheduled date (YYYY-MM-DD)."""
    day = last_business_day_on_or_before(np.array([np.datetime64(scheduled, "D")]))[0]
    return str(day)


def build_nightly_schedule(
    job_name: str,
    *,
    timezone: str = "UTC",
    default_status: DefaultScheduleStatus = DefaultScheduleStatus.STOPPED,
) -> ScheduleDefinition:
    """Runs ``job_name`` at 22:30 (``timezone``) Monday to Friday with as_of = that business
    day; the run key is the as-of date, so a tick evaluated twice starts one run."""

    @schedule(
        name=NIGHTLY_SCHEDULE_NAME,
        cron_schedule=NIGHTLY_CRON,
        job_name=job_name,
        execution_timezone=timezone,
        default_status=default_status,
        description=(
            f"Weekday nights at 22:30 {timezone}: every portfolio up to the last business day "
            "on or before the scheduled date. Off by default; start it in the UI."
        ),
    )
    def nightly_performance(context: ScheduleEvaluationContext) -> RunRequest:
        as_of = nightly_as_of(context.scheduled_execution_time.date())
        return RunRequest(
            run_key=f"nightly-{as_of}",
            tags={AS_OF_TAG: as_of},
            run_config=run_request_config(as_of=as_of),
        )

    return nightly_performance
