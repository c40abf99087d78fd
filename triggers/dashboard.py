"""Operator web dashboard (admin): one HTML page (CSS and JS inlined, no build step) and the image bytes.

``GET /api/dashboard`` serves the page; it calls the operator API (``/api/runs``, ``/api/stats``, ...) with
the key given in its own URL (``?code=``). ``GET /api/dashboard/images/{id}/content`` streams an image blob
so the page can draw tags, boxes and OCR text over it. One function (``dashboard``) serves both.
"""

import re
from functools import lru_cache
from importlib import resources

import azure.durable_functions as df
import azure.functions as func

from imagepipe.composition import services
from imagepipe.errors import NotFoundError
from imagepipe.ids import require_image_id
from triggers.http_common import handles_errors

bp = df.Blueprint()

_IMAGE_ROUTE = re.compile(r"^images/(?P<id>[^/]+)/content$")
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'"
    ),
}


@lru_cache(maxsize=1)
def page_html() -> str:
    """The dashboard page with its stylesheet and script inlined."""
    static = resources.files("imagepipe.operators") / "static"
    html = (static / "index.html").read_text(encoding="utf-8")
    css = (static / "dashboard.css").read_text(encoding="utf-8")
    js = (static / "dashboard.js").read_text(encoding="utf-8")
    return html.replace("/*__CSS__*/", css).replace("//__JS__", js)


@bp.function_name("dashboard")
@bp.route(route="dashboard/{*path}", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@handles_errors
async def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    path = (req.route_params.get("path") or "").strip("/")
    if path in ("", "index.html"):
        return func.HttpResponse(
            page_html(), status_code=200, mimetype="text/html", charset="utf-8", headers=_SECURITY_HEADERS
        )
    match = _IMAGE_ROUTE.match(path)
    if match is None:
        raise NotFoundError(f"no dashboard resource '{path[:80]}'")
    image_id = require_image_id(match.group("id"))
    blobs = services().blobs
    for info in blobs.list(prefix=f"{image_id}."):
        data, props = blobs.download(info.name)
        return func.HttpResponse(
            data,
            status_code=200,
            mimetype=props.content_type or "application/octet-stream",
            headers={"Cache-Control": "private, max-age=60", "X-Content-Type-Options": "nosniff"},
        )
    raise NotFoundError(f"image {image_id} has no blob")
