"""Settings pick the adapters (no code asks which mode it runs in); bad settings fail fast, naming the setting."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imagepipe.adapters.azure_blob import AzureBlobStore
from imagepipe.adapters.azure_vision import AzureVisionAnalyzer
from imagepipe.adapters.cosmos_records import CosmosRecordStore
from imagepipe.adapters.sqlite_records import SqliteRecordStore
from imagepipe.adapters.vision_faults import FaultInjectingVision
from imagepipe.composition import reset_services, services
from imagepipe.errors import ConfigurationError
from imagepipe.settings import load_settings

pytestmark = pytest.mark.unit

AZURE = {
    "IMAGES_STORAGE__blobServiceUri": "https://imgs.blob.core.windows.net",
    "RECORD_STORE": "cosmos",
    "COSMOS__accountEndpoint": "https://acct.documents.azure.com:443/",
    "VISION_PROVIDER": "azure",
    "VISION__endpoint": "https://vis.cognitiveservices.azure.com/",
}
NAMES = (
    "IMAGES_STORAGE",
    "IMAGES_STORAGE__blobServiceUri",
    "RECORD_STORE",
    "COSMOS__accountEndpoint",
    "VISION_PROVIDER",
    "VISION__endpoint",
    "VISION_FAULT_PLAN",
    "RECORDS_SQLITE_PATH",
    "MAX_UPLOAD_BYTES",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    reset_services()
    yield
    reset_services()


def test_azure_settings_select_the_azure_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in AZURE.items():
        monkeypatch.setenv(key, value)
    svc = services()
    assert isinstance(svc.blobs, AzureBlobStore) and svc.blobs.container == "images"
    assert isinstance(svc.deadletters, AzureBlobStore) and svc.deadletters.container == "deadletters"
    assert isinstance(svc.records, CosmosRecordStore)
    assert isinstance(svc.vision, AzureVisionAnalyzer)


def test_local_settings_select_the_local_adapters(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("IMAGES_STORAGE", "UseDevelopmentStorage=true")
    monkeypatch.setenv("RECORDS_SQLITE_PATH", f"{tmp_path}/r.sqlite3")
    monkeypatch.setenv("VISION_FAULT_PLAN", f"{tmp_path}/faults.json")
    svc = services()
    assert isinstance(svc.records, SqliteRecordStore)
    assert isinstance(svc.vision, FaultInjectingVision) and svc.vision.provider == svc.vision.inner.provider


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "IMAGES_STORAGE"),
        ({**AZURE, "COSMOS__accountEndpoint": ""}, "COSMOS__accountEndpoint"),
        ({**AZURE, "VISION__endpoint": ""}, "VISION__endpoint"),
        ({**AZURE, "RECORD_STORE": "mongo"}, "RECORD_STORE"),
        ({**AZURE, "MAX_UPLOAD_BYTES": "lots"}, "MAX_UPLOAD_BYTES"),
    ],
)
def test_bad_settings_fail_fast_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    assert named in error.value.message
