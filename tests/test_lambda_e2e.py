"""The trigger Lambda against a real dagster-webserver + dagster-daemon (issues 6 and 7, end to
end): POST /calculate launches inputs_job, the daemon's stale_partitions sensor asks for the
partition runs, and GET /runs/{id} reports SUCCESS once all of them succeeded.

One webserver+daemon pair (tests/dagster_services.py) serves the whole module over a temporary
instance, the hand-made input of handmade.py and a temporary DuckDB store (local target). The
handler is called with real API Gateway REST proxy events and its settings are built from an
environment, as at cold start; run counts and run tags are read back through GraphQL.
"""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster_services import DagsterServices, dagster_services, free_port
from handmade import AS_OF, p1_itd_expected, write_input
from test_lambda_api import AUDIENCE, ISSUER, SECRET, call, rest_event, token

from lambda_trigger import handler
from lambda_trigger.dependencies import Dependencies
from lambda_trigger.settings import Settings

RUN_DEADLINE_S = 180.0
POLL_S = 1.0
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
REQUEST_ID = "req-e2e-1"
SQS_REQUEST_ID = "req-e2e-sqs-1"
SQS_QUEUE = "perf-e2e-requests"
SQS_SENSOR_MODULE = "perf_pipeline.sensors.sqs"

RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) { ... on Runs { results { runId status } } }
}
"""
TAGGED_RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    ... on Runs { results { runId jobName status tags { key value } } }
  }
}
"""
STALE_SENSOR = "stale_partitions"
SENSOR_TICKS_QUERY = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { status ticks(limit: 1) { status } } }
  }
}
"""
RUN_FAILURE_QUERY = """
query RunEvents($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection { events { __typename ... on MessageEvent { message level } } }
  }
}
"""
SENSORS_QUERY = """
query Sensors($selector: RepositorySelector!) {
  sensorsOrError(repositorySelector: $selector) {
    ... on Sensors { results { name sensorState { status } } }
  }
}
"""
START_SENSOR = """
mutation Start($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) { __typename ... on Error { message } }
}
"""


def sqs_sensor_present() -> bool:
    """True once perf_pipeline/sensors/sqs.py exists (another issue builds it)."""
    return importlib.util.find_spec(SQS_SENSOR_MODULE) is not None


@dataclass
class Stack:
    """The running services and the paths their runs read and write."""

    services: DagsterServices
    store: Path
    queue_url: str | None


def queue_url_for(endpoint: str) -> str:
    """moto's URL for SQS_QUEUE in its default account (known before the queue exists)."""
    return f"{endpoint}/123456789012/{SQS_QUEUE}"


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("dagster-e2e")
    store = root / "perf.duckdb"
    env = {
        "PERF_TARGET": "local",
        "PERF_INPUT": str(write_input(root / "input")),
        "PERF_STORE": str(store),
    }
    queue_url = None
    if sqs_sensor_present():  # the sensor polls moto's queue; the SQS test creates it
        endpoint = request.getfixturevalue("moto_endpoint")
        queue_url = queue_url_for(endpoint)
        env |= {"PERF_SQS_QUEUE_URL": queue_url, "AWS_ENDPOINT_URL": endpoint}
    with dagster_services(root, env) as services:
        wait_for_first_tick(services, STALE_SENSOR)
        yield Stack(services, store, queue_url)


def use_environment(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    """Rebuild the handler's dependencies from `env`, as a cold start would."""
    base = {"JWT_SECRET": SECRET, "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE}
    settings = Settings.from_env({**base, **env})
    monkeypatch.setattr(handler, "dependencies", Dependencies(settings))


@pytest.fixture
def graphql_mode(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    use_environment(monkeypatch, {"DAGSTER_GRAPHQL_URL": stack.services.graphql_url})
    return stack


def bearer(portfolios: list[str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(portfolios, sub='e2e-user')}"}


def post_calculate(
    portfolio_ids: list[str], request_id: str, allowed: list[str]
) -> tuple[int, Any]:
    body = {"portfolio_ids": portfolio_ids, "as_of": AS_OF, "request_id": request_id}
    event = rest_event("POST", "/calculate", body=json.dumps(body), headers=bearer(allowed))
    return call(event)


def wait_for_first_tick(services: DagsterServices, sensor: str) -> None:
    """Block (bounded) until the sensor has ticked once: a run status sensor only sees runs
    that finish after its first tick."""
    selector = {
        "repositoryLocationName": services.location,
        "repositoryName": "__repository__",
        "sensorName": sensor,
    }
    deadline = time.monotonic() + RUN_DEADLINE_S
    while time.monotonic() < deadline:
        state = services.graphql(SENSOR_TICKS_QUERY, {"selector": selector})
        if state["sensorOrError"].get("sensorState", {}).get("ticks"):
            return
        services.check_alive()
        time.sleep(POLL_S)
    pytest.fail(f"sensor {sensor} never ticked\n{services.log_tails()}")


def request_runs(services: DagsterServices, parent_id: str) -> tuple[dict, list[dict]]:
    """(the inputs run, its partition runs): job, status and tags of each."""

    def tagged(tags: dict[str, str]) -> list[dict[str, Any]]:
        filter_ = {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
        found = services.graphql(TAGGED_RUNS_QUERY, {"filter": filter_})["runsOrError"]
        return [
            {**run, "tags": {t["key"]: t["value"] for t in run["tags"]}} for run in found["results"]
        ]

    [parent] = [run for run in tagged({}) if run["runId"] == parent_id]
    return parent, tagged({"perf/parent_run": parent_id})


def assert_request_succeeded(services: DagsterServices, parent_id: str, request_id: str) -> None:
    """The inputs run and every partition run it promised succeeded, under its request id."""
    parent, children = request_runs(services, parent_id)
    assert (parent["jobName"], parent["status"]) == ("inputs_job", "SUCCESS")
    assert len(children) == int(parent["tags"]["perf/partition_runs"]) >= 1
    for child in children:
        assert child["jobName"] == "performance_job"
        assert child["status"] == "SUCCESS", failure_report(
            services, child["runId"], child["status"]
        )
        assert child["tags"]["perf/request_id"] == request_id
        assert child["tags"]["perf/exclusive"].startswith("shards:")


def runs(services: DagsterServices, tags: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Every run of the instance (optionally only those with these tags), through GraphQL."""
    filter_ = {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
    return services.graphql(RUNS_QUERY, {"filter": filter_})["runsOrError"]["results"]


def failure_report(services: DagsterServices, run_id: str, status: str) -> str:
    """The run's error-level events and the services' log tails."""
    try:
        events = services.graphql(RUN_FAILURE_QUERY, {"runId": run_id})["logsForRun"]["events"]
        errors = [e["message"] for e in events if e.get("level") in ("ERROR", "CRITICAL")]
    except Exception as exc:  # a report must not hide the original failure
        errors = [f"(could not read the run's events: {exc})"]
    return f"run {run_id} ended {status}:\n" + "\n".join(errors) + "\n" + services.log_tails()


def wait_for_status(services: DagsterServices, run_id: str) -> str:
    """Poll GET /runs/{run_id} through the handler until a terminal status (bounded)."""
    deadline = time.monotonic() + RUN_DEADLINE_S
    status = "unknown"
    while time.monotonic() < deadline:
        code, body = call(rest_event("GET", f"/runs/{run_id}", headers=bearer(["P1"])))
        assert code == 200, (code, body, services.log_tails())
        assert body["run_id"] == run_id
        status = body["status"]
        if status in TERMINAL:
            return status
        services.check_alive()
        time.sleep(POLL_S)
    pytest.fail(f"run {run_id} still {status} after {RUN_DEADLINE_S:.0f} s\n{services.log_tails()}")


def p1_itd(store: Path) -> dict[str, Any]:
    """P1's ITD row of performance_metrics at AS_OF, read from the DuckDB store."""
    with duckdb.connect(str(store), read_only=True) as con:
        frame = con.execute(
            "SELECT * FROM performance_metrics WHERE entity_type = 'portfolio' "
            "AND entity_id = 'P1' AND time_period = 'ITD' AND calculation_date = ?",
            [AS_OF],
        ).df()
    assert len(frame) == 1, frame
    return frame.iloc[0].to_dict()


@pytest.fixture(scope="module")
def first_run(stack: Stack) -> tuple[str, float]:
    """POST /calculate for P1 once, wait for the run: (run_id, seconds to SUCCESS)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_environment(monkeypatch, {"DAGSTER_GRAPHQL_URL": stack.services.graphql_url})
        started = time.monotonic()
        code, body = post_calculate(["P1"], REQUEST_ID, allowed=["P1"])
        assert code == 202, (body, stack.services.log_tails())
        assert body["request_id"] == REQUEST_ID
        assert isinstance(body["run_id"], str) and body["run_id"]
        assert body["status"] == "QUEUED"  # the instance's queued run coordinator holds it
        status = wait_for_status(stack.services, body["run_id"])
        assert status == "SUCCESS", failure_report(stack.services, body["run_id"], status)
        return body["run_id"], time.monotonic() - started


def test_calculate_runs_inputs_then_partitions_and_stores_the_hand_computed_twr(
    graphql_mode: Stack, first_run: tuple[str, float]
) -> None:
    run_id, _ = first_run
    assert_request_succeeded(graphql_mode.services, run_id, REQUEST_ID)
    row = p1_itd(graphql_mode.store)
    assert row["request_id"] == REQUEST_ID
    assert row["twr"] == pytest.approx(p1_itd_expected()["twr"], rel=1e-10, abs=0)


def test_same_request_id_returns_the_same_run_and_launches_nothing(
    graphql_mode: Stack, first_run: tuple[str, float]
) -> None:
    run_id, _ = first_run
    before = runs(graphql_mode.services)
    code, body = post_calculate(["P1"], REQUEST_ID, allowed=["P1"])
    assert code == 202, body
    assert body == {"request_id": REQUEST_ID, "run_id": run_id, "status": "SUCCESS"}
    assert runs(graphql_mode.services) == before


def test_portfolio_outside_the_token_is_403_and_launches_nothing(
    graphql_mode: Stack, first_run: tuple[str, float]
) -> None:
    before = runs(graphql_mode.services)
    code, body = post_calculate(["P2"], "req-e2e-forbidden", allowed=["P1"])
    assert code == 403, body
    assert {"field": "portfolio_ids", "issue": "not allowed: P2"} in body["details"]
    assert runs(graphql_mode.services) == before


def test_unreachable_dagster_is_503_and_launches_nothing(
    stack: Stack, first_run: tuple[str, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = runs(stack.services)
    closed = f"http://127.0.0.1:{free_port()}/graphql"
    use_environment(monkeypatch, {"DAGSTER_GRAPHQL_URL": closed})
    code, body = post_calculate(["P1"], "req-e2e-unreachable", allowed=["P1"])
    assert code == 503, body
    assert "nothing was launched" in body["error"]
    assert runs(stack.services) == before


def test_unknown_run_is_404_from_the_real_dagster(graphql_mode: Stack) -> None:
    missing = str(uuid.uuid4())
    code, body = call(rest_event("GET", f"/runs/{missing}", headers=bearer(["P1"])))
    assert code == 404, body
    assert body["error"] == "no such run"


def test_launch_refused_by_dagster_is_502_and_launches_nothing(
    stack: Stack, first_run: tuple[str, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = runs(stack.services)
    env = {"DAGSTER_GRAPHQL_URL": stack.services.graphql_url, "DAGSTER_JOB": "no_such_job"}
    use_environment(monkeypatch, env)
    code, body = post_calculate(["P1"], "req-e2e-unknown-job", allowed=["P1"])
    assert code == 502, body
    assert "nothing was launched" in body["error"]
    assert "no_such_job" not in json.dumps(body)  # Dagster's own text stays in the log
    assert runs(stack.services) == before


# --- TRIGGER_MODE=sqs: the Lambda queues, the SQS sensor in the daemon launches -----------


def start_sqs_sensor(services: DagsterServices) -> str:
    """Start the code location's SQS sensor unless it already runs; its name."""
    repository = {"repositoryLocationName": services.location, "repositoryName": "__repository__"}
    answer = services.graphql(SENSORS_QUERY, {"selector": repository})["sensorsOrError"]
    sensors = {s["name"]: s["sensorState"]["status"] for s in answer.get("results", [])}
    names = [name for name in sensors if "sqs" in name.lower()]
    assert len(names) == 1, (
        f"{SQS_SENSOR_MODULE} exists but code location {services.location!r} has no single SQS "
        f"sensor (its sensors: {sorted(sensors)}): register it in perf_pipeline/definitions.py"
    )
    [name] = names
    if sensors[name] != "RUNNING":
        started = services.graphql(START_SENSOR, {"selector": {**repository, "sensorName": name}})
        assert started["startSensor"]["__typename"] == "Sensor", started
    return name


def wait_for_tagged_run(services: DagsterServices, tags: dict[str, str]) -> dict[str, str]:
    """Poll GraphQL until a run with these tags reaches a terminal status (bounded)."""
    deadline = time.monotonic() + RUN_DEADLINE_S
    found: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        found = runs(services, tags)
        done = [run for run in found if run["status"] in TERMINAL]
        if done:
            return done[0]
        services.check_alive()
        time.sleep(POLL_S)
    pytest.fail(
        f"no finished run tagged {tags} after {RUN_DEADLINE_S:.0f} s (runs: {found})\n"
        f"{services.log_tails()}"
    )


@pytest.mark.skipif(
    not sqs_sensor_present(),
    reason=f"{SQS_SENSOR_MODULE} does not exist yet "
    "(issue 5 builds the SQS sensor); TRIGGER_MODE=sqs cannot run end to end",
)
def test_sqs_mode_queues_and_the_sensor_runs_the_job(
    stack: Stack, first_run: tuple[str, float], aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from perf_pipeline.resources.aws_setup import create_dev_resources

    created = create_dev_resources(
        bucket="perf-e2e-bucket",
        table="perf-e2e-metrics",
        timestream_database="perf_e2e",
        timestream_table="metrics",
        queue_name=SQS_QUEUE,
        region="us-east-1",
        endpoint_url=aws,
    )
    assert created["queue_url"] == stack.queue_url  # the URL the daemon was started with
    start_sqs_sensor(stack.services)
    use_environment(
        monkeypatch,
        {
            "TRIGGER_MODE": "sqs",
            "PERF_SQS_QUEUE_URL": created["queue_url"],
            "DAGSTER_GRAPHQL_URL": stack.services.graphql_url,
        },
    )
    before = runs(stack.services)

    code, body = post_calculate(["P1"], SQS_REQUEST_ID, allowed=["P1"])
    assert code == 202, body
    assert body == {"request_id": SQS_REQUEST_ID, "run_id": None, "status": "QUEUED"}

    parent = wait_for_tagged_run(
        stack.services,
        {"perf/request_id": SQS_REQUEST_ID, "dagster/sensor_name": "sqs_request_sensor"},
    )
    status = wait_for_status(stack.services, parent["runId"])  # the whole request
    assert status == "SUCCESS", failure_report(stack.services, parent["runId"], status)
    assert_request_succeeded(stack.services, parent["runId"], SQS_REQUEST_ID)
    _, children = request_runs(stack.services, parent["runId"])
    assert len(runs(stack.services)) == len(before) + 1 + len(children)  # one message, one run
    row = p1_itd(stack.store)
    assert row["request_id"] == SQS_REQUEST_ID
    assert row["twr"] == pytest.approx(p1_itd_expected()["twr"], rel=1e-10, abs=0)
