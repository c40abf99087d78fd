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
    # The container Terraform creates: full-text policy and index on /text.
    return FakeCosmosTransport(full_text_paths=["/text"])


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


# -- banded near-duplicate lookup, full-text search, backfill (issue 9.7) ---------------------------------


def _bulk(transport: FakeCosmosTransport, store: CosmosRecordStore, records: list[dict[str, object]]) -> None:
    """Load documents straight into the fake container in the form the store writes (fast set-up)."""
    from imagepipe.adapters.cosmos_records import _stored_form

    docs = transport.databases["imagepipe"]["images"]
    for i, record in enumerate(records):
        docs[str(record["id"])] = _stored_form(record) | {"_rid": f"bulk{i}", "_etag": f'"b{i}"', "_ts": 0}


def test_near_duplicates_probe_the_band_index(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    rng = random.Random(11)
    target = rng.getrandbits(64)
    records = [make_record(f"n{i:05d}", n=i, phash=f"{rng.getrandbits(64):016x}") for i in range(3000)]
    records.append(make_record("near", n=3001, phash=f"{target ^ 0b10010:016x}"))
    _bulk(transport, store, records)
    transport.query_costs.clear()
    found = store.near_duplicates(f"{target:016x}", max_distance=6, exclude_id="self")
    assert [(d["id"], d["distance"]) for d in found] == [("near", 2)]
    assert "phashBands" not in found[0]
    probe = transport.query_costs[0]
    assert probe.indexed and "phashBands" in probe.query
    assert probe.examined < 30  # 68 band keys over 3,001 documents: a handful of candidates, not a scan


def test_documents_carry_band_keys_and_utc_timestamps(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    record = make_record("a1", phash="0123456789abcdef")
    record["createdAt"] = "2026-01-01T02:00:00.123456+02:00"
    store.upsert_if_not_older(record)
    stored = transport.databases["imagepipe"]["images"]["a1"]
    assert stored["phashBands"] == ["b0:0123", "b1:4567", "b2:89ab", "b3:cdef"]
    assert stored["createdAt"] == "2026-01-01T00:00:00.123Z"
    got = store.get("a1")
    assert got is not None and "phashBands" not in got


def test_backfill_adds_bands_to_older_documents(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    old = make_record("old", phash=f"{0xABCD:016x}")
    old["createdAt"] = "2026-01-01T05:00:00-05:00"
    transport.databases["imagepipe"]["images"]["old"] = old | {"_rid": "o1", "_etag": '"o1"', "_ts": 0}
    store.upsert_if_not_older(make_record("new", n=1, phash=f"{0xABCF:016x}"))
    assert store.near_duplicates(f"{0xABCF:016x}", max_distance=3, exclude_id="new") == []  # not banded yet
    assert store.backfill() == 1
    assert store.backfill() == 0  # idempotent
    found = store.near_duplicates(f"{0xABCF:016x}", max_distance=3, exclude_id="new")
    assert [(d["id"], d["distance"]) for d in found] == [("old", 1)]
    assert transport.databases["imagepipe"]["images"]["old"]["createdAt"] == "2026-01-01T10:00:00.000Z"


def test_text_search_uses_the_full_text_index(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    records = [make_record(f"t{i:04d}", n=i, text=f"filler words {i}") for i in range(2000)]
    records[700]["text"] = "Policy number 4711, claim form"
    _bulk(transport, store, records)
    transport.query_costs.clear()
    assert ids(store.search(SearchQuery(text="CLAIM policy")).items) == ["t0700"]
    cost = transport.query_costs[-1]
    assert "FullTextContains(c.text, @text0)" in cost.query and cost.indexed and cost.examined == 1
    assert store.text_search_mode() == "fulltext"


def test_without_a_full_text_policy_search_falls_back_to_contains() -> None:
    # An account without the full-text capability (or a container without the policy): substring CONTAINS,
    # a superset of the word match (docs/records.md), examined by scanning.
    transport = FakeCosmosTransport()
    store = CosmosRecordStore(ENDPOINT, "imagepipe", "images", StaticCredential(), transport=transport)
    store.upsert_if_not_older(make_record("w1", n=1, text="Policy No. 4711: Claim form"))
    store.upsert_if_not_older(make_record("w2", n=2, text="claims department, policyholder"))
    assert store.text_search_mode() == "contains"
    assert ids(store.search(SearchQuery(text="claim FORM")).items) == ["w1"]
    assert ids(store.search(SearchQuery(text="polic")).items) == ["w2", "w1"]
    assert not transport.query_costs[-1].indexed


def test_full_text_forced_on_an_account_without_it_is_refused_like_the_service() -> None:
    transport = FakeCosmosTransport()
    store = CosmosRecordStore(
        ENDPOINT, "imagepipe", "images", StaticCredential(), transport=transport, text_search="fulltext"
    )
    store.upsert_if_not_older(make_record("w1", text="claim"))
    with pytest.raises(ImagepipeError) as info:
        store.search(SearchQuery(text="claim"))
    assert info.value.code == "cosmos_400" and "full text" in info.value.message.lower()
    with pytest.raises(ConfigurationError):
        CosmosRecordStore(ENDPOINT, "imagepipe", "images", StaticCredential(), text_search="regex")  # type: ignore[arg-type]
