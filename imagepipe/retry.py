"""Retry policy for activity calls: exponential back-off with a bounded number of attempts.

The Python SDK's ``RetryOptions`` serialises only the first interval and the attempt count. The Durable
extension's retry options also read ``backoffCoefficient`` and ``maxRetryIntervalInMilliseconds`` (the
JavaScript SDK sends them), so this subclass adds them to the action JSON; the devhost honours them too.
Only transient failures reach this policy: activities return permanent failures as values.
"""

from __future__ import annotations

from typing import Any

from azure.durable_functions import RetryOptions


class ExponentialRetryOptions(RetryOptions):  # type: ignore[misc]
    """``RetryOptions`` with a back-off coefficient and a cap on the delay between attempts."""

    def __init__(
        self,
        first_retry_interval_in_milliseconds: int,
        max_number_of_attempts: int,
        backoff_coefficient: float = 2.0,
        max_retry_interval_in_milliseconds: int = 60_000,
    ) -> None:
        super().__init__(first_retry_interval_in_milliseconds, max_number_of_attempts)
        if backoff_coefficient < 1:
            raise ValueError("backoff_coefficient must be >= 1")
        self.backoff_coefficient = backoff_coefficient
        self.max_retry_interval_in_milliseconds = max_retry_interval_in_milliseconds

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(super().to_json())
        data["backoffCoefficient"] = self.backoff_coefficient
        data["maxRetryIntervalInMilliseconds"] = self.max_retry_interval_in_milliseconds
        return data
