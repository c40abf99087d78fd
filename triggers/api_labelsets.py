"""Custom label set API (admin key): train a version, list, show, test an image, activate a version, delete.

The rules live in ``imagepipe.labelsets`` (service) and ``imagepipe.custom_labels`` (math); this module does
HTTP. Training and testing embed images, so they run off the event loop like every blocking call.

- ``POST /api/labelsets`` (JSON ``{profile, name, labels: {label: [examples]}}``) -> 201 the new version
- ``GET /api/labelsets[?profile=]`` -> ``{items: [{profile, name, activeVersion, versions}]}``
- ``GET /api/labelsets/{profile}/{name}[?version=]`` -> one version (the active one by default)
- ``POST /api/labelsets/{profile}/{name}/test[?version=]`` (image bytes) -> the verdict, nothing recorded
- ``POST /api/labelsets/{profile}/{name}/versions/{version}/activate`` -> the now active version
- ``DELETE /api/labelsets/{profile}/{name}[?version=]`` -> ``{deleted: n}`` (a version, or the whole set)
"""

import azure.durable_functions as df
import azure.functions as func

from imagepipe import label_rules, labelsets
from imagepipe.composition import services
from imagepipe.errors import InvalidInputError, NotFoundError, PayloadTooLargeError
from imagepipe.ports import JsonDict
from triggers.http_common import handles_errors, json_object_body, json_response, off_loop, query_int

bp = df.Blueprint()

#: the most versions a set may number (a sanity bound for ``version`` parameters)
MAX_VERSION = 1_000_000


def _set_key(req: func.HttpRequest) -> tuple[str, str]:
    profile = req.route_params.get("profile", "")
    if profile not in services().profiles:
        raise NotFoundError(f"profile '{profile[:40]}' is not configured", code="profile_not_found")
    return profile, label_rules.check_name(req.route_params.get("name", ""), "label set name")


def _version(req: func.HttpRequest) -> int | None:
    if not req.params.get("version"):
        return None
    return query_int(req, "version", 1, 1, MAX_VERSION)


@bp.function_name("train_labelset")
@bp.route(route="labelsets", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@handles_errors
async def train_labelset(req: func.HttpRequest) -> func.HttpResponse:
    body = req.get_body()
    if len(body) > labelsets.MAX_TRAIN_BODY_BYTES:
        raise PayloadTooLargeError(
            f"the training request is {len(body)} bytes; the limit is {labelsets.MAX_TRAIN_BODY_BYTES} bytes "
            "(upload large examples first and name them by image id)"
        )
    if not body:
        raise InvalidInputError("the body must be a JSON object {profile, name, labels}", code="empty_body")
    trained = await off_loop(_train, req)  # parsing up to 32 MiB of JSON is blocking work too
    return json_response(trained, 201)


def _train(req: func.HttpRequest) -> JsonDict:
    return labelsets.train_label_set(services(), json_object_body(req))


@bp.function_name("list_labelsets")
@bp.route(route="labelsets", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@handles_errors
async def list_labelsets(req: func.HttpRequest) -> func.HttpResponse:
    profile = req.params.get("profile") or None
    items = await off_loop(labelsets.list_label_sets, services(), profile)
    return json_response({"items": items})


@bp.function_name("show_labelset")
@bp.route(route="labelsets/{profile}/{name}", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@handles_errors
async def show_labelset(req: func.HttpRequest) -> func.HttpResponse:
    profile, name = _set_key(req)
    shown = await off_loop(labelsets.show_label_set, services(), profile, name, _version(req))
    return json_response(shown)


@bp.function_name("test_labelset")
@bp.route(route="labelsets/{profile}/{name}/test", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@handles_errors
async def try_labelset(req: func.HttpRequest) -> func.HttpResponse:
    profile, name = _set_key(req)
    data = req.get_body()
    if not data:
        raise InvalidInputError("send the image bytes to test as the request body", code="empty_body")
    verdict = await off_loop(labelsets.try_image, services(), profile, name, data, _version(req))
    return json_response(verdict)


@bp.function_name("activate_labelset")
@bp.route(
    route="labelsets/{profile}/{name}/versions/{version}/activate", methods=["POST"], auth_level=func.AuthLevel.ADMIN
)
@handles_errors
async def activate_labelset(req: func.HttpRequest) -> func.HttpResponse:
    profile, name = _set_key(req)
    raw = req.route_params.get("version", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 7) or not 1 <= int(raw) <= MAX_VERSION:
        raise InvalidInputError(f"version must be an integer from 1 to {MAX_VERSION}, not '{raw[:20]}'")
    version = int(raw)
    svc = services()
    if not await off_loop(svc.labelsets.activate, profile, name, version):
        raise NotFoundError(f"label set '{name}' of profile '{profile}' has no version {version}")
    shown = await off_loop(labelsets.show_label_set, svc, profile, name, version)
    return json_response(shown)


@bp.function_name("delete_labelset")
@bp.route(route="labelsets/{profile}/{name}", methods=["DELETE"], auth_level=func.AuthLevel.ADMIN)
@handles_errors
async def delete_labelset(req: func.HttpRequest) -> func.HttpResponse:
    profile, name = _set_key(req)
    deleted = await off_loop(services().labelsets.delete, profile, name, _version(req))
    if not deleted:
        raise NotFoundError(f"label set '{name}' of profile '{profile}' has no such version")
    return json_response({"deleted": deleted})
