"""The trigger Lambda end to end through real API Gateway REST proxy events.

Dagster is a stand-in GraphQL server on 127.0.0.1 that answers like dagster-webserver and
records every request; SQS and DynamoDB are moto's server (conftest's `aws` fixture).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import jwt
import pytest
from dagster_services import free_port
from fx_outputs import fx_metrics
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambda_trigger import handler
from lambda_trigger.dependencies import Dependencies
from lambda_trigger.settings import Settings
from perf_pipeline.resources.dynamodb import write_metrics

SECRET = "api-test-secret-" + "0123456789abcdef" * 3
ISSUER = "https://issuer.test/"
AUDIENCE = "perf-trigger"
READ_TIMEOUT_S = 0.5
TABLE = "performance-metrics-test"


# --- events -----------------------------------------------------------------------------


@dataclass
class FakeContext:
    """The attributes of LambdaContext that Powertools' Logger reads."""

    function_name: str = "perf-trigger"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:perf-trigger"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def rest_event(
    method: str,
    path: str,
    *,
    resource: str = "/{proxy+}",
    body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    is_base64: bool = False,
) -> dict[str, Any]:
    """A complete API Gateway REST (v1) proxy event, as the proxy+ integration sends it."""
    headers = {"Host": "abc.execute-api.us-east-1.amazonaws.com", **(headers or {})}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": "ext-1",
            "requestTime": "28/Jun/2024:10:00:00 +0000",
            "path": f"/v1{path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "v1",
            "domainPrefix": "abc",
            "requestTimeEpoch": 1719568800000,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "pytest"},
            "domainName": "abc.execute-api.us-east-1.amazonaws.com",
            "apiId": "abc",
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def token(
    portfolios: object = ("P1", "P2"), key: str = SECRET, algorithm: str = "HS256", **claims: Any
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": "alice",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    if portfolios is not None:
        payload["portfolios"] = list(portfolios) if isinstance(portfolios, tuple) else portfolios
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=algorithm)


def auth(tok: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok or token()}"}


def call(event: dict[str, Any]) -> tuple[int, Any]:
    response = handler.lambda_handler(event, FakeContext())
    assert isinstance(response, dict)
    return response["statusCode"], json.loads(response["body"]) if response["body"] else None


def post_calculate(body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    raw = body if isinstance(body, str) else json.dumps(body)
    headers = auth() if headers is None else headers
    return call(rest_event("POST", "/calculate", body=raw, headers=headers))


# --- a stand-in for dagster-webserver's GraphQL endpoint --------------------------------


class FakeDagster:
    """Records GraphQL requests and answers like Dagster: runsOrError, launchRun, runOrError."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.runs: dict[str, dict[str, Any]] = {}
        self.launch_answer: dict[str, Any] | None = None
        self.lock = threading.Lock()

    def launches(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "launchRun" in r["query"]]

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        query, variables = request["query"], request["variables"]
        if "launchRun" in query:
            if self.launch_answer is not None:
                return {"data": {"launchRun": self.launch_answer}}
            params = variables["executionParams"]
            run_id = str(uuid.uuid4())
            job = params["selector"]["jobName"]
            self.runs[run_id] = {
                "runId": run_id,
                "jobName": job,
                "status": "QUEUED",
                "tags": params["executionMetadata"]["tags"],
            }
            run = {"runId": run_id, "jobName": job, "status": "QUEUED"}
            return {"data": {"launchRun": {"__typename": "LaunchRunSuccess", "run": run}}}
        if "runsOrError" in query:
            wanted = {(t["key"], t["value"]) for t in variables["filter"]["tags"]}
            job = variables["filter"].get("pipelineName")
            found = [
                run
                for run in reversed(self.runs.values())
                if wanted <= {(t["key"], t["value"]) for t in run["tags"]}
                and job in (None, run.get("jobName"))
            ][: variables["limit"]]
            return {"data": {"runsOrError": {"__typename": "Runs", "results": found}}}
        if "runOrError" in query:
            run = self.runs.get(variables["runId"])
            if run is None:
                missing = {"__typename": "RunNotFoundError", "message": "Run not found"}
                return {"data": {"runOrError": missing}}
            return {"data": {"runOrError": {"__typename": "Run", **run}}}
        return {"errors": [{"message": "unknown operation"}]}


@pytest.fixture
def dagster() -> Iterator[tuple[FakeDagster, str]]:
    fake = FakeDagster()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with fake.lock:
                fake.requests.append(request)
                body = json.dumps(fake.answer(request)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}/graphql"
    finally:
        server.shutdown()
        server.server_close()


def use(monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> None:
    values = {
        "jwt_secret": SECRET,
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "graphql_read_timeout_s": READ_TIMEOUT_S,
        **overrides,
    }
    settings_ = Settings(**values)
    monkeypatch.setattr(handler, "dependencies", Dependencies(settings_))


@pytest.fixture
def graphql(
    dagster: tuple[FakeDagster, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeDagster]:
    fake, url = dagster
    use(monkeypatch, dagster_graphql_url=url)
    yield fake


# --- logs -----------------------------------------------------------------------------


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(handler.logger.registered_formatter.format(record))


@pytest.fixture
def logs() -> Iterator[Collect]:
    collector = Collect()
    loggers = [logging.getLogger(), logging.getLogger("perf-trigger")]
    for logger in loggers:
        logger.addHandler(collector)
    try:
        yield collector
    finally:
        for logger in loggers:
            logger.removeHandler(collector)


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/graphql"


VALID = {"portfolio_ids": ["P1", "P2"], "as_of": "2024-06-28", "request_id": "req-1"}


# --- POST /calculate through GraphQL ----------------------------------------------------


def test_calculate_sends_exact_graphql_and_answers_202(graphql: FakeDagster) -> None:
    status, body = post_calculate(VALID)
    assert status == 202
    [lookup, launch] = graphql.requests
    assert lookup["variables"] == {
        "filter": {
            "tags": [
                {"key": "perf/request_id", "value": "req-1"},
                {"key": "perf/requested_by", "value": "alice"},
            ],
            "pipelineName": "inputs_job",
        },
        "limit": 1,
    }
    assert launch["variables"] == {
        "executionParams": {
            "selector": {
                "repositoryLocationName": "perf_pipeline",
                "repositoryName": "__repository__",
                "jobName": "inputs_job",
            },
            "runConfigData": {
                "resources": {
                    "run_request": {
                        "config": {
                            "as_of": "2024-06-28",
                            "portfolio_ids": ["P1", "P2"],
                            "request_id": "req-1",
                        }
                    }
                }
            },
            "executionMetadata": {
                "tags": [
                    {"key": "perf/request_id", "value": "req-1"},
                    {"key": "perf/portfolio_ids", "value": "P1,P2"},
                    {"key": "perf/as_of", "value": "2024-06-28"},
                    {"key": "perf/requested_by", "value": "alice"},
                ]
            },
        }
    }
    [run_id] = graphql.runs
    assert body == {"request_id": "req-1", "run_id": run_id, "status": "QUEUED"}


def test_repeated_request_id_launches_once(graphql: FakeDagster) -> None:
    first = post_calculate(VALID)
    second = post_calculate(VALID)
    assert first == second
    assert first[0] == 202
    assert len(graphql.launches()) == 1
    assert len(graphql.runs) == 1


def test_request_id_reused_by_another_caller_launches_his_own_run(graphql: FakeDagster) -> None:
    alice = auth(token(portfolios=["P1"], sub="alice"))
    bob = auth(token(portfolios=["P2"], sub="bob"))
    s1, first = post_calculate(
        {"portfolio_ids": ["P1"], "as_of": "2024-06-28", "request_id": "r1"}, alice
    )
    s2, second = post_calculate(
        {"portfolio_ids": ["P2"], "as_of": "2023-01-31", "request_id": "r1"}, bob
    )
    assert (s1, s2) == (202, 202)
    assert second["run_id"] != first["run_id"]
    assert len(graphql.launches()) == 2
    bobs_run = graphql.runs[second["run_id"]]
    assert {"key": "perf/requested_by", "value": "bob"} in bobs_run["tags"]
    assert {"key": "perf/portfolio_ids", "value": "P2"} in bobs_run["tags"]
    # each caller repeating his own request_id still gets his own run back, launching nothing
    assert post_calculate(
        {"portfolio_ids": ["P2"], "as_of": "2023-01-31", "request_id": "r1"}, bob
    ) == (s2, second)
    assert post_calculate(
        {"portfolio_ids": ["P1"], "as_of": "2024-06-28", "request_id": "r1"}, alice
    ) == (s1, first)
    assert len(graphql.launches()) == 2


def test_request_id_is_generated_when_absent(graphql: FakeDagster) -> None:
    status, body = post_calculate({"portfolio_ids": ["P1"], "as_of": "2024-06-28"})
    assert status == 202
    assert uuid.UUID(body["request_id"]).version == 4
    tags = graphql.launches()[0]["variables"]["executionParams"]["executionMetadata"]["tags"]
    assert {"key": "perf/request_id", "value": body["request_id"]} in tags


def test_wildcard_token_may_launch_any_portfolio(graphql: FakeDagster) -> None:
    status, _ = post_calculate(
        {"portfolio_ids": ["ANY-1"], "as_of": "2024-06-28"}, auth(token(portfolios=["*"]))
    )
    assert status == 202
    assert len(graphql.launches()) == 1


@pytest.mark.parametrize(
    "answer",
    [
        {"__typename": "PythonError", "message": "boom"},
        {"__typename": "RunConfigValidationInvalid", "errors": [{"message": "bad as_of"}]},
        {"__typename": "PipelineNotFoundError", "message": "no job"},
    ],
)
def test_launch_refused_by_dagster_is_502_and_says_nothing_launched(
    graphql: FakeDagster, answer: dict[str, Any]
) -> None:
    graphql.launch_answer = answer
    status, body = post_calculate(VALID)
    assert status == 502
    assert "nothing was launched" in body["error"]
    text = json.dumps(body)  # Dagster's type and message go to the log, not to the caller
    assert answer["__typename"] not in text
    assert "boom" not in text and "bad as_of" not in text and "no job" not in text
    [detail] = body["details"]
    assert set(detail) == {"correlation_id"}


def test_unreachable_dagster_is_503_and_nothing_launched(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, dagster_graphql_url=closed_port_url())
    status, body = post_calculate(VALID)
    assert status == 503
    assert "nothing was launched" in body["error"]
    assert set(body) == {"error", "details"}


def test_hanging_dagster_is_503_within_the_read_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections in the backlog, never answers
    try:
        use(
            monkeypatch, dagster_graphql_url=f"http://127.0.0.1:{listener.getsockname()[1]}/graphql"
        )
        started = time.monotonic()
        status, body = post_calculate(VALID)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert status == 503
    assert "nothing was launched" in body["error"]
    assert elapsed < 20 * READ_TIMEOUT_S  # bounded by the timeout, not by the hang


@pytest.fixture
def unanswered_launch() -> Iterator[tuple[str, list[bytes]]]:
    """A Dagster stand-in that answers the run lookup (no runs) and never answers a launch."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    received: list[bytes] = []
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += connection.recv(65536)
            received.append(body)
            if b"runsOrError" in body:
                answer = json.dumps(
                    {"data": {"runsOrError": {"__typename": "Runs", "results": []}}}
                ).encode()
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(answer)}\r\n\r\n".encode()
                    + answer
                )

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/graphql", received
    finally:
        listener.close()
        for connection in held:
            connection.close()


def test_unconfirmed_launch_is_503_naming_the_generated_request_id(
    monkeypatch: pytest.MonkeyPatch, unanswered_launch: tuple[str, list[bytes]]
) -> None:
    url, received = unanswered_launch
    use(monkeypatch, dagster_graphql_url=url)
    status, body = post_calculate({"portfolio_ids": ["P1"], "as_of": "2024-06-28"})
    assert status == 503
    assert "same request_id" in body["error"]
    [detail, _correlation] = body["details"]
    launch = json.loads(received[-1])
    assert "launchRun" in launch["query"]
    tags = launch["variables"]["executionParams"]["executionMetadata"]["tags"]
    assert {"key": "perf/request_id", "value": detail["request_id"]} in tags
    assert uuid.UUID(detail["request_id"]).version == 4


def _drip_server(drip_headers: bool) -> tuple[socket.socket, threading.Event]:
    """A Dagster stand-in that sends a valid answer one byte every 0.2 s: each read finishes
    well inside READ_TIMEOUT_S, the whole answer would take about a minute."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()
    tags = [{"key": "perf/portfolio_ids", "value": "P1"}]
    run = {"runId": "r1", "status": "SUCCESS", "tags": tags}
    body = json.dumps({"data": {"runOrError": {"__typename": "Run", **run}}}).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    answer = (head + "\r\n\r\n").encode() + body
    prefix = 0 if drip_headers else len(answer) - len(body)

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                try:
                    connection.recv(65536)
                    connection.sendall(answer[:prefix])
                    for byte in answer[prefix:]:
                        if stop.wait(0.2):
                            return
                        connection.sendall(bytes([byte]))
                except OSError:
                    continue

    threading.Thread(target=serve, daemon=True).start()
    return listener, stop


@pytest.mark.parametrize("drip_headers", [True, False], ids=["headers", "body"])
def test_dripping_dagster_is_cut_off_by_the_call_deadline(
    monkeypatch: pytest.MonkeyPatch, drip_headers: bool
) -> None:
    listener, stop = _drip_server(drip_headers)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/graphql"
    use(monkeypatch, dagster_graphql_url=url, graphql_call_timeout_s=1.0)
    try:
        started = time.monotonic()
        status, body = call(rest_event("GET", "/runs/r1", headers=auth()))
        elapsed = time.monotonic() - started
        launch = post_calculate(VALID)
    finally:
        stop.set()
        listener.close()
    assert (status, body["error"]) == (503, "Dagster is unreachable")
    assert "timed out" not in json.dumps(body)  # the transport's reason is logged only
    assert elapsed < 10  # the drip would take about 60 s; the call budget is 1 s
    assert launch[0] == 503  # the run lookup timed out, so nothing was launched
    assert "nothing was launched" in launch[1]["error"]


def test_missing_graphql_url_is_500_misconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch)
    status, body = post_calculate(VALID)
    assert (status, body["error"]) == (500, "the service is misconfigured")
    assert "DAGSTER_GRAPHQL_URL" not in json.dumps(body)


# --- invalid requests launch nothing -----------------------------------------------------


def _nested(depth: int) -> str:
    return '{"portfolio_ids": ' + "[" * depth + "]" * depth + ', "as_of": "2024-06-28"}'


INVALID_BODIES = [
    pytest.param("{", 400, id="malformed"),
    pytest.param("", 400, id="empty"),
    pytest.param("[]", 400, id="array"),
    pytest.param('"P1"', 400, id="string"),
    pytest.param("42", 400, id="number"),
    pytest.param("null", 400, id="null"),
    pytest.param("[" * 10000 + "]" * 10000, 400, id="nested-array-10000"),
    pytest.param(_nested(10000), 400, id="nested-field-10000"),
    pytest.param(
        '{"portfolio_ids": ["P1"], "as_of": "2024-06-28", "x": 1' + "0" * 5000 + "}",
        400,
        id="int-5001-digits",
    ),
    pytest.param(
        '{"portfolio_ids": ["P1"], "as_of": "2024-06-28", "request_id": -' + "9" * 4301 + "}",
        400,
        id="known-field-int-4301-digits",
    ),
    pytest.param({"portfolio_ids": "P1", "as_of": "2024-06-28"}, 400, id="ids-string"),
    pytest.param({"portfolio_ids": [1], "as_of": "2024-06-28"}, 400, id="ids-int"),
    pytest.param({"portfolio_ids": [], "as_of": "2024-06-28"}, 400, id="ids-empty"),
    pytest.param({"portfolio_ids": ["P 1"], "as_of": "2024-06-28"}, 400, id="ids-bad"),
    pytest.param({"portfolio_ids": ["P1"], "as_of": "2024-02-30"}, 400, id="feb-30"),
    pytest.param({"portfolio_ids": ["P1"], "as_of": 20240628}, 400, id="date-int"),
    pytest.param({"portfolio_ids": ["P1"], "as_of": None}, 400, id="date-null"),
    pytest.param(
        {"portfolio_ids": ["P1"], "as_of": "2024-06-28", "request_id": 1}, 400, id="rid-int"
    ),
    pytest.param(
        {"portfolio_ids": ["P1"], "as_of": "2024-06-28", "request_id": "a b"}, 400, id="rid-bad"
    ),
    pytest.param({"portfolio_ids": ["P1"], "as_of": "2024-06-28", "x": 1}, 400, id="unknown-field"),
    pytest.param(
        {"portfolio_ids": ["P1"], "as_of": "2024-06-28", "pad": "x" * 66000}, 413, id="65KiB"
    ),
    pytest.param(
        {"portfolio_ids": [f"P{i}" for i in range(1001)], "as_of": "2024-06-28"}, 413, id="1001-ids"
    ),
    pytest.param(
        {"portfolio_ids": ["P1", "P3"], "as_of": "2024-06-28"}, 403, id="foreign-portfolio"
    ),
]


@pytest.mark.parametrize(("body", "expected"), INVALID_BODIES)
def test_invalid_bodies_are_refused_and_launch_nothing(
    graphql: FakeDagster, body: Any, expected: int
) -> None:
    status, answer = post_calculate(body)
    assert status == expected
    assert set(answer) == {"error", "details"}
    assert graphql.requests == []


def test_bad_body_names_every_bad_field(graphql: FakeDagster) -> None:
    status, body = post_calculate({"portfolio_ids": ["ok", 3], "as_of": "2024-02-30", "zz": 0})
    assert status == 400
    assert {d["field"] for d in body["details"]} == {"portfolio_ids[1]", "as_of", "zz"}


def _none_token() -> str:
    _header, payload, _ = token().split(".")
    none_header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    return f"{none_header}.{payload}."


BAD_AUTH = [
    pytest.param({}, id="no-header"),
    pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
    pytest.param({"Authorization": "Bearer garbage"}, id="garbage"),
    pytest.param(auth(token(exp=int(time.time()) - 3600)), id="expired"),
    pytest.param(auth(token(key="k" * 64)), id="other-key"),
    pytest.param(auth(token(algorithm="HS512")), id="hs512"),
    pytest.param(auth(_none_token()), id="alg-none"),
    pytest.param(auth(token(exp=None)), id="no-exp"),
    pytest.param(auth(token(sub=None)), id="no-sub"),
    pytest.param(auth(token(portfolios=None)), id="no-portfolios"),
    pytest.param(auth(token(portfolios="P1")), id="portfolios-not-list"),
    pytest.param(auth(token()[:-3] + "AAA"), id="tampered-signature"),
]


@pytest.mark.parametrize("headers", BAD_AUTH)
def test_bad_tokens_are_401_and_launch_nothing(graphql: FakeDagster, headers: dict) -> None:
    status, body = call(rest_event("POST", "/calculate", body=json.dumps(VALID), headers=headers))
    assert status == 401
    assert set(body) == {"error", "details"}
    assert graphql.requests == []


def test_tampered_payload_is_401(graphql: FakeDagster) -> None:
    header, _, signature = token().split(".")
    _, wider, _ = token(portfolios=["*"]).split(".")
    status, _ = post_calculate(VALID, auth(f"{header}.{wider}.{signature}"))
    assert status == 401
    assert graphql.requests == []


def test_header_name_is_case_insensitive(graphql: FakeDagster) -> None:
    status, _ = post_calculate(VALID, {"authorization": f"Bearer {token()}"})
    assert status == 202


def test_no_token_or_secret_in_responses_or_logs(
    graphql: FakeDagster, logs: Collect, capfd: pytest.CaptureFixture[str]
) -> None:
    good, expired = token(), token(exp=int(time.time()) - 3600)
    other = token(key="k" * 64)
    responses = [
        post_calculate(VALID, auth(good)),
        post_calculate({"portfolio_ids": ["P3"], "as_of": "2024-06-28"}, auth(good)),
        post_calculate(VALID, auth(expired)),
        post_calculate(VALID, auth(other)),
        post_calculate("{", auth(good)),
    ]
    assert [status for status, _ in responses] == [202, 403, 401, 401, 400]
    captured = capfd.readouterr()
    text = "\n".join([*logs.lines, captured.out, captured.err, *map(json.dumps, responses)])
    assert logs.lines  # something was logged, so the check below means something
    for secret in (SECRET, good, expired, other, good.split(".")[2]):
        assert secret not in text


# --- GET /runs/{run_id} ------------------------------------------------------------------


def test_get_run_returns_status(graphql: FakeDagster) -> None:
    _, launched = post_calculate(VALID)
    status, body = call(rest_event("GET", f"/runs/{launched['run_id']}", headers=auth()))
    assert (status, body) == (200, {"run_id": launched["run_id"], "status": "QUEUED"})


def add_partition_runs(fake: FakeDagster, parent: str, *statuses: str) -> None:
    """Partition runs of `parent`, as the stale_partitions sensor starts them."""
    for i, status in enumerate(statuses):
        fake.runs[f"{parent}-part-{i}"] = {
            "runId": f"{parent}-part-{i}",
            "jobName": "performance_job",
            "status": status,
            "tags": [
                {"key": "perf/parent_run", "value": parent},
                *[t for t in fake.runs[parent]["tags"] if t["key"] != "perf/partition_runs"],
            ],
        }


def plan(fake: FakeDagster, run_id: str, partition_runs: int) -> None:
    """The inputs run succeeded and the sensor tagged it with its partition runs' count."""
    run = fake.runs[run_id]
    run["status"] = "SUCCESS"
    run["tags"] = [*run["tags"], {"key": "perf/partition_runs", "value": str(partition_runs)}]


def test_get_run_reports_the_whole_request(graphql: FakeDagster) -> None:
    _, launched = post_calculate(VALID)
    run_id = launched["run_id"]

    def status() -> str:
        code, body = call(rest_event("GET", f"/runs/{run_id}", headers=auth()))
        assert (code, body["run_id"]) == (200, run_id)
        return body["status"]

    graphql.runs[run_id]["status"] = "SUCCESS"
    assert status() == "STARTED"  # the sensor has not planned it yet
    plan(graphql, run_id, 2)
    add_partition_runs(graphql, run_id, "SUCCESS")
    assert status() == "STARTED"  # one of two partition runs not created yet
    add_partition_runs(graphql, run_id, "SUCCESS", "STARTED")
    assert status() == "STARTED"
    graphql.runs[f"{run_id}-part-1"]["status"] = "FAILURE"
    assert status() == "FAILURE"
    graphql.runs[f"{run_id}-part-1"]["status"] = "SUCCESS"
    assert status() == "SUCCESS"
    lookup = graphql.requests[-1]["variables"]
    assert lookup == {"filter": {"tags": [{"key": "perf/parent_run", "value": run_id}]}, "limit": 2}
    # A partition run asked for directly reports its own status.
    code, body = call(rest_event("GET", f"/runs/{run_id}-part-0", headers=auth()))
    assert (code, body["status"]) == (200, "SUCCESS")


def test_repeated_request_reports_the_whole_request(graphql: FakeDagster) -> None:
    _, launched = post_calculate(VALID)
    plan(graphql, launched["run_id"], 1)
    add_partition_runs(graphql, launched["run_id"], "FAILURE")
    code, again = post_calculate(VALID)
    assert (code, again) == (202, {**launched, "status": "FAILURE"})
    assert len(graphql.launches()) == 1


@pytest.mark.parametrize("started_for", [["P3"], ["P1", "P3"]], ids=["foreign", "partly-foreign"])
def test_get_run_of_foreign_portfolio_is_the_same_404_as_no_run(
    graphql: FakeDagster, started_for: list[str]
) -> None:
    _, launched = post_calculate(
        {"portfolio_ids": started_for, "as_of": "2024-06-28"}, auth(token(portfolios=["*"]))
    )
    foreign = call(rest_event("GET", f"/runs/{launched['run_id']}", headers=auth()))
    missing = call(rest_event("GET", "/runs/no-such-run", headers=auth()))
    assert foreign == missing == (404, {"error": "no such run", "details": []})
    star = call(
        rest_event("GET", f"/runs/{launched['run_id']}", headers=auth(token(portfolios=["*"])))
    )
    assert star[0] == 200


def test_get_run_without_portfolio_tag_needs_a_wildcard_token(graphql: FakeDagster) -> None:
    graphql.runs["sensor-run"] = {"runId": "sensor-run", "status": "SUCCESS", "tags": []}
    assert call(rest_event("GET", "/runs/sensor-run", headers=auth())) == (
        404,
        {"error": "no such run", "details": []},
    )
    star = call(rest_event("GET", "/runs/sensor-run", headers=auth(token(portfolios=["*"]))))
    assert star == (200, {"run_id": "sensor-run", "status": "SUCCESS"})


def test_get_unknown_run_is_404(graphql: FakeDagster) -> None:
    status, body = call(rest_event("GET", "/runs/no-such-run", headers=auth()))
    assert (status, body["error"]) == (404, "no such run")


def test_get_run_with_bad_id_or_token(graphql: FakeDagster) -> None:
    assert call(rest_event("GET", "/runs/" + "x" * 65, headers=auth()))[0] == 400
    assert call(rest_event("GET", "/runs/abc"))[0] == 401
    assert graphql.requests == []


def test_get_run_with_dagster_unreachable_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, dagster_graphql_url=closed_port_url())
    status, body = call(rest_event("GET", "/runs/abc", headers=auth()))
    assert status == 503
    assert set(body) == {"error", "details"}


# --- the JWT secret from Secrets Manager ---------------------------------------------------


def test_secret_from_secrets_manager_is_fetched_once(
    aws: str, graphql: FakeDagster, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = boto3.client("secretsmanager")
    arn = secrets.create_secret(Name="perf/jwt", SecretString=SECRET)["ARN"]
    url = handler.dependencies.settings.dagster_graphql_url
    use(monkeypatch, jwt_secret=None, jwt_secret_arn=arn, dagster_graphql_url=url)
    assert post_calculate(VALID)[0] == 202
    secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    assert post_calculate({**VALID, "request_id": "req-2"})[0] == 202  # cached for the container
    assert post_calculate(VALID, auth(token(key="k" * 64)))[0] == 401


def test_secrets_manager_unavailable_is_503(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:none-AbCdEf"
    use(monkeypatch, jwt_secret=None, jwt_secret_arn=missing, aws_max_attempts=1)
    status, body = post_calculate(VALID)
    assert status == 503
    assert SECRET not in json.dumps(body)


def test_no_secret_configured_is_500_for_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, jwt_secret=None)
    assert post_calculate(VALID)[0] == 500
    assert post_calculate(VALID, {})[0] == 500


# --- routes and methods ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/nothing", 404),
        ("POST", "/runs", 404),
        ("GET", "/metrics/portfolio", 404),
        ("GET", "/calculate", 405),
        ("DELETE", "/runs/abc", 405),
        ("POST", "/metrics/portfolio/P1", 405),
    ],
)
def test_unknown_routes_and_methods(
    graphql: FakeDagster, method: str, path: str, expected: int
) -> None:
    status, body = call(rest_event(method, path, headers=auth()))
    assert status == expected
    assert set(body) == {"error", "details"}
    assert graphql.requests == []


# --- SQS mode ------------------------------------------------------------------------------


@pytest.fixture
def queue(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="perf-requests")["QueueUrl"]
    use(monkeypatch, trigger_mode="sqs", sqs_queue_url=url)
    yield sqs, url


def _visible(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_sqs_mode_queues_one_message(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    status, body = post_calculate(VALID)
    assert (status, body) == (202, {"request_id": "req-1", "run_id": None, "status": "QUEUED"})
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(message["Body"]) == {
        "type": "portfolio_performance",
        "portfolio_ids": ["P1", "P2"],
        "as_of": "2024-06-28",
        "request_id": "req-1",
    }


@pytest.mark.parametrize(("body", "expected"), INVALID_BODIES[::3])
def test_sqs_mode_invalid_bodies_queue_nothing(
    queue: tuple[Any, str], body: Any, expected: int
) -> None:
    assert post_calculate(body)[0] == expected
    assert _visible(*queue) == 0


def test_sqs_mode_bad_token_queues_nothing(queue: tuple[Any, str]) -> None:
    assert post_calculate(VALID, auth(token(key="k" * 64)))[0] == 401
    assert _visible(*queue) == 0


def test_sqs_missing_queue_is_503(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = f"{aws}/123456789012/no-such-queue"
    use(monkeypatch, trigger_mode="sqs", sqs_queue_url=missing)
    status, body = post_calculate(VALID)
    assert status == 503
    assert "nothing was queued" in body["error"]


def test_sqs_unreachable_is_503(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = closed_port_url().removesuffix("/graphql")
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    use(monkeypatch, trigger_mode="sqs", sqs_queue_url=f"{dead}/123456789012/q", aws_max_attempts=1)
    status, body = post_calculate(VALID)
    assert status == 503
    assert "nothing was queued" in body["error"]


# --- GET /metrics -----------------------------------------------------------------------


def _item(entity: str, day: str, period: str, portfolio_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": entity,
        "sk": f"{day}#{period}",
        "calculation_date": day,
        "time_period": period,
        "portfolio_id": portfolio_id,
        **extra,
    }


@pytest.fixture
def table(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    dynamodb = boto3.resource("dynamodb")
    created = dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "id", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    with created.batch_writer() as batch:
        for period in ("MTD", "1Y", "ITD"):
            batch.put_item(
                Item=_item(
                    "portfolio#P1",
                    "2024-06-28",
                    period,
                    "P1",
                    twr=Decimal("0.0125"),
                    n=Decimal("21"),
                )
            )
        batch.put_item(Item=_item("portfolio#P1", "2024-05-31", "1Y", "P1", twr=Decimal("-0.5")))
        batch.put_item(Item=_item("account#A9", "2024-06-28", "1Y", "P3", twr=Decimal("0.1")))
        batch.put_item(Item=_item("security#ACC1:SEC1", "2024-06-28", "1Y", "P1"))
        batch.put_item(Item=_item("security#ACC1:SEC1", "2024-06-28", "3Y", "P3"))
    use(monkeypatch, dynamodb_table=TABLE)
    yield created


def _metrics(
    path: str, query: dict[str, str] | None = None, tok: str | None = None
) -> tuple[int, Any]:
    return call(rest_event("GET", path, query=query, headers=auth(tok)))


def test_metrics_exact_date_and_period(table: Any) -> None:
    status, body = _metrics("/metrics/portfolio/P1", {"date": "2024-06-28", "period": "1Y"})
    assert status == 200
    assert body["items"] == [_item("portfolio#P1", "2024-06-28", "1Y", "P1", twr=0.0125, n=21)]
    assert isinstance(body["items"][0]["n"], int)


def test_metrics_date_only_and_period_only_and_all(table: Any) -> None:
    by_date = _metrics("/metrics/portfolio/P1", {"date": "2024-06-28"})[1]["items"]
    assert sorted(item["time_period"] for item in by_date) == ["1Y", "ITD", "MTD"]
    by_period = _metrics("/metrics/portfolio/P1", {"period": "1Y"})[1]["items"]
    assert [item["sk"] for item in by_period] == ["2024-05-31#1Y", "2024-06-28#1Y"]
    everything = _metrics("/metrics/portfolio/P1")[1]["items"]
    assert len(everything) == 4


def test_metrics_drop_items_of_foreign_portfolios(table: Any) -> None:
    status, body = _metrics("/metrics/security/ACC1:SEC1")
    assert status == 200
    assert body["entity_id"] == "ACC1:SEC1"
    assert [item["portfolio_id"] for item in body["items"]] == ["P1"]
    star = _metrics("/metrics/security/ACC1:SEC1", tok=token(portfolios=["*"]))[1]["items"]
    assert len(star) == 2


def test_metrics_all_foreign_is_the_same_404_as_none(table: Any) -> None:
    foreign, missing = _metrics("/metrics/account/A9"), _metrics("/metrics/account/A1")
    assert foreign == missing == (404, {"error": "no such entity", "details": []})
    assert _metrics("/metrics/account/A9", tok=token(portfolios=["P3"]))[0] == 200


def test_metrics_paginates(table: Any) -> None:
    blob = "x" * 300_000
    with table.batch_writer() as batch:
        for day in range(1, 9):
            batch.put_item(Item=_item("portfolio#BIG", f"2024-01-{day:02d}", "1Y", "P1", blob=blob))
    client = boto3.client("dynamodb")
    first_page = client.query(
        TableName=TABLE,
        KeyConditionExpression="id = :id",
        ExpressionAttributeValues={":id": {"S": "portfolio#BIG"}},
    )
    assert "LastEvaluatedKey" in first_page  # more than one page exists
    status, body = _metrics("/metrics/portfolio/BIG")
    assert status == 200
    assert len(body["items"]) == 8


def test_metrics_of_several_currencies_as_the_pipeline_writes_them(table: Any) -> None:
    """Items written by the pipeline's own writer: twr_local and fx_effect come back as
    numbers, for a cash position too; a null figure is absent, never 0."""
    write_metrics(boto3.client("dynamodb"), TABLE, fx_metrics(), "2024-06-29T06:00:00.000Z")
    status, body = _metrics("/metrics/cash/A1:CASH.USD", {"period": "ITD"})
    assert status == 200
    assert (body["entity_type"], body["entity_id"]) == ("cash", "A1:CASH.USD")
    [usd] = body["items"]
    assert (usd["twr"], usd["twr_local"], usd["fx_effect"]) == (0.02, 0, 0.02)
    assert (usd["id"], usd["sk"]) == ("cash#A1:CASH.USD", "2024-06-28#ITD")
    [p1] = _metrics("/metrics/portfolio/P1", {"date": "2024-06-28", "period": "ITD"})[1]["items"]
    assert (1 + p1["twr"]) == (1 + p1["twr_local"]) * (1 + p1["fx_effect"]) == 1.875
    [gbp] = _metrics("/metrics/cash/A1:CASH.GBP")[1]["items"]
    assert gbp["twr_local"] == 0
    assert "fx_effect" not in gbp and "twr" not in gbp and "mwr" not in gbp


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/metrics/fund/P1", None),
        ("/metrics/portfolio/P%201", None),
        ("/metrics/security/SEC1", None),
        ("/metrics/portfolio/ACC1:SEC1", None),
        ("/metrics/cash/A1:S1", None),
        ("/metrics/portfolio/P1", {"date": "2024-02-30"}),
        ("/metrics/portfolio/P1", {"date": "28/06/2024"}),
        ("/metrics/portfolio/P1", {"period": "2Y"}),
        ("/metrics/portfolio/P1", {"limit": "5"}),
    ],
)
def test_metrics_bad_parameters_are_400(table: Any, path: str, query: dict | None) -> None:
    status, body = _metrics(path, query)
    assert status == 400
    assert body["details"]


def test_metrics_store_unreachable_is_503(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, dynamodb_table="no-such-table")
    status, body = _metrics("/metrics/portfolio/P1")
    assert status == 503
    assert set(body) == {"error", "details"}


def test_metrics_needs_a_token(table: Any) -> None:
    assert call(rest_event("GET", "/metrics/portfolio/P1"))[0] == 401


# --- fuzzing ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
field_values = st.one_of(
    json_values,
    st.lists(st.sampled_from(["P1", "P2", "P3", "", "P 1", "*"]), max_size=4),
    st.sampled_from(["2024-06-28", "2024-02-30", "2024-6-28", "", "req-1"]),
)
bodies = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.dictionaries(
        st.sampled_from(["portfolio_ids", "as_of", "request_id", "other"]), field_values
    ).map(json.dumps),
)


def _is_valid(raw: str) -> bool:
    from lambda_trigger.errors import ApiError
    from lambda_trigger.validation import parse_calculate_request, parse_json_object

    try:
        request = parse_calculate_request(parse_json_object(raw.encode("utf-8", "surrogatepass")))
    except ApiError:
        return False
    return set(request.portfolio_ids) <= {"P1", "P2"}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=bodies)
def test_fuzzed_bodies_never_raise_and_launch_only_valid_requests(
    graphql: FakeDagster, raw: str
) -> None:
    before = len(graphql.launches())
    status, body = post_calculate(raw)
    launched = len(graphql.launches()) - before
    if _is_valid(raw):
        assert status == 202
    else:
        assert status in (400, 403, 413)
        assert set(body) == {"error", "details"}
        assert launched == 0


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    headers=st.dictionaries(
        st.sampled_from(["Authorization", "authorization", "Content-Type", "X-Other"])
        | st.text(min_size=1, max_size=10),
        st.text(max_size=60) | st.text(max_size=60).map(lambda t: f"Bearer {t}"),
        max_size=4,
    )
)
def test_fuzzed_headers_are_401_and_launch_nothing(
    graphql: FakeDagster, headers: dict[str, str]
) -> None:
    status, body = call(rest_event("POST", "/calculate", body=json.dumps(VALID), headers=headers))
    assert status == 401
    assert set(body) == {"error", "details"}
    assert graphql.requests == []
