"""A minimal client for Dagster's GraphQL API (stdlib http.client, explicit timeouts).

Only three operations: find runs by tag, launch a run, read one run. Transport failures
(refused connection, connect or read timeout, HTTP 5xx, a body that is not GraphQL JSON)
raise DagsterUnreachableError; a launch Dagster answers but refuses raises LaunchRejectedError.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lambda_trigger.errors import ConfigurationError

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
DEFAULT_CALL_TIMEOUT_S = 7.0

RUNS_BY_TAG_QUERY = """
query RunsByTag($filter: RunsFilter, $limit: Int) {
  runsOrError(filter: $filter, limit: $limit) {
    __typename
    ... on Runs { results { runId jobName status tags { key value } } }
    ... on Error { message }
  }
}
"""

LAUNCH_RUN_MUTATION = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId jobName status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId jobName status tags { key value } }
    ... on Error { message }
  }
}
"""


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return (ip.is_private or ip.is_loopback) and not (ip.is_multicast or ip.is_unspecified)


def check_graphql_url(url: str, resolve=socket.getaddrinfo) -> None:
    """ConfigurationError unless `url` is https, or http to a host whose every address is
    private or loopback (a literal address, or a name that resolves only to such addresses):
    plain http to a public host would send launches and tokens' effects over the internet
    to a webserver without authentication."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError("DAGSTER_GRAPHQL_URL must be an http(s) URL")
    if parts.scheme == "https":
        return
    try:
        addresses = {info[4][0] for info in resolve(parts.hostname, parts.port or 80)}
    except (OSError, UnicodeError) as exc:
        raise ConfigurationError("DAGSTER_GRAPHQL_URL's host does not resolve") from exc
    if not addresses or not all(_private(str(address)) for address in addresses):
        raise ConfigurationError(
            "DAGSTER_GRAPHQL_URL is plain http to a public address; use https or a private host"
        )


class DagsterUnreachableError(Exception):
    """Dagster did not answer usably in time; the caller cannot know more than that."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class LaunchRejectedError(Exception):
    """Dagster answered a launch with an error type (the run was not created)."""

    def __init__(self, typename: str, messages: list[str]) -> None:
        super().__init__(f"{typename}: {'; '.join(messages)}")
        self.typename = typename
        self.messages = messages


class RunNotFoundError(Exception):
    """runOrError answered RunNotFoundError."""


@dataclass(frozen=True)
class RunInfo:
    """A Dagster run as this API exposes it."""

    run_id: str
    status: str
    tags: dict[str, str] = field(default_factory=dict)
    job: str = ""


@dataclass(frozen=True)
class JobSelector:
    """Where the job lives in the Dagster workspace."""

    location: str
    repository: str
    job: str


def _run_info(node: dict[str, Any]) -> RunInfo:
    tags = {tag["key"]: tag["value"] for tag in node.get("tags") or []}
    return RunInfo(
        run_id=node["runId"], status=node["status"], tags=tags, job=node.get("jobName") or ""
    )


def _result(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The union object `data[name]` with its __typename; DagsterUnreachableError if malformed."""
    result = data.get(name)
    if not isinstance(result, dict) or not isinstance(result.get("__typename"), str):
        raise DagsterUnreachableError(f"Dagster GraphQL answered no {name}", request_sent=True)
    return result


def _shut_down(connection: http.client.HTTPConnection, expired: threading.Event) -> None:
    """Mark the call expired and end any blocking send or read on its socket at once."""
    expired.set()
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class DagsterClient:
    """POSTs GraphQL documents to `url` under three limits: `connect_timeout_s` for the TCP
    (and TLS) connect, `read_timeout_s` for any one socket read, and `call_timeout_s` for the
    whole call from connect to the last body byte. The last one is what bounds a server that
    drips bytes just faster than the read timeout: when it runs out, a timer shuts the socket
    down and the call fails as timed out.
    """

    def __init__(
        self,
        url: str,
        connect_timeout_s: float,
        read_timeout_s: float,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
    ) -> None:
        check_graphql_url(url)
        self._parts = urlsplit(url)
        self._connect_timeout_s = min(connect_timeout_s, call_timeout_s)
        self._read_timeout_s = min(read_timeout_s, call_timeout_s)
        self._call_timeout_s = call_timeout_s

    def _post(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The `data` of a GraphQL response; DagsterUnreachableError on any transport problem."""
        parts = self._parts
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(parts.hostname, parts.port, timeout=self._connect_timeout_s)
        payload = json.dumps({"query": query, "variables": variables}).encode()
        sent = False
        expired = threading.Event()
        deadline = threading.Timer(self._call_timeout_s, _shut_down, (connection, expired))
        deadline.daemon = True
        deadline.start()
        try:
            connection.connect()
            if expired.is_set():  # the timer fired before the socket existed
                raise TimeoutError("call deadline passed during connect")
            connection.sock.settimeout(self._read_timeout_s)
            connection.request(
                "POST",
                parts.path or "/graphql",
                body=payload,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
            sent = True
            response = connection.getresponse()
            body = response.read(MAX_RESPONSE_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            timed_out = expired.is_set() or isinstance(exc, TimeoutError)
            reason = "timed out" if timed_out else type(exc).__name__
            raise DagsterUnreachableError(f"Dagster GraphQL {reason}", request_sent=sent) from exc
        finally:
            deadline.cancel()
            connection.close()
        if expired.is_set():  # a shut-down socket can end a body early without an error
            raise DagsterUnreachableError("Dagster GraphQL timed out", request_sent=sent)
        if response.status >= 500 or len(body) > MAX_RESPONSE_BYTES:
            raise DagsterUnreachableError(
                f"Dagster GraphQL HTTP {response.status}", request_sent=True
            )
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise DagsterUnreachableError(
                "Dagster GraphQL answered non-JSON", request_sent=True
            ) from exc
        data = document.get("data") if isinstance(document, dict) else None
        if not isinstance(data, dict) or document.get("errors"):
            messages = [e.get("message", "") for e in document.get("errors") or []]
            raise DagsterUnreachableError(
                f"Dagster GraphQL errors: {'; '.join(messages) or 'no data'}", request_sent=True
            )
        return data

    def runs_with_tags(
        self, tags: Mapping[str, str], limit: int = 1, job: str | None = None
    ) -> list[RunInfo]:
        """Runs (of `job` only, when given) carrying every tag key=value of `tags`, newest
        first (at most `limit`)."""
        run_filter: dict[str, Any] = {
            "tags": [{"key": key, "value": value} for key, value in tags.items()]
        }
        if job:
            run_filter["pipelineName"] = job
        data = self._post(RUNS_BY_TAG_QUERY, {"filter": run_filter, "limit": limit})
        result = _result(data, "runsOrError")
        if result["__typename"] != "Runs":
            raise DagsterUnreachableError(
                f"runsOrError answered {result['__typename']}", request_sent=True
            )
        return [_run_info(node) for node in result["results"]]

    def launch_run(
        self,
        selector: JobSelector,
        run_config: dict[str, Any],
        tags: dict[str, str],
    ) -> RunInfo:
        """Launch `selector`'s job with this run config and these tags; the new run."""
        execution_params = {
            "selector": {
                "repositoryLocationName": selector.location,
                "repositoryName": selector.repository,
                "jobName": selector.job,
            },
            "runConfigData": run_config,
            "executionMetadata": {
                "tags": [{"key": key, "value": value} for key, value in tags.items()]
            },
        }
        data = self._post(LAUNCH_RUN_MUTATION, {"executionParams": execution_params})
        result = _result(data, "launchRun")
        typename = result["__typename"]
        if typename == "LaunchRunSuccess":
            return _run_info(result["run"])
        messages = [e.get("message", "") for e in result.get("errors") or []]
        if result.get("message"):
            messages.insert(0, result["message"])
        raise LaunchRejectedError(typename, messages)

    def get_run(self, run_id: str) -> RunInfo:
        """The run with this id; RunNotFoundError when Dagster does not know it."""
        result = _result(self._post(RUN_QUERY, {"runId": run_id}), "runOrError")
        typename = result["__typename"]
        if typename == "Run":
            return _run_info(result)
        if typename == "RunNotFoundError":
            raise RunNotFoundError(run_id)
        raise DagsterUnreachableError(f"runOrError answered {typename}", request_sent=True)
