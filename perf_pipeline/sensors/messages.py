"""The SQS message bodies the SQS sensor accepts (docs/api.md, "SQS sensor").

Three request types, told apart by ``type`` (``perf_contract.messages``, which the Lambda
shares), and S3 event notifications as S3 sends them
(``{"Records": [{"eventSource": "aws:s3", ...}]}``); S3's ``s3:TestEvent`` parses to None.
Anything else raises ``InvalidMessageError`` with the reason: a JSON error or the fields that fail.
"""

from __future__ import annotations

import json
from typing import Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, Field, ValidationError

from perf_contract.messages import (
    REQUEST,
    BatchCalculation,
    PortfolioPerformance,
    Request,
    TransactionsFile,
)

__all__ = [
    "BatchCalculation",
    "InvalidMessageError",
    "Message",
    "PortfolioPerformance",
    "S3Event",
    "TransactionsFile",
    "parse_message",
]


class InvalidMessageError(ValueError):
    """A message body that cannot be parsed or validated; the text says why."""


class S3ObjectRef(BaseModel):
    """``s3.object`` of a record: the key arrives URL-encoded (spaces as ``+``)."""

    key: str
    eTag: str = ""  # noqa: N815 (S3's own field name)
    size: int = 0

    @property
    def decoded_key(self) -> str:
        return unquote_plus(self.key)


class S3BucketRef(BaseModel):
    name: str


class S3Entity(BaseModel):
    bucket: S3BucketRef
    object: S3ObjectRef


class S3Record(BaseModel):
    """One record of an S3 event notification (the fields the sensor uses)."""

    eventSource: Literal["aws:s3"]  # noqa: N815
    eventName: str  # noqa: N815
    s3: S3Entity

    @property
    def created(self) -> bool:
        """True for ObjectCreated:* events (a removal starts no run)."""
        return self.eventName.startswith("ObjectCreated:")


class S3Event(BaseModel):
    """An S3 event notification."""

    Records: list[S3Record] = Field(min_length=1)


Message = Request | S3Event


def parse_message(body: str) -> Message | None:
    """The request or S3 event of an SQS message body; None for S3's ``s3:TestEvent``."""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and data.get("Event") == "s3:TestEvent":
            return None
        if isinstance(data, dict) and "Records" in data:
            return S3Event.model_validate(data)
        return REQUEST.validate_python(data)
    except json.JSONDecodeError as exc:
        raise InvalidMessageError(f"not JSON: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'body'}: {error['msg']}"
            for error in exc.errors()
        )
        raise InvalidMessageError(problems) from exc
    except RecursionError as exc:  # json.loads on deeply nested arrays
        raise InvalidMessageError("not parseable: nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer past Python's 4,300-digit conversion limit
        raise InvalidMessageError(f"not parseable: {exc}") from exc
