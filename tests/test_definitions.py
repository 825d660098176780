"""The code location loads, validates, and shows every asset, check and job."""

import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, DynamicPartitionsDefinition, instance_for_test

from perf_pipeline.definitions import INPUTS_JOB, PERFORMANCE_JOB, build_definitions, defs

ROOT = Path(__file__).resolve().parents[1]
ASSETS = {
    "portfolios",
    "transactions",
    "prices",
    "benchmarks",
    "fx_rates",
    "rejected_rows",
    "rejected_files",
    "input_files",
    "positions",
    "daily_valuations",
    "performance_metrics",
    "input_digests",
    "portfolio_reports",
}


def test_dagster_definitions_validate_passes():
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_every_asset_check_and_job_is_defined():
    loaded = defs()
    graph = loaded.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == ASSETS
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert ("input_files", "rows_reconcile") in checks
    assert ("daily_valuations", "values_add_up") in checks
    assert ("daily_valuations", "every_amount_converted") in checks
    assert len(checks) == 9
    assert loaded.resolve_job_def(PERFORMANCE_JOB) is not None
    groups = {graph.get(AssetKey(name)).group_name for name in ASSETS}
    assert groups == {"inputs", "valuation", "performance", "reports"}


def test_unknown_target_is_a_clear_error():
    with pytest.raises(ValueError, match="PERF_TARGET"):
        build_definitions("mars")


def test_the_inputs_job_runs_one_at_a_time_under_the_shipped_instance_settings(tmp_path):
    import shutil

    from dagster import DagsterInstance

    from perf_pipeline.definitions import EXCLUSIVE_TAG

    assert defs().resolve_job_def(INPUTS_JOB).tags[EXCLUSIVE_TAG] == INPUTS_JOB
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", tmp_path / "dagster.yaml")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert limits == [
        {"key": EXCLUSIVE_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]


def test_valuations_on_are_partitioned_by_the_months_the_instance_holds():
    graph = defs().resolve_asset_graph()
    partitioned = {
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if graph.get(key).partitions_def is not None
    }
    assert partitioned == {"daily_valuations", "performance_metrics"}
    months = graph.get(AssetKey("daily_valuations")).partitions_def
    assert isinstance(months, DynamicPartitionsDefinition) and months.name == "months"
    with instance_for_test() as instance:
        assert months.get_partition_keys(dynamic_partitions_store=instance) == []


def test_performance_steps_run_on_ecs_tasks_when_the_deployment_says_so(monkeypatch):
    from dagster_aws.ecs import ecs_executor

    from perf_pipeline.definitions import PERFORMANCE_JOB, build_definitions

    monkeypatch.setenv("PERF_STEP_EXECUTOR", "ecs")
    assert build_definitions("local").resolve_job_def(PERFORMANCE_JOB).executor_def is ecs_executor
    monkeypatch.setenv("PERF_STEP_EXECUTOR", "multiprocess")
    job = build_definitions("local").resolve_job_def(PERFORMANCE_JOB)
    assert job.executor_def.name == "multi_or_in_process_executor"
    monkeypatch.setenv("PERF_STEP_EXECUTOR", "lambda")
    with pytest.raises(ValueError, match="PERF_STEP_EXECUTOR must be one of multiprocess, ecs"):
        build_definitions("local")


def test_the_dev_server_the_deployment_and_cli_runs_name_one_code_location():
    import tomllib

    import yaml

    from perf_pipeline.job_runs import LOCATION_NAME, MODULE

    (entry,) = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    assert entry["python_module"]["location_name"] == LOCATION_NAME == "perf_pipeline"
    assert entry["python_module"]["module_name"] == MODULE
    dg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dg"]
    assert dg["directory_type"] == "project"
    assert dg["project"]["code_location_name"] == LOCATION_NAME
    assert dg["project"]["code_location_target_module"] == MODULE


def test_a_cli_run_carries_the_repository_label_the_job_pages_filter_on():
    from perf_pipeline.job_runs import remote_origin

    # the UI lists a job's runs by the run tag .dagster/repository = <repository>@<location>
    origin = remote_origin("performance_job")
    assert origin.repository_origin.get_label() == "__repository__@perf_pipeline"
    assert origin.job_name == "performance_job"


@pytest.mark.slow
def test_make_dev_serves_the_code_location_without_a_warning(tmp_path):
    """`make dev` (dg dev on the repository's one instance configuration) prints no warning
    before its webserver serves (issue: the ignored dagster.yaml, the unactivated venv)."""
    import os
    import signal
    import time

    from dagster_services import free_port

    home, root = tmp_path / "home", tmp_path / "input"
    home.mkdir()
    root.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PERF_INPUT": str(root),
        "PERF_STORE": str(tmp_path / "perf.duckdb"),
    }
    dev = subprocess.Popen(
        ["make", "dev", f"DEV_ARGS=--port {free_port()}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 240
    try:
        for line in dev.stdout:
            lines.append(line)
            if "Serving dagster-webserver" in line or time.monotonic() > deadline:
                break
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        dev.wait(timeout=60)
    printed = "".join(lines)
    assert "Serving dagster-webserver" in printed, printed[-3000:]
    assert "warning" not in printed.lower(), printed
    assert (home / "dagster.yaml").read_bytes() == (
        ROOT / "dagster_home" / "dagster.yaml"
    ).read_bytes()
