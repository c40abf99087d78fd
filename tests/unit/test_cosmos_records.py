"""CosmosRecordStore: the real azure-cosmos SDK over the in-memory gateway fake (tests/fakes).

The shared record-store contract runs here too; the extra tests cover what only Cosmos has: optimistic
concurrency (If-Match / 412), the SDK's throttling retries, error translation and the AAD token header.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest

from imagepipe.adapters.cosmos_records import CosmosRecordStore
from imagepipe.adapters.records_common import encode_token
from imagepipe.errors import ConfigurationError, ImagepipeError, InvalidInputError, TransientServiceError
from imagepipe.ports import SearchQuery
from tests.fakes.cosmos_transport import FakeCosmosTransport
from tests.fakes.credentials import StaticCredential
from tests.unit.record_store_contract import BASE, RecordStoreContract, ids, make_record

pytestmark = pytest.mark.unit

ENDPOINT = "https://fakeacct.documents.azure.com:443/"


@pytest.fixture
def transport() -> FakeCosmosTransport:
    return FakeCosmosTransport()


@pytest.fixture
def store(transport: FakeCosmosTransport) -> CosmosRecordStore:
    return CosmosRecordStore(ENDPOINT, "imagepipe", "images", StaticCredential(), transport=transport)


class TestCosmosContract(RecordStoreContract):
    pass


def test_documents_carry_no_system_properties_and_use_aad(
    store: CosmosRecordStore, transport: FakeCosmosTransport
) -> None:
    store.upsert_if_not_older(make_record("a1"))
    stored = transport.databases["imagepipe"]["images"]["a1"]
    assert stored["_etag"] and stored["_rid"] and stored["_ts"]
    got = store.get("a1")
    assert got is not None and not any(k.startswith("_") for k in got)
    doc_requests = [r for r in transport.requests if "/docs" in r.path]
    assert doc_requests and all(r.headers["authorization"] == "type=aad&ver=1.0&sig=static-token" for r in doc_requests)


def test_credential_scope_is_the_account(transport: FakeCosmosTransport) -> None:
    credential = StaticCredential()
    CosmosRecordStore(ENDPOINT, "imagepipe", "images", credential, transport=transport).get("x")
    assert any(scope and scope[0].startswith("https://fakeacct.documents.azure.com") for scope in credential.scopes)


def test_replace_uses_if_match(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    store.upsert_if_not_older(make_record("a1", status="processing"))
    store.upsert_if_not_older(make_record("a1", status="completed"))
    puts = [r for r in transport.requests if r.method == "PUT"]
    assert len(puts) == 1 and puts[0].headers.get("if-match")


def test_lost_race_is_retried_against_the_new_version(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    store.upsert_if_not_older(make_record("a1", etag='"0x1"'))
    transport.fail_next(412, 1, when=lambda method, path: method == "PUT")
    assert store.upsert_if_not_older(make_record("a1", etag='"0x2"')) is True
    assert transport.count("PUT", "/docs/a1$") == 2
    got = store.get("a1")
    assert got is not None and got["blob"]["etag"] == '"0x2"'


def test_create_conflict_rereads(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    transport.fail_next(409, 1, when=lambda method, path: method == "POST" and path.endswith("/docs"))
    assert store.upsert_if_not_older(make_record("a1")) is True
    assert transport.count("POST", "/docs$") == 2


def test_throttling_is_retried_by_the_sdk(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    store.upsert_if_not_older(make_record("a1"))
    transport.fail_next(429, 2, when=lambda method, path: method == "GET" and path.endswith("/docs/a1"))
    before = transport.count("GET", "/docs/a1$")
    assert store.get("a1") is not None
    assert transport.count("GET", "/docs/a1$") - before == 3


def test_throttling_exhaustion_is_transient_with_retry_after(
    store: CosmosRecordStore, transport: FakeCosmosTransport
) -> None:
    store.get("warm-up")
    transport.fail_next(429, 100, when=lambda method, path: "/docs" in path, retry_after_ms=2)
    with pytest.raises(TransientServiceError) as info:
        store.get("a1")
    assert info.value.retry_after_s == pytest.approx(0.002)
    assert transport.count("GET", "/docs/a1$") == 4  # 1 + retry_throttle_total (3)


def test_service_unavailable_is_transient(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    store.get("warm-up")
    transport.fail_next(503, 100)
    with pytest.raises(TransientServiceError):
        store.get("a1")
    assert transport.count("GET", "/docs/a1$") >= 2  # the SDK retried before giving up


def test_forbidden_names_the_rbac_role(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    store.get("warm-up")
    transport.fail_next(403, 100)
    with pytest.raises(ConfigurationError) as info:
        store.upsert_if_not_older(make_record("a1"))
    assert "Cosmos DB Built-in Data Contributor" in info.value.message


def test_other_errors_keep_their_status(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    store.get("warm-up")
    transport.fail_next(413, 1, code="RequestEntityTooLarge")
    with pytest.raises(ImagepipeError) as info:
        store.get("a1")
    assert info.value.code == "cosmos_413" and not isinstance(info.value, TransientServiceError)


def test_search_query_is_parameterized(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    store.upsert_if_not_older(make_record("a1", tags=["cat'; DROP"], text="Hello World"))
    page = store.search(SearchQuery(tag="cat'; DROP", text="WORLD", limit=3))
    assert ids(page.items) == ["a1"]
    query = [r for r in transport.requests if r.headers.get("x-ms-documentdb-isquery", "").lower() == "true"][-1]
    assert "DROP" not in query.body["query"] and "ORDER BY c.createdAt DESC" in query.body["query"]
    assert {"name": "@tag", "value": "cat'; DROP"} in query.body["parameters"]
    assert query.body["query"].startswith("SELECT TOP 4 * FROM c WHERE ")  # limit + 1 tells if more exist
    assert query.headers["x-ms-max-item-count"] == "4"
    assert query.headers["content-type"].startswith("application/query+json")


def test_bad_endpoint_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        CosmosRecordStore("fakeacct.documents.azure.com", "imagepipe", "images", StaticCredential())


def test_racing_writers_newest_version_wins(store: CosmosRecordStore) -> None:
    versions = list(range(24))
    random.Random(5).shuffle(versions)
    start = threading.Barrier(6)

    def writer(chunk: list[int]) -> None:
        start.wait()
        for v in chunk:
            record = make_record("race", last_modified=BASE + timedelta(seconds=v), etag=f'"0x{v:04d}"', version=v)
            store.upsert_if_not_older(record)

    threads = [threading.Thread(target=writer, args=(versions[i::6],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = store.get("race")
    assert got is not None and got["version"] == 23


def test_continuation_with_wrong_shape_is_invalid_input(store: CosmosRecordStore) -> None:
    store.upsert_if_not_older(make_record("a1"))
    with pytest.raises(InvalidInputError):
        store.search(SearchQuery(continuation=encode_token({"c": 5, "s": "x"})))


def test_paging_with_equal_timestamps_and_small_service_pages(
    store: CosmosRecordStore, transport: FakeCosmosTransport
) -> None:
    transport.max_page_size = 3  # the SDK must follow x-ms-continuation within one call
    for i in range(12):
        store.upsert_if_not_older(make_record(f"e{i:02d}", n=i // 4, phash=f"{i:016x}"))
    seen: list[str] = []
    token = None
    while True:
        page = store.search(SearchQuery(limit=5, continuation=token))
        seen += ids(page.items)
        token = page.continuation
        if token is None:
            break
    assert sorted(seen) == [f"e{i:02d}" for i in range(12)] and len(seen) == 12
    assert [int(s[1:]) // 4 for s in seen] == sorted((int(s[1:]) // 4 for s in seen), reverse=True)
    assert len(list(store.iter_all(fields=["status"]))) == 12
    assert len(store.near_duplicates(f"{0:016x}", max_distance=64, exclude_id="e00", limit=50)) == 11
    assert any("x-ms-continuation" in r.headers for r in transport.requests)


def test_connection_failures_are_transient(transport: FakeCosmosTransport) -> None:
    store = CosmosRecordStore(
        ENDPOINT, "imagepipe", "images", StaticCredential(), transport=transport, retry_backoff_factor=0.01
    )
    store.get("warm-up")
    transport.drop_next(1000)
    with pytest.raises(TransientServiceError):
        store.get("a1")
    assert transport.count("GET", "/docs/a1$") >= 2  # the SDK retried the connection first


def test_unauthorized_at_start_up_is_a_configuration_error(transport: FakeCosmosTransport) -> None:
    transport.fail_next(401, 100, when=lambda method, path: True)
    store = CosmosRecordStore(ENDPOINT, "imagepipe", "images", StaticCredential(), transport=transport)
    with pytest.raises(ConfigurationError) as info:
        store.get("a1")
    assert "Cosmos DB Built-in Data Contributor" in info.value.message
