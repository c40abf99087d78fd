"""The base of the in-memory service fakes: an azure-core ``HttpTransport`` with nothing to open or close.

Subclasses (Cosmos DB, AI Vision, Document Intelligence) implement only ``send``, answering each request as
the service would, so the real SDK clients run their whole pipeline over them.
"""

from __future__ import annotations

from typing import Any, Self

from azure.core.pipeline.transport import HttpTransport


class InMemoryTransport(HttpTransport):  # type: ignore[misc]
    """No connection to open, keep or close: the lifecycle calls are no-ops."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def send(self, request: Any, **kwargs: Any) -> Any:
        raise NotImplementedError
