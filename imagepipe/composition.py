"""Composition root: builds the adapters the settings select, once per process.

This is the only module that knows which adapter serves which port. Functions call ``services()``; tests
call ``reset_services()`` after changing the environment.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import cast

from azure.core.credentials import TokenCredential

from imagepipe.errors import ConfigurationError
from imagepipe.ports import (
    BlobStore,
    DocumentFieldExtractor,
    ImageEmbedder,
    LabelSetStore,
    RecordStore,
    VisionAnalyzer,
)
from imagepipe.profiles import Profile, load_profiles
from imagepipe.settings import Settings, load_settings


@dataclass
class Services:
    settings: Settings
    blobs: BlobStore
    deadletters: BlobStore
    records: RecordStore
    profiles: dict[str, Profile]
    _vision: VisionAnalyzer | None = None
    _vision_lock: threading.Lock = field(default_factory=threading.Lock)
    _fields: DocumentFieldExtractor | None = None
    _fields_lock: threading.Lock = field(default_factory=threading.Lock)
    _labelsets: LabelSetStore | None = None
    _embedder: ImageEmbedder | None = None
    _labels_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def labelsets(self) -> LabelSetStore:
        """The custom label set store next to the records (built on first use)."""
        with self._labels_lock:
            if self._labelsets is None:
                self._labelsets = _build_labelsets(self.settings)
            return self._labelsets

    @property
    def embedder(self) -> ImageEmbedder | None:
        """The custom labels' embedding model (None when CUSTOM_LABELS_EMBEDDER=off); loads lazily."""
        if self.settings.custom_labels_embedder == "off":
            return None
        with self._labels_lock:
            if self._embedder is None:
                try:
                    from imagepipe.vision.embedding import OnnxImageEmbedder
                except ImportError as exc:  # a package without the local extra (numpy, onnxruntime)
                    from imagepipe.labelsets import UnavailableEmbedder

                    self._embedder = UnavailableEmbedder(
                        f"custom labels need numpy, onnxruntime and the EfficientNet-Lite0 model in the app "
                        f"package ({exc}); see docs/custom-labels.md, or set CUSTOM_LABELS_EMBEDDER=off"
                    )
                else:
                    self._embedder = OnnxImageEmbedder(self.settings.custom_labels_model_dir)
            return self._embedder

    @property
    def vision(self) -> VisionAnalyzer:
        """The vision adapter, built on first use (local models load lazily and are costly)."""
        with self._vision_lock:
            if self._vision is None:
                self._vision = _build_vision(self.settings)
            return self._vision

    @property
    def fields(self) -> DocumentFieldExtractor:
        """The document-field extractor the settings select, built on first use."""
        with self._fields_lock:
            if self._fields is None:
                self._fields = _build_fields(self.settings)
            return self._fields


_lock = threading.Lock()
_services: Services | None = None


def _credential(settings: Settings) -> TokenCredential:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if settings.azure_client_id:
        return ManagedIdentityCredential(client_id=settings.azure_client_id)
    return DefaultAzureCredential()


def _build_blobs(settings: Settings, container: str) -> BlobStore:
    from imagepipe.adapters.azure_blob import AzureBlobStore

    connection_string = settings.images_storage_connection_string
    return AzureBlobStore(
        container,
        connection_string=connection_string,
        account_url=None if connection_string else settings.images_storage_blob_service_uri,
        credential=None if connection_string else _credential(settings),
        connect_timeout_s=settings.storage_connect_timeout_s,
        read_timeout_s=settings.storage_read_timeout_s,
        retry_total=settings.storage_retry_total,
    )


def _build_records(settings: Settings) -> RecordStore:
    if settings.record_store == "cosmos":
        from imagepipe.adapters.cosmos_records import CosmosRecordStore

        assert settings.cosmos_endpoint is not None  # checked by Settings
        return CosmosRecordStore(
            settings.cosmos_endpoint, settings.cosmos_database, settings.cosmos_container, _credential(settings)
        )
    from imagepipe.adapters.sqlite_records import SqliteRecordStore

    return SqliteRecordStore(settings.records_sqlite_path)


def _build_labelsets(settings: Settings) -> LabelSetStore:
    if settings.record_store == "cosmos":
        from imagepipe.adapters.cosmos_labelsets import CosmosLabelSetStore

        assert settings.cosmos_endpoint is not None  # checked by Settings
        return CosmosLabelSetStore(
            settings.cosmos_endpoint,
            settings.cosmos_database,
            settings.cosmos_labelsets_container,
            _credential(settings),
        )
    from imagepipe.adapters.sqlite_labelsets import SqliteLabelSetStore

    return SqliteLabelSetStore(settings.records_sqlite_path)


def _build_vision(settings: Settings) -> VisionAnalyzer:
    analyzer = _build_vision_provider(settings)
    if settings.vision_fault_plan:
        from imagepipe.adapters.vision_faults import FaultInjectingVision

        return FaultInjectingVision(analyzer, settings.vision_fault_plan)
    return analyzer


def _build_vision_provider(settings: Settings) -> VisionAnalyzer:
    if settings.vision_provider == "azure":
        from imagepipe.adapters.azure_vision import AzureVisionAnalyzer

        assert settings.vision_endpoint is not None  # checked by Settings
        return AzureVisionAnalyzer(
            settings.vision_endpoint,
            _credential(settings),
            timeout_s=settings.vision_timeout_s,
            max_concurrency=settings.vision_max_concurrency,
            rate_limit_per_s=settings.vision_rate_limit_per_second,
            max_wait_s=settings.vision_max_wait_s,
        )
    try:
        from imagepipe.vision import LocalAnalyzer
    except ImportError as exc:
        raise ConfigurationError(
            f"VISION_PROVIDER=local but the local analyzer cannot be imported ({exc}); run 'make install'"
        ) from exc
    return cast(VisionAnalyzer, LocalAnalyzer())


def _build_fields(settings: Settings) -> DocumentFieldExtractor:
    if settings.document_fields_provider == "azure":
        from imagepipe.adapters.azure_documents import AzureDocumentFieldExtractor

        assert settings.document_intelligence_endpoint is not None  # checked by Settings
        return AzureDocumentFieldExtractor(
            settings.document_intelligence_endpoint,
            _credential(settings),
            timeout_s=settings.document_intelligence_timeout_s,
        )
    from imagepipe.documents import LocalFieldExtractor

    return LocalFieldExtractor()


def services() -> Services:
    """The process-wide services, built from settings on first use."""
    global _services
    with _lock:
        if _services is None:
            settings = load_settings()
            _services = Services(
                settings=settings,
                blobs=_build_blobs(settings, settings.images_container),
                deadletters=_build_blobs(settings, settings.deadletter_container),
                records=_build_records(settings),
                profiles=load_profiles(settings.profiles_file),
            )
        return _services


def reset_services() -> None:
    """Forget the built services (tests, or after a settings change)."""
    global _services
    with _lock:
        _services = None
