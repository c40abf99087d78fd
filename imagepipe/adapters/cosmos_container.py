"""One Cosmos DB for NoSQL container behind a store: the base of the record and label set stores.

It checks the account endpoint, builds the account client lazily (the client reads the account's regions on
construction: one request, once per store and process) with the SDK's throttling budget kept small (3 attempts,
10 s; the orchestration's own retries take over), and translates every azure-cosmos / azure-core error into
``imagepipe.errors``, so no SDK exception leaves a store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from azure.cosmos import ContainerProxy, CosmosClient
from azure.cosmos.exceptions import CosmosClientTimeoutError, CosmosHttpResponseError, CosmosResourceNotFoundError

from imagepipe.errors import ConfigurationError, ImagepipeError, TransientServiceError
from imagepipe.ports import JsonDict

T = TypeVar("T")

_DATA_ROLE = "Cosmos DB Built-in Data Contributor"
_TRANSIENT = {408, 429, 449, 500, 502, 503, 504}
THROTTLE_BUDGET: dict[str, Any] = {"retry_throttle_total": 3, "retry_throttle_backoff_max": 10}


def translate_cosmos_error(what: str, exc: Exception) -> ImagepipeError:
    """The ``imagepipe.errors`` equivalent of an azure-cosmos / azure-core exception."""
    if isinstance(exc, CosmosHttpResponseError):
        status = exc.status_code or 0
        if status in _TRANSIENT:
            headers = exc.headers or {}
            retry_ms = headers.get("x-ms-retry-after-ms")
            retry_after = float(retry_ms) / 1000 if retry_ms else None
            return TransientServiceError(
                f"{what}: Cosmos DB answered {status}; retry later",
                code="records_unavailable",
                retry_after_s=retry_after,
            )
        if status in (401, 403):
            return ConfigurationError(
                f"{what}: Cosmos DB refused the identity ({status}). Grant it the '{_DATA_ROLE}' data-plane role "
                "on the account (az cosmosdb sql role assignment create) and check COSMOS__accountEndpoint.",
                code="records_forbidden",
            )
        return ImagepipeError(f"{what}: Cosmos DB answered {status}: {exc.message}", code=f"cosmos_{status}")
    if isinstance(exc, ClientAuthenticationError):
        return ConfigurationError(
            f"{what}: could not get a token for Cosmos DB ({exc.message}); check the managed identity "
            "(AZURE_CLIENT_ID) and its '{_DATA_ROLE}' role".replace("{_DATA_ROLE}", _DATA_ROLE),
            code="records_forbidden",
        )
    if isinstance(exc, (CosmosClientTimeoutError, ServiceRequestError, ServiceResponseError)):
        return TransientServiceError(
            f"{what}: Cosmos DB did not answer ({type(exc).__name__})", code="records_unavailable"
        )
    if isinstance(exc, AzureError):
        return TransientServiceError(f"{what}: {exc}", code="records_unavailable")
    return ImagepipeError(f"{what}: {exc}")


class CosmosContainerStore:
    """A store over one container (partition key ``/id``): ``_call`` runs an SDK call on it, errors translated."""

    def __init__(
        self,
        endpoint: str,
        database: str,
        container: str,
        credential: TokenCredential,
        *,
        transport: Any = None,
        **client_kwargs: Any,
    ) -> None:
        if not endpoint.startswith("https://"):
            raise ConfigurationError(
                f"COSMOS__accountEndpoint must be https://<account>.documents.azure.com, got '{endpoint}'"
            )
        self.endpoint, self.database, self.container_name = endpoint, database, container
        self._credential = credential
        self._client_kwargs: dict[str, Any] = THROTTLE_BUDGET | client_kwargs
        if transport is not None:
            self._client_kwargs["transport"] = transport
        self._container: ContainerProxy | None = None
        self._lock = threading.Lock()

    def _call(self, what: str, fn: Callable[[ContainerProxy], T]) -> T:
        try:
            return fn(self._get_container())
        except ImagepipeError:
            raise
        except AzureError as exc:
            raise translate_cosmos_error(what, exc) from exc

    def _get_container(self) -> ContainerProxy:
        if self._container is None:
            with self._lock:
                if self._container is None:
                    client = CosmosClient(self.endpoint, credential=self._credential, **self._client_kwargs)
                    db = client.get_database_client(self.database)
                    self._container = db.get_container_client(self.container_name)
        return self._container

    @staticmethod
    def _read(container: ContainerProxy, item_id: str) -> JsonDict | None:
        """One document by id (its own partition), or None."""
        try:
            return dict(container.read_item(item=item_id, partition_key=item_id))
        except CosmosResourceNotFoundError:
            return None
