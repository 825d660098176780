"""Configuration of the trigger Lambda, read once from the environment at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

from lambda_trigger.errors import ConfigurationError

TriggerMode = Literal["graphql", "sqs"]
TRIGGER_MODES: tuple[TriggerMode, ...] = ("graphql", "sqs")
MIN_SECRET_BYTES = 32
API_GATEWAY_LIMIT_S = 29.0
"""API Gateway ends every integration at 29 s; the function's Timeout (template.yaml) is 28."""
FUNCTION_TIMEOUT_S = 28.0


@dataclass(frozen=True)
class Settings:
    """Everything the Lambda needs from its environment (names in docs/security.md).

    Values a request path needs (the JWT secret, the GraphQL URL in graphql mode, the queue
    URL in sqs mode) may be absent here; the path that needs one raises ConfigurationError
    (a 500 that says nothing more) when it is used, so a misconfigured function still answers.
    Without JWT_ISSUER, JWT_AUDIENCE and a secret of at least 32 bytes every request is a 500.

    Time budget: see ``worst_case_seconds``.
    """

    jwt_secret: str | None = None
    jwt_secret_arn: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_max_lifetime_s: int = 3600
    jwt_leeway_s: int = 30
    dagster_graphql_url: str | None = None
    dagster_location: str = "perf_pipeline"
    dagster_repository: str = "__repository__"
    dagster_job: str = "inputs_job"
    trigger_mode: TriggerMode = "graphql"
    sqs_queue_url: str | None = None
    dynamodb_table: str = "performance-metrics"
    earliest_as_of: date | None = None
    """API_EARLIEST_AS_OF; None: ten years before today (evaluated per request)."""
    max_history_days: int = 3660
    """API_MAX_HISTORY_DAYS: the furthest back (in days from today) a request's as_of may be."""
    request_budget_s: float = 25.0
    """GET /metrics reads another page only while one more AWS call at its worst still ends
    within this many seconds of the request's start."""
    graphql_connect_timeout_s: float = 2.0
    graphql_read_timeout_s: float = 4.0
    graphql_call_timeout_s: float = 5.0
    aws_connect_timeout_s: float = 1.0
    aws_read_timeout_s: float = 2.0
    aws_max_attempts: int = 2
    """Attempts of one AWS call, the first included (botocore's ``total_max_attempts``)."""

    def aws_call_worst_s(self) -> float:
        """One AWS call at its worst: every attempt at connect + read timeout, plus standard
        mode's backoff before each retry (at most 2 ** (retry - 1) s, capped at 20 s)."""
        backoff = sum(min(2 ** (retry - 1), 20) for retry in range(1, self.aws_max_attempts))
        return self.aws_max_attempts * (self.aws_connect_timeout_s + self.aws_read_timeout_s) + (
            backoff
        )

    def worst_case_seconds(self) -> float:
        """The slowest request possible with these timeouts: two Secrets Manager reads (the
        current secret at cold start, then the previous one for a token whose ``kid`` names
        it) and then two GraphQL calls (look up the request, then launch or read its runs),
        or in sqs mode one SQS send; GET /metrics pages stop at ``request_budget_s``."""
        secrets = 2 * self.aws_call_worst_s()
        graphql = 2 * self.graphql_call_timeout_s
        return max(secrets + graphql, secrets + self.aws_call_worst_s(), self.request_budget_s)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from environment variables.

        Raises ConfigurationError for a TRIGGER_MODE other than graphql or sqs, or a number
        or date that does not parse.
        """
        mode = env.get("TRIGGER_MODE", "graphql").strip().lower() or "graphql"
        if mode not in TRIGGER_MODES:
            raise ConfigurationError(f"TRIGGER_MODE must be one of {TRIGGER_MODES}, got {mode!r}")
        try:
            earliest = env.get("API_EARLIEST_AS_OF")
            return cls(
                jwt_secret=env.get("JWT_SECRET") or None,
                jwt_secret_arn=env.get("JWT_SECRET_ARN") or None,
                jwt_issuer=env.get("JWT_ISSUER") or None,
                jwt_audience=env.get("JWT_AUDIENCE") or None,
                jwt_max_lifetime_s=int(env.get("JWT_MAX_LIFETIME_S") or 3600),
                dagster_graphql_url=env.get("DAGSTER_GRAPHQL_URL") or None,
                dagster_location=env.get("DAGSTER_LOCATION") or "perf_pipeline",
                dagster_repository=env.get("DAGSTER_REPOSITORY") or "__repository__",
                dagster_job=env.get("DAGSTER_JOB") or "inputs_job",
                trigger_mode=mode,  # type: ignore[arg-type]
                sqs_queue_url=env.get("PERF_SQS_QUEUE_URL") or None,
                dynamodb_table=env.get("PERF_DYNAMODB_TABLE") or "performance-metrics",
                earliest_as_of=date.fromisoformat(earliest) if earliest else None,
                max_history_days=int(env.get("API_MAX_HISTORY_DAYS") or 3660),
            )
        except ValueError as exc:
            raise ConfigurationError(f"a setting does not parse: {exc}") from exc
