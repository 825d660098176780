"""Validation of request bodies, path and query parameters with Powertools' parser.

The body is first decoded by a strict JSON reader (no duplicate keys, no NaN, bounded depth
and integer length, at most MAX_BODY_BYTES), then validated by pydantic models through
``aws_lambda_powertools.utilities.parser.parse``. Every failure raises BadRequestError (400)
whose details name each bad field as ``{"field": ..., "issue": ...}``, or
PayloadTooLargeError (413). Input values are never echoed back, only field names and the
rule broken, so an error cannot reflect caller text.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from lambda_trigger.errors import BadRequestError, PayloadTooLargeError
from perf_contract.ids import ENTITY_TYPES, PERIODS, is_entity_id
from perf_contract.messages import MAX_PORTFOLIO_IDS, Identifier

MAX_BODY_BYTES = 64 * 1024
ID_RULE = "must be 1-64 characters of A-Za-z0-9._-"
DATE_RULE = "must be a real date as YYYY-MM-DD"
REPEAT_RULE = "must not repeat an id"
ENTITY_ID_RULE = (
    "must be {account_id}:{security_id} for a security, {account_id}:CASH.{currency} for cash, "
    "else one id; " + ID_RULE
)

_DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date(value: object) -> date | None:
    """The date of a strict YYYY-MM-DD string that names a real day, else None."""
    if not isinstance(value, str) or _DATE_PATTERN.fullmatch(value) is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _strict_date(value: str) -> date:
    parsed = parse_date(value)
    if parsed is None:
        raise ValueError(DATE_RULE)
    return parsed


StrictDate = Annotated[str, AfterValidator(_strict_date)]
"""A string in, a date out: strict YYYY-MM-DD naming a real day."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CalculateBody(_Model):
    """POST /calculate: ``{"portfolio_ids": [...], "as_of": "YYYY-MM-DD", "request_id": ...}``."""

    portfolio_ids: Annotated[list[Identifier], Field(min_length=1)]
    as_of: StrictDate
    request_id: Identifier | None = None

    @model_validator(mode="after")
    def _distinct(self) -> CalculateBody:
        if len(set(self.portfolio_ids)) != len(self.portfolio_ids):
            raise ValueError(REPEAT_RULE)
        return self


class MetricsParameters(_Model):
    """GET /metrics/{entity_type}/{entity_id}?date=YYYY-MM-DD&period=P (both optional)."""

    entity_type: Literal[ENTITY_TYPES]  # type: ignore[valid-type]
    entity_id: str
    date: StrictDate | None = None
    period: Literal[PERIODS] | None = None  # type: ignore[valid-type]


class RunPath(_Model):
    """GET /runs/{run_id}."""

    run_id: Identifier


@dataclass(frozen=True)
class CalculateRequest:
    """A validated POST /calculate body; request_id is a fresh uuid4 when absent."""

    portfolio_ids: tuple[str, ...]
    as_of: date
    request_id: str


@dataclass(frozen=True)
class MetricsQuery:
    """A validated GET /metrics/{entity_type}/{entity_id} request."""

    entity_type: str
    entity_id: str
    date: date | None
    period: str | None


_ISSUES = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "string_pattern_mismatch": ID_RULE,
    "too_short": "must not be empty",
    "list_type": "must be a list",
    "string_type": "must be a string",
}


def _field(loc: tuple[Any, ...]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _issues(exc: ValidationError) -> list[dict[str, str]]:
    """One `{"field", "issue"}` per error; the issue is our own text, never the input."""
    issues = []
    for error in exc.errors(include_input=False, include_url=False):
        field = _field(tuple(error["loc"]))
        if error["type"] == "value_error":  # our validators: a date, or repeated ids
            message = str(error.get("ctx", {}).get("error", ""))
            issue = message if message in (DATE_RULE, REPEAT_RULE) else "invalid"
            field = "portfolio_ids" if message == REPEAT_RULE else field
        elif error["type"] == "literal_error":
            issue = "must be one of " + str(error.get("ctx", {}).get("expected", ""))
        else:
            issue = _ISSUES.get(error["type"], "invalid")
        issues.append({"field": field, "issue": issue})
    return issues


def _validated(data: dict[str, Any], model: type[_Model], message: str) -> Any:
    try:
        return parse(event=data, model=model)
    except ValidationError as exc:
        raise BadRequestError(message, _issues(exc)) from exc


def _issue(field: str, issue: str) -> dict[str, str]:
    return {"field": field, "issue": issue}


def raw_body_bytes(body: str | None, is_base64_encoded: bool) -> bytes:
    """The request body as bytes, refusing more than MAX_BODY_BYTES before any decoding.

    A base64 body is checked on its encoded length first (so a huge one is never decoded)
    and again once decoded.
    """
    if body is None:
        return b""
    encoded = body.encode("utf-8", errors="surrogatepass")
    limit = MAX_BODY_BYTES * 4 // 3 + 4 if is_base64_encoded else MAX_BODY_BYTES
    if len(encoded) > limit:
        raise PayloadTooLargeError(f"request body is over {MAX_BODY_BYTES} bytes")
    if not is_base64_encoded:
        return encoded
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequestError(
            "body is not valid base64", [_issue("body", "invalid base64")]
        ) from exc
    if len(decoded) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"request body is over {MAX_BODY_BYTES} bytes")
    return decoded


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise BadRequestError("body has duplicate keys", [_issue("body", "duplicate keys")])
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise BadRequestError("body is not valid JSON", [_issue("body", f"{name} is not JSON")])


def _parse_int(digits: str) -> int:
    """A JSON integer; one longer than Python's int-conversion limit (4300 digits) is a 400."""
    try:
        return int(digits)
    except ValueError as exc:
        raise BadRequestError(
            "body is not valid JSON", [_issue("body", "integer has too many digits")]
        ) from exc


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Parse a UTF-8 JSON object strictly: no duplicate keys, no NaN/Infinity, bounded depth.

    Nesting so deep that the parser runs out of stack, and an integer too long to convert,
    are a 400, not a RecursionError or ValueError.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError("body is not UTF-8", [_issue("body", "not UTF-8")]) from exc
    if not text.strip():
        raise BadRequestError("body is empty", [_issue("body", "a JSON object is required")])
    try:
        value = json.loads(
            text,
            object_pairs_hook=_reject_duplicate_keys,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
        )
    except RecursionError as exc:
        raise BadRequestError("body is nested too deeply", [_issue("body", "too deep")]) from exc
    except json.JSONDecodeError as exc:
        detail = _issue("body", f"malformed JSON at line {exc.lineno} column {exc.colno}")
        raise BadRequestError("body is not valid JSON", [detail]) from exc
    if not isinstance(value, dict):
        raise BadRequestError("body must be a JSON object", [_issue("body", "not an object")])
    return value


def parse_calculate_request(body: dict[str, Any]) -> CalculateRequest:
    """Validate a POST /calculate body: every bad or unknown field is named in one 400; more
    than MAX_PORTFOLIO_IDS ids is a 413."""
    ids = body.get("portfolio_ids")
    if isinstance(ids, list) and len(ids) > MAX_PORTFOLIO_IDS:
        raise PayloadTooLargeError(
            f"at most {MAX_PORTFOLIO_IDS} portfolio ids per request",
            [_issue("portfolio_ids", f"{len(ids)} ids, limit {MAX_PORTFOLIO_IDS}")],
        )
    valid: CalculateBody = _validated(body, CalculateBody, "invalid request body")
    return CalculateRequest(
        portfolio_ids=tuple(valid.portfolio_ids),
        as_of=valid.as_of,  # type: ignore[arg-type]  (the validator made it a date)
        request_id=valid.request_id if valid.request_id is not None else str(uuid.uuid4()),
    )


def parse_run_id(run_id: str) -> str:
    """A run id path parameter, held to the id pattern."""
    return _validated({"run_id": run_id}, RunPath, "invalid run id").run_id


def parse_metrics_query(
    entity_type: str, entity_id: str, query: dict[str, str] | None
) -> MetricsQuery:
    """Validate GET /metrics path and query parameters (date and period both optional)."""
    data = {"entity_type": entity_type, "entity_id": entity_id, **(query or {})}
    try:
        valid: MetricsParameters = parse(event=data, model=MetricsParameters)
        issues: list[dict[str, str]] = []
    except ValidationError as exc:
        issues = _issues(exc)
    kind = entity_type if entity_type in ENTITY_TYPES else "portfolio"
    if not (is_entity_id(kind, entity_id) or is_entity_id("security", entity_id)) or (
        entity_type in ENTITY_TYPES and not is_entity_id(entity_type, entity_id)
    ):
        issues.append(_issue("entity_id", ENTITY_ID_RULE))
    if issues:
        raise BadRequestError("invalid metrics request", issues)
    return MetricsQuery(
        entity_type=valid.entity_type,
        entity_id=valid.entity_id,
        date=valid.date,  # type: ignore[arg-type]  (the validator made it a date)
        period=valid.period,
    )
