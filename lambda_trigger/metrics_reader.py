"""Read stored performance_metrics items from DynamoDB (docs/data.md, "storage schemas").

Key `id` = "{entity_type}#{entity_id}", sort key `sk` = "{calculation_date}#{time_period}".
With a date and a period the query is an exact sk; with a date only, begins_with(sk,
"{date}#"); with a period only, a filter on time_period; every page is read.
Numbers come back as DynamoDB Decimals and are returned as int (integral) or float.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from lambda_trigger.errors import ServiceUnavailableError
from lambda_trigger.validation import MetricsQuery


def plain(value: Any) -> Any:
    """A DynamoDB value made JSON-ready: Decimal -> int or float, sets -> sorted lists."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(item) for item in value)
    return value


def query_arguments(table: str, query: MetricsQuery) -> dict[str, Any]:
    """The low-level Query arguments for this request."""
    arguments: dict[str, Any] = {
        "TableName": table,
        "ExpressionAttributeNames": {"#id": "id"},
        "ExpressionAttributeValues": {":id": {"S": f"{query.entity_type}#{query.entity_id}"}},
        "KeyConditionExpression": "#id = :id",
    }
    names = arguments["ExpressionAttributeNames"]
    values = arguments["ExpressionAttributeValues"]
    if query.date is not None:
        names["#sk"] = "sk"
        if query.period is not None:
            values[":sk"] = {"S": f"{query.date.isoformat()}#{query.period}"}
            arguments["KeyConditionExpression"] += " AND #sk = :sk"
        else:
            values[":sk"] = {"S": f"{query.date.isoformat()}#"}
            arguments["KeyConditionExpression"] += " AND begins_with(#sk, :sk)"
    elif query.period is not None:
        names["#tp"] = "time_period"
        values[":tp"] = {"S": query.period}
        arguments["FilterExpression"] = "#tp = :tp"
    return arguments


class MetricsReader:
    """Queries the performance-metrics table through a boto3 DynamoDB client."""

    def __init__(
        self,
        dynamodb_client: Any,
        table: str,
        call_worst_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = dynamodb_client
        self._table = table
        self._call_worst_s = call_worst_s
        self._clock = clock

    def read(self, query: MetricsQuery, deadline: float = float("inf")) -> list[dict[str, Any]]:
        """Every matching item, deserialized and made JSON-ready, in sort-key order.

        A page is read only while one more call at its worst (`call_worst_s`) still ends
        before `deadline` (a `clock` reading); otherwise ServiceUnavailableError, so a slow
        store cannot hold the request past API Gateway's limit."""
        deserializer = TypeDeserializer()
        items: list[dict[str, Any]] = []
        arguments = query_arguments(self._table, query)
        try:
            while True:
                if self._clock() + self._call_worst_s > deadline:
                    raise ServiceUnavailableError("the metrics store is too slow to answer")
                page = self._client.query(**arguments)
                items += [
                    plain({key: deserializer.deserialize(value) for key, value in item.items()})
                    for item in page.get("Items", [])
                ]
                if "LastEvaluatedKey" not in page:
                    return items
                arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailableError("the metrics store is unavailable") from exc
