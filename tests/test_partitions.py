"""The months of the partitioned assets: exactly from the first day computed to the last."""

import pandas as pd
from dagster import instance_for_test

from perf_pipeline.increments import PlannedRun
from perf_pipeline.partitions import MONTHS, extend_months, month_changes, month_keys


def run(start: str, end: str) -> PlannedRun:
    return PlannedRun(("s00",), pd.Timestamp(start), pd.Timestamp(end))


def test_month_keys_run_from_the_first_days_month_to_the_last_days_month():
    assert month_keys(pd.Timestamp("2023-11-30"), pd.Timestamp("2024-02-01")) == [
        "2023-11",
        "2023-12",
        "2024-01",
        "2024-02",
    ]


def test_later_months_are_appended_and_months_held_are_kept():
    existing = ["2024-01", "2024-02"]
    assert month_changes(existing, pd.Timestamp("2024-02-05"), pd.Timestamp("2024-04-01")) == (
        [],
        ["2024-03", "2024-04"],
    )
    # a run inside the months held adds nothing
    assert month_changes(existing, pd.Timestamp("2024-01-10"), pd.Timestamp("2024-01-12")) == (
        [],
        [],
    )


def test_an_earlier_month_rebuilds_the_set_in_calendar_order():
    existing = ["2024-02", "2024-03"]
    assert month_changes(existing, pd.Timestamp("2023-12-29"), pd.Timestamp("2024-01-03")) == (
        ["2024-02", "2024-03"],
        ["2023-12", "2024-01", "2024-02", "2024-03"],
    )


def test_the_instance_holds_exactly_the_months_of_the_runs_after_a_new_month():
    with instance_for_test() as instance:
        assert extend_months(instance, []) == []
        assert extend_months(instance, [run("2024-01-02", "2024-01-31")]) == ["2024-01"]
        # the nightly increment of 2024-03-01 (and a shard whose range began in February)
        added = extend_months(
            instance, [run("2024-03-01", "2024-03-01"), run("2024-02-28", "2024-03-01")]
        )
        assert added == ["2024-02", "2024-03"]
        assert instance.get_dynamic_partitions(MONTHS.name) == ["2024-01", "2024-02", "2024-03"]
        # a back-dated transaction in December 2023
        extend_months(instance, [run("2023-12-29", "2024-03-01")])
        keys = MONTHS.get_partition_keys(dynamic_partitions_store=instance)
        assert keys == ["2023-12", "2024-01", "2024-02", "2024-03"]
