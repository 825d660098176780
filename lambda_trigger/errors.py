"""Domain errors of the trigger API, each carrying the HTTP status it maps to.

The handler turns every ApiError into `{"error": message, "details": [...]}` with its
status. Messages and details are this package's own text: never the bearer token, a secret,
a caller's input or an upstream's (Dagster's, AWS's) error text, which go to the log only.
"""

from __future__ import annotations

from typing import Any


class ConfigurationError(Exception):
    """The function's environment is incomplete or invalid (an operator's error: 500)."""


class ApiError(Exception):
    """A request that ends with a client-visible error status."""

    status: int = 500

    def __init__(self, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[Any] = details or []


class BadRequestError(ApiError):
    """Invalid body, path or query parameter; details name each bad field."""

    status = 400


class UnauthorizedError(ApiError):
    """No bearer token, or one that is malformed, expired, tampered or signed with another key."""

    status = 401


class ForbiddenError(ApiError):
    """A valid token that does not allow the portfolio(s) concerned."""

    status = 403


class NotFoundError(ApiError):
    """Nothing the caller may see answers to this id: the same for "does not exist" as for
    "exists but belongs to portfolios the token does not allow"."""

    status = 404


class MethodNotAllowedError(ApiError):
    """Known path, method not supported on it."""

    status = 405


class PayloadTooLargeError(ApiError):
    """Body over 64 KiB, or more than 1,000 portfolio ids."""

    status = 413


class ConflictError(ApiError):
    """A request_id this caller already used for a different body."""

    status = 409


class UpstreamRejectedError(ApiError):
    """Dagster answered but refused the launch (bad config, unknown job, Python error)."""

    status = 502


class ServiceUnavailableError(ApiError):
    """Dagster, SQS, DynamoDB or Secrets Manager could not be reached in time."""

    status = 503
