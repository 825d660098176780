"""boto3 clients with explicit timeouts and botocore's standard retry mode.

boto3 itself honours AWS_ENDPOINT_URL and the other standard AWS variables, so the same
clients work against an emulator unchanged.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from lambda_trigger.settings import Settings


def client_config(settings: Settings) -> Config:
    """Connect/read timeouts and standard retries of at most ``aws_max_attempts`` attempts in
    all. botocore's ``Config(retries={"max_attempts": n})`` means n retries after the first
    attempt (n + 1 in all); ``total_max_attempts`` is the count that includes the first."""
    return Config(
        connect_timeout=settings.aws_connect_timeout_s,
        read_timeout=settings.aws_read_timeout_s,
        retries={"mode": "standard", "total_max_attempts": settings.aws_max_attempts},
    )


def make_client(service: str, settings: Settings) -> Any:
    """A boto3 client for `service`, configured by `client_config`."""
    return boto3.client(service, config=client_config(settings))
