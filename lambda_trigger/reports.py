"""GET /reports/{portfolio_id}?date=YYYY-MM-DD: a short-lived pre-signed URL of a stored report.

The pipeline writes reports under an S3 prefix (PERF_REPORTS = s3://bucket/prefix, the
portfolio_reports asset's location on the aws target): `latest/<portfolio_id>.html` and
`<portfolio_id>/<date>.html`. The route authenticates as every route does; a portfolio the
token does not allow answers exactly as a portfolio without a report (404, "no such
report"), so the answer tells a caller nothing about portfolios it may not see. The object
is checked to exist (HEAD) before its URL (GET, PERF_REPORT_URL_TTL_S seconds, default 300)
is signed: a URL to nothing is never handed out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambda_trigger.auth import Principal
from lambda_trigger.aws_clients import client_config
from lambda_trigger.errors import (
    ApiError,
    BadRequestError,
    ConfigurationError,
    ServiceUnavailableError,
)
from lambda_trigger.settings import Settings
from lambda_trigger.validation import parse_date
from perf_contract.ids import is_id

ROUTE = "/reports/<portfolio_id>"
DEFAULT_TTL_S = 300
QUERY_FIELDS = frozenset({"date"})


class ReportNotFoundError(ApiError):
    """No stored report of that portfolio and date, or a portfolio the token may not see."""

    status = 404


@dataclass(frozen=True)
class ReportSettings:
    """Where the reports are (PERF_REPORTS) and how long a signed URL lives
    (PERF_REPORT_URL_TTL_S); read once at cold start, checked when a request needs them (a
    misconfigured function still answers its other routes)."""

    location: str | None = None
    url_ttl_s: str = str(DEFAULT_TTL_S)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReportSettings:
        return cls(
            location=env.get("PERF_REPORTS") or None,
            url_ttl_s=env.get("PERF_REPORT_URL_TTL_S") or str(DEFAULT_TTL_S),
        )

    def bucket_prefix_ttl(self) -> tuple[str, str, int]:
        """(bucket, prefix, seconds); ConfigurationError when either setting is wrong."""
        if not self.location or not self.location.startswith("s3://"):
            raise ConfigurationError("PERF_REPORTS must be set to s3://bucket/prefix")
        if not self.url_ttl_s.isdigit() or not 1 <= int(self.url_ttl_s) <= 3600:
            raise ConfigurationError("PERF_REPORT_URL_TTL_S must be 1..3600 seconds")
        bucket, _, prefix = self.location[len("s3://") :].partition("/")
        return bucket, prefix, int(self.url_ttl_s)


def s3_client(settings: Settings) -> Any:
    """An S3 client with the function's timeouts and retries that signs URLs with SigV4 (an
    X-Amz-Expires URL; botocore's default for S3 presigning is the legacy SigV2)."""
    config = client_config(settings).merge(Config(signature_version="s3v4"))
    return boto3.client("s3", config=config)


def report_key(prefix: str, portfolio_id: str, day: dt.date | None) -> str:
    """The object key of a portfolio's report: of `day`, or its latest."""
    name = f"{portfolio_id}/{day.isoformat()}.html" if day else f"latest/{portfolio_id}.html"
    return f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name


class ReportLinks:
    """Signs URLs of stored reports with an S3 client made on first use."""

    def __init__(self, settings: ReportSettings, make_client: Callable[[], Any]) -> None:
        self.settings = settings
        self._make_client = make_client

    @cached_property
    def _client(self) -> Any:
        return self._make_client()

    def link(self, portfolio_id: str, day: dt.date | None) -> dict[str, Any]:
        """The signed URL of an existing report; ReportNotFoundError when there is none."""
        bucket, prefix, ttl = self.settings.bucket_prefix_ttl()
        key = report_key(prefix, portfolio_id, day)
        try:
            self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            # 403: S3 answers a HEAD of a missing key so when the role may not list the
            # bucket (template.yaml grants GetObject on the reports prefix only)
            if code in ("404", "NoSuchKey", "NotFound", "403", "AccessDenied", "Forbidden"):
                raise ReportNotFoundError("no such report") from exc
            raise ServiceUnavailableError(
                "the report store is unavailable", [{"reason": str(code)}]
            ) from exc
        except BotoCoreError as exc:
            raise ServiceUnavailableError(
                "the report store is unavailable", [{"reason": type(exc).__name__}]
            ) from exc
        url = self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": bucket, "Key": key},
            ExpiresIn=ttl,
        )
        return {
            "portfolio_id": portfolio_id,
            "date": day.isoformat() if day else "latest",
            "url": url,
            "expires_in": ttl,
        }


def parse_report_query(portfolio_id: str, query: Mapping[str, str] | None) -> dt.date | None:
    """The optional date of a GET /reports request; BadRequestError naming each bad field."""
    query = query or {}
    issues = [
        {"field": name, "issue": "unknown query parameter"}
        for name in query
        if name not in QUERY_FIELDS
    ]
    if not is_id(portfolio_id):
        issues.append({"field": "portfolio_id", "issue": "not a valid id"})
    day = parse_date(query["date"]) if "date" in query else None
    if "date" in query and day is None:
        issues.append({"field": "date", "issue": "must be a real date as YYYY-MM-DD"})
    if issues:
        raise BadRequestError("invalid report request", issues)
    return day


def get_report(
    principal: Principal,
    links: ReportLinks,
    portfolio_id: str,
    query: Mapping[str, str] | None,
) -> dict[str, Any]:
    """Validate, authorize (not allowed = not found), then sign the report's URL."""
    day = parse_report_query(portfolio_id, query)
    if not principal.allows(portfolio_id):
        raise ReportNotFoundError("no such report")
    return links.link(portfolio_id, day)
