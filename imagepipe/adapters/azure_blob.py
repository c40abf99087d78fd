"""Blob store adapter over azure-storage-blob: Azurite via a connection string, Azure via managed identity.

Upload URLs are SAS tokens scoped to one blob with create/write permission only: signed with the account
key when a connection string is configured (Azurite), or with a user delegation key when authenticating with
an identity (Azure; needs the Storage Blob Delegator role). SDK errors are translated into
``imagepipe.errors``. The client has short connect/read timeouts and a small retry budget (the SDK's defaults
wait about a minute on a dead endpoint); longer outages are retried by the caller (Durable retry policies).
Its connection pool keeps as many connections as the app runs storage calls at once (HTTP worker threads plus
activities), so concurrent calls reuse connections instead of opening and discarding them, and it reads the
environment's proxy settings once, when the store is built, not on every call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import (
    BlobProperties,
    BlobSasPermissions,
    BlobServiceClient,
    ContentSettings,
    LinearRetry,
    generate_blob_sas,
)
from requests import Session
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.util.retry import Retry

from imagepipe.errors import ConfigurationError, ImagepipeError, NotFoundError, TransientServiceError
from imagepipe.ports import BlobInfo

T = TypeVar("T")

log = logging.getLogger("imagepipe.storage")

#: Defaults of the storage client: a refused or dead endpoint fails within a few seconds, not minutes.
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 20.0
RETRY_TOTAL = 2
#: Connections kept open to the storage endpoint (requests keeps 10 by default: a 16-thread burst then opens and
#: discards a new connection for each call over that). An upper bound on idle connections, not a limit on calls.
POOLED_CONNECTIONS = 64
#: What the storage SDK's own transport reads per chunk of a download (its default for the transport it builds).
DATA_BLOCK_SIZE = 4 * 1024 * 1024
#: Socket read size of the storage SDK's own transport adapter (bigger than http.client's 8 KiB).
SOCKET_BLOCK_SIZE = 32 * 1024


def _code(exc: AzureError) -> str | None:
    """The storage error code (e.g. ``AuthorizationFailure``) the SDK attaches to a failed response."""
    code = getattr(exc, "error_code", None)
    return str(code) if code else None


def _translate(what: str, call: Callable[[], T]) -> T:
    """Run one storage call; SDK errors become named errors whose messages are ours (the SDK's text, which
    can carry URLs, string-to-sign or host details, goes to the log only)."""
    try:
        return call()
    except ResourceNotFoundError as exc:
        raise NotFoundError(f"{what}: not found") from exc
    except ClientAuthenticationError as exc:
        log.warning("%s: storage refused our identity: %s", what, exc)
        raise ConfigurationError(
            f"{what}: storage refused our identity ({_code(exc) or 'authentication failed'}); grant the app "
            "'Storage Blob Data Contributor' on the images account"
        ) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        log.warning("%s: storage unreachable: %s", what, exc)
        raise TransientServiceError(
            f"{what}: storage unreachable; retry later", code="storage_unavailable", retry_after_s=5
        ) from exc
    except HttpResponseError as exc:
        log.warning("%s: storage answered %s: %s", what, exc.status_code, exc)
        status = exc.status_code or 0
        if status == 403:
            raise ConfigurationError(
                f"{what}: access denied by storage ({_code(exc) or 403}); check the app's role assignments"
            ) from exc
        if status in (408, 429) or status >= 500:
            raise TransientServiceError(
                f"{what}: storage answered {status}; retry later", code="storage_unavailable", retry_after_s=5
            ) from exc
        raise ImagepipeError(
            f"{what}: storage answered {status} ({_code(exc) or 'no error code'})", code="storage_error"
        ) from exc
    except AzureError as exc:
        log.warning("%s: storage error: %s", what, exc)
        raise TransientServiceError(
            f"{what}: storage unreachable; retry later", code="storage_unavailable", retry_after_s=5
        ) from exc


class _PooledAdapter(HTTPAdapter):
    """requests' adapter with the storage transport's socket block size (the pool size is the caller's)."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, blocksize=SOCKET_BLOCK_SIZE, **pool_kwargs)


def pooled_transport(connections: int, connect_timeout_s: float, read_timeout_s: float) -> RequestsTransport:
    """The transport the storage SDK builds by default (no urllib3 retries: the SDK's retry policy retries),
    keeping up to ``connections`` connections per endpoint."""
    session = Session()
    adapter = _PooledAdapter(
        pool_maxsize=connections, max_retries=Retry(total=False, redirect=False, raise_on_status=False)
    )
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return RequestsTransport(
        session=session,
        session_owner=False,
        connection_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        connection_data_block_size=DATA_BLOCK_SIZE,
    )


def pin_environment(session: Session, endpoint: str) -> None:
    """Read the environment's proxy (``HTTPS_PROXY``, ``NO_PROXY`` …) and CA bundle settings for ``endpoint``
    once, as requests would on every call (scanning the whole environment twice per request), and stop
    ``session`` from reading them again. The store only ever talks to this one endpoint."""
    session.proxies.update(get_environ_proxies(endpoint))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False


def _info(container: str, props: BlobProperties, url: str = "") -> BlobInfo:
    settings = props.content_settings
    return BlobInfo(
        container=container,
        name=props.name,
        etag=str(props.etag).strip('"'),
        size=int(props.size or 0),
        content_type=settings.content_type if settings else None,
        last_modified=props.last_modified,
        metadata=dict(props.metadata or {}),
        url=url,
    )


def _range_total(content_range: str | None) -> int | None:
    """The blob's size from a ranged answer's ``Content-Range: bytes 0-99/12345`` (None without one)."""
    total = (content_range or "").rpartition("/")[2]
    return int(total) if total.isdigit() else None


class AzureBlobStore:
    """``imagepipe.ports.BlobStore`` for one container."""

    def __init__(
        self,
        container: str,
        *,
        connection_string: str | None = None,
        account_url: str | None = None,
        credential: TokenCredential | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        retry_total: int = RETRY_TOTAL,
        pooled_connections: int = POOLED_CONNECTIONS,
        **client_options: Any,
    ) -> None:
        client_options.setdefault("connection_timeout", connect_timeout_s)
        client_options.setdefault("read_timeout", read_timeout_s)
        own_transport = "transport" not in client_options
        if own_transport:
            client_options["transport"] = pooled_transport(
                pooled_connections, client_options["connection_timeout"], client_options["read_timeout"]
            )
        client_options.setdefault(
            "retry_policy", LinearRetry(backoff=1, random_jitter_range=1, retry_total=retry_total)
        )
        if connection_string:
            self._service = BlobServiceClient.from_connection_string(connection_string, **client_options)
        elif account_url and credential is not None:
            self._service = BlobServiceClient(account_url, credential=credential, **client_options)
        else:
            raise ConfigurationError(
                "blob store needs IMAGES_STORAGE (connection string) or IMAGES_STORAGE__blobServiceUri + an identity"
            )
        if own_transport:
            pin_environment(client_options["transport"].session, self._service.url)
        if not container or not container.islower():
            raise ConfigurationError(f"IMAGES_CONTAINER '{container}' is not a valid container name")
        self.container = container
        self._container = self._service.get_container_client(container)
        self._uses_key = connection_string is not None and "AccountKey=" in connection_string

    def ensure_container(self) -> None:
        try:
            _translate(f"create container {self.container}", self._container.create_container)
        except ImagepipeError as exc:
            if not isinstance(exc.__cause__, ResourceExistsError):
                raise

    def put(self, name: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]) -> BlobInfo:
        """Store ``data`` as ``name`` (replacing it) in one request; the answer's ETag and Last-Modified, with
        what was sent, are the stored blob's properties (no second request to read them back)."""
        blob = self._container.get_blob_client(name)
        stored = dict(metadata)
        response = _translate(
            f"upload blob {name}",
            lambda: blob.upload_blob(
                data,
                overwrite=True,
                metadata=stored,
                content_settings=ContentSettings(content_type=content_type),
            ),
        )
        return BlobInfo(
            container=self.container,
            name=name,
            etag=str(response["etag"]).strip('"'),
            size=len(data),
            content_type=content_type,
            last_modified=response["last_modified"],
            metadata=stored,
            url=blob.url,
        )

    def get_properties(self, name: str) -> BlobInfo:
        blob = self._container.get_blob_client(name)
        props = _translate(f"read blob {self.container}/{name}", blob.get_blob_properties)
        return _info(self.container, props, blob.url)

    def download(self, name: str) -> tuple[bytes, BlobInfo]:
        blob = self._container.get_blob_client(name)
        stream = _translate(f"download blob {self.container}/{name}", blob.download_blob)
        data = _translate(f"download blob {self.container}/{name}", stream.readall)
        return data, _info(self.container, stream.properties, blob.url)

    def download_within(self, name: str, max_bytes: int) -> tuple[bytes | None, BlobInfo]:
        """One ranged Get Blob of the first ``max_bytes + 1`` bytes: the whole blob when it fits, else the
        answer's Content-Range gives the blob's size (``imagepipe.ports.BlobStore.download_within``)."""
        blob = self._container.get_blob_client(name)
        what = f"download blob {self.container}/{name}"

        def first_bytes() -> Any:
            try:
                return blob.download_blob(offset=0, length=max_bytes + 1)
            except HttpResponseError as exc:
                if exc.status_code != 416:
                    raise
                return blob.download_blob()  # an empty blob has no byte 0 to range over: read it whole

        stream = _translate(what, first_bytes)
        data = _translate(what, stream.readall)
        info = _info(self.container, stream.properties, blob.url)
        size = _range_total(stream.properties.content_range) or len(data)
        info = replace(info, size=size)
        return (data, info) if size <= max_bytes else (None, info)

    def delete(self, name: str) -> bool:
        blob = self._container.get_blob_client(name)
        try:
            _translate(f"delete blob {name}", lambda: blob.delete_blob(delete_snapshots="include"))
        except NotFoundError:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        what = f"list blobs in {self.container}"
        pages = _translate(
            what, lambda: self._container.list_blobs(name_starts_with=prefix or None, include=["metadata"])
        )
        items = iter(pages)
        while (props := _translate(what, lambda: next(items, None))) is not None:
            yield _info(self.container, props)

    def upload_url(self, name: str, *, expires_in_s: int, content_type: str) -> str:
        blob = self._container.get_blob_client(name)
        now = datetime.now(UTC)
        start, expiry = now - timedelta(minutes=5), now + timedelta(seconds=expires_in_s)
        permission = BlobSasPermissions(create=True, write=True)
        account = self._service.account_name or ""
        if self._uses_key:
            credential = self._service.credential
            token = generate_blob_sas(
                account,
                self.container,
                name,
                account_key=credential.account_key,
                permission=permission,
                expiry=expiry,
                start=start,
                content_type=content_type,
            )
        else:
            key = _translate(
                "get a user delegation key (needs 'Storage Blob Delegator')",
                lambda: self._service.get_user_delegation_key(start, expiry),
            )
            token = generate_blob_sas(
                account,
                self.container,
                name,
                user_delegation_key=key,
                permission=permission,
                expiry=expiry,
                start=start,
                content_type=content_type,
            )
        return f"{blob.url}?{token}"
