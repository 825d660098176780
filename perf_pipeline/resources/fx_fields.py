"""The output fields of several currencies that the publication names (DynamoDB items,
Timestream measures).

Metrics: ``twr_local`` (the return in the positions' own currencies, linked over the period)
and ``fx_effect``, with (1 + twr) = (1 + twr_local)(1 + fx_effect). Daily rows: ``currency``
(a position's own currency, the base currency for an account or portfolio),
``market_value_local``, ``daily_return_local``, ``fx_return`` with (1 + daily_return) =
(1 + daily_return_local)(1 + fx_return), ``fx_rate`` (units of the base currency for one of
``currency``) and ``fx_age_days``.
"""

from __future__ import annotations

FX_METRIC_FIELDS = ("twr_local", "fx_effect")
FX_DAILY_FIELDS = (
    "currency",
    "market_value_local",
    "daily_return_local",
    "fx_return",
    "fx_rate",
    "fx_age_days",
)
