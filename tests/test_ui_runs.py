"""What the Dagster UI shows of `perf-pipeline run`, asked of a real webserver (issue 15).

Two runs of the CLI on the hand-made input share the webserver's instance (DAGSTER_HOME):
January 2024, then a nightly increment with a day in February. The webserver's GraphQL API
then shows exactly the months computed as partitions, every CLI run under its job, and the
CLI's summary in the run log; headless Chromium loads the asset graph and the
performance_metrics page without a console error.
"""

from __future__ import annotations

import contextlib
import io
import os
import time

import pytest
from chromium import Browser, chromium_path
from dagster import DagsterInstance, DagsterRun, RunsFilter
from dagster_services import PIPELINE_ENV, dagster_services
from handmade import TX_HEADER, write_input

from perf_pipeline.cli import main
from perf_pipeline.job_runs import LOCATION_NAME
from perf_pipeline.sensors.stale_partitions import MINIMUM_INTERVAL_SECONDS

FEBRUARY_TRANSACTIONS = TX_HEADER + "T9,P1,A1,,2024-02-01,DEPOSIT,,,500,,USD\n"
FEBRUARY_PRICES = "security_id,date,close,currency\nS1,2024-02-01,107,USD\n"
JOBS = ("inputs_job", "performance_job")

PARTITIONS_QUERY = """
query Partitions($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode { partitionKeys partitionDefinition { type name } }
  }
}
"""
JOB_RUNS_QUERY = """
query JobRuns($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) {
    __typename
    ... on Pipeline { runs { runId status } }
  }
}
"""
RUN_LOG_QUERY = """
query RunLog($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection { events { __typename ... on MessageEvent { message } } }
  }
}
"""


def cli_run() -> str:
    """`perf-pipeline run` in this process; what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run"]) == 0
    return out.getvalue().strip()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(services, the two CLI summaries, the CLI's runs by job) over the hand-made input."""
    folder = tmp_path_factory.mktemp("ui")
    root = write_input(folder / "input")
    env = {"PERF_INPUT": str(root), "PERF_STORE": str(folder / "perf.duckdb")}
    with dagster_services(folder, env) as services, pytest.MonkeyPatch.context() as patch:
        for name, value in {**env, **PIPELINE_ENV, "DAGSTER_HOME": str(services.home)}.items():
            patch.setenv(name, value)
        patch.delenv("PERF_TARGET", raising=False)
        january = cli_run()
        (root / "transactions" / "2024" / "february.csv").write_text(FEBRUARY_TRANSACTIONS)
        (root / "prices" / "2024" / "february.csv").write_text(FEBRUARY_PRICES)
        february = cli_run()
        with DagsterInstance.get() as instance:
            runs = {job: instance.get_runs(RunsFilter(job_name=job)) for job in JOBS}
        yield services, (january, february), runs


def test_the_partitions_are_the_months_from_the_first_day_to_the_last_day_computed(served):
    services, _, _ = served
    for asset in ("daily_valuations", "performance_metrics"):
        node = services.graphql(PARTITIONS_QUERY, {"key": {"path": [asset]}})["assetNodeOrError"]
        # the input's first date is B1's close of Friday 2023-12-29 (the first day computed),
        # its last 2024-02-01 (the February increment); PERF_PARTITION_START is 2023-01-02
        assert node["partitionKeys"] == ["2023-12", "2024-01", "2024-02"], asset
        assert node["partitionDefinition"]["type"] == "DYNAMIC", asset


def test_every_cli_run_is_listed_under_its_job(served):
    services, _, runs = served
    assert len(runs["inputs_job"]) == 2 and len(runs["performance_job"]) >= 2
    for job, created in runs.items():
        selector = {
            "pipelineName": job,
            "repositoryName": "__repository__",
            "repositoryLocationName": LOCATION_NAME,
        }
        page = services.graphql(JOB_RUNS_QUERY, {"selector": selector})["pipelineOrError"]
        assert page["__typename"] == "Pipeline", page
        assert {run["runId"] for run in page["runs"]} == {run.run_id for run in created}, job
        assert {run["status"] for run in page["runs"]} == {"SUCCESS"}, job


def test_the_run_log_says_what_the_cli_printed(served):
    services, summaries, runs = served
    assert "ITD TWR per portfolio (1 + TWR = (1 + local)(1 + currency)):" in summaries[1]
    assert "P1" in summaries[1]
    last: DagsterRun = runs["performance_job"][0]  # newest first
    inputs: DagsterRun = runs["inputs_job"][0]
    for run in (last, inputs):
        events = services.graphql(RUN_LOG_QUERY, {"runId": run.run_id})["logsForRun"]["events"]
        assert summaries[1] in [event.get("message") for event in events], run.job_name


def test_the_stale_partitions_sensor_leaves_the_cli_runs_alone(served):
    services, _, runs = served
    # the daemon's sensor sees the CLI's inputs runs succeed: it must not plan them again
    time.sleep(3 * MINIMUM_INTERVAL_SECONDS)
    with DagsterInstance.from_config(str(services.home)) as instance:
        later = instance.get_runs(RunsFilter(job_name="performance_job"))
    assert [run.run_id for run in later] == [run.run_id for run in runs["performance_job"]]


@pytest.mark.skipif(
    chromium_path() is None and not os.environ.get("CI"), reason="chromium is not installed"
)
def test_the_asset_graph_and_the_performance_metrics_page_load_without_errors(served):
    services, _, _ = served
    base = services.graphql_url.removesuffix("/graphql")
    pages = {
        f"{base}/asset-groups": ("valuation", "performance"),
        f"{base}/assets/performance_metrics": ("performance_metrics", "performance_job"),
    }
    with Browser(1440, 900) as browser:
        for url, texts in pages.items():
            visit = browser.visit(url, settle=6, served_from=base)
            assert visit.problems() == [], url
            browser.click_button("Skip")  # Dagster's community dialog, on a first visit
            shown = browser.evaluate("document.body.innerText")
            assert all(text in shown for text in texts), (url, shown[:500])
