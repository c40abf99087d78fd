"""The vision activities as the Functions worker calls them, with the Azure AI Vision adapter over the fake
transport: a 429 is a throttled value for a run that uses the vision quota, and still raises (so the
activity's retry policy takes it) for a run that does not, as does any other transient failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from activities import analyze_image, read_text
from imagepipe.adapters.azure_vision import AzureVisionAnalyzer
from imagepipe.composition import Services, services
from imagepipe.errors import TransientServiceError
from imagepipe.profiles import load_profiles
from imagepipe.vocabulary import Step
from tests.fakes.credentials import StaticCredential
from tests.fakes.vision_transport import FakeVisionTransport, Fault
from tests.integration.samples import store_sample

pytestmark = pytest.mark.integration

ACTIVITIES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "analyze_image": analyze_image.analyze_image,
    "read_text": read_text.read_text,
}


@pytest.fixture()
def vision(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> FakeVisionTransport:
    local = services()
    transport = FakeVisionTransport()
    svc = Services(
        settings=local.settings,
        blobs=local.blobs,
        deadletters=local.deadletters,
        records=local.records,
        profiles=load_profiles(),
        _vision=AzureVisionAnalyzer(
            "https://fakevision.cognitiveservices.azure.com/",
            StaticCredential(),
            transport=transport,
            retry_backoff_factor=0.001,
        ),
    )
    for module in (analyze_image, read_text):
        monkeypatch.setattr(module, "services", lambda: svc)
    return transport


def stored_step() -> dict[str, Any]:
    from imagepipe import pipeline

    step = store_sample(services().blobs, "cat.jpg", "general")
    assert pipeline.run_activity(Step.FETCH_IMAGE_METADATA, services(), step)["ok"]
    return {**step, "profile": "general"}


@pytest.mark.parametrize("name", sorted(ACTIVITIES))
def test_a_429_is_a_throttled_value_only_for_runs_with_the_quota(vision: FakeVisionTransport, name: str) -> None:
    activity = ACTIVITIES[name]
    step = stored_step()
    vision.script([Fault(429, "429", "Rate limit is exceeded.", retry_after="120")])
    result = activity({**step, "visionQuota": True})
    assert result["throttled"] is True and result["ok"] is False and result["retryAfterS"] == 120
    assert result["error"]["code"] == "vision_rate_limited" and result["error"]["step"] == name
    vision.script([Fault(429, "429", "Rate limit is exceeded.", retry_after="120")])
    with pytest.raises(TransientServiceError):
        activity(step)
    vision.script([Fault(503, retry_after="120")])
    with pytest.raises(TransientServiceError):
        activity({**step, "visionQuota": True})
    assert activity({**step, "visionQuota": True})["ok"] is True
