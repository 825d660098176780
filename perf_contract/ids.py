"""Identifiers, entity types and periods shared by the inputs, the metrics and the API."""

from __future__ import annotations

import re
from typing import Final

ID_PATTERN: Final = r"[A-Za-z0-9._-]{1,64}"
"""Every portfolio, account, security, run and request id: 1-64 of A-Z a-z 0-9 . _ -."""
SECURITY_ENTITY_ID_PATTERN: Final = rf"{ID_PATTERN}:{ID_PATTERN}"
"""A security's metrics entity id: ``{account_id}:{security_id}``."""
CASH_ENTITY_ID_PATTERN: Final = rf"{ID_PATTERN}:CASH\.[A-Z]{{3}}"
"""A cash position's metrics entity id: ``{account_id}:CASH.{currency}`` (ISO 4217 code)."""
ENTITY_TYPES: Final = ("portfolio", "account", "security", "cash")
"""The entity types metrics are computed for (the DynamoDB key is ``{type}#{id}``)."""
PERIODS: tuple[str, ...] = (
    "MTD", "QTD", "YTD", "1M", "3M", "6M", "1Y", "3Y", "5Y", "10Y", "ITD",
)  # fmt: skip
"""The calculation periods, in the order they are reported."""

_ID = re.compile(ID_PATTERN)
_SECURITY_ENTITY_ID = re.compile(SECURITY_ENTITY_ID_PATTERN)
_CASH_ENTITY_ID = re.compile(CASH_ENTITY_ID_PATTERN)


def is_id(value: object) -> bool:
    """True for a string that matches ID_PATTERN in full."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def is_entity_id(entity_type: str, value: object) -> bool:
    """True for a metrics entity id of this type: two ids joined by ':' for a security,
    ``{account_id}:CASH.{currency}`` for a cash position, one id for a portfolio or an
    account."""
    if entity_type in ("security", "cash"):
        pattern = _SECURITY_ENTITY_ID if entity_type == "security" else _CASH_ENTITY_ID
        return isinstance(value, str) and pattern.fullmatch(value) is not None
    return is_id(value)
