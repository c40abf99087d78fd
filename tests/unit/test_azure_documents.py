"""Azure AI Document Intelligence mode: the service's ``analyzeResult`` mapped to our field schema (pure, always
runs), and the adapter through the real ``azure-ai-documentintelligence`` SDK against an HTTP transport fake
shaped like the service (202 + Operation-Location, polling GET running -> succeeded / failed). The package is in
the app's lock (requirements.txt), so the SDK tests always run."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import pytest

from imagepipe.composition import _build_fields
from imagepipe.documents import LocalFieldExtractor
from imagepipe.documents.azure_mapping import fields_from_analyze_result
from imagepipe.documents.schema import QUERY_FIELDS
from imagepipe.domain import DocumentFields
from imagepipe.errors import ConfigurationError, PermanentImageError, TransientServiceError
from imagepipe.ports import FieldRequest
from imagepipe.settings import Settings, load_settings
from tests.fakes.credentials import StaticCredential
from tests.fakes.documents_transport import DocFault, FakeDocumentService, FakeDocumentsTransport

pytestmark = pytest.mark.unit

ENDPOINT = "https://docs-imagepipe-dev-abc123.cognitiveservices.azure.com/"
PNG = (Path(__file__).resolve().parents[2] / "samples" / "insurance-claim.png").read_bytes()
INVOICE = FakeDocumentService(
    fields={
        "InvoiceId": ("string", "INV-0042", "INV-0042"),
        "InvoiceDate": ("date", "2026-03-12", "12 March 2026"),
        "DueDate": ("date", "2026-04-12", "12 April 2026"),  # not in our schema: left out
        "VendorName": ("string", "Green Garage Ltd", "Green Garage Ltd"),
        "CustomerName": ("string", "Anna Kowalski", "Anna Kowalski"),
        "SubTotal": ("currency", {"currencySymbol": "£", "amount": 1200, "currencyCode": "GBP"}, "£1,200.00"),
        "TotalTax": ("currency", {"currencySymbol": "£", "amount": 240, "currencyCode": "GBP"}, "£240.00"),
        "InvoiceTotal": ("currency", {"currencySymbol": "£", "amount": 1440.5, "currencyCode": "GBP"}, "£1,440.50"),
        # query fields: answered only when asked for
        "?ClaimNumber": ("string", "clm-2026-004512", "CLM-2026-004512"),
        "?IncidentDate": ("string", "03/04/2026", "03/04/2026"),
        "?VehicleRegistration": ("string", "AB12 CDE", "AB12 CDE"),
        "?PolicyNumber": ("string", "see attached", "see attached"),  # no identifier: dropped
    }
)


def analyze_result(model: str = "prebuilt-invoice", asked: tuple[str, ...] = QUERY_FIELDS) -> dict[str, Any]:
    return FakeDocumentsTransport(INVOICE, ENDPOINT).analyze_result(model, list(asked))


def test_invoice_fields_and_query_fields_map_onto_our_schema() -> None:
    mapped = fields_from_analyze_result(analyze_result(), "en-GB")
    fields = mapped["fields"]
    assert {name: f["normalized"] for name, f in fields.items()} == {
        "InvoiceId": "INV-0042",
        "InvoiceDate": "2026-03-12",
        "VendorName": "Green Garage Ltd",
        "CustomerName": "Anna Kowalski",
        "SubTotal": "1200.00",
        "TotalTax": "240.00",
        "InvoiceTotal": "1440.50",
        "ClaimNumber": "CLM-2026-004512",
        "IncidentDate": "2026-04-03",  # a query field's text, read with the profile's day-first locale
        "VehicleRegistration": "AB12 CDE",
    }
    total = fields["InvoiceTotal"]
    assert (total["type"], total["amount"], total["currencyCode"], total["confidence"]) == (
        "currency",
        1440.5,
        "GBP",
        0.948,
    )
    assert total["sources"] == [
        {
            "text": "£1,440.50",
            "boundingPolygon": [
                {"x": 60.0, "y": 320.0},
                {"x": 420.0, "y": 320.0},
                {"x": 420.0, "y": 350.0},
                {"x": 60.0, "y": 350.0},
            ],
        }
    ]
    assert mapped["provider"] == "azure-document-intelligence"
    assert mapped["modelVersion"] == "prebuilt-invoice@2024-11-30"
    DocumentFields.model_validate(mapped)


def test_receipt_names_map_onto_invoice_names() -> None:
    receipt = {
        "modelId": "prebuilt-receipt",
        "apiVersion": "2024-11-30",
        "documents": [
            {
                "docType": "receipt.retailMeal",
                "fields": {
                    "MerchantName": {"type": "string", "valueString": "Mill Lane Cafe", "content": "Mill Lane Cafe"},
                    "TransactionDate": {"type": "date", "valueDate": "2026-02-14", "content": "14/02/2026"},
                    "Subtotal": {"type": "currency", "valueCurrency": {"amount": 10, "currencyCode": "EUR"}},
                    "Total": {"type": "currency", "content": "12,00 €", "confidence": 0.9},
                    "Items": {"type": "array", "valueArray": []},
                },
            }
        ],
    }
    fields = fields_from_analyze_result(receipt, "de-DE")["fields"]
    assert {name: f["normalized"] for name, f in fields.items()} == {
        "VendorName": "Mill Lane Cafe",
        "InvoiceDate": "2026-02-14",
        "SubTotal": "10.00",
        "InvoiceTotal": "12.00",  # no valueCurrency: the content is read with our parser and the locale
    }
    assert fields["InvoiceTotal"]["currencyCode"] == "EUR"


@pytest.mark.parametrize("bad", [{}, {"documents": []}, {"documents": [{"fields": None}]}, {"documents": ["x"]}])
def test_an_answer_without_documents_has_no_fields(bad: dict[str, Any]) -> None:
    assert fields_from_analyze_result(bad, "en-GB")["fields"] == {}


def test_settings_select_the_extractor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGES_STORAGE", "UseDevelopmentStorage=true")
    monkeypatch.delenv("DOCUMENT_FIELDS_PROVIDER", raising=False)
    assert isinstance(_build_fields(load_settings()), LocalFieldExtractor)
    monkeypatch.setenv("DOCUMENT_FIELDS_PROVIDER", "azure")
    monkeypatch.delenv("DOCUMENT_INTELLIGENCE__endpoint", raising=False)
    with pytest.raises(ConfigurationError, match="DOCUMENT_INTELLIGENCE__endpoint"):
        load_settings()


# ---------------------------------------------------------------------------------------------------------------
# Through the SDK (azure-ai-documentintelligence 1.0.2)
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture()
def sdk() -> None:
    """The SDK is locked in requirements.txt: its absence is a failed install, never a skip."""
    import azure.ai.documentintelligence  # noqa: F401


def extractor(transport: FakeDocumentsTransport) -> Any:
    from imagepipe.adapters.azure_documents import AzureDocumentFieldExtractor

    return AzureDocumentFieldExtractor(
        ENDPOINT, StaticCredential(), transport=transport, polling_interval_s=0, retry_total=0
    )


@pytest.mark.usefixtures("sdk")
def test_the_adapter_runs_the_long_running_analyze_and_maps_its_result() -> None:
    transport = FakeDocumentsTransport(INVOICE, ENDPOINT)
    mapped = extractor(transport).extract(PNG, {"blocks": []}, FieldRequest(locale="en-GB", model="prebuilt-invoice"))
    assert mapped["fields"]["ClaimNumber"]["normalized"] == "CLM-2026-004512"
    assert mapped["fields"]["InvoiceTotal"]["amount"] == 1440.5
    post, *polls = transport.requests
    assert (post.method, post.path) == ("POST", "/documentintelligence/documentModels/prebuilt-invoice:analyze")
    assert post.query["features"] == "queryFields" and post.query["queryFields"].split(",") == list(QUERY_FIELDS)
    assert post.query["locale"] == "en-GB"
    assert post.body is not None and base64.b64decode(post.body["base64Source"]) == PNG
    assert [p.method for p in polls] == ["GET", "GET"]  # running, then succeeded
    DocumentFields.model_validate(mapped)


@pytest.mark.usefixtures("sdk")
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (DocFault(429, "429", None, "Rate limit is exceeded."), TransientServiceError),
        (DocFault(503, "ServiceUnavailable"), TransientServiceError),
        (DocFault(403, "PermissionDenied", None, "Principal does not have access."), ConfigurationError),
        (DocFault(400, "InvalidRequest", "InvalidContent", "The file is corrupted."), PermanentImageError),
    ],
)
def test_service_errors_become_ours(fault: DocFault, error: type[Exception]) -> None:
    transport = FakeDocumentsTransport(INVOICE, ENDPOINT)
    transport.script([fault])
    with pytest.raises(error):
        extractor(transport).extract(PNG, {}, FieldRequest())


@pytest.mark.usefixtures("sdk")
def test_a_failed_operation_on_unreadable_content_is_permanent() -> None:
    service = FakeDocumentService(fail_operation=DocFault(400, "InvalidRequest", "InvalidContent", "Corrupted."))
    with pytest.raises(PermanentImageError):
        extractor(FakeDocumentsTransport(service, ENDPOINT)).extract(PNG, {}, FieldRequest())


@pytest.mark.usefixtures("sdk")
def test_azure_settings_build_the_document_intelligence_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    from imagepipe.adapters.azure_documents import AzureDocumentFieldExtractor

    settings = Settings.model_validate(
        {
            "IMAGES_STORAGE": "UseDevelopmentStorage=true",
            "DOCUMENT_FIELDS_PROVIDER": "azure",
            "DOCUMENT_INTELLIGENCE__endpoint": ENDPOINT,
            "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
        }
    )
    assert isinstance(_build_fields(settings), AzureDocumentFieldExtractor)


# ---------------------------------------------------------------------------------------------------------------
# Error translation (azure-core exceptions; no SDK needed)
# ---------------------------------------------------------------------------------------------------------------


def http_error(status: int, body: dict[str, Any]) -> Any:
    import json

    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest

    from tests.fakes.vision_transport import _Response

    request = HttpRequest("POST", ENDPOINT)
    response = _Response(request, status, {"Content-Type": "application/json"}, json.dumps(body).encode())
    return HttpResponseError(response=response)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (429, {"error": {"code": "429", "message": "Rate limit is exceeded."}}, TransientServiceError),
        (503, {"error": {"code": "ServiceUnavailable", "message": "Try later."}}, TransientServiceError),
        (401, {"error": {"code": "401", "message": "Access denied."}}, ConfigurationError),
        (
            400,
            {"error": {"code": "InvalidRequest", "message": "Bad.", "innererror": {"code": "InvalidContent"}}},
            PermanentImageError,
        ),
        # a failed operation: the poll answered 200 with status "failed" and the service's error
        (
            200,
            {"status": "failed", "error": {"code": "InvalidRequest", "innererror": {"code": "UnsupportedContent"}}},
            PermanentImageError,
        ),
        (200, {"status": "failed", "error": {"code": "InternalServerError", "message": "oops"}}, TransientServiceError),
    ],
)
def test_service_errors_translate_to_ours(status: int, body: dict[str, Any], error: type[Exception]) -> None:
    from imagepipe.adapters.azure_documents import translate_documents_error

    assert type(translate_documents_error(http_error(status, body))) is error


def test_without_the_package_azure_mode_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from imagepipe.adapters.azure_documents import AzureDocumentFieldExtractor

    for name in [m for m in sys.modules if m.startswith("azure.ai.documentintelligence")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "azure.ai.documentintelligence", None)  # a package without it: import fails
    with pytest.raises(ConfigurationError, match="azure-ai-documentintelligence"):
        AzureDocumentFieldExtractor(ENDPOINT, StaticCredential())
