"""function_app registers exactly the functions of docs/contracts.md, with bindings the Functions worker
accepts (real, evaluated type annotations: the worker checks them against each binding's converter)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from tests.support.inprocess import functions

pytestmark = pytest.mark.unit

EXPECTED = {
    "upload_image",
    "create_upload",
    "search_images",
    "get_image",
    "get_image_status",
    "delete_image",
    "on_image_blob_created",
    "reconcile_images",
    "image_pipeline",
    "fetch_image_metadata",
    "analyze_image",
    "read_text",
    "persist_record",
    "vision_quota",
    "list_runs",
    "get_run",
    "replay_run",
    "replay_runs",
    "purge_run",
    "list_deadletters",
    "redrive_deadletters",
    "get_stats",
    "dashboard",
    "dashboard_image",
    "train_labelset",
    "list_labelsets",
    "show_labelset",
    "test_labelset",
    "activate_labelset",
    "delete_labelset",
}


def _innermost(fn: Any) -> Any:
    for attr in ("client_function", "orchestrator_function", "__wrapped__"):
        while hasattr(fn, attr):
            fn = getattr(fn, attr)
    return fn


def test_registered_functions_match_the_contract() -> None:
    assert set(functions()) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_annotations_are_evaluated_types(name: str) -> None:
    user = _innermost(functions()[name].get_user_function())
    for param in inspect.signature(user).parameters.values():
        assert not isinstance(param.annotation, str), (
            f"{name}.{param.name}: annotation is the string {param.annotation!r}"
        )


def test_trigger_kinds() -> None:
    kinds = {name: fn.get_trigger().get_binding_name() for name, fn in functions().items()}
    assert kinds["on_image_blob_created"] == "eventGridTrigger"
    assert kinds["reconcile_images"] == "timerTrigger"
    assert kinds["image_pipeline"] == "orchestrationTrigger"
    assert {kinds[a] for a in ("fetch_image_metadata", "analyze_image", "read_text", "persist_record")} == {
        "activityTrigger"
    }
    assert kinds["upload_image"] == "httpTrigger"
    assert kinds["vision_quota"] == "entityTrigger"
