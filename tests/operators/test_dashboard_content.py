"""The dashboard's routes in-process against real Azurite: the image-content route serves only bytes that
validate as an image, with the content type we determined, and the page carries a strict CSP.

A blob's stored Content-Type is chosen by whoever wrote it (a SAS PUT sets any type), so it is never
trusted: HTML stored under an image name is refused, and a real image stored as ``text/html`` is served as
the image it is.
"""

from __future__ import annotations

import re

import azure.functions as func
import pytest

from imagepipe.composition import services
from imagepipe.ids import new_image_id
from tests.support import images
from tests.support.inprocess import body_json, call_http

pytestmark = pytest.mark.integration

ATTACK = b"<!doctype html><script>fetch('/api/runs',{headers:{'x-functions-key':location.search}})</script>"


def content(image_id: str) -> func.HttpResponse:
    return call_http(
        "dashboard_image",
        "GET",
        f"/api/dashboard/images/{image_id}/content",
        route_params={"id": image_id},
    )


def csp(response: func.HttpResponse) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.strip() for d in policy.split(";") if d.strip()}


def test_html_stored_under_an_image_name_is_refused(app_env: dict[str, str]) -> None:
    image_id = new_image_id()
    services().blobs.put(f"{image_id}.png", ATTACK, content_type="text/html", metadata={})
    response = content(image_id)
    assert response.status_code == 415
    assert response.mimetype == "application/json"
    assert body_json(response)["error"]["code"] == "not_an_image"
    assert b"<script" not in response.get_body()


@pytest.mark.parametrize("stored_type", ["text/html", "image/svg+xml", "", "application/octet-stream"])
def test_an_image_is_served_with_the_type_we_determined(app_env: dict[str, str], stored_type: str) -> None:
    image_id = new_image_id()
    data = images.png()
    services().blobs.put(f"{image_id}.png", data, content_type=stored_type, metadata={})
    response = content(image_id)
    assert response.status_code == 200, response.get_body()[:300]
    assert response.get_body() == data
    assert response.mimetype == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"] == f'inline; filename="{image_id}.png"'
    assert csp(response)["default-src"] == "default-src 'none'"
    assert "sandbox" in csp(response)


def test_a_jpeg_under_a_png_name_is_served_as_jpeg(app_env: dict[str, str]) -> None:
    image_id = new_image_id()
    services().blobs.put(f"{image_id}.png", images.jpeg(), content_type="image/png", metadata={})
    response = content(image_id)
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert response.headers["Content-Disposition"] == f'inline; filename="{image_id}.jpg"'


def test_unknown_and_malformed_ids(app_env: dict[str, str]) -> None:
    missing = content(new_image_id())
    assert missing.status_code == 404 and body_json(missing)["error"]["code"] == "not_found"
    bad = content("../../etc/passwd")
    assert bad.status_code == 400


def test_the_page_has_no_inline_script_and_a_strict_policy(app_env: dict[str, str]) -> None:
    page = call_http("dashboard", "GET", "/api/dashboard")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_body().decode()
    policy = csp(page)
    assert policy["script-src"] == "script-src 'self'"
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    # every script and stylesheet is a same-origin file; nothing inline (no <style>, style= or on*= either)
    assert re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S) == [(' src="/api/dashboard/dashboard.js"', "")]
    assert '<link rel="stylesheet" href="/api/dashboard/dashboard.css">' in html
    assert "<style" not in html and re.search(r"\s(style|on[a-z]+)=", html) is None
    js = call_http("dashboard", "GET", "/api/dashboard/dashboard.js", route_params={"asset": "dashboard.js"})
    assert js.status_code == 200 and js.mimetype == "text/javascript"
    assert js.headers["X-Content-Type-Options"] == "nosniff"
    css = call_http("dashboard", "GET", "/api/dashboard/dashboard.css", route_params={"asset": "dashboard.css"})
    assert css.status_code == 200 and css.mimetype == "text/css"
    other = call_http("dashboard", "GET", "/api/dashboard/keys.json", route_params={"asset": "keys.json"})
    assert other.status_code == 404 and body_json(other)["error"]["code"] == "not_found"
