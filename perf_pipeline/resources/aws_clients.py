"""Dagster resources that build boto3 clients for DynamoDB, Timestream (write) and SQS, and
the client-side retry policy (``Backoff``, ``is_transient``, ``WriteReport``) of the writers.

Each resource subclasses dagster-aws's ``ResourceWithBoto3Configuration`` (region_name,
endpoint_url, max_attempts, profile_name, use_ssl, verify and credentials come from it) and adds
timeouts and a connection-pool size. ``get_client()`` builds a new low-level client; call it
once per step and share it between threads (boto3 low-level clients are thread-safe).

Clients use botocore's ``standard`` retry mode with ``max_attempts`` attempts in total, the
first call included, as the inherited field's description says. That is botocore's
``total_max_attempts``: its ``retries={"max_attempts": n}`` means n *retries* (n + 1 calls),
which is what dagster-aws's own helper passes, contradicting that description.

``endpoint_url`` is always passed to boto3 explicitly. For ``timestream-write`` that matters:
botocore attaches endpoint discovery (a ``DescribeEndpoints`` call whose answer then replaces
the endpoint of every data call) only when no explicit ``endpoint_url`` is given, and
``AWS_ENDPOINT_URL`` in the environment does not count as explicit. Against an emulator, that
discovery answers with the real AWS host. With ``endpoint_url`` set, every call goes to that
URL. Configure ``endpoint_url`` from the deployment's settings (e.g. ``EnvVar``), never here.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from dagster_aws.utils import ResourceWithBoto3Configuration
from pydantic import Field


class _Boto3ClientResource(ResourceWithBoto3Configuration):
    """Shared client construction; subclasses name the boto3 service."""

    service_name: ClassVar[str]

    connect_timeout: float = Field(
        default=5.0, description="Seconds to wait for a TCP connection to the service endpoint."
    )
    read_timeout: float = Field(
        default=30.0, description="Seconds to wait for a response once a request has been sent."
    )
    max_pool_connections: int = Field(
        default=16,
        description=(
            "Size of the client's HTTP connection pool; keep it at least the number of writer "
            "threads that share one client, or threads wait for a connection."
        ),
    )

    def client_config(self) -> Config:
        """botocore Config: standard retries, timeouts and pool size of this resource."""
        return Config(
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_pool_connections=self.max_pool_connections,
        )

    def get_client(self) -> Any:
        """A new low-level boto3 client for this service, endpoint_url passed explicitly."""
        session = boto3.session.Session(profile_name=self.profile_name)
        return session.client(
            self.service_name,
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            use_ssl=self.use_ssl,
            verify=self.verify,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            config=self.client_config(),
        )


class DynamoDBResource(_Boto3ClientResource):
    """boto3 ``dynamodb`` low-level client factory."""

    service_name: ClassVar[str] = "dynamodb"


class TimestreamWriteResource(_Boto3ClientResource):
    """boto3 ``timestream-write`` client factory; no endpoint discovery once endpoint_url is set."""

    service_name: ClassVar[str] = "timestream-write"


class SQSResource(_Boto3ClientResource):
    """boto3 ``sqs`` client factory."""

    service_name: ClassVar[str] = "sqs"


# --- client-side retry policy shared by the DynamoDB and Timestream writers -------------------

TRANSIENT_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "Throttling",
        "InternalServerError",
        "InternalServerException",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def is_transient(exc: BaseException) -> bool:
    """True for throttling, 5xx-style service errors and broken connections (worth resending).

    botocore has already retried these ``max_attempts`` times when they reach the caller; the
    writers resend once more after their own backoff, until their deadline.
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error.get("Code") in TRANSIENT_ERROR_CODES or status >= 500
    return isinstance(exc, BotoConnectionError | HTTPClientError)


def attempts_made(outcome: Mapping[str, Any] | BaseException) -> int:
    """HTTP attempts behind one client call: 1 + botocore's ``RetryAttempts`` when known."""
    response = outcome.response if isinstance(outcome, ClientError) else outcome
    if isinstance(response, Mapping):
        return 1 + int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
    return 1


@dataclass
class Backoff:
    """Exponential backoff with full jitter, bounded by a deadline (``time.monotonic`` seconds).

    The n-th wait (n = 0, 1, ...) sleeps uniform(0, min(cap_s, base_s * 2**n)) seconds, cut to
    the time left before the deadline.
    """

    deadline: float
    base_s: float = 0.05
    cap_s: float = 5.0
    attempt: int = 0

    def wait(self) -> bool:
        """Sleep before the next resend; False (without sleeping) once the deadline has passed."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return False
        delay = random.uniform(0.0, min(self.cap_s, self.base_s * 2.0**self.attempt))
        self.attempt += 1
        time.sleep(min(delay, remaining))
        return True


@dataclass(frozen=True)
class WriteReport:
    """What one bulk write cost.

    items: items (or records) written; api_calls: HTTP attempts of every read and write call,
    retries included; retried_items: items resent after throttling, a broken connection or an
    unprocessed/rejected-for-capacity answer; seconds: wall-clock time of the whole write.
    """

    items: int
    api_calls: int
    retried_items: int
    seconds: float

    @property
    def api_calls_per_item(self) -> float:
        """api_calls / items (NaN when nothing was written)."""
        return self.api_calls / self.items if self.items else math.nan
