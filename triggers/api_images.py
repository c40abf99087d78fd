"""Client HTTP API: upload images, get a direct-upload URL, read results and run status, search, delete.

Every error is ``{"error": {"code", "message"}}`` with a 4xx naming the problem; nothing is stored for a
rejected upload.
"""

import json
import re
import unicodedata
import urllib.parse
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from imagepipe import acceptance
from imagepipe.composition import services
from imagepipe.errors import InvalidInputError, NotFoundError, UnsupportedMediaTypeError
from imagepipe.ids import blob_name, instance_id, new_image_id, require_image_id
from imagepipe.imagefacts import Limits, inspect_image
from imagepipe.ports import BlobInfo, SearchQuery
from imagepipe.profiles import resolve_profile
from imagepipe.records import encode_blob_metadata
from triggers.http_common import base_url, handles_errors, json_response, query_int, query_time
from triggers.runs import run_status

bp = df.Blueprint()

_META_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_CLIENT_METADATA_KEYS = 16
MAX_CLIENT_METADATA_VALUE = 512
STATUSES = ("pending", "processing", "completed", "failed")


# ---------------------------------------------------------------------------------------------------
# input parsing
# ---------------------------------------------------------------------------------------------------


def safe_filename(raw: str | None) -> str | None:
    """The base name of a client-supplied file name, without directories or control characters."""
    if not raw:
        return None
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    return name[:255] or None


def parse_client_metadata(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidInputError(f"metadata must be a JSON object of strings: {exc}", code="invalid_metadata") from exc
    if not isinstance(value, dict):
        raise InvalidInputError("metadata must be a JSON object of strings", code="invalid_metadata")
    if len(value) > MAX_CLIENT_METADATA_KEYS:
        raise InvalidInputError(f"metadata has more than {MAX_CLIENT_METADATA_KEYS} keys", code="invalid_metadata")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not _META_KEY.match(str(key)):
            raise InvalidInputError(
                f"metadata key '{str(key)[:40]}' must start with a letter or _ and use letters, digits and _",
                code="invalid_metadata",
            )
        if not isinstance(item, str | int | float | bool) or len(str(item)) > MAX_CLIENT_METADATA_VALUE:
            raise InvalidInputError(
                f"metadata value of '{key}' must be a string of at most {MAX_CLIENT_METADATA_VALUE} characters",
                code="invalid_metadata",
            )
        out[str(key)] = str(item)
    return out


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


def _links(req: func.HttpRequest, image_id: str) -> dict[str, str]:
    root = base_url(req)
    return {"statusUrl": f"{root}/api/images/{image_id}/status", "resultUrl": f"{root}/api/images/{image_id}"}


def _find_blob(image_id: str) -> BlobInfo | None:
    for info in services().blobs.list(prefix=f"{image_id}."):
        return info
    return None


# ---------------------------------------------------------------------------------------------------
# endpoints
# ---------------------------------------------------------------------------------------------------


@bp.function_name("upload_image")
@bp.route(route="images", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@handles_errors
async def upload_image(req: func.HttpRequest) -> func.HttpResponse:
    svc = services()
    data, declared, filename, profile_name, metadata_raw = _read_upload(req)
    profile = resolve_profile(svc.profiles, profile_name)
    client_meta = parse_client_metadata(metadata_raw)
    s = svc.settings
    facts = inspect_image(
        data, Limits(s.max_upload_bytes, s.min_dimension_px, s.max_dimension_px, s.max_pixels), declared
    )
    image_id = new_image_id()
    name = blob_name(image_id, facts.extension)
    metadata = encode_blob_metadata(profile.name, safe_filename(filename), client_meta)
    info = acceptance.store_accepted_upload(
        svc, image_id, name, data, content_type=facts.content_type, metadata=metadata,
        profile=profile.name, original_name=safe_filename(filename), client=client_meta,
    )  # fmt: skip
    links = _links(req, image_id)
    body = {"id": image_id, "status": "pending", "profile": profile.name, "blob": info.name, **links}
    return json_response(body, 202, {"Location": links["statusUrl"], "Retry-After": "1"})


@bp.function_name("create_upload")
@bp.route(route="uploads", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@handles_errors
async def create_upload(req: func.HttpRequest) -> func.HttpResponse:
    svc = services()
    try:
        spec: Any = req.get_json() if req.get_body() else {}
    except ValueError as exc:
        raise InvalidInputError("the body must be JSON: {contentType, profile?, filename?, metadata?}") from exc
    if not isinstance(spec, dict):
        raise InvalidInputError("the body must be a JSON object")
    content_type = str(spec.get("contentType") or "")
    extensions = {
        "image/jpeg": "jpg",
        "image/png": "png",
        "image/gif": "gif",
        "image/bmp": "bmp",
        "image/webp": "webp",
        "image/tiff": "tiff",
    }
    if content_type not in extensions:
        raise InvalidInputError(f"contentType must be one of {', '.join(extensions)}", code="invalid_content_type")
    profile = resolve_profile(svc.profiles, spec.get("profile"))
    client_meta = parse_client_metadata(json.dumps(spec["metadata"]) if spec.get("metadata") else None)
    image_id = new_image_id()
    name = blob_name(image_id, extensions[content_type])
    ttl = svc.settings.upload_url_ttl_s
    url = svc.blobs.upload_url(name, expires_in_s=ttl, content_type=content_type)
    metadata = encode_blob_metadata(profile.name, safe_filename(spec.get("filename")), client_meta)
    acceptance.record_upload_url(
        svc, image_id, name, content_type=content_type, profile=profile.name,
        original_name=safe_filename(spec.get("filename")), client=client_meta, expires_in_s=ttl,
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
        **_links(req, image_id),
    }
    return json_response(body, 201)


@bp.function_name("get_image")
@bp.route(route="images/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handles_errors
async def get_image(req: func.HttpRequest) -> func.HttpResponse:
    image_id = require_image_id(req.route_params.get("id", ""))
    record = services().records.get(image_id)
    if record is None:
        if _find_blob(image_id) is not None:
            raise NotFoundError(
                f"image {image_id} is uploaded but has no result yet; poll /api/images/{image_id}/status",
                code="result_not_ready",
            )
        raise NotFoundError(f"image {image_id} does not exist")
    return json_response(record)


@bp.function_name("get_image_status")
@bp.route(route="images/{id}/status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@handles_errors
async def get_image_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    image_id = require_image_id(req.route_params.get("id", ""))
    svc = services()
    record = svc.records.get(image_id)
    blob = _find_blob(image_id)
    if blob is None and record is None:
        raise NotFoundError(f"image {image_id} does not exist")
    body: dict[str, Any] = {"id": image_id, **_links(req, image_id)}
    current = record is not None and blob is not None and record["blob"]["etag"] == blob.etag
    if record is not None and current and record.get("status") in ("completed", "failed"):
        body.update(
            status=record["status"],
            stage=record["status"],
            error=record.get("error"),
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
    if runtime in ("Pending", "Running", "ContinuedAsNew", "Suspended"):
        body.update(status="processing", stage=custom.get("stage", "starting"), runtimeStatus=runtime)
        return json_response(body, 200, {"Retry-After": "1"})
    if runtime == "Completed":
        body.update(status=(record or {}).get("status", "completed"), stage="completed", runtimeStatus=runtime)
        return json_response(body)
    body.update(
        status="failed",
        stage=custom.get("step") or custom.get("stage") or "unknown",
        runtimeStatus=runtime,
        error=(record or {}).get("error") or {"code": runtime.lower(), "message": str(status.output), "step": "run"},
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
    query = SearchQuery(
        profile=req.params.get("profile") or None,
        tag=(req.params.get("tag") or "").lower() or None,
        label=req.params.get("label") or None,
        text=req.params.get("text") or None,
        status=status,
        created_from=query_time(req, "from"),
        created_to=query_time(req, "to"),
        near_duplicate_of=require_image_id(near) if near else None,
        limit=query_int(req, "limit", 50, 1, 1000),
        continuation=req.params.get("continuation") or None,
    )
    svc = services()
    if query.near_duplicate_of:
        record = svc.records.get(query.near_duplicate_of)
        phash = ((record or {}).get("image") or {}).get("phash")
        if not phash:
            raise NotFoundError(f"image {query.near_duplicate_of} has no analysed record to compare with")
        items = svc.records.near_duplicates(
            phash,
            max_distance=svc.settings.near_duplicate_max_distance,
            exclude_id=query.near_duplicate_of,
            limit=query.limit,
        )
        return json_response({"items": items, "continuation": None})
    page = svc.records.search(query)
    return json_response({"items": page.items, "continuation": page.continuation})


@bp.function_name("delete_image")
@bp.route(route="images/{id}", methods=["DELETE"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@handles_errors
async def delete_image(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    image_id = require_image_id(req.route_params.get("id", ""))
    svc = services()
    blob = _find_blob(image_id)
    record = svc.records.get(image_id)
    if blob is None and record is None:
        raise NotFoundError(f"image {image_id} does not exist")
    if blob is not None:
        status = await run_status(client, instance_id(image_id, blob.etag))
        if status is not None and status.runtime_status and status.runtime_status.name in ("Pending", "Running"):
            await client.terminate(instance_id(image_id, blob.etag), "image deleted by the client")
    svc.records.delete(image_id)  # first: a run that then finds the blob gone knows it was deleted, not lost
    if blob is not None:
        svc.blobs.delete(blob.name)
    return func.HttpResponse(status_code=204)
