"""Calls the app's HTTP functions in-process, as the Functions worker would (for tests without a host)."""

from __future__ import annotations

import asyncio
import json
from functools import cache
from typing import Any

import azure.functions as func


@cache
def functions() -> dict[str, Any]:
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def call_http(
    name: str,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
) -> func.HttpResponse:
    function = functions()[name]
    request = func.HttpRequest(
        method,
        f"http://127.0.0.1:7071{path}",
        headers=headers or {},
        params=params or {},
        route_params=route_params or {},
        body=body,
    )
    result = function.get_user_function()(request)
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def body_json(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())


def multipart(fields: dict[str, str], file_name: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = "----imagepipe-test-boundary"
    parts = []
    for key, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
