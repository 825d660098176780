"""API Gateway (REST, proxy) entry point: `lambda_trigger.handler.lambda_handler`.

Routes are small functions; every failure is a domain exception that an exception handler
maps to its status and the body `{"error": ..., "details": [...]}`. Authentication runs
before anything else, then validation, then authorization; only then is anything launched
or queued. Settings are read from the environment once, at cold start.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambda_trigger.auth import Principal, authenticate
from lambda_trigger.dagster_client import DagsterUnreachableError, RunNotFoundError
from lambda_trigger.dependencies import Dependencies
from lambda_trigger.errors import ApiError, ConfigurationError, MethodNotAllowedError
from lambda_trigger.reports import ROUTE as _REPORTS
from lambda_trigger.reports import ReportLinks, ReportSettings, get_report, s3_client
from lambda_trigger.request_status import request_status
from lambda_trigger.settings import Settings
from lambda_trigger.triggers import run_portfolio_ids
from lambda_trigger.validation import (
    parse_calculate_request,
    parse_json_object,
    parse_metrics_query,
    parse_run_id,
    raw_body_bytes,
)

logger = Logger(service="perf-trigger")
app = APIGatewayRestResolver()
dependencies = Dependencies(Settings.from_env(os.environ))
reports = ReportLinks(ReportSettings.from_env(os.environ), lambda: s3_client(dependencies.settings))

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_CALCULATE = "/calculate"
_RUN = "/runs/<run_id>"
_METRICS = "/metrics/<entity_type>/<entity_id>"


def _error(status: int, message: str, details: list[Any] | None = None) -> Response:
    return Response(
        status_code=int(status),
        content_type=content_types.APPLICATION_JSON,
        body={"error": message, "details": details or []},
    )


def _principal() -> Principal:
    authorization = app.current_event.headers.get("authorization")
    return authenticate(authorization, dependencies.jwt_secret.get)


@app.post(_CALCULATE)
def calculate() -> Response:
    """Validate, authorize, then launch (GraphQL) or queue (SQS) one calculation."""
    principal = _principal()
    event = app.current_event
    body = parse_json_object(raw_body_bytes(event.body, bool(event.is_base64_encoded)))
    request = parse_calculate_request(body)
    principal.require(request.portfolio_ids)
    submission = dependencies.trigger.submit(request, principal.subject)
    logger.info(
        "calculation submitted",
        subject=principal.subject,
        request_id=submission.request_id,
        run_id=submission.run_id,
        status=submission.status,
        portfolio_count=len(request.portfolio_ids),
    )
    return Response(
        status_code=HTTPStatus.ACCEPTED.value,
        content_type=content_types.APPLICATION_JSON,
        body=asdict(submission),
    )


@app.get(_RUN)
def get_run(run_id: str) -> dict[str, str]:
    """The status of a run the token may see (its portfolio tag must be allowed); for a run
    of the inputs job, the status of the whole request (request_status.py)."""
    principal = _principal()
    run = dependencies.dagster.get_run(parse_run_id(run_id))
    portfolio_ids = run_portfolio_ids(run.tags)
    if portfolio_ids is None:
        principal.require_all_portfolios()
    else:
        principal.require(portfolio_ids)
    status = request_status(dependencies.dagster, run, dependencies.settings.dagster_job)
    return {"run_id": run.run_id, "status": status}


@app.get(_METRICS)
def get_metrics(entity_type: str, entity_id: str) -> dict[str, Any]:
    """Stored performance_metrics items of one entity that the token may see."""
    principal = _principal()
    query = parse_metrics_query(entity_type, entity_id, app.current_event.query_string_parameters)
    items = dependencies.metrics.read(query)
    allowed = [
        item
        for item in items
        if principal.portfolios is None or item.get("portfolio_id") in principal.portfolios
    ]
    if items and not allowed:
        principal.require({str(item.get("portfolio_id")) for item in items})
    return {"entity_type": entity_type, "entity_id": entity_id, "items": allowed}


@app.get(_REPORTS)
def get_report_url(portfolio_id: str) -> dict[str, Any]:
    """A short-lived URL of a stored report of a portfolio the token may see (reports.py)."""
    query = app.current_event.query_string_parameters
    return get_report(_principal(), reports, portfolio_id, query)


@app.route(_CALCULATE, method=[m for m in _METHODS if m != "POST"])
@app.route(_RUN, method=[m for m in _METHODS if m != "GET"])
@app.route(_METRICS, method=[m for m in _METHODS if m != "GET"])
@app.route(_REPORTS, method=[m for m in _METHODS if m != "GET"])
def method_not_allowed(**_: str) -> Response:
    """A known path with a method it does not support."""
    raise MethodNotAllowedError("method not allowed on this path")


@app.not_found
def not_found(_: Exception) -> Response:
    """Any path that is not a route."""
    return _error(HTTPStatus.NOT_FOUND, "no such route")


@app.exception_handler(ApiError)
def api_error(exc: ApiError) -> Response:
    """Every domain error: its own status, message and details."""
    log = logger.warning if exc.status >= 500 else logger.info
    log("request refused", status=exc.status, error=exc.message)
    return _error(exc.status, exc.message, exc.details)


@app.exception_handler(RunNotFoundError)
def run_not_found(_: RunNotFoundError) -> Response:
    """Dagster does not know the run."""
    return _error(HTTPStatus.NOT_FOUND, "no such run")


@app.exception_handler(DagsterUnreachableError)
def dagster_unreachable(exc: DagsterUnreachableError) -> Response:
    """Dagster did not answer a read in time."""
    logger.warning("dagster unreachable", reason=str(exc))
    return _error(HTTPStatus.SERVICE_UNAVAILABLE, "Dagster is unreachable", [{"reason": str(exc)}])


@app.exception_handler(ConfigurationError)
def misconfigured(exc: ConfigurationError) -> Response:
    """The function's environment is incomplete: an operator must fix it."""
    logger.error("configuration error", reason=str(exc))
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "the service is misconfigured")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Resolve one API Gateway REST proxy event."""
    return app.resolve(event, context)
