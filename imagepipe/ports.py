"""Ports: the interfaces the app depends on (blobs, records, vision, document fields), one adapter per mode each.

Workflow and API code only ever sees these protocols; the composition root (``imagepipe.composition``)
picks the adapters from settings. Records and analyses are plain JSON-native dicts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

JsonDict = dict[str, Any]


# ---------------------------------------------------------------------------------------------------
# Blobs
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlobInfo:
    """Facts about one stored blob version."""

    container: str
    name: str
    etag: str
    size: int
    content_type: str | None
    last_modified: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)
    url: str = ""


class BlobStore(Protocol):
    """Images container access (Azure Blob Storage / Azurite)."""

    container: str

    def ensure_container(self) -> None: ...

    def put(self, name: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]) -> BlobInfo: ...

    def get_properties(self, name: str) -> BlobInfo: ...

    def download(self, name: str) -> tuple[bytes, BlobInfo]: ...

    def download_within(self, name: str, max_bytes: int) -> tuple[bytes | None, BlobInfo]:
        """The bytes and properties in one request when the blob is at most ``max_bytes`` long; else (None,
        its properties, ``size`` the whole blob's), having read no more than ``max_bytes + 1`` bytes."""
        ...

    def delete(self, name: str) -> bool: ...

    def list(self, prefix: str = "") -> Iterator[BlobInfo]: ...

    def upload_url(self, name: str, *, expires_in_s: int, content_type: str) -> str: ...


# ---------------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchQuery:
    """Filters of ``GET /api/images``; every field is optional and they combine with AND."""

    profile: str | None = None
    tag: str | None = None
    label: str | None = None
    text: str | None = None
    status: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    limit: int = 50
    continuation: str | None = None
    #: ``<labelSet>:<label>`` of the record's ``customLabelNames`` (docs/custom-labels.md)
    custom_label: str | None = None


@dataclass(frozen=True)
class SearchPage:
    items: list[JsonDict]
    continuation: str | None


class RecordStore(Protocol):
    """One document per image (``id`` = image id). See docs/contracts.md for the record schema."""

    def get(self, image_id: str) -> JsonDict | None: ...

    def upsert_if_not_older(self, record: JsonDict) -> bool:
        """Write ``record`` unless the stored one describes a newer blob version; True when written."""
        ...

    def delete(self, image_id: str) -> bool: ...

    def search(self, query: SearchQuery) -> SearchPage: ...

    def near_duplicates(self, phash: str, *, max_distance: int, exclude_id: str, limit: int = 20) -> list[JsonDict]:
        """Records whose perceptual hash is within ``max_distance`` bits of ``phash``, nearest first (then by id),
        at most ``limit``; each returned record carries its Hamming ``distance`` (int) as an extra field."""
        ...

    def iter_all(self, *, fields: Sequence[str] | None = None) -> Iterator[JsonDict]: ...


# ---------------------------------------------------------------------------------------------------
# Vision
# ---------------------------------------------------------------------------------------------------

#: Azure AI Vision 4.0 visual features, by their REST names.
VISUAL_FEATURES = ("tags", "objects", "people", "read", "caption", "denseCaptions", "smartCrops")
#: Our additions beyond AI Vision; each lands in a clearly named extra field of the result.
EXTRA_FEATURES = ("adult", "faces", "barcodes", "colors", "phash", "exif")


@dataclass(frozen=True)
class AnalysisRequest:
    """What to compute for one image."""

    features: Sequence[str]
    extras: Sequence[str] = ()
    language: str = "en"
    profile: str = "general"


class VisionAnalyzer(Protocol):
    """Image analysis in the Azure AI Vision 4.0 ``ImageAnalysisResult`` JSON shape (plus extra fields).

    Raises ``TransientServiceError`` for retryable failures and ``PermanentImageError`` when the image
    itself cannot be analyzed. What the provider cannot produce is absent from the result, never invented.
    """

    provider: str

    def analyze(self, image: bytes, request: AnalysisRequest) -> JsonDict: ...

    def read_text(self, image: bytes, request: AnalysisRequest) -> JsonDict:
        """OCR only: returns ``{"readResult": {...}, "modelVersion": ...}``."""
        ...


# ---------------------------------------------------------------------------------------------------
# Custom label sets (docs/custom-labels.md)
# ---------------------------------------------------------------------------------------------------


class LabelSetStore(Protocol):
    """Trained custom label sets, stored with the records: immutable numbered versions per (profile, name),
    one of them active.

    A version is a JSON document (``imagepipe.labelsets``): ``profile``, ``name``, ``version`` (1, 2, ...; never
    reused within a set, even after a delete), ``createdAt`` and the trained model. ``add_version`` numbers it
    and makes it the active one.
    """

    def add_version(self, doc: JsonDict) -> JsonDict:
        """Store ``doc`` as the next version of its (profile, name) and activate it; returns the stored form."""
        ...

    def get_version(self, profile: str, name: str, version: int | None = None) -> JsonDict | None:
        """One version (the active one when ``version`` is None), or None."""
        ...

    def list_versions(self, profile: str | None = None) -> list[JsonDict]:
        """Every stored version (of one profile when given), by profile, name, then version."""
        ...

    def active_versions(self, profile: str) -> list[JsonDict]:
        """The active version of each label set of ``profile``, by name."""
        ...

    def activate(self, profile: str, name: str, version: int) -> bool:
        """Make a stored version the active one; False when that version does not exist."""
        ...

    def delete(self, profile: str, name: str, version: int | None = None) -> int:
        """Delete one version (not the active one: ``ConflictError``), or with None the whole set; returns
        how many versions were deleted."""
        ...


class ImageEmbedder(Protocol):
    """An image -> fixed-length feature vector (L2-normalised) that custom label sets are trained on."""

    #: which model and layer the vectors come from; a label set trained on one model is only used with it
    model: str

    def embed(self, image: bytes) -> list[float]:
        """The vector of one image's bytes; ``PermanentImageError`` when they do not decode."""
        ...


# ---------------------------------------------------------------------------------------------------
# Document fields
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRequest:
    """What a document-field extraction needs besides the image: the profile's locale and the Azure model."""

    locale: str = "en-GB"
    model: str = "prebuilt-invoice"
    profile: str = "general"


class DocumentFieldExtractor(Protocol):
    """Typed fields of a document (``imagepipe.domain.DocumentFields`` JSON) from its image and OCR result.

    The local adapter reads the OCR result; Azure AI Document Intelligence reads the image. Raises
    ``TransientServiceError`` for retryable failures and ``PermanentImageError`` when the image cannot be read.
    """

    provider: str

    def extract(self, image: bytes, read_result: JsonDict, request: FieldRequest) -> JsonDict: ...
