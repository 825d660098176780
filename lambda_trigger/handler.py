"""API Gateway (REST, proxy) entry point: `lambda_trigger.handler.lambda_handler`.

Routes are small functions; every failure is a domain exception that an exception handler
maps to its status and the body `{"error": ..., "details": [...]}`. Authentication runs
before anything else, then validation, then authorization; only then is anything launched
or queued. Settings are read from the environment once, at cold start.

What the caller never learns: an upstream's error text (Dagster's, AWS's: logged with the
correlation id, which a 5xx body gives), and whether a run or an entity outside his
portfolios exists (the same 404 as for one that does not).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from datetime import date, timedelta
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambda_trigger.auth import Principal, authenticate
from lambda_trigger.dagster_client import DagsterUnreachableError, RunNotFoundError
from lambda_trigger.dependencies import Dependencies
from lambda_trigger.errors import (
    ApiError,
    BadRequestError,
    ConfigurationError,
    MethodNotAllowedError,
    NotFoundError,
)
from lambda_trigger.reports import ROUTE as _REPORTS
from lambda_trigger.reports import ReportLinks, ReportSettings, get_report, s3_client
from lambda_trigger.request_status import request_status
from lambda_trigger.settings import Settings
from lambda_trigger.validation import (
    CalculateRequest,
    parse_calculate_request,
    parse_json_object,
    parse_metrics_query,
    parse_run_id,
    raw_body_bytes,
)
from perf_contract.tags import tagged_portfolio_ids

logger = Logger(service="perf-trigger")
app = APIGatewayRestResolver()
dependencies = Dependencies(Settings.from_env(os.environ))
reports = ReportLinks(ReportSettings.from_env(os.environ), lambda: s3_client(dependencies.settings))

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_CALCULATE = "/calculate"
_RUN = "/runs/<run_id>"
_METRICS = "/metrics/<entity_type>/<entity_id>"
NO_SUCH_RUN = "no such run"
NO_SUCH_ENTITY = "no such entity"
_started = [time.monotonic()]


def _correlation_id() -> str:
    context = app.current_event.request_context
    return str(context.request_id or "")


def _error(status: int, message: str, details: list[Any] | None = None) -> Response:
    return Response(
        status_code=int(status),
        content_type=content_types.APPLICATION_JSON,
        body={"error": message, "details": details or []},
    )


def _server_error(status: int, message: str, details: list[Any] | None = None) -> Response:
    """A 5xx: our message, and the correlation id under which the log has the details."""
    return _error(status, message, [*(details or []), {"correlation_id": _correlation_id()}])


def _principal() -> Principal:
    authorization = app.current_event.headers.get("authorization")
    return authenticate(authorization, dependencies.jwt_secret.get, dependencies.settings)


def ten_years_before(today: date) -> date:
    """The same day ten years earlier (29 February: the 28th)."""
    try:
        return today.replace(year=today.year - 10)
    except ValueError:
        return today.replace(year=today.year - 10, day=28)


def check_as_of_window(request: CalculateRequest, settings: Settings, today: date) -> None:
    """BadRequestError unless API_EARLIEST_AS_OF (default ten years back) <= as_of <= today
    and as_of is at most API_MAX_HISTORY_DAYS before today: a request cannot make a run
    compute the future or more history than configured."""
    earliest = settings.earliest_as_of or ten_years_before(today)
    earliest = max(earliest, today - timedelta(days=settings.max_history_days))
    if not earliest <= request.as_of <= today:
        raise BadRequestError(
            "as_of is outside the dates this API computes",
            [{"field": "as_of", "issue": f"must lie between {earliest} and {today}"}],
        )


@app.post(_CALCULATE)
def calculate() -> Response:
    """Validate, authorize, then launch (GraphQL) or queue (SQS) one calculation."""
    principal = _principal()
    event = app.current_event
    body = parse_json_object(raw_body_bytes(event.body, bool(event.is_base64_encoded)))
    request = parse_calculate_request(body)
    check_as_of_window(request, dependencies.settings, date.today())
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
    """The status of a run the token may see: every portfolio it was started for must be
    allowed (a run without the tag only to a token for all portfolios). Any other run is
    the same 404 as a run that does not exist. For a run of the inputs job, the status of
    the whole request (request_status.py)."""
    principal = _principal()
    try:
        run = dependencies.dagster.get_run(parse_run_id(run_id))
    except RunNotFoundError as exc:
        raise NotFoundError(NO_SUCH_RUN) from exc
    portfolio_ids = tagged_portfolio_ids(run.tags)
    visible = principal.portfolios is None or (
        portfolio_ids is not None and principal.allows_all(portfolio_ids)
    )
    if not visible:
        logger.info("run outside the token's portfolios", subject=principal.subject)
        raise NotFoundError(NO_SUCH_RUN)
    status = request_status(dependencies.dagster, run, dependencies.settings.dagster_job)
    return {"run_id": run.run_id, "status": status}


@app.get(_METRICS)
def get_metrics(entity_type: str, entity_id: str) -> dict[str, Any]:
    """Stored performance_metrics items of one entity that the token may see; an entity
    with none the token may see is the same 404 as one with no items at all."""
    principal = _principal()
    query = parse_metrics_query(entity_type, entity_id, app.current_event.query_string_parameters)
    deadline = _started[0] + dependencies.settings.request_budget_s
    items = dependencies.metrics.read(query, deadline)
    allowed = [
        item
        for item in items
        if principal.portfolios is None or item.get("portfolio_id") in principal.portfolios
    ]
    if not allowed:
        raise NotFoundError(NO_SUCH_ENTITY)
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
    """Every domain error: its own status, message and details (all this package's text);
    the upstream cause, if any, goes to the log only."""
    log = logger.warning if exc.status >= 500 else logger.info
    cause = exc.__cause__
    log(
        "request refused",
        status=exc.status,
        error=exc.message,
        cause=f"{type(cause).__name__}: {cause}" if cause else None,
    )
    if exc.status >= 500:
        return _server_error(exc.status, exc.message, exc.details)
    return _error(exc.status, exc.message, exc.details)


@app.exception_handler(DagsterUnreachableError)
def dagster_unreachable(exc: DagsterUnreachableError) -> Response:
    """Dagster did not answer a read in time (the reason is logged, not answered)."""
    logger.warning("dagster unreachable", reason=str(exc))
    return _server_error(HTTPStatus.SERVICE_UNAVAILABLE, "Dagster is unreachable")


@app.exception_handler(ConfigurationError)
def misconfigured(exc: ConfigurationError) -> Response:
    """The function's environment is incomplete: an operator must fix it."""
    logger.error("configuration error", reason=str(exc))
    return _server_error(HTTPStatus.INTERNAL_SERVER_ERROR, "the service is misconfigured")


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response:
    """Anything else: a generic 500; the traceback goes to the log."""
    logger.exception("unexpected error")
    return _server_error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Resolve one API Gateway REST proxy event."""
    _started[0] = time.monotonic()
    return app.resolve(event, context)
