"""Strict validation of request bodies, path and query parameters.

Every failure raises BadRequestError (400) whose details name each bad field as
`{"field": ..., "issue": ...}`, or PayloadTooLargeError (413). Input values are never echoed
back, only field names, so an error cannot reflect arbitrary caller text.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from lambda_trigger.errors import BadRequestError, PayloadTooLargeError

MAX_BODY_BYTES = 64 * 1024
MAX_PORTFOLIO_IDS = 1000
ENTITY_TYPES = ("portfolio", "account", "security")
PERIODS = ("MTD", "QTD", "YTD", "1M", "3M", "6M", "1Y", "3Y", "5Y", "10Y", "ITD")

_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SECURITY_ENTITY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}:[A-Za-z0-9._-]{1,64}")
_DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CALCULATE_FIELDS = frozenset({"portfolio_ids", "as_of", "request_id"})
_METRICS_QUERY_FIELDS = frozenset({"date", "period"})


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


def is_id(value: object) -> bool:
    """True for a string of 1 to 64 characters of A-Z a-z 0-9 . _ - (docs/data.md: ids)."""
    return isinstance(value, str) and _ID_PATTERN.fullmatch(value) is not None


def is_entity_id(entity_type: str, value: str) -> bool:
    """True for a metrics entity id: `{account_id}:{security_id}` (two ids) for a security,
    a plain id for a portfolio or an account (docs/methodology.md, "Entities")."""
    if entity_type == "security":
        return _SECURITY_ENTITY_ID_PATTERN.fullmatch(value) is not None
    return is_id(value)


def parse_date(value: object) -> date | None:
    """The date of a strict YYYY-MM-DD string that names a real day, else None."""
    if not isinstance(value, str) or _DATE_PATTERN.fullmatch(value) is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


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


def _portfolio_id_issues(value: object) -> list[dict[str, str]]:
    if not isinstance(value, list):
        return [_issue("portfolio_ids", "must be a list of portfolio ids")]
    if not value:
        return [_issue("portfolio_ids", "must not be empty")]
    if len(value) > MAX_PORTFOLIO_IDS:
        raise PayloadTooLargeError(
            f"at most {MAX_PORTFOLIO_IDS} portfolio ids per request",
            [_issue("portfolio_ids", f"{len(value)} ids, limit {MAX_PORTFOLIO_IDS}")],
        )
    issues = [
        _issue(f"portfolio_ids[{i}]", "must be 1-64 characters of A-Za-z0-9._-")
        for i, item in enumerate(value)
        if not is_id(item)
    ]
    if not issues and len(set(value)) != len(value):
        issues.append(_issue("portfolio_ids", "must not repeat an id"))
    return issues


def parse_calculate_request(body: dict[str, Any]) -> CalculateRequest:
    """Validate a POST /calculate body: every bad or unknown field is named in one 400."""
    issues = [_issue(key, "unknown field") for key in sorted(set(body) - _CALCULATE_FIELDS)]
    if "portfolio_ids" in body:
        issues += _portfolio_id_issues(body["portfolio_ids"])
    else:
        issues.append(_issue("portfolio_ids", "required"))
    as_of = parse_date(body.get("as_of"))
    if "as_of" not in body:
        issues.append(_issue("as_of", "required"))
    elif as_of is None:
        issues.append(_issue("as_of", "must be a real date as YYYY-MM-DD"))
    request_id = body.get("request_id")
    if request_id is not None and not is_id(request_id):
        issues.append(_issue("request_id", "must be 1-64 characters of A-Za-z0-9._-"))
    if issues or as_of is None:
        raise BadRequestError("invalid request body", issues)
    return CalculateRequest(
        portfolio_ids=tuple(body["portfolio_ids"]),
        as_of=as_of,
        request_id=request_id if request_id is not None else str(uuid.uuid4()),
    )


def parse_run_id(run_id: str) -> str:
    """A run id path parameter, held to the id pattern."""
    if not is_id(run_id):
        raise BadRequestError("invalid run id", [_issue("run_id", "must be an id")])
    return run_id


def parse_metrics_query(
    entity_type: str, entity_id: str, query: dict[str, str] | None
) -> MetricsQuery:
    """Validate GET /metrics path and query parameters (date and period both optional)."""
    query = query or {}
    issues = [
        _issue(key, "unknown query parameter") for key in sorted(set(query) - _METRICS_QUERY_FIELDS)
    ]
    if entity_type not in ENTITY_TYPES:
        issues.append(_issue("entity_type", f"must be one of {', '.join(ENTITY_TYPES)}"))
    if not is_entity_id(entity_type, entity_id):
        issue = (
            "must be {account_id}:{security_id}, each 1-64 characters of A-Za-z0-9._-"
            if entity_type == "security"
            else "must be 1-64 characters of A-Za-z0-9._-"
        )
        issues.append(_issue("entity_id", issue))
    as_of = parse_date(query["date"]) if "date" in query else None
    if "date" in query and as_of is None:
        issues.append(_issue("date", "must be a real date as YYYY-MM-DD"))
    period = query.get("period")
    if period is not None and period not in PERIODS:
        issues.append(_issue("period", f"must be one of {', '.join(PERIODS)}"))
    if issues:
        raise BadRequestError("invalid metrics request", issues)
    return MetricsQuery(entity_type=entity_type, entity_id=entity_id, date=as_of, period=period)
