"""Shared pytest fixtures: an in-process moto server that boto3 talks to over a real socket.

- ``moto_endpoint`` (session): starts ``moto.server.ThreadedMotoServer`` on 127.0.0.1 at a free
  port, puts fake credentials and ``AWS_DEFAULT_REGION=us-east-1`` in the environment for the
  whole session (so no test can reach real AWS with real credentials), yields the endpoint URL
  (``http://127.0.0.1:<port>``) and stops the server at the end.
- ``dagster_home`` (session, automatic): DAGSTER_HOME is a temporary folder for the session.
- ``aws`` (function): depends on ``moto_endpoint``, sets ``AWS_ENDPOINT_URL`` for the test
  (monkeypatch), wipes every moto backend before the test (``POST /moto-api/reset``) and yields
  the endpoint URL. Pass it explicitly as ``endpoint_url=`` to clients and resources: Timestream
  clients ignore ``AWS_ENDPOINT_URL`` for their data calls (endpoint discovery).

The server runs in this process, so a test may also inspect moto's backends directly
(``moto.backends.get_backend("timestream-write")``) to see what the server stored.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator

import pytest
from dagster_services import free_port
from moto.server import ThreadedMotoServer

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="session", autouse=True)
def dagster_home(tmp_path_factory) -> Iterator[str]:
    """A DAGSTER_HOME of the test session's own, so no developer's instance (or a variable
    pointing at a folder that does not exist) leaks into the tests or their subprocesses."""
    saved = os.environ.get("DAGSTER_HOME")
    home = str(tmp_path_factory.mktemp("dagster_home"))
    os.environ["DAGSTER_HOME"] = home
    yield home
    if saved is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = saved


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Endpoint URL of a moto server shared by the whole test session."""
    saved = {key: os.environ.get(key) for key in [*FAKE_AWS_ENV, "AWS_PROFILE"]}
    os.environ.update(FAKE_AWS_ENV)
    os.environ.pop("AWS_PROFILE", None)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Endpoint URL of the moto server, emptied before this test; AWS_ENDPOINT_URL points at it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    yield moto_endpoint


class _RawBody:
    """The bit of urllib3's response that botocore's AWSResponse reads."""

    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self._body


@pytest.fixture
def aws_error_response():
    """Factory for a canned AWS JSON-protocol error, for faults the emulator cannot produce.

    ``aws_error_response(request, status, error_type, **fields)`` returns a botocore
    ``AWSResponse``; return it from a ``before-send.<service>.<Operation>`` event handler to
    answer that request without sending it. ``fields`` become members of the error body
    (e.g. ``RejectedRecords=[...]``), parsed by botocore as the modeled exception would be.
    """
    import json

    from botocore.awsrequest import AWSResponse

    def build(request, status: int, error_type: str, **fields: object) -> AWSResponse:
        body = json.dumps({"__type": error_type, "message": f"injected {error_type}", **fields})
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected"}
        return AWSResponse(request.url, status, headers, _RawBody(body.encode()))

    return build


# --- test tiers ---------------------------------------------------------------------------------
# `slow`: end to end, a real server or a whole pipeline run (moto's server, dagster-webserver or
# -daemon, `perf-pipeline run` / `materialize` of every asset). `make test-fast` leaves them out.
SLOW_MODULES = frozenset(
    {
        "test_deploy",  # the deployment's webserver and daemon commands against moto
        "test_lambda_e2e",  # the Lambda against a real dagster-webserver + dagster-daemon
        "test_pipeline_aws",  # whole runs on the aws target (moto)
        "test_pipeline_local",  # whole runs on the local target
        "test_sensors_daemon",  # the real dagster-daemon
        "test_ui_runs",  # `perf-pipeline run` seen through a real dagster-webserver and Chromium
    }
)
SLOW_FIXTURES = frozenset({"moto_endpoint"})  # every test that talks to moto's server
SLOW_FIXTURES_OF_MODULE = {
    "test_increments": frozenset({"sample", "computed"}),  # whole `perf-pipeline run`s
    "test_sensors_stale_partitions": frozenset({"computed"}),  # the sensor's runs, computed
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `slow` every test of SLOW_MODULES and every test that needs a slow fixture."""
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        slow = SLOW_FIXTURES | SLOW_FIXTURES_OF_MODULE.get(module, frozenset())
        if module in SLOW_MODULES or slow & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
