"""Container listings for the Event Grid emulator, at the cost of the XML and no more.

The emulator learns of new blobs by listing the subscribed container, so a listing's cost is paid on every poll
and grows with the container. The storage SDK turns each listed blob into a model object, about 0.4 ms of CPU
per blob per poll (0.4 s per poll at 1,000 blobs, measured with Azurite), so a container of a few thousand
blobs kept a core busy. Here one List Blobs request per page is signed with a short-lived container SAS (list
and read permissions, renewed before it expires, never leaving the devhost); its answer is scanned for each
blob's name and ETag only (the service writes that XML, one ``<Blob>`` element after another), and a blob's
element is parsed in full only when the emulator asks for its details (a blob it has not seen); Get Block List
(whether a blob was put from blocks) goes the same way. Without an account key in the connection string (a
SAS connection string), the SDK is used instead.
"""

from __future__ import annotations

import html
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote

import requests

#: Blobs per List Blobs request (the service's maximum).
PAGE_SIZE = 5000
#: Lifetime of the listing SAS; a new one is made when less than half of it is left.
SAS_LIFETIME_S = 3600
REQUEST_TIMEOUT_S = (3.0, 30.0)


class ContainerMissing(Exception):
    """The listed container does not exist (yet)."""


@dataclass(frozen=True)
class ListedBlob:
    """What a listing says of one blob: the fields a ``BlobCreated`` event carries."""

    name: str
    etag: str
    size: int
    content_type: str | None
    blob_type: str
    last_modified: datetime | None
    copied: bool


@dataclass(frozen=True)
class Listed:
    """One blob of a listing: its name and ETag, and the content of its ``<Blob>`` element for ``details``."""

    name: str
    etag: str
    element: bytes = b""

    def details(self) -> ListedBlob:
        """The blob's properties, read from its element (parsed here, not during the scan)."""
        props = ET.fromstring(b"<Blob>" + self.element + b"</Blob>").find("Properties") if self.element else None
        return ListedBlob(
            name=self.name,
            etag=self.etag,
            size=int(_text(props, "Content-Length") or 0),
            content_type=_text(props, "Content-Type"),
            blob_type=_text(props, "BlobType") or "BlockBlob",
            last_modified=_when(_text(props, "Last-Modified")),
            copied=bool(_text(props, "CopyId")),
        )


def _text(parent: ET.Element | None, tag: str) -> str | None:
    found = None if parent is None else parent.find(tag)
    return None if found is None else found.text


def _when(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def _between(data: bytes, opening: bytes, closing: bytes, start: int = 0) -> tuple[bytes, int] | None:
    """The bytes between the first ``opening`` at or after ``start`` and the next ``closing``, and the index after
    ``closing``; None when there is no such pair."""
    begin = data.find(opening, start)
    if begin < 0:
        return None
    end = data.find(closing, begin + len(opening))
    if end < 0:
        return None
    return data[begin + len(opening) : end], end + len(closing)


def _name(element: bytes) -> str:
    raw = _between(element, b"<Name", b"</Name>")
    if raw is None or b">" not in raw[0]:
        raise ValueError(f"a listed blob has no name: {element[:200]!r}")
    attributes, _, text = raw[0].partition(b">")
    name = text.decode("utf-8")
    if "&" in name:
        name = html.unescape(name)  # XML's entities: &amp; &lt; &gt; &quot; &apos; and &#...;
    return unquote(name) if b'Encoded="true"' in attributes else name  # names XML cannot carry: percent-encoded


def parse_page(body: bytes) -> tuple[list[Listed], str | None]:
    """The blobs of one List Blobs answer and its continuation marker (None on the last page). The answer is
    scanned with ``bytes.find`` (a regular expression or a full parse cost 20-30 us per blob)."""
    blobs: list[Listed] = []
    position = 0
    while (found := _between(body, b"<Blob>", b"</Blob>", position)) is not None:
        element, position = found
        etag = _between(element, b"<Etag>", b"</Etag>")
        blobs.append(Listed(_name(element), etag[0].decode("ascii") if etag else "", element))
    marker = _between(body, b"<NextMarker>", b"</NextMarker>", position)
    return blobs, (html.unescape(marker[0].decode("utf-8")) or None) if marker else None


class ContainerLister:
    """Lists the containers of one storage account (a ``BlobServiceClient``) for the emulator's polls."""

    def __init__(self, service: Any) -> None:
        self._service = service
        self._session = requests.Session()
        self._sas: dict[str, tuple[str, float]] = {}

    def close(self) -> None:
        self._session.close()

    def _container_sas(self, container: str) -> str | None:
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        key = getattr(self._service.credential, "account_key", None)
        if not key:
            return None
        token, expires = self._sas.get(container, ("", 0.0))
        if expires - time.time() < SAS_LIFETIME_S / 2:
            expiry = datetime.now(UTC) + timedelta(seconds=SAS_LIFETIME_S)
            token = generate_container_sas(
                self._service.account_name,
                container,
                account_key=key,
                permission=ContainerSasPermissions(list=True, read=True),
                expiry=expiry,
                start=datetime.now(UTC) - timedelta(minutes=5),
            )
            self._sas[container] = (token, expiry.timestamp())
        return token

    def blobs(self, container: str) -> list[Listed]:
        """Every blob of ``container`` (committed ones); ``ContainerMissing`` when there is no such container."""
        sas = self._container_sas(container)
        if sas is None:
            return self._list_with_sdk(container)
        url = f"{self._service.url.rstrip('/')}/{container}"
        params = {"restype": "container", "comp": "list", "include": "copy", "maxresults": str(PAGE_SIZE)}
        blobs: list[Listed] = []
        marker: str | None = None
        while True:
            query = params | ({"marker": marker} if marker else {})
            answer = self._session.get(f"{url}?{sas}", params=query, timeout=REQUEST_TIMEOUT_S)
            if answer.status_code == 404:
                raise ContainerMissing(container)
            answer.raise_for_status()
            page, marker = parse_page(answer.content)
            blobs.extend(page)
            if marker is None:
                return blobs

    def blob_url(self, container: str, name: str) -> str:
        """The blob's URL as the storage SDK writes it."""
        return f"{self._service.url.rstrip('/')}/{container}/{quote(name, safe='~/')}"

    def has_committed_blocks(self, container: str, name: str) -> bool:
        """Whether the blob was committed from blocks (Put Block List), by one Get Block List request; False for
        a page or append blob (the service refuses the request for those) or one that is gone."""
        sas = self._container_sas(container)
        if sas is None:
            return self._has_committed_blocks_with_sdk(container, name)
        url = self.blob_url(container, name)
        params = {"comp": "blocklist", "blocklisttype": "committed"}
        answer = self._session.get(f"{url}?{sas}", params=params, timeout=REQUEST_TIMEOUT_S)
        if answer.status_code != 200:
            return False
        return b"<Block>" in answer.content  # only committed blocks were asked for

    def _has_committed_blocks_with_sdk(self, container: str, name: str) -> bool:
        try:
            committed, _ = self._service.get_blob_client(container, name).get_block_list("committed")
        except Exception:  # noqa: BLE001 - page/append blobs have no block list; a gone blob has none
            return False
        return bool(committed)

    def _list_with_sdk(self, container: str) -> list[Listed]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            listed = list(self._service.get_container_client(container).list_blobs(include=["copy"]))
        except ResourceNotFoundError as exc:
            raise ContainerMissing(container) from exc
        return [_SdkListed(p.name, str(p.etag), b"", p) for p in listed]


@dataclass(frozen=True)
class _SdkListed(Listed):
    """A blob the SDK listed: the details are its properties object's."""

    props: Any = None

    def details(self) -> ListedBlob:
        p = self.props
        return ListedBlob(
            name=self.name,
            etag=self.etag,
            size=int(p.size or 0),
            content_type=p.content_settings.content_type if p.content_settings else None,
            blob_type=str(getattr(p.blob_type, "value", p.blob_type)),
            last_modified=p.last_modified,
            copied=bool(getattr(p.copy, "id", None)),
        )
