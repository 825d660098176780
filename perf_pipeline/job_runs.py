"""Runs of the code location's jobs started from this process (`perf-pipeline run`), filed
under their jobs in the UI.

The UI lists a job's runs (the Jobs page, a job's Runs tab, the Overview timeline) by the
job name and the hidden run tag ``.dagster/repository`` = ``<repository>@<location>``, which
Dagster writes only for a run created with a remote job origin, as the webserver, the daemon
and `dagster job launch` create theirs. ``execute_job`` and ``execute_in_process`` create
runs with a Python origin at most, so their runs show on the Runs page but under no job.
Here a run gets both origins: the remote one naming the code location of workspace.yaml
(LOCATION_NAME) and the Python one that rebuilds the job from this module's definitions
(steps in other processes load it again); it is then executed in this process, by the job's
executor: in-process with one worker, Dagster's multiprocess executor with more.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from dagster import DagsterInstance
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.definitions.repository_definition.valid_definitions import (
    SINGLETON_REPOSITORY_NAME,
)
from dagster._core.execution.api import JobExecutionResult, execute_run
from dagster._core.remote_origin import (
    InProcessCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

MODULE, ATTRIBUTE = "perf_pipeline.definitions", "defs"
LOCATION_NAME = "perf_pipeline"
"""The code location's name in workspace.yaml and in pyproject.toml's [tool.dg] (dg dev): a
run's origin must name it for the UI to file the run under its job."""
DEFAULT_EXECUTOR = "multi_or_in_process_executor"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def reconstructable_job(name: str) -> ReconstructableJob:
    """The job `name` of the definitions module, as another process rebuilds it, built from
    the environment of now: Dagster keeps the job it built last (a cache per process), which
    would keep the settings of an earlier command run in this process (tests run several)."""
    ReconstructableJob.get_definition.cache_clear()
    ReconstructableJob.get_repository_definition.cache_clear()
    return ReconstructableRepository.for_module(
        MODULE, ATTRIBUTE, working_directory=os.getcwd()
    ).get_reconstructable_job(name)


def remote_origin(name: str) -> RemoteJobOrigin:
    """The origin of job `name` in the code location LOCATION_NAME (its single repository)."""
    target = LoadableTargetOrigin(
        executable_path=sys.executable,
        module_name=MODULE,
        attribute=ATTRIBUTE,
        working_directory=os.getcwd(),
    )
    location = InProcessCodeLocationOrigin(
        loadable_target_origin=target, location_name=LOCATION_NAME
    )
    return RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=location, repository_name=SINGLETON_REPOSITORY_NAME
        ),
        job_name=name,
    )


def executor_config(workers: int) -> dict[str, Any]:
    """Run config of the job's default executor: in this process for one worker, else
    `workers` step processes forked from a server that imported the definitions once."""
    if workers == 1:
        return {"execution": {"config": {"in_process": {}}}}
    start = {"forkserver": {"preload_modules": [MODULE]}}
    return {
        "execution": {
            "config": {"multiprocess": {"max_concurrent": workers, "start_method": start}}
        }
    }


def execute(
    instance: DagsterInstance,
    name: str,
    *,
    tags: Mapping[str, str] | None = None,
    workers: int = 1,
) -> JobExecutionResult:
    """Create a run of job `name` with its remote and Python origins, and execute it here
    (console log at WARNING); its result, failed or not. `workers` configures Dagster's
    default executor; a job with another (PERF_STEP_EXECUTOR=ecs) runs its steps there."""
    job = reconstructable_job(name)
    definition = job.get_definition()
    default = definition.executor_def.name == DEFAULT_EXECUTOR
    run = instance.create_run_for_job(
        job_def=definition,
        run_config={**QUIET, **(executor_config(workers) if default else {})},
        tags=dict(tags or {}),
        remote_job_origin=remote_origin(name),
        job_code_origin=job.get_python_origin(),
    )
    return execute_run(job, run, instance)
