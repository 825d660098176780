"""The collaborators of the routes, built lazily from Settings and kept for the container.

Each client is created on first use (a request that needs no AWS creates no AWS client);
a missing setting raises ConfigurationError when the path that needs it runs.
"""

from __future__ import annotations

from functools import cached_property

from lambda_trigger.aws_clients import make_client
from lambda_trigger.dagster_client import DagsterClient, JobSelector
from lambda_trigger.errors import ConfigurationError
from lambda_trigger.jwt_secret import JwtSecretSource
from lambda_trigger.metrics_reader import MetricsReader
from lambda_trigger.settings import Settings
from lambda_trigger.triggers import GraphqlTrigger, SqsTrigger, Trigger


class Dependencies:
    """Lazily built JWT secret, Dagster client, trigger and metrics reader."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def jwt_secret(self) -> JwtSecretSource:
        """The signing secrets, from JWT_SECRET or Secrets Manager (current and previous)."""
        return JwtSecretSource(
            self.settings.jwt_secret,
            self.settings.jwt_secret_arn,
            lambda: make_client("secretsmanager", self.settings),
        )

    @cached_property
    def dagster(self) -> DagsterClient:
        """The GraphQL client for DAGSTER_GRAPHQL_URL."""
        if not self.settings.dagster_graphql_url:
            raise ConfigurationError("DAGSTER_GRAPHQL_URL is not set")
        return DagsterClient(
            self.settings.dagster_graphql_url,
            connect_timeout_s=self.settings.graphql_connect_timeout_s,
            read_timeout_s=self.settings.graphql_read_timeout_s,
            call_timeout_s=self.settings.graphql_call_timeout_s,
        )

    @cached_property
    def trigger(self) -> Trigger:
        """GraphQL launch or SQS message, per TRIGGER_MODE."""
        if self.settings.trigger_mode == "sqs":
            if not self.settings.sqs_queue_url:
                raise ConfigurationError("TRIGGER_MODE=sqs needs PERF_SQS_QUEUE_URL")
            return SqsTrigger(make_client("sqs", self.settings), self.settings.sqs_queue_url)
        selector = JobSelector(
            location=self.settings.dagster_location,
            repository=self.settings.dagster_repository,
            job=self.settings.dagster_job,
        )
        return GraphqlTrigger(self.dagster, selector)

    @cached_property
    def metrics(self) -> MetricsReader:
        """The DynamoDB reader of PERF_DYNAMODB_TABLE."""
        return MetricsReader(
            make_client("dynamodb", self.settings),
            self.settings.dynamodb_table,
            call_worst_s=self.settings.aws_call_worst_s(),
        )
