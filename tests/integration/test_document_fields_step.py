"""``read_text`` and document fields: written in the OCR patch for profiles that ask for them, absent for the
others, and a field service that cannot read the image (or answers outside the schema) leaves the OCR result
standing. Blobs on Azurite, records in SQLite, OCR through the AI Vision transport fake."""

from __future__ import annotations

from typing import Any

import pytest

from imagepipe import pipeline
from imagepipe.adapters.azure_vision import AzureVisionAnalyzer
from imagepipe.composition import Services, services
from imagepipe.errors import PermanentImageError, TransientServiceError
from imagepipe.ports import FieldRequest, JsonDict
from imagepipe.profiles import load_profiles
from imagepipe.vocabulary import Step
from tests.fakes.credentials import StaticCredential
from tests.fakes.vision_transport import FakeVisionService, FakeVisionTransport
from tests.integration.samples import store_sample

pytestmark = pytest.mark.integration

LINES = ["CLAIM FORM", "Claim number: CLM-2026-004512", "Date of loss: 12/03/2026", "Total: £1,440.00"]


class Refusing:
    """A field extractor whose service cannot read the image, or answers outside the schema, or is down."""

    provider = "refusing"

    def __init__(self, answer: Exception | JsonDict) -> None:
        self.answer = answer
        self.requests: list[FieldRequest] = []

    def extract(self, image: bytes, read_result: JsonDict, request: FieldRequest) -> JsonDict:
        self.requests.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def step_services(extractor: Any = None) -> Services:
    local = services()
    profiles = load_profiles()
    vision = AzureVisionAnalyzer(
        "https://fakevision.cognitiveservices.azure.com/",
        StaticCredential(),
        transport=FakeVisionTransport(FakeVisionService(tags=[("text", 0.97), ("document", 0.9)], lines=LINES)),
        retry_backoff_factor=0.001,
    )
    return Services(
        settings=local.settings,
        blobs=local.blobs,
        deadletters=local.deadletters,
        records=local.records,
        profiles=profiles,
        _vision=vision,
        _fields=extractor,
    )


def read(svc: Services, profile: str) -> tuple[JsonDict, JsonDict]:
    step = store_sample(svc.blobs, "insurance-claim.png", profile)
    assert pipeline.run_activity(Step.FETCH_IMAGE_METADATA, svc, step)["ok"]
    result = pipeline.run_activity(Step.READ_TEXT, svc, {**step, "profile": profile})
    record = svc.records.get(step["imageId"])
    assert record is not None
    return result, record


@pytest.mark.usefixtures("app_env")
def test_the_insurance_profile_gets_fields_in_the_ocr_patch() -> None:
    svc = step_services()  # the settings' extractor: local
    result, record = read(svc, "insurance")
    assert result["ok"] and result["fields"] == 3
    fields = record["documentFields"]["fields"]
    assert {k: v["normalized"] for k, v in fields.items()} == {
        "ClaimNumber": "CLM-2026-004512",
        "IncidentDate": "2026-03-12",
        "InvoiceTotal": "1440.00",
    }
    assert record["documentFields"]["provider"] == "local" and record["text"].startswith("CLAIM FORM")


@pytest.mark.usefixtures("app_env")
def test_profiles_without_document_fields_get_none() -> None:
    extractor = Refusing({})
    result, record = read(step_services(extractor), "general")
    assert result["fields"] == 0 and record["documentFields"] is None and extractor.requests == []


@pytest.mark.usefixtures("app_env")
@pytest.mark.parametrize(
    "answer",
    [PermanentImageError("cannot read it"), {"provider": "x", "modelVersion": "y", "locale": "en-GB", "fields": 5}],
)
def test_an_unreadable_or_malformed_answer_leaves_the_ocr_result(answer: Exception | JsonDict) -> None:
    extractor = Refusing(answer)
    result, record = read(step_services(extractor), "insurance")
    assert result["ok"] and result["fields"] == 0 and result["lines"] == len(LINES)
    assert record["documentFields"] is None and record["text"].startswith("CLAIM FORM")
    assert extractor.requests == [FieldRequest(locale="en-GB", model="prebuilt-invoice", profile="insurance")]


@pytest.mark.usefixtures("app_env")
def test_a_field_service_outage_retries_the_step() -> None:
    with pytest.raises(TransientServiceError):
        read(step_services(Refusing(TransientServiceError("down"))), "insurance")
