"""AzureVisionAnalyzer: the real Image Analysis SDK over an in-memory service fake (tests/fakes)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ServiceRequestError, ServiceResponseError

from imagepipe.adapters.azure_vision import MAX_WAIT_S, RETRIES, AzureVisionAnalyzer
from imagepipe.errors import (
    ConfigurationError,
    ImagepipeError,
    InvalidInputError,
    PermanentImageError,
    TransientServiceError,
)
from imagepipe.ports import VISUAL_FEATURES, AnalysisRequest
from tests.fakes.credentials import StaticCredential
from tests.fakes.vision_transport import MODEL_VERSION, FakeVisionTransport, Fault, invalid_image

pytestmark = pytest.mark.unit

ENDPOINT = "https://fakevision.cognitiveservices.azure.com/"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


@pytest.fixture
def transport() -> FakeVisionTransport:
    return FakeVisionTransport()


@pytest.fixture
def credential() -> StaticCredential:
    return StaticCredential("vision-token")


@pytest.fixture
def analyzer(transport: FakeVisionTransport, credential: StaticCredential) -> AzureVisionAnalyzer:
    # A tiny back-off keeps retry tests fast; the retry count and wait budget are the production ones.
    return AzureVisionAnalyzer(ENDPOINT, credential, transport=transport, retry_backoff_factor=0.001)


def test_analyze_returns_the_rest_shape(analyzer: AzureVisionAnalyzer, transport: FakeVisionTransport) -> None:
    result = analyzer.analyze(JPEG, AnalysisRequest(features=["tags", "caption", "objects", "people", "read"]))
    assert result["modelVersion"] == MODEL_VERSION
    assert result["metadata"] == {"width": 640, "height": 480}
    assert result["tagsResult"]["values"][0] == {"name": "cat", "confidence": 0.99}
    assert result["captionResult"] == {"text": "a cat sitting on a sofa", "confidence": 0.83}
    assert result["objectsResult"]["values"][0]["boundingBox"] == {"x": 10, "y": 20, "w": 200, "h": 150}
    assert result["objectsResult"]["values"][0]["tags"][0]["name"] == "cat"
    assert result["peopleResult"]["values"][0]["confidence"] == 0.92
    line = result["readResult"]["blocks"][0]["lines"][1]
    assert line["text"] == "Main Street 12" and [w["text"] for w in line["words"]] == ["Main", "Street", "12"]
    assert len(line["words"][0]["boundingPolygon"]) == 4 and line["words"][0]["confidence"] == 0.98
    assert "imagepipe" not in result and "denseCaptionsResult" not in result


def test_request_maps_features_language_and_auth(
    analyzer: AzureVisionAnalyzer, transport: FakeVisionTransport, credential: StaticCredential
) -> None:
    analyzer.analyze(JPEG, AnalysisRequest(features=["denseCaptions", "smartCrops", "tags", "tags"], language="en"))
    (seen,) = transport.requests
    assert seen.path == "/computervision/imageanalysis:analyze"
    assert seen.query["api-version"] == "2024-02-01"
    assert seen.query["features"].split(",") == ["denseCaptions", "smartCrops", "tags"]
    assert seen.query["language"] == "en"
    assert seen.headers["authorization"] == "Bearer vision-token"
    assert seen.headers["content-type"] == "application/octet-stream"
    assert seen.body == JPEG
    assert credential.scopes[0] == ("https://cognitiveservices.azure.com/.default",)


def test_every_visual_feature_is_accepted(analyzer: AzureVisionAnalyzer) -> None:
    result = analyzer.analyze(JPEG, AnalysisRequest(features=list(VISUAL_FEATURES)))
    for key in ("tagsResult", "objectsResult", "peopleResult", "readResult", "captionResult"):
        assert key in result
    assert "denseCaptionsResult" in result and "smartCropsResult" in result


def test_unknown_or_no_feature_is_invalid_input(analyzer: AzureVisionAnalyzer, transport: FakeVisionTransport) -> None:
    with pytest.raises(InvalidInputError):
        analyzer.analyze(JPEG, AnalysisRequest(features=["faces"]))
    with pytest.raises(InvalidInputError):
        analyzer.analyze(JPEG, AnalysisRequest(features=[]))
    assert transport.requests == []


def test_read_text(analyzer: AzureVisionAnalyzer, transport: FakeVisionTransport) -> None:
    result = analyzer.read_text(JPEG, AnalysisRequest(features=["tags"]))
    assert set(result) == {"readResult", "modelVersion"}
    assert [line["text"] for line in result["readResult"]["blocks"][0]["lines"]] == ["STOP", "Main Street 12"]
    assert transport.requests[0].query["features"] == "read"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_failures_are_retried_by_the_client(
    analyzer: AzureVisionAnalyzer, transport: FakeVisionTransport, status: int
) -> None:
    transport.script([Fault(status, retry_after="0"), Fault(status, retry_after="0")])
    result = analyzer.analyze(JPEG, AnalysisRequest(features=["tags"]))
    assert result["tagsResult"]["values"]
    assert len(transport.requests) == 3


def test_throttling_past_the_wait_budget_is_transient_with_retry_after(
    analyzer: AzureVisionAnalyzer, transport: FakeVisionTransport
) -> None:
    assert analyzer.max_wait_s == MAX_WAIT_S < 60
    transport.script([Fault(429, retry_after="0")] * 2 + [Fault(429, retry_after="60")])
    with pytest.raises(TransientServiceError) as info:
        analyzer.analyze(JPEG, AnalysisRequest(features=["tags"]))
    assert info.value.retry_after_s == 60  # not waited for in the activity: the orchestration retries later
    assert info.value.code == "vision_rate_limited"  # the vision quota entity pauses every run on this code
    assert len(transport.requests) == 3


def test_service_unavailable_exhaustion_is_transient(
    analyzer: AzureVisionAnalyzer, transport: FakeVisionTransport
) -> None:
    transport.script([Fault(503, retry_after="0")] * (RETRIES + 1))
    with pytest.raises(TransientServiceError) as info:
        analyzer.read_text(JPEG, AnalysisRequest(features=["read"]))
    assert info.value.code == "vision_unavailable"  # not a throttle: the activity's retries handle it
    assert len(transport.requests) == RETRIES + 1


def test_undecodable_image_is_permanent(analyzer: AzureVisionAnalyzer, transport: FakeVisionTransport) -> None:
    with pytest.raises(PermanentImageError) as info:
        analyzer.analyze(b"not an image at all", AnalysisRequest(features=["tags"]))
    assert info.value.code == "invalidimageformat"
    assert "not a valid image" in info.value.message
    assert len(transport.requests) == 1  # never retried


@pytest.mark.parametrize(
    "inner", ["InvalidImageSize", "InvalidImageDimension", "InvalidImageUrl", "NotSupportedImage", "InvalidImageFormat"]
)
def test_rejected_images_are_permanent(
    analyzer: AzureVisionAnalyzer, transport: FakeVisionTransport, inner: str
) -> None:
    transport.script([invalid_image(inner, f"service says {inner}")])
    with pytest.raises(PermanentImageError) as info:
        analyzer.analyze(JPEG, AnalysisRequest(features=["tags"]))
    assert f"service says {inner}" in info.value.message


def test_other_bad_requests_are_not_image_errors(analyzer: AzureVisionAnalyzer, transport: FakeVisionTransport) -> None:
    transport.script([invalid_image("NotSupportedLanguage", "caption is English only")])
    with pytest.raises(ImagepipeError) as info:
        analyzer.analyze(JPEG, AnalysisRequest(features=["caption"], language="de"))
    assert not isinstance(info.value, (PermanentImageError, TransientServiceError))
    assert "caption is English only" in info.value.message


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_name_the_role(
    analyzer: AzureVisionAnalyzer, transport: FakeVisionTransport, status: int
) -> None:
    transport.script([Fault(status, message="Access denied")])
    with pytest.raises(ConfigurationError) as info:
        analyzer.analyze(JPEG, AnalysisRequest(features=["tags"]))
    assert "Cognitive Services User" in info.value.message
    assert len(transport.requests) == 1


def test_bad_endpoint_is_a_configuration_error(credential: StaticCredential) -> None:
    with pytest.raises(ConfigurationError):
        AzureVisionAnalyzer("fakevision.cognitiveservices.azure.com", credential)


def test_connection_failures_are_transient(analyzer: AzureVisionAnalyzer, transport: FakeVisionTransport) -> None:
    # azure-core does not retry a POST after a connection/read error (not idempotent by default): the
    # orchestration's activity retry handles it.
    transport.script([ServiceRequestError("connection reset"), ServiceResponseError("read timed out")])
    for _ in range(2):
        with pytest.raises(TransientServiceError):
            analyzer.analyze(JPEG, AnalysisRequest(features=["tags"]))
    assert len(transport.requests) == 2
    assert analyzer.analyze(JPEG, AnalysisRequest(features=["tags"]))["tagsResult"]
