"""The request messages on the SQS queue (JSON bodies, told apart by ``type``).

The Lambda sends ``portfolio_performance``; other systems may send all three. The SQS
sensor parses them with ``REQUEST`` (S3 event notifications are the sensor's own concern).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, model_validator

from perf_contract.ids import ID_PATTERN

MAX_PORTFOLIO_IDS = 1000
"""The most portfolio ids one request or message may name."""

Identifier = Annotated[str, StringConstraints(pattern=rf"^{ID_PATTERN}$")]
RequestId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
PortfolioIds = Annotated[list[Identifier], Field(min_length=1, max_length=MAX_PORTFOLIO_IDS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PortfolioPerformance(_Strict):
    """Compute these portfolios up to ``as_of``."""

    type: Literal["portfolio_performance"]
    portfolio_ids: PortfolioIds
    as_of: date
    request_id: RequestId | None = None


class TransactionsFile(_Strict):
    """A transactions file arrived at ``s3_uri`` (under the input root)."""

    type: Literal["transactions"]
    s3_uri: Annotated[str, StringConstraints(pattern=r"^s3://[^/]+/.+")]
    request_id: RequestId | None = None


class BatchCalculation(_Strict):
    """Compute these portfolios over ``start`` .. ``end`` (inclusive; start <= end)."""

    type: Literal["batch_calculation"]
    portfolio_ids: PortfolioIds
    start: date
    end: date
    request_id: RequestId | None = None

    @model_validator(mode="after")
    def _ordered(self) -> BatchCalculation:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


Request = Annotated[
    PortfolioPerformance | TransactionsFile | BatchCalculation, Field(discriminator="type")
]
REQUEST: TypeAdapter[Any] = TypeAdapter(Request)
"""Validates a decoded message body into one of the three request types."""


def portfolio_performance_body(
    portfolio_ids: list[str] | tuple[str, ...], as_of: date, request_id: str
) -> dict[str, Any]:
    """The JSON object of a ``portfolio_performance`` message."""
    message = PortfolioPerformance(
        type="portfolio_performance",
        portfolio_ids=list(portfolio_ids),
        as_of=as_of,
        request_id=request_id,
    )
    return message.model_dump(mode="json")
