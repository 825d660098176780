"""The Lambda's worst case against slow upstreams: real sockets on 127.0.0.1 that accept a
connection and then answer late or never.

botocore's ``Config(retries={"max_attempts": n})`` means n retries after the first attempt;
the Lambda configures ``total_max_attempts`` so that ``aws_max_attempts`` counts the first
attempt too. The server counts the connections it is asked for, so the count of attempts is
observed, not assumed; the elapsed time of each slow path is compared with the bound that
``Settings`` computes for it (plus scheduling slack), and the bound of the default settings
with the function's Timeout (28 s) under API Gateway's 29 s.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from test_lambda_api import AUDIENCE, ISSUER, VALID, auth, call, rest_event, use

from lambda_trigger import handler
from lambda_trigger.aws_clients import make_client
from lambda_trigger.errors import ServiceUnavailableError
from lambda_trigger.jwt_secret import JwtSecretSource
from lambda_trigger.settings import API_GATEWAY_LIMIT_S, FUNCTION_TIMEOUT_S, Settings

SLACK_S = 1.0  # thread scheduling and interpreter time on a busy 2-core machine


class SlowServer:
    """Accepts TCP connections on 127.0.0.1 and counts them. Each connection reads one HTTP
    request; the first `answered` requests get `answer` after `delay_s`, later ones nothing
    (the socket stays open until the server stops)."""

    def __init__(self, answer: bytes | None = None, answered: int = 0, delay_s: float = 0.0):
        self.answer, self.answered, self.delay_s = answer, answered, delay_s
        self.connections = 0
        self.requests = 0
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._held.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            while True:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                while len(body) < length:
                    body += connection.recv(65536)
                with self._lock:
                    self.requests += 1
                    answer = self.answer if self.requests <= self.answered else None
                if answer is None:
                    return  # hold the socket: the client waits for its read timeout
                time.sleep(self.delay_s)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
                    + f"Content-Length: {len(answer)}\r\n\r\n".encode()
                    + answer
                )
        except OSError:
            return

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for connection in self._held:
                connection.close()


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[SlowServer]]:
    """Servers to stop after the test; fake credentials and a region for boto3."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    servers: list[SlowServer] = []
    yield servers
    for server in servers:
        server.close()


FAST: dict[str, Any] = {
    "aws_connect_timeout_s": 0.5,
    "aws_read_timeout_s": 0.4,
    "aws_max_attempts": 2,
    "graphql_connect_timeout_s": 0.5,
    "graphql_read_timeout_s": 0.4,
    "graphql_call_timeout_s": 0.6,
}


def test_default_worst_case_is_under_the_function_timeout_and_api_gateway() -> None:
    settings = Settings.from_env({})
    assert settings.worst_case_seconds() < FUNCTION_TIMEOUT_S < API_GATEWAY_LIMIT_S


@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_aws_max_attempts_counts_the_first_attempt(
    slow: list[SlowServer], monkeypatch: pytest.MonkeyPatch, attempts: int
) -> None:
    server = SlowServer()
    slow.append(server)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    settings = Settings(**{**FAST, "aws_max_attempts": attempts})
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt-AbCdEf"
    source = JwtSecretSource(None, arn, lambda: make_client("secretsmanager", settings))
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError):
        source.get()
    elapsed = time.monotonic() - started
    assert server.requests == attempts  # one request per attempt, the first one included
    assert elapsed <= settings.aws_call_worst_s() + SLACK_S
    assert elapsed >= attempts * settings.aws_read_timeout_s  # each attempt waited its timeout


def test_worst_calculate_with_slow_secrets_manager_and_slow_dagster(
    slow: list[SlowServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secrets Manager answers its last attempt just inside the read timeout; Dagster
    answers the lookup just inside the call deadline and never answers the launch."""
    secret = {"SecretString": "s" * 40, "VersionId": "v1", "ARN": "a", "Name": "n"}
    aws = SlowServer(json.dumps(secret).encode(), answered=10**6, delay_s=0.0)
    slow.append(aws)
    aws.answered = 0  # refuse the first attempt...
    runs = json.dumps({"data": {"runsOrError": {"__typename": "Runs", "results": []}}}).encode()
    dagster = SlowServer(runs, answered=1, delay_s=0.3)
    slow.append(dagster)

    def second_attempt_answers() -> None:  # ...and answer the second, late
        while aws.requests < 1:
            time.sleep(0.01)
        aws.answered, aws.delay_s = 2, 0.3

    threading.Thread(target=second_attempt_answers, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.url)
    overrides = {**FAST, "jwt_secret": None}
    overrides |= {"jwt_secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:x"}
    use(monkeypatch, **overrides, dagster_graphql_url=f"{dagster.url}/graphql")
    settings = handler.dependencies.settings
    now = int(time.time())
    claims = {"sub": "a", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60}
    token = jwt.encode({**claims, "portfolios": ["P1", "P2"]}, "s" * 40)
    started = time.monotonic()
    status, body = call(
        rest_event("POST", "/calculate", body=json.dumps(VALID), headers=auth(token))
    )
    elapsed = time.monotonic() - started
    assert status == 503, body
    assert (aws.requests, dagster.requests) == (2, 2)  # both AWS attempts, lookup + launch
    assert elapsed <= settings.worst_case_seconds() + SLACK_S
    assert elapsed >= settings.aws_read_timeout_s + settings.graphql_call_timeout_s


def test_metrics_pages_stop_at_the_request_budget(
    slow: list[SlowServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that answers every page late and always has one more page."""
    page = {"Items": [], "LastEvaluatedKey": {"id": {"S": "portfolio#P1"}, "sk": {"S": "x"}}}
    server = SlowServer(json.dumps(page).encode(), answered=10**6, delay_s=0.2)
    slow.append(server)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    use(monkeypatch, **FAST, request_budget_s=5.0)
    settings = handler.dependencies.settings
    started = time.monotonic()
    status, body = call(rest_event("GET", "/metrics/portfolio/P1", headers=auth()))
    elapsed = time.monotonic() - started
    assert status == 503, body
    assert server.requests >= 3  # it did page
    assert elapsed <= settings.request_budget_s + SLACK_S
