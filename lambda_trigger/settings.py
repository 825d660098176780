"""Configuration of the trigger Lambda, read once from the environment at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from lambda_trigger.dagster_client import DEFAULT_CALL_TIMEOUT_S
from lambda_trigger.errors import ConfigurationError

TriggerMode = Literal["graphql", "sqs"]
TRIGGER_MODES: tuple[TriggerMode, ...] = ("graphql", "sqs")


@dataclass(frozen=True)
class Settings:
    """Everything the Lambda needs from its environment.

    Required values that a request path needs (the JWT secret, the GraphQL URL in graphql
    mode, the queue URL in sqs mode) may be absent here; the path that needs one raises
    ConfigurationError (a 500) when it is used, so a misconfigured function still answers.

    Time budget (API Gateway gives up after 29 s, the function's Timeout is 28 s): the worst
    POST /calculate is a cold-start Secrets Manager read, aws_max_attempts x (connect + read)
    plus standard-mode backoff (at most 1 s before the 2nd attempt) = 2 x (2 + 3) + 1 = 11 s,
    then two GraphQL calls (lookup, launch) of at most graphql_call_timeout_s each = 14 s:
    25 s in all.
    """

    jwt_secret: str | None = None
    jwt_secret_arn: str | None = None
    dagster_graphql_url: str | None = None
    dagster_location: str = "perf_pipeline"
    dagster_repository: str = "__repository__"
    dagster_job: str = "inputs_job"
    trigger_mode: TriggerMode = "graphql"
    sqs_queue_url: str | None = None
    dynamodb_table: str = "performance-metrics"
    graphql_connect_timeout_s: float = 3.0
    graphql_read_timeout_s: float = 5.0
    graphql_call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S
    aws_connect_timeout_s: float = 2.0
    aws_read_timeout_s: float = 3.0
    aws_max_attempts: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from environment variables (docs/api.md, "Settings").

        Raises ConfigurationError for a TRIGGER_MODE other than graphql or sqs.
        """
        mode = env.get("TRIGGER_MODE", "graphql").strip().lower() or "graphql"
        if mode not in TRIGGER_MODES:
            raise ConfigurationError(f"TRIGGER_MODE must be one of {TRIGGER_MODES}, got {mode!r}")
        return cls(
            jwt_secret=env.get("JWT_SECRET") or None,
            jwt_secret_arn=env.get("JWT_SECRET_ARN") or None,
            dagster_graphql_url=env.get("DAGSTER_GRAPHQL_URL") or None,
            dagster_location=env.get("DAGSTER_LOCATION") or "perf_pipeline",
            dagster_repository=env.get("DAGSTER_REPOSITORY") or "__repository__",
            dagster_job=env.get("DAGSTER_JOB") or "inputs_job",
            trigger_mode=mode,  # type: ignore[arg-type]
            sqs_queue_url=env.get("PERF_SQS_QUEUE_URL") or None,
            dynamodb_table=env.get("PERF_DYNAMODB_TABLE") or "performance-metrics",
        )
