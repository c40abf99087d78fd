"""The pipeline steps with the Azure adapters: Cosmos DB and Azure AI Vision through their real SDKs over
transports that answer as the services do (tests/fakes), blobs on Azurite. Proves the ports compose in the
Azure mode, not only each adapter alone."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from imagepipe import labelsets, pipeline
from imagepipe.adapters.azure_documents import AzureDocumentFieldExtractor
from imagepipe.adapters.azure_vision import AzureVisionAnalyzer
from imagepipe.adapters.cosmos_labelsets import CosmosLabelSetStore
from imagepipe.adapters.cosmos_records import CosmosRecordStore
from imagepipe.composition import Services, services
from imagepipe.errors import TransientServiceError
from imagepipe.ports import SearchQuery
from imagepipe.profiles import load_profiles
from imagepipe.vocabulary import Step
from tests.fakes.cosmos_transport import FakeCosmosTransport
from tests.fakes.credentials import StaticCredential
from tests.fakes.documents_transport import FakeDocumentService, FakeDocumentsTransport
from tests.fakes.vision_transport import FakeVisionService, FakeVisionTransport, Fault
from tests.integration.samples import store_sample

pytestmark = pytest.mark.integration


@pytest.fixture()
def azure_services(app_env: dict[str, str]) -> tuple[Services, FakeVisionTransport]:
    local = services()  # the Azurite blob stores of app_env
    vision_transport = FakeVisionTransport(
        FakeVisionService(
            tags=[("text", 0.97), ("document", 0.93), ("paper", 0.7)], lines=["CLAIM FORM", "Policy PX-1"]
        )
    )
    svc = Services(
        settings=local.settings,
        blobs=local.blobs,
        deadletters=local.deadletters,
        records=CosmosRecordStore(
            "https://fakeacct.documents.azure.com:443/",
            "imagepipe",
            "images",
            StaticCredential(),
            transport=FakeCosmosTransport(),
        ),
        profiles=load_profiles(),
        _vision=AzureVisionAnalyzer(
            "https://fakevision.cognitiveservices.azure.com/",
            StaticCredential(),
            transport=vision_transport,
            retry_backoff_factor=0.001,
        ),
    )
    return svc, vision_transport


def test_document_runs_through_cosmos_and_ai_vision(azure_services: tuple[Services, FakeVisionTransport]) -> None:
    svc, vision = azure_services
    step = store_sample(svc.blobs, "insurance-claim.png", "insurance", "claim.png", {"claim": "17"})
    image_id = step["imageId"]
    assert pipeline.run_activity(Step.FETCH_IMAGE_METADATA, svc, step)["ok"]
    analysis = pipeline.run_activity(Step.ANALYZE_IMAGE, svc, {**step, "profile": "insurance"})
    assert analysis == {
        "outcome": "ok",
        "ok": True,
        "textHeavy": True,
        "topTags": ["text", "document", "paper"],
        "labels": ["document"],
        "provider": svc.vision.provider,
    }
    assert pipeline.run_activity(Step.READ_TEXT, svc, {**step, "profile": "insurance"}) == {
        "outcome": "ok",
        "ok": True,
        "lines": 2,
        "characters": 22,
        "fields": 1,
    }
    assert pipeline.run_activity(Step.PERSIST_RECORD, svc, {**step, "status": "completed"})["ok"]
    record = svc.records.get(image_id)
    assert record is not None and record["status"] == "completed"
    assert record["analysis"]["modelVersion"] and record["text"] == "CLAIM FORM\nPolicy PX-1"
    assert record["client"] == {"originalName": "claim.png", "metadata": {"claim": "17"}}
    # the insurance profile asks for document fields: the local extractor reads them from AI Vision's OCR
    policy = record["documentFields"]["fields"]["PolicyNumber"]
    assert (policy["normalized"], policy["type"]) == ("PX-1", "identifier")
    assert policy["sources"][0]["text"] == "Policy PX-1" and len(policy["sources"][0]["boundingPolygon"]) == 4
    assert [r["id"] for r in svc.records.search(SearchQuery(text="policy", profile="insurance")).items] == [image_id]
    assert [r.query["features"] for r in vision.requests] == ["tags,objects,people", "read"]


def test_vision_throttling_surfaces_as_transient(azure_services: tuple[Services, FakeVisionTransport]) -> None:
    svc, vision = azure_services
    step = store_sample(svc.blobs, "cat.jpg", "general")
    image_id = step["imageId"]
    assert pipeline.run_activity(Step.FETCH_IMAGE_METADATA, svc, step)["ok"]
    # a Retry-After beyond the adapter's wait budget (30 s) is not waited out inside the activity
    vision.script([Fault(429, "429", "Rate limit is exceeded.", retry_after="120")])
    with pytest.raises(TransientServiceError):  # the orchestration's retry policy takes it from here
        pipeline.run_activity(Step.ANALYZE_IMAGE, svc, {**step, "profile": "general"})
    assert len(vision.requests) == 1
    assert svc.records.get(image_id)["status"] == "processing"  # type: ignore[index]


def test_custom_labels_and_document_fields_with_every_azure_adapter(app_env: dict[str, str]) -> None:
    """Azure mode end to end in the steps: records and label sets in Cosmos DB, AI Vision for analysis and OCR,
    Document Intelligence for the fields; the label set's embedding model runs in-process, as in the Function App."""
    local = services()
    samples = Path(__file__).resolve().parents[2] / "samples"
    documents = FakeDocumentsTransport(
        FakeDocumentService(
            fields={
                "InvoiceTotal": (
                    "currency",
                    {"currencySymbol": "£", "amount": 812.4, "currencyCode": "GBP"},
                    "£812.40",
                ),
                "?ClaimNumber": ("string", "CLM-2026-000731", "CLM-2026-000731"),
            }
        ),
        "https://docs.cognitiveservices.azure.com/",
    )
    cosmos_account = "https://fakeacct.documents.azure.com:443/"
    cosmos = FakeCosmosTransport(databases={"imagepipe": ["images", "labelsets"]})  # one account, two containers
    svc = Services(
        settings=local.settings,
        blobs=local.blobs,
        deadletters=local.deadletters,
        records=CosmosRecordStore(cosmos_account, "imagepipe", "images", StaticCredential(), transport=cosmos),
        profiles=load_profiles(),
        _vision=AzureVisionAnalyzer(
            "https://fakevision.cognitiveservices.azure.com/",
            StaticCredential(),
            transport=FakeVisionTransport(
                FakeVisionService(
                    tags=[("text", 0.97), ("document", 0.93)], lines=["CLAIM FORM", "Claim CLM-2026-000731"]
                )
            ),
            retry_backoff_factor=0.001,
        ),
        _fields=AzureDocumentFieldExtractor(
            "https://docs.cognitiveservices.azure.com/", StaticCredential(), transport=documents, polling_interval_s=0
        ),
        _labelsets=CosmosLabelSetStore(cosmos_account, "imagepipe", "labelsets", StaticCredential(), transport=cosmos),
    )

    def example(name: str) -> dict[str, str]:
        return {"data": base64.b64encode((samples / name).read_bytes()).decode()}

    trained = labelsets.train_label_set(
        svc,
        {
            "profile": "insurance",
            "name": "kind",
            "labels": {
                "document": [example("insurance-claim.png"), example("qr-code.png")],
                "photo": [example("cat.jpg"), example("motorcycle.jpg"), example("coffee.jpg")],
            },
        },
    )
    assert trained["version"] == 1 and trained["active"] is True
    step = store_sample(svc.blobs, "insurance-claim.png", "insurance", "claim.png", {})
    assert pipeline.run_activity(Step.FETCH_IMAGE_METADATA, svc, step)["ok"]
    assert pipeline.run_activity(Step.ANALYZE_IMAGE, svc, {**step, "profile": "insurance"})["textHeavy"] is True
    read = pipeline.run_activity(Step.READ_TEXT, svc, {**step, "profile": "insurance"})
    assert read["ok"] and read["fields"] == 2
    assert pipeline.run_activity(Step.PERSIST_RECORD, svc, {**step, "status": "completed"})["ok"]
    record = svc.records.get(step["imageId"])
    assert record is not None and record["status"] == "completed"
    assert [(c["labelSet"], c["version"], c["name"]) for c in record["customLabels"]] == [("kind", 1, "document")]
    assert record["documentFields"]["provider"] == "azure-document-intelligence"
    fields = record["documentFields"]["fields"]
    assert fields["ClaimNumber"]["normalized"] == "CLM-2026-000731"
    assert (fields["InvoiceTotal"]["amount"], fields["InvoiceTotal"]["currencyCode"]) == (812.4, "GBP")
    found = svc.records.search(SearchQuery(custom_label="kind:document", profile="insurance")).items
    assert [r["id"] for r in found] == [step["imageId"]]
    assert [r.method for r in documents.requests][:1] == ["POST"]
