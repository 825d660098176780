"""A real dagster-webserver and dagster-daemon on 127.0.0.1, for end-to-end tests.

`dagster_services(root, env)` writes a temporary instance (DAGSTER_HOME with a dagster.yaml:
queued run coordinator polled every second, one run at a time since the local target's DuckDB
file has a single writer, no telemetry) and a workspace.yaml that loads one
Python module as one named code location, starts both services from the venv's bin in their
own process groups with `env` added to this process's environment, waits (bounded) until the
webserver answers GraphQL with the code location loaded, and yields a `DagsterServices`.
On exit, even after a failure, both process groups (services, code servers and run workers)
get SIGTERM, then SIGKILL after a grace period. Each service logs to a file under `root`;
`DagsterServices.log_tails()` gives their last lines for failure messages.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 120.0
STOP_GRACE_S = 15.0

INSTANCE_YAML = """\
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
    max_concurrent_runs: 1
telemetry:
  enabled: false
"""

PIPELINE_ENV = {
    # A ranged run records one materialization per (day, shard) partition: in batches, and
    # planned as one event per asset (as `perf-pipeline run` sets them).
    # Few partitions: 4 shards from 2023-01-02 (the test inputs are from 2024).
    "PERF_SHARDS": "4",
    "PERF_PARTITION_START": "2023-01-02",
}
"""Set for every process `start` starts, over its `env` (a developer's own settings must not
make the test partitions many)."""

WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


class ServicesError(RuntimeError):
    """The services did not start, or GraphQL did not answer usably."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_instance(home: Path) -> Path:
    """A DAGSTER_HOME folder with this module's dagster.yaml and its storage created.

    The storage is created here, before any service starts: two processes creating the
    SQLite schema at once leave it with two alembic heads, and neither can open it.
    """
    from dagster import DagsterInstance

    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    with DagsterInstance.from_config(str(home)):
        pass
    return home


def write_workspace(path: Path, module: str, location: str, working_directory: Path) -> Path:
    """A workspace.yaml loading `module` as the code location named `location`."""
    entry = {
        "python_module": {
            "module_name": module,
            "location_name": location,
            "working_directory": str(working_directory),
        }
    }
    path.write_text(json.dumps({"load_from": [entry]}, indent=2))  # JSON is YAML
    return path


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a text file ('' when it does not exist)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def graphql_post(
    url: str, query: str, variables: dict[str, Any] | None = None, timeout_s: float = 10.0
) -> dict[str, Any]:
    """The `data` of a GraphQL answer; ServicesError on transport errors or GraphQL errors."""
    payload = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        url, data=payload, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            document = json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise ServicesError(f"GraphQL at {url}: {type(exc).__name__}: {exc}") from exc
    if document.get("errors") or not isinstance(document.get("data"), dict):
        raise ServicesError(f"GraphQL at {url} answered errors: {document.get('errors')}")
    return document["data"]


@dataclass
class DagsterServices:
    """A running webserver + daemon pair and where to reach and inspect them."""

    graphql_url: str
    location: str
    home: Path
    workspace: Path
    logs: dict[str, Path]
    processes: dict[str, subprocess.Popen[bytes]]

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a GraphQL query against the webserver."""
        return graphql_post(self.graphql_url, query, variables)

    def log_tails(self, lines: int = 40) -> str:
        """The last lines of each service's log, labelled, for a failure message."""
        return "\n".join(
            f"--- {name} ({path}) ---\n{tail(path, lines)}" for name, path in self.logs.items()
        )

    def check_alive(self) -> None:
        """ServicesError naming any service that has exited."""
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise ServicesError(f"Dagster services exited: {dead}\n{self.log_tails()}")


def _location_state(data: dict[str, Any], location: str) -> tuple[str, str | None]:
    """('loaded' | 'loading' | 'error', message) of one location in a workspace answer."""
    workspace = data["workspaceOrError"]
    if workspace["__typename"] != "Workspace":
        return "error", workspace.get("message")
    for entry in workspace["locationEntries"]:
        if entry["name"] != location:
            continue
        loaded = entry.get("locationOrLoadError") or {}
        if loaded.get("__typename") == "PythonError":
            return "error", loaded.get("message")
        if entry["loadStatus"] == "LOADED" and loaded.get("__typename") == "RepositoryLocation":
            return "loaded", None
    return "loading", None


def wait_until_loaded(services: DagsterServices, timeout_s: float) -> None:
    """Block until GraphQL answers with the location loaded; ServicesError with the logs'
    tails when a service exits, the location fails to load, or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    last_problem = "no answer yet"
    while time.monotonic() < deadline:
        services.check_alive()
        try:
            state, message = _location_state(services.graphql(WORKSPACE_QUERY), services.location)
        except ServicesError as exc:
            state, message = "loading", str(exc)
        if state == "loaded":
            return
        if state == "error":
            raise ServicesError(
                f"code location {services.location!r} failed to load: {message}\n"
                f"{services.log_tails()}"
            )
        last_problem = message or f"location {services.location!r} not loaded yet"
        time.sleep(0.5)
    raise ServicesError(
        f"Dagster not ready within {timeout_s:.0f} s ({last_problem})\n{services.log_tails()}"
    )


def start(command: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`command` in its own process group (stop it with `stop`), output to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**env, **PIPELINE_ENV},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it stops its children
        )


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def stop(process: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the process's group and wait up to `grace_s`; then SIGKILL whatever of the
    group is left (the leader if it hung, else children it did not stop)."""
    _signal_group(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    _signal_group(process.pid, signal.SIGKILL)
    process.wait(timeout=grace_s)


@contextmanager
def dagster_services(
    root: Path,
    env: Mapping[str, str],
    *,
    module: str = "perf_pipeline.definitions",
    location: str = "perf_pipeline",
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
) -> Iterator[DagsterServices]:
    """Start webserver + daemon over a fresh instance in `root`; stop both on exit.

    `env` is added to os.environ for both services (DAGSTER_HOME is set to `root/home`).
    """
    home = write_instance(root / "home")
    workspace = write_workspace(root / "workspace.yaml", module, location, REPO_ROOT)
    full_env = {**os.environ, **env, "DAGSTER_HOME": str(home)}
    port = free_port()
    logs = {"webserver": root / "webserver.log", "daemon": root / "daemon.log"}
    commands = {
        "webserver": [
            str(BIN / "dagster-webserver"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(workspace),
        ],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
    }
    with ExitStack() as stack:
        processes: dict[str, subprocess.Popen[bytes]] = {}
        for name, command in commands.items():
            processes[name] = start(command, full_env, logs[name])
            stack.callback(stop, processes[name])
        services = DagsterServices(
            graphql_url=f"http://127.0.0.1:{port}/graphql",
            location=location,
            home=home,
            workspace=workspace,
            logs=logs,
            processes=processes,
        )
        wait_until_loaded(services, startup_timeout_s)
        yield services
