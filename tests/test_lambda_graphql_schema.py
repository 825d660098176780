"""The trigger's GraphQL documents and variables are valid against Dagster's own schema.

The Lambda itself never imports Dagster; this test does, to check the stand-in server of
test_lambda_api.py is not hiding a field or type that the real webserver would refuse.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from dagster_graphql.schema import create_schema
from graphql import GraphQLSchema, OperationDefinitionNode, parse, validate
from graphql.execution.values import get_variable_values

from lambda_trigger.dagster_client import (
    LAUNCH_RUN_MUTATION,
    RUN_QUERY,
    RUNS_BY_TAG_QUERY,
    DagsterClient,
    JobSelector,
)
from lambda_trigger.triggers import run_config, run_tags
from lambda_trigger.validation import CalculateRequest


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return create_schema().graphql_schema


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    answers = {
        "runsOrError": {"__typename": "Runs", "results": []},
        "launchRun": {"__typename": "LaunchRunSuccess", "run": {"runId": "r", "status": "QUEUED"}},
        "runOrError": {"__typename": "Run", "runId": "r", "status": "QUEUED", "tags": []},
    }

    def post(self: DagsterClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        calls.append((query, variables))
        return {name: answer for name, answer in answers.items() if name in query}

    monkeypatch.setattr(DagsterClient, "_post", post)
    return calls


def test_documents_validate_against_dagster_schema(schema: GraphQLSchema) -> None:
    for document in (RUNS_BY_TAG_QUERY, LAUNCH_RUN_MUTATION, RUN_QUERY):
        assert validate(schema, parse(document)) == []


def test_a_wrong_field_would_be_caught(schema: GraphQLSchema) -> None:
    assert validate(schema, parse('query { runOrError(runId: "x") { ... on Run { nope } } }'))


def test_variables_coerce_to_dagster_input_types(
    schema: GraphQLSchema, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    client = DagsterClient("https://dagster.invalid/graphql", 1.0, 1.0)
    request = CalculateRequest(("P1", "P2"), date(2024, 6, 28), "req-1")
    client.runs_with_tags(
        {"perf/request_id": "req-1", "perf/requested_by": "analyst-1"}, job="inputs_job"
    )
    client.launch_run(
        JobSelector("perf_pipeline", "__repository__", "performance_job"),
        run_config(request),
        run_tags(request),
    )
    client.get_run("r")
    assert len(sent) == 3
    for query, variables in sent:
        [operation] = parse(query).definitions
        assert isinstance(operation, OperationDefinitionNode)
        coerced = get_variable_values(schema, operation.variable_definitions, variables)
        assert isinstance(coerced, dict), coerced  # a list here holds the coercion errors
