"""CosmosRecordStore: the real azure-cosmos SDK over the in-memory gateway fake (tests/fakes).

The shared record-store contract runs here too; the extra tests cover what only Cosmos has: optimistic
concurrency (If-Match / 412), the SDK's throttling retries, error translation and the AAD token header.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest

from imagepipe.adapters.cosmos_records import PROBE_CHUNK, CosmosRecordStore
from imagepipe.adapters.records_common import encode_token, phash_bands
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


def test_near_duplicates_probe_the_key_index(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    # Scale (50M documents): at distance 6 the probes must examine the near-duplicates and (almost) nothing
    # else. The 16-bit bands matched N/65,536 documents per key by chance (about 3 of these 3,000); the
    # 32-bit half keys match 2 x 5,489 / 2^32 per document (0.008 here), in chunks of at most 500 keys.
    rng = random.Random(11)
    target = rng.getrandbits(64)
    records = [make_record(f"n{i:05d}", n=i, phash=f"{rng.getrandbits(64):016x}") for i in range(3000)]
    records.append(make_record("near", n=3001, phash=f"{target ^ 0b10010:016x}"))
    records.append(make_record("split", n=3002, phash=f"{target ^ 0x7 << 40 ^ 0x7 << 3:016x}"))  # 3 + 3 bits
    _bulk(transport, store, records)
    transport.query_costs.clear()
    found = store.near_duplicates(f"{target:016x}", max_distance=6, exclude_id="self")
    assert [(d["id"], d["distance"]) for d in found] == [("near", 2), ("split", 6)]
    assert "phashBands" not in found[0]
    probes = [c for c in transport.query_costs if "phashBands" in c.query]
    sent = [r.body for r in transport.requests if isinstance(r.body, dict) and "phashBands" in r.body.get("query", "")]
    assert len(probes) == 3 and all(p.indexed for p in probes)
    assert all(len(b["parameters"][0]["value"]) <= PROBE_CHUNK for b in sent)
    assert sum(len(b["parameters"][0]["value"]) for b in sent) == 1058
    # Only the two near-duplicates are examined (each by the chunks holding one of its keys): no chance ones.
    near_keys = [set(phash_bands(r["image"]["phash"])) for r in records[-2:]]
    per_chunk = [sum(1 for k in near_keys if k & set(b["parameters"][0]["value"])) for b in sent]
    assert [p.examined for p in probes] == per_chunk and sum(per_chunk) >= 2


def test_documents_carry_band_keys_and_utc_timestamps(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    record = make_record("a1", phash="0123456789abcdef")
    record["createdAt"] = "2026-01-01T02:00:00.123456+02:00"
    store.upsert_if_not_older(record)
    stored = transport.databases["imagepipe"]["images"]["a1"]
    keys = stored["phashBands"]
    assert len(keys) == len(set(keys)) == 66 and keys[0] == "h0:01234567" and keys[33] == "h1:89abcdef"
    assert set(keys) == {f"h0:{0x01234567 ^ m:08x}" for m in [0] + [1 << b for b in range(32)]} | {
        f"h1:{0x89ABCDEF ^ m:08x}" for m in [0] + [1 << b for b in range(32)]
    }
    assert stored["createdAt"] == "2026-01-01T00:00:00.123Z"
    got = store.get("a1")
    assert got is not None and "phashBands" not in got


def test_backfill_adds_bands_to_older_documents(store: CosmosRecordStore, transport: FakeCosmosTransport) -> None:
    old = make_record("old", phash=f"{0xABCD:016x}")
    old["createdAt"] = "2026-01-01T05:00:00-05:00"
    transport.databases["imagepipe"]["images"]["old"] = old | {"_rid": "o1", "_etag": '"o1"', "_ts": 0}
    store.upsert_if_not_older(make_record("new", n=1, phash=f"{0xABCF:016x}"))
    # A document from the 16-bit band era: the old keys find nothing under the new probes.
    banded = make_record("banded", n=2, phash=f"{0xABCE:016x}")
    old_keys = ["b0:0000", "b1:0000", "b2:0000", "b3:abce"]
    transport.databases["imagepipe"]["images"]["banded"] = banded | {
        "phashBands": old_keys,
        "_rid": "o2",
        "_etag": '"o2"',
        "_ts": 0,
    }
    assert store.near_duplicates(f"{0xABCF:016x}", max_distance=3, exclude_id="new") == []  # not keyed yet
    assert store.backfill() == 2
    assert store.backfill() == 0  # idempotent
    found = store.near_duplicates(f"{0xABCF:016x}", max_distance=3, exclude_id="new")
    assert [(d["id"], d["distance"]) for d in found] == [("banded", 1), ("old", 1)]
    assert len(transport.databases["imagepipe"]["images"]["banded"]["phashBands"]) == 66
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
