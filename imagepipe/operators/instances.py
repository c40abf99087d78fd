"""Every orchestration instance a query matches, paged through the Durable management API.

``DurableOrchestrationClient.get_status_by`` sends one request and drops the ``x-ms-continuation-token``
response header, so on Azure it returns only the first page (the extension answers at most ``top``
instances, 100 when ``top`` is absent; azure-functions-durable-python #580). This module asks the same
instances-query endpoint of the client binding itself and follows the tokens until none comes back: a page
may be empty and still carry a token (a backend that stopped scanning), so an empty page never ends the
walk. A hard cap on instances and pages turns an unbounded walk into a clear error.

The endpoint is the one the SDK uses: ``{rpcBaseUrl}instances/`` (the host's local RPC listener, no key)
when the binding has ``rpcBaseUrl``, else ``{baseUrl}/instances/?{requiredQueryStringParameters}`` (the
public webhook with its system key). Requests are aiohttp (non-blocking), one session per query.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import aiohttp

from imagepipe.errors import ImagepipeError, InvalidInputError

log = logging.getLogger("imagepipe.operators")

CONTINUATION_HEADER = "x-ms-continuation-token"
#: Instances asked for per page (the extension's default without ``top`` is 100).
PAGE_SIZE = 100
#: At most this many instances per query; more is an error naming the filters that narrow it.
MAX_INSTANCES = 50_000
#: Tokens the extension has been seen to send at the end instead of none: base64 of "null", and "null".
_END_TOKENS = frozenset({"", "null", "bnVsbA=="})


class InstanceQueryError(ImagepipeError):
    """The management API refused or broke an instances query (the operator API answers 502)."""

    http_status = 502


class TooManyInstancesError(InvalidInputError):
    """More instances match than one query may collect (a 400 asking for narrower filters)."""


@dataclass(frozen=True)
class InstancesEndpoint:
    """The instances-query URL of one client binding and the query parameters it requires (e.g. ``code``)."""

    url: str
    required: tuple[tuple[str, str], ...] = ()


def instances_endpoint(binding: Any) -> InstancesEndpoint:
    """The endpoint of a client binding: its JSON text, its dict, or a ``DurableOrchestrationClient``."""
    if isinstance(binding, str):
        binding = json.loads(binding)
    if isinstance(binding, dict):
        rpc, base, required = (
            binding.get("rpcBaseUrl"),
            binding.get("baseUrl"),
            binding.get("requiredQueryStringParameters"),
        )
    else:  # the SDK's client keeps the parsed binding (rpcBaseUrl; baseUrl and the rest as client data)
        bindings = getattr(binding, "_orchestration_bindings", None)
        if bindings is None:
            raise InstanceQueryError("the durable client has no binding data", code="durable_binding")
        rpc = bindings.rpc_base_url
        base = getattr(bindings.client_data, "baseUrl", None)
        required = getattr(bindings.client_data, "requiredQueryStringParameters", None)
    if rpc:
        return InstancesEndpoint(f"{str(rpc).rstrip('/')}/instances/")
    if base:
        return InstancesEndpoint(f"{str(base).rstrip('/')}/instances/", tuple(parse_qsl(str(required or ""))))
    raise InstanceQueryError("the durable client binding has neither rpcBaseUrl nor baseUrl", code="durable_binding")


def _time(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def query_params(
    *,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    runtime_status: list[str] | tuple[str, ...] = (),
    instance_id_prefix: str | None = None,
    show_input: bool = True,
    top: int = PAGE_SIZE,
) -> list[tuple[str, str]]:
    """Query string of one page request (the names and formats the extension parses)."""
    params: list[tuple[str, str]] = [("showInput", "true" if show_input else "false"), ("top", str(top))]
    if created_from is not None:
        params.append(("createdTimeFrom", _time(created_from)))
    if created_to is not None:
        params.append(("createdTimeTo", _time(created_to)))
    if runtime_status:
        params.append(("runtimeStatus", ",".join(runtime_status)))
    if instance_id_prefix:
        params.append(("instanceIdPrefix", instance_id_prefix))
    return params


async def query_instances(
    binding: Any,
    *,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    runtime_status: list[str] | tuple[str, ...] = (),
    instance_id_prefix: str | None = None,
    show_input: bool = True,
    top: int = PAGE_SIZE,
    max_instances: int = MAX_INSTANCES,
    timeout_s: float = 60.0,
) -> list[dict[str, Any]]:
    """Status JSON of every instance the filters match, following continuation tokens to the end.

    Raises ``TooManyInstancesError`` past ``max_instances`` (or when the pages needed for that many run
    out: tokens that never end) and ``InstanceQueryError`` when the management API answers anything but 200
    with a JSON array, or hands back the token it was just given.
    """
    if top < 1:
        raise ValueError("top must be at least 1")
    endpoint = instances_endpoint(binding)
    params = list(endpoint.required) + query_params(
        created_from=created_from,
        created_to=created_to,
        runtime_status=runtime_status,
        instance_id_prefix=instance_id_prefix,
        show_input=show_input,
        top=top,
    )
    # empty pages are allowed, but not without end: as many again as full pages would need
    max_pages = 2 * (max_instances // top + 1) + 10
    found: list[dict[str, Any]] = []
    token: str | None = None
    timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for _ in range(max_pages):
            headers = {CONTINUATION_HEADER: token} if token else {}
            try:
                async with session.get(endpoint.url, params=params, headers=headers) as response:
                    text = await response.text()
                    status = response.status
                    next_token = response.headers.get(CONTINUATION_HEADER)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise InstanceQueryError(
                    f"the Durable management API did not answer the instances query: {type(exc).__name__} {exc}",
                    code="durable_unavailable",
                ) from exc
            if status != 200:  # the body may hold the host's exception text: log it, never answer it
                log.warning("instances query answered %s: %s", status, text[:500])
                raise InstanceQueryError(
                    f"the Durable management API answered {status} to the instances query",
                    code="durable_query_failed",
                )
            try:
                page = json.loads(text) if text else []
            except ValueError as exc:
                raise InstanceQueryError(
                    "the Durable management API answered the instances query with non-JSON text",
                    code="durable_query_failed",
                ) from exc
            if not isinstance(page, list):
                raise InstanceQueryError(
                    "the Durable management API answered the instances query without a JSON array",
                    code="durable_query_failed",
                )
            found.extend(item for item in page if isinstance(item, dict))
            if len(found) > max_instances:
                raise _too_many(max_instances)
            next_token = (next_token or "").strip()
            if next_token in _END_TOKENS:
                return found
            if next_token == token:
                raise InstanceQueryError(
                    "the Durable management API returned the continuation token it was sent; stopping",
                    code="durable_query_failed",
                )
            token = next_token
    raise InstanceQueryError(
        f"the Durable management API still returned a continuation token after {max_pages} pages; stopping",
        code="durable_query_failed",
    )


def _too_many(limit: int) -> TooManyInstancesError:
    return TooManyInstancesError(
        f"more than {limit} runs match; narrow the query (createdFrom/createdTo, status, a smaller window)",
        code="too_many_runs",
    )
