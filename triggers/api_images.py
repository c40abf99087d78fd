"""Client HTTP API: upload images, get a direct-upload URL, read results and run status, search, delete.

Every error is ``{"error": {"code", "message"}}`` with a 4xx naming the problem; nothing is stored for a
rejected upload. Handlers stay on the event loop only to await the Durable client: storage, records and image
decoding run on the HTTP worker threads (``off_loop``). Limits and status semantics: docs/api.md.
"""

import json
import re
import urllib.parse
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from imagepipe import acceptance
from imagepipe.composition import services
from imagepipe.errors import InvalidInputError, NotFoundError, UnsupportedMediaTypeError
from imagepipe.ids import blob_name, instance_id, new_image_id, require_image_id
from imagepipe.imagefacts import validate_image
from imagepipe.ports import BlobInfo, JsonDict, SearchQuery
from imagepipe.profiles import resolve_profile
from imagepipe.records import encode_blob_metadata, safe_filename, validate_client_metadata
from imagepipe.vocabulary import is_active
from triggers.http_common import base_url, handles_errors, json_response, off_loop, query_int, query_time
from triggers.runs import run_status

bp = df.Blueprint()

UPLOAD_SPEC_FIELDS = ("contentType", "profile", "filename", "metadata")
UPLOAD_CONTENT_TYPES = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/webp": "webp",
    "image/tiff": "tiff",
}
MAX_PROFILE_NAME = 64
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
STATUSES = ("pending", "processing", "completed", "failed")


# ---------------------------------------------------------------------------------------------------
# input parsing
# ---------------------------------------------------------------------------------------------------


def parse_client_metadata(raw: str | None) -> dict[str, str]:
    """Client metadata sent as JSON text (multipart field or X-Client-Metadata header)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"metadata must be a JSON object of strings (invalid JSON at character {exc.pos})", code="invalid_metadata"
        ) from exc
    return validate_client_metadata(value)


def profile_named(raw: str | None) -> str | None:
    """A requested profile name, refused early (without echoing it) when it cannot be a profile name."""
    if raw is not None and len(raw) > MAX_PROFILE_NAME:
        raise InvalidInputError(
            f"profile names are at most {MAX_PROFILE_NAME} characters; this one has {len(raw)}", code="unknown_profile"
        )
    return raw


def optional_str(spec: dict[str, Any], field: str) -> str | None:
    """A JSON body field that is a string when present; a 400 naming the field otherwise."""
    value = spec.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"'{field}' must be a string, not {type(value).__name__}", code="invalid_field")
    return value


def _read_upload(req: func.HttpRequest) -> tuple[bytes, str | None, str | None, str | None, str | None]:
    """(bytes, declared content type, file name, profile, metadata JSON) from a raw or multipart body."""
    content_type = req.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        upload = req.files.get("file")
        if upload is None:
            raise InvalidInputError("multipart body has no 'file' part", code="missing_file")
        data = upload.read()
        return (
            data,
            upload.content_type,
            upload.filename,
            req.form.get("profile") or req.params.get("profile"),
            req.form.get("metadata"),
        )
    if content_type.lower().startswith(("application/json", "text/", "application/x-www-form-urlencoded")):
        raise UnsupportedMediaTypeError(
            f"Content-Type {content_type} is not an image; send raw image bytes or multipart/form-data with 'file'"
        )
    return (
        req.get_body(),
        content_type,
        urllib.parse.unquote(req.headers.get("x-filename") or req.params.get("filename") or ""),
        req.params.get("profile"),
        req.headers.get("x-client-metadata"),
    )


def _links(image_id: str) -> dict[str, str]:
    root = base_url()
    return {"statusUrl": f"{root}/api/images/{image_id}/status", "resultUrl": f"{root}/api/images/{image_id}"}


def _find_blob(image_id: str) -> BlobInfo | None:
    for info in services().blobs.list(prefix=f"{image_id}."):
        return info
    return None


def _public_error(error: Any, fallback: JsonDict) -> JsonDict:
    """The ``error`` of a record as the client sees it: code, message and step as short strings, or ``fallback``.

    A message that quotes a dependency's exception loses any traceback and any URL (which can carry a query
    string with a signature): the reason stays, the internals go.
    """
    if not isinstance(error, dict) or not error.get("code"):
        return fallback
    shown = {key: str(error[key])[:200] for key in ("code", "step") if error.get(key) is not None}
    if error.get("guidance"):
        shown["guidance"] = _URL.sub("<url>", str(error["guidance"])).strip()[:1000]
    message = str(error.get("message") or "").split("Traceback (most recent call last)")[0]
    shown["message"] = _URL.sub("<url>", message).strip()[:1000]
    return shown


# ---------------------------------------------------------------------------------------------------
# endpoints (each async handler awaits only the Durable client; the rest runs in off_loop)
# ---------------------------------------------------------------------------------------------------


@bp.function_name("upload_image")
@bp.route(route="images", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@handles_errors
async def upload_image(req: func.HttpRequest) -> func.HttpResponse:
    return await off_loop(accept_upload, req)


def accept_upload(req: func.HttpRequest) -> func.HttpResponse:
    """Validate the upload, store the blob, answer 202 with the status URL (blocking; runs off the loop)."""
    svc = services()
    data, declared, filename, profile_name, metadata_raw = _read_upload(req)
    profile = resolve_profile(svc.profiles, profile_named(profile_name))
    client_meta = parse_client_metadata(metadata_raw)
    metadata = encode_blob_metadata(profile.name, safe_filename(filename), client_meta)
    s = svc.settings
    facts = validate_image(  # the structure walk and one full decode; hashes and EXIF are the pipeline's
        data, s.image_limits, declared
    )
    image_id = new_image_id()
    name = blob_name(image_id, facts.extension)
    original_name = safe_filename(filename)
    info = acceptance.store_accepted_upload(
        svc, image_id, name, data, content_type=facts.content_type, metadata=metadata,
        profile=profile.name, original_name=original_name, client=client_meta,
    )  # fmt: skip
    links = _links(image_id)
    body = {"id": image_id, "status": "pending", "profile": profile.name, "blob": info.name, **links}
    return json_response(body, 202, {"Location": links["statusUrl"], "Retry-After": "1"})


@bp.function_name("create_upload")
@bp.route(route="uploads", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@handles_errors
async def create_upload(req: func.HttpRequest) -> func.HttpResponse:
    return await off_loop(issue_upload_url, req)


def issue_upload_url(req: func.HttpRequest) -> func.HttpResponse:
    """Validate a direct-upload request and answer 201 with a SAS URL to PUT the blob (blocking)."""
    svc = services()
    try:
        spec: Any = req.get_json() if req.get_body() else {}
    except ValueError as exc:
        raise InvalidInputError("the body must be JSON: {contentType, profile?, filename?, metadata?}") from exc
    if not isinstance(spec, dict):
        raise InvalidInputError("the body must be a JSON object: {contentType, profile?, filename?, metadata?}")
    unknown = sorted(str(key)[:40] for key in spec if key not in UPLOAD_SPEC_FIELDS)[:5]
    if unknown:
        raise InvalidInputError(
            f"unknown field(s) {', '.join(unknown)}; the body has {', '.join(UPLOAD_SPEC_FIELDS)}", code="invalid_field"
        )
    content_type = optional_str(spec, "contentType") or ""
    if content_type not in UPLOAD_CONTENT_TYPES:
        raise InvalidInputError(
            f"contentType must be one of {', '.join(UPLOAD_CONTENT_TYPES)}", code="invalid_content_type"
        )
    profile = resolve_profile(svc.profiles, profile_named(optional_str(spec, "profile")))
    filename = safe_filename(optional_str(spec, "filename"))
    client_meta = validate_client_metadata(spec.get("metadata"))
    metadata = encode_blob_metadata(profile.name, filename, client_meta)
    image_id = new_image_id()
    name = blob_name(image_id, UPLOAD_CONTENT_TYPES[content_type])
    ttl = svc.settings.upload_url_ttl_s
    url = svc.blobs.upload_url(name, expires_in_s=ttl, content_type=content_type)
    acceptance.record_upload_url(
        svc, image_id, name, content_type=content_type, profile=profile.name,
        original_name=filename, client=client_meta, expires_in_s=ttl,
    )  # fmt: skip
    headers = {"x-ms-blob-type": "BlockBlob", "Content-Type": content_type}
    headers.update({f"x-ms-meta-{k}": v for k, v in metadata.items()})
    body = {
        "id": image_id,
        "uploadUrl": url,
        "method": "PUT",
        "requiredHeaders": headers,
        "expiresInSeconds": ttl,
        "maxBytes": svc.settings.max_upload_bytes,
        **_links(image_id),
    }
    return json_response(body, 201)


@bp.function_name("get_image")
@bp.route(route="images/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handles_errors
async def get_image(req: func.HttpRequest) -> func.HttpResponse:
    image_id = require_image_id(req.route_params.get("id", ""))
    return await off_loop(read_image, image_id)


def read_image(image_id: str) -> func.HttpResponse:
    """The record of an image, or a 404 saying whether it is still being analysed (blocking)."""
    record = services().records.get(image_id)
    if record is None:
        if _find_blob(image_id) is not None:
            raise NotFoundError(
                f"image {image_id} is uploaded but has no result yet; poll /api/images/{image_id}/status",
                code="result_not_ready",
            )
        raise NotFoundError(f"image {image_id} does not exist")
    return json_response(record)


def _lookup(image_id: str) -> tuple[JsonDict | None, BlobInfo | None, dict[str, str]]:
    """(record, current blob, links) of an image (blocking)."""
    return services().records.get(image_id), _find_blob(image_id), _links(image_id)


@bp.function_name("get_image_status")
@bp.route(route="images/{id}/status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@handles_errors
async def get_image_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    image_id = require_image_id(req.route_params.get("id", ""))
    record, blob, links = await off_loop(_lookup, image_id)
    if blob is None and record is None:
        raise NotFoundError(f"image {image_id} does not exist")
    body: dict[str, Any] = {"id": image_id, **links}
    current = record is not None and blob is not None and record["blob"]["etag"] == blob.etag
    if record is not None and current and record.get("status") in ("completed", "failed"):
        body.update(
            status=record["status"],
            stage=record["status"],
            error=_public_error(record.get("error"), {}) or None,
            instanceId=(record.get("run") or {}).get("instanceId"),
            updatedAt=record.get("updatedAt"),
        )
        return json_response(body)
    if blob is None:
        body.update(acceptance.status_without_blob(record or {}))
        return json_response(body)
    instance = instance_id(image_id, blob.etag)
    status = await run_status(client, instance)
    body["instanceId"] = instance
    if status is None:
        body.update(status="pending", stage="waiting_for_event")
        return json_response(body, 200, {"Retry-After": "1"})
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    runtime = status.runtime_status.name if status.runtime_status else "Unknown"
    if is_active(runtime):
        body.update(status="processing", stage=str(custom.get("stage", "starting")), runtimeStatus=runtime)
        return json_response(body, 200, {"Retry-After": "1"})
    if runtime == "Completed":
        body.update(status=(record or {}).get("status", "completed"), stage="completed", runtimeStatus=runtime)
        return json_response(body)
    step = str(custom.get("step") or custom.get("stage") or "unknown")
    # The run's own output is an exception text with a traceback: never shown; the reason is ours.
    reason = {
        "code": f"run_{runtime.lower()}",
        "message": f"the analysis run ended {runtime.lower()} in step '{step}' and wrote no result; upload the "
        f"image again, or ask the operator to replay run {instance}",
        "step": step,
    }
    body.update(
        status="failed",
        stage=step,
        runtimeStatus=runtime,
        error=_public_error((record or {}).get("error"), reason),
    )
    return json_response(body)


@bp.function_name("search_images")
@bp.route(route="images", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handles_errors
async def search_images(req: func.HttpRequest) -> func.HttpResponse:
    status = req.params.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}")
    near = req.params.get("nearDuplicateOf") or None
    if near:
        return await off_loop(near_duplicates, require_image_id(near), query_int(req, "limit", 50, 1, 1000))
    query = SearchQuery(
        profile=req.params.get("profile") or None,
        tag=(req.params.get("tag") or "").lower() or None,
        label=req.params.get("label") or None,
        text=req.params.get("text") or None,
        status=status,
        created_from=query_time(req, "from"),
        created_to=query_time(req, "to"),
        limit=query_int(req, "limit", 50, 1, 1000),
        continuation=req.params.get("continuation") or None,
        custom_label=req.params.get("customLabel") or None,
    )
    return await off_loop(search, query)


def near_duplicates(image_id: str, limit: int) -> func.HttpResponse:
    """The records whose pHash is near the analysed image ``image_id``'s, nearest first (blocking)."""
    svc = services()
    record = svc.records.get(image_id)
    phash = ((record or {}).get("image") or {}).get("phash")
    if not phash:
        raise NotFoundError(f"image {image_id} has no analysed record to compare with")
    items = svc.records.near_duplicates(
        phash, max_distance=svc.settings.near_duplicate_max_distance, exclude_id=image_id, limit=limit
    )
    return json_response({"items": items, "continuation": None})


def search(query: SearchQuery) -> func.HttpResponse:
    """One page of search results (blocking)."""
    page = services().records.search(query)
    return json_response({"items": page.items, "continuation": page.continuation})


@bp.function_name("delete_image")
@bp.route(route="images/{id}", methods=["DELETE"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@handles_errors
async def delete_image(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    image_id = require_image_id(req.route_params.get("id", ""))
    record, blob, _ = await off_loop(_lookup, image_id)
    if blob is None and record is None:
        raise NotFoundError(f"image {image_id} does not exist")
    if blob is not None:
        status = await run_status(client, instance_id(image_id, blob.etag))
        if status is not None and is_active(status.runtime_status):
            await client.terminate(instance_id(image_id, blob.etag), "image deleted by the client")
    # the record first: a run that then finds the blob gone knows it was deleted, not lost
    await off_loop(services().records.delete, image_id)
    if blob is not None:
        await off_loop(services().blobs.delete, blob.name)
    return func.HttpResponse(status_code=204)
