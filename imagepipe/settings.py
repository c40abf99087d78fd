"""The one typed settings object: environment variables (identity-based names) -> adapter choices and limits.

Built by ``load_settings()`` at first use, never at import time. Azure mode sets endpoint-style names
(``IMAGES_STORAGE__blobServiceUri``, ``COSMOS__accountEndpoint``, ``VISION__endpoint``) and authenticates
with managed identity; the local default uses an Azurite connection string, SQLite and the local analyzer.
Nothing else in the code asks which mode it runs in.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from imagepipe.domain import VISION_RETRY
from imagepipe.errors import ConfigurationError
from imagepipe.imagefacts import MAX_BYTES, MAX_PIXELS, MAX_SIDE_PX, MIN_SIDE_PX, Limits

_HOSTNAME = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")


class Settings(BaseSettings):
    """Every setting the app reads. See README "Configuration" for the table."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", populate_by_name=True)

    # Blobs: a connection string (Azurite, local) or a blob service URI (managed identity, Azure).
    images_storage_connection_string: str | None = Field(default=None, validation_alias="IMAGES_STORAGE")
    images_storage_blob_service_uri: str | None = Field(default=None, validation_alias="IMAGES_STORAGE__blobServiceUri")
    images_container: str = Field(default="images", validation_alias="IMAGES_CONTAINER")
    # Event Grid dead-letters land as JSON blobs here (same account as the images).
    deadletter_container: str = Field(default="deadletters", validation_alias="DEADLETTER_CONTAINER")

    # Records: SQLite file (local) or Cosmos DB for NoSQL (Azure, managed identity).
    record_store: Literal["sqlite", "cosmos"] = Field(default="sqlite", validation_alias="RECORD_STORE")
    records_sqlite_path: str = Field(default=".state/records.sqlite3", validation_alias="RECORDS_SQLITE_PATH")
    cosmos_endpoint: str | None = Field(default=None, validation_alias="COSMOS__accountEndpoint")
    cosmos_database: str = Field(default="imagepipe", validation_alias="COSMOS_DATABASE")
    cosmos_container: str = Field(default="images", validation_alias="COSMOS_CONTAINER")

    # Vision: the local analyzer or Azure AI Vision 4.0 (managed identity).
    vision_provider: Literal["local", "azure"] = Field(default="local", validation_alias="VISION_PROVIDER")
    vision_endpoint: str | None = Field(default=None, validation_alias="VISION__endpoint")
    vision_timeout_s: float = Field(default=30.0, gt=0, validation_alias="VISION_TIMEOUT_S")
    # Azure AI Vision throttling, per process (instance): calls in flight and call starts per second (0: no
    # rate cap). Deployments set them so that max instances x limit stays within the account's quota
    # (S1: 20/s). A call waits at most VISION_MAX_WAIT_S (Retry-After, back-off, this throttle) before it
    # fails as transient for the orchestration to retry later.
    vision_max_concurrency: int = Field(default=8, ge=1, le=1000, validation_alias="VISION_MAX_CONCURRENCY")
    vision_rate_limit_per_second: float = Field(default=10.0, ge=0, validation_alias="VISION_RATE_LIMIT_PER_SECOND")
    vision_max_wait_s: float = Field(default=30.0, gt=0, le=600, validation_alias="VISION_MAX_WAIT_S")
    # Fault injection for rehearsing outages (game days, tests): a JSON plan file; unset in normal operation.
    vision_fault_plan: str | None = Field(default=None, validation_alias="VISION_FAULT_PLAN")

    # Document fields (profiles with documentFields): the local extractor over the OCR result, or Azure AI
    # Document Intelligence (prebuilt invoice/receipt + query fields, managed identity). docs/document-fields.md
    document_fields_provider: Literal["local", "azure"] = Field(
        default="local", validation_alias="DOCUMENT_FIELDS_PROVIDER"
    )
    document_intelligence_endpoint: str | None = Field(default=None, validation_alias="DOCUMENT_INTELLIGENCE__endpoint")
    document_intelligence_timeout_s: float = Field(
        default=60.0, gt=0, le=600, validation_alias="DOCUMENT_INTELLIGENCE_TIMEOUT_S"
    )

    # Identity: a user-assigned identity's client id; unset means the system-assigned one.
    azure_client_id: str | None = Field(default=None, validation_alias="AZURE_CLIENT_ID")

    # Profiles: an optional JSON file that adds or overrides analysis profiles.
    profiles_file: str | None = Field(default=None, validation_alias="PROFILES_FILE")

    # Image limits, enforced once at upload (docs/image-validation.md). The defaults are the most that AI Vision 4.0
    # (20 MB, 50..16,000 px per side) and the local analyzer (MAX_PIXELS) accept; they can be lowered, not raised.
    max_upload_bytes: int = Field(default=MAX_BYTES, gt=0, le=MAX_BYTES, validation_alias="MAX_UPLOAD_BYTES")
    min_dimension_px: int = Field(
        default=MIN_SIDE_PX, ge=MIN_SIDE_PX, le=MAX_SIDE_PX, validation_alias="MIN_DIMENSION_PX"
    )
    max_dimension_px: int = Field(
        default=MAX_SIDE_PX, ge=MIN_SIDE_PX, le=MAX_SIDE_PX, validation_alias="MAX_DIMENSION_PX"
    )
    max_pixels: int = Field(default=MAX_PIXELS, gt=0, le=MAX_PIXELS, validation_alias="MAX_PIXELS")
    upload_url_ttl_s: int = Field(default=900, ge=60, le=86400, validation_alias="UPLOAD_URL_TTL_S")

    # Retry policy of the vision activities (declared where the orchestrator calls them).
    vision_max_attempts: int = Field(
        default=VISION_RETRY.max_number_of_attempts, ge=1, le=20, validation_alias="VISION_MAX_ATTEMPTS"
    )
    vision_first_retry_ms: int = Field(
        default=VISION_RETRY.first_retry_interval_in_milliseconds, ge=100, validation_alias="VISION_FIRST_RETRY_MS"
    )

    # Client API: absolute URLs (statusUrl, Location) are built from PUBLIC_BASE_URL, else from the app's own
    # host name (WEBSITE_HOSTNAME, set by Azure), never from the request's Host header; neither set means
    # root-relative URLs.
    public_base_url: str | None = Field(default=None, validation_alias="PUBLIC_BASE_URL")
    website_hostname: str | None = Field(default=None, validation_alias="WEBSITE_HOSTNAME")
    # Threads that run the HTTP handlers' blocking work (storage, records, image decoding) off the event loop.
    http_worker_threads: int = Field(default=16, ge=1, le=256, validation_alias="HTTP_WORKER_THREADS")

    # Blob storage client: short timeouts and a small retry budget, so an outage answers a fast 503.
    storage_connect_timeout_s: float = Field(default=3.0, gt=0, le=60, validation_alias="STORAGE_CONNECT_TIMEOUT_S")
    storage_read_timeout_s: float = Field(default=20.0, gt=0, le=600, validation_alias="STORAGE_READ_TIMEOUT_S")
    storage_retry_total: int = Field(default=2, ge=0, le=10, validation_alias="STORAGE_RETRY_TOTAL")

    # Near-duplicate detection: Hamming distance on the 64-bit perceptual hash.
    near_duplicate_max_distance: int = Field(default=6, ge=0, le=32, validation_alias="NEAR_DUPLICATE_MAX_DISTANCE")

    # Accepted uploads (docs/reliability.md): the reconcile sweep ends an unfinished record (pending or
    # processing) that no run will end only when it has not changed for this long, and an expired upload
    # URL's record this long after its expiry. (The sweep's timer schedule is RECONCILE_SCHEDULE, read when
    # triggers/reconcile.py is imported: a trigger's schedule is fixed at registration.)
    reconcile_grace_s: float = Field(default=300.0, ge=0, le=86400, validation_alias="RECONCILE_GRACE_S")

    # Custom labels (docs/custom-labels.md): where label sets are stored in Cosmos DB (the records' database),
    # and the embedding model run in-process for them (onnx: EfficientNet-Lite0's pooled features; off: no
    # custom labels are computed and training answers 503).
    cosmos_labelsets_container: str = Field(default="labelsets", validation_alias="COSMOS_LABELSETS_CONTAINER")
    custom_labels_embedder: Literal["onnx", "off"] = Field(default="onnx", validation_alias="CUSTOM_LABELS_EMBEDDER")
    custom_labels_model_dir: str | None = Field(default=None, validation_alias="CUSTOM_LABELS_MODEL_DIR")

    @model_validator(mode="after")
    def _check_required(self) -> Settings:
        if not (self.images_storage_connection_string or self.images_storage_blob_service_uri):
            raise ValueError(
                "IMAGES_STORAGE (connection string, local) or IMAGES_STORAGE__blobServiceUri "
                "(https://<account>.blob.core.windows.net, Azure) must be set"
            )
        if self.record_store == "cosmos" and not self.cosmos_endpoint:
            raise ValueError(
                "RECORD_STORE=cosmos needs COSMOS__accountEndpoint (https://<account>.documents.azure.com)"
            )
        if self.vision_provider == "azure" and not self.vision_endpoint:
            raise ValueError(
                "VISION_PROVIDER=azure needs VISION__endpoint (https://<name>.cognitiveservices.azure.com)"
            )
        if self.document_fields_provider == "azure" and not self.document_intelligence_endpoint:
            raise ValueError(
                "DOCUMENT_FIELDS_PROVIDER=azure needs DOCUMENT_INTELLIGENCE__endpoint "
                "(https://<name>.cognitiveservices.azure.com)"
            )
        if self.public_base_url is not None:
            parts = urlsplit(self.public_base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
                raise ValueError("PUBLIC_BASE_URL must be an absolute http(s) URL such as https://images.example.com")
        if self.website_hostname is not None and not _HOSTNAME.match(self.website_hostname):
            raise ValueError(
                "WEBSITE_HOSTNAME must be a host name with an optional port, such as app.azurewebsites.net"
            )
        if self.min_dimension_px > self.max_dimension_px:
            raise ValueError("MIN_DIMENSION_PX must not exceed MAX_DIMENSION_PX")
        return self

    @property
    def image_limits(self) -> Limits:
        """What an accepted image must satisfy (upload, pipeline, dashboard and label set examples alike)."""
        return Limits(self.max_upload_bytes, self.min_dimension_px, self.max_dimension_px, self.max_pixels)


def load_settings() -> Settings:
    """Read settings from the environment; a missing or bad one raises ``ConfigurationError`` naming it."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}. Fix the app settings and restart.") from exc
