"""Operator web dashboard: a static page (HTML, CSS and JS as separate files, no build step) and image bytes.

``GET /api/dashboard`` and its two assets are anonymous: they hold no data and no key. The page asks the
operator for the admin key (or reads it once from the URL fragment, which browsers never send to a server,
and strips it), keeps it in memory only, and sends it as the ``x-functions-key`` header on every call to the
operator API, so no key is ever part of a URL the page loads. A strict Content-Security-Policy allows only
these same-origin files to run. ``GET /api/dashboard/images/{id}/content`` (admin) serves an image's bytes
for the run view only when they validate as an image, with the content type determined from the bytes,
never the type stored on the blob (a SAS upload can store anything under any type).
"""

from functools import lru_cache
from importlib import resources

import azure.durable_functions as df
import azure.functions as func

from imagepipe.composition import services
from imagepipe.cors import blob_origin
from imagepipe.errors import ImagepipeError, NotFoundError, PayloadTooLargeError, UnsupportedMediaTypeError
from imagepipe.ids import require_image_id
from imagepipe.imagefacts import inspect_image
from triggers.http_common import handles_errors, off_loop

bp = df.Blueprint()

#: the page's files: route name -> (file in imagepipe/operators/static, MIME type)
_ASSETS = {
    "": ("index.html", "text/html"),
    "index.html": ("index.html", "text/html"),
    "dashboard.js": ("dashboard.js", "text/javascript"),
    "dashboard.css": ("dashboard.css", "text/css"),
}

_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}

#: image bytes: never a document that can run anything, even when opened directly in a tab
_IMAGE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def page_csp(upload_origin: str | None) -> str:
    """The page's policy: only its own files run; the API is same-origin; uploads may go to the blob service."""
    connect = "'self'" + (f" {upload_origin}" if upload_origin else "")
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        f"connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


@lru_cache(maxsize=4)
def _asset(file: str) -> bytes:
    return (resources.files("imagepipe.operators") / "static" / file).read_bytes()


def _upload_origin() -> str | None:
    try:
        return blob_origin(services().settings)
    except ImagepipeError:
        return None


@bp.function_name("dashboard")
@bp.route(route="dashboard/{asset?}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@handles_errors
async def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params.get("asset") or ""
    if name not in _ASSETS:
        raise NotFoundError(f"no dashboard file '{name[:80]}'")
    file, mime = _ASSETS[name]
    headers = {**_COMMON_HEADERS, "Cache-Control": "no-cache", "Content-Security-Policy": page_csp(_upload_origin())}
    return func.HttpResponse(_asset(file), status_code=200, mimetype=mime, charset="utf-8", headers=headers)


@bp.function_name("dashboard_image")
@bp.route(route="dashboard/images/{id}/content", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@handles_errors
async def dashboard_image(req: func.HttpRequest) -> func.HttpResponse:
    image_id = require_image_id(req.route_params.get("id", ""))
    data, content_type, extension = await off_loop(validated_image, image_id)
    headers = {
        **_COMMON_HEADERS,
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": _IMAGE_CSP,
        "Content-Disposition": f'inline; filename="{image_id}.{extension}"',
    }
    return func.HttpResponse(data, status_code=200, mimetype=content_type, headers=headers)


def validated_image(image_id: str) -> tuple[bytes, str, str]:
    """(bytes, MIME type, extension) of the image's blob, determined from the bytes; 4xx unless it is an image."""
    svc = services()
    s = svc.settings
    info = next(iter(svc.blobs.list(prefix=f"{image_id}.")), None)
    if info is None:
        raise NotFoundError(f"image {image_id} has no blob")
    if info.size > s.max_upload_bytes:
        raise PayloadTooLargeError(
            f"blob {info.name} is {info.size} bytes, above the {s.max_upload_bytes}-byte image limit; not served"
        )
    data, _ = svc.blobs.download(info.name)
    try:
        facts = inspect_image(data, s.image_limits)
    except ImagepipeError as exc:
        raise UnsupportedMediaTypeError(
            f"blob {info.name} is not a valid image ({exc.message}); only validated image bytes are served",
            code="not_an_image",
        ) from exc
    return data, facts.content_type, facts.extension
