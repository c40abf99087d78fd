"""LabelSetStore contract: the SQLite adapter and the Cosmos adapter (real SDK over the gateway fake) agree.

Versions are numbered per (profile, name), never reused after a delete, the newest is active after
training, an older one can be activated, the active one cannot be deleted alone, and whole-set deletes
remove every version.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagepipe.adapters.cosmos_labelsets import CosmosLabelSetStore
from imagepipe.adapters.sqlite_labelsets import SqliteLabelSetStore
from imagepipe.errors import ConflictError, InvalidInputError, ModelUnavailableError, TransientServiceError
from imagepipe.labelsets import custom_labels_patch
from imagepipe.ports import LabelSetStore
from imagepipe.vision.embedding import OnnxImageEmbedder
from tests.fakes.cosmos_transport import FakeCosmosTransport
from tests.fakes.credentials import StaticCredential
from tests.support import images

pytestmark = pytest.mark.unit

ENDPOINT = "https://fakeacct.documents.azure.com:443/"


@pytest.fixture(params=["sqlite", "cosmos"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LabelSetStore]:
    if request.param == "sqlite":
        yield SqliteLabelSetStore(str(tmp_path / "records.sqlite3"))
    else:
        transport = FakeCosmosTransport(databases={"imagepipe": ["images", "labelsets"]})
        yield CosmosLabelSetStore(ENDPOINT, "imagepipe", "labelsets", StaticCredential(), transport=transport)


def doc(profile: str = "general", name: str = "garments", threshold: float = 0.5) -> dict[str, object]:
    return {"profile": profile, "name": name, "threshold": threshold, "labels": [{"name": "dress", "examples": 2}]}


def test_versions_count_up_and_the_newest_is_active(store: LabelSetStore) -> None:
    first = store.add_version(doc(threshold=0.1))
    second = store.add_version(doc(threshold=0.2))
    other = store.add_version(doc(name="claims"))
    assert (first["version"], second["version"], other["version"]) == (1, 2, 1)
    assert isinstance(first["createdAt"], str) and first["createdAt"].endswith("Z")
    active = store.get_version("general", "garments")
    assert active is not None and active["version"] == 2 and active["threshold"] == 0.2
    older = store.get_version("general", "garments", 1)
    assert older is not None and older["threshold"] == 0.1
    assert set(older) == set(first)  # no store-internal properties leak out
    assert store.get_version("general", "garments", 9) is None
    assert store.get_version("general", "nothing") is None


def test_list_and_active_versions_by_profile(store: LabelSetStore) -> None:
    store.add_version(doc(name="garments"))
    store.add_version(doc(name="garments"))
    store.add_version(doc(name="accessories"))
    store.add_version(doc(profile="insurer", name="damage"))
    listed = [(d["profile"], d["name"], d["version"]) for d in store.list_versions()]
    assert listed == [
        ("general", "accessories", 1),
        ("general", "garments", 1),
        ("general", "garments", 2),
        ("insurer", "damage", 1),
    ]
    assert [(d["name"], d["version"]) for d in store.list_versions("insurer")] == [("damage", 1)]
    assert [(d["name"], d["version"]) for d in store.active_versions("general")] == [
        ("accessories", 1),
        ("garments", 2),
    ]
    assert store.active_versions("nobody") == []


def test_activate_rolls_back_and_new_training_takes_over(store: LabelSetStore) -> None:
    store.add_version(doc())
    store.add_version(doc())
    assert store.activate("general", "garments", 1)
    assert store.get_version("general", "garments")["version"] == 1  # type: ignore[index]
    assert not store.activate("general", "garments", 7)
    assert store.add_version(doc())["version"] == 3
    assert [d["version"] for d in store.active_versions("general")] == [3]


def test_delete_one_version_never_the_active_one_and_numbers_are_not_reused(store: LabelSetStore) -> None:
    store.add_version(doc())
    store.add_version(doc())
    store.add_version(doc())
    with pytest.raises(ConflictError, match="active version"):
        store.delete("general", "garments", 3)
    assert store.activate("general", "garments", 2)
    assert store.delete("general", "garments", 3) == 1
    assert store.delete("general", "garments", 3) == 0
    assert store.add_version(doc())["version"] == 4
    assert [d["version"] for d in store.list_versions()] == [1, 2, 4]


def test_delete_whole_set(store: LabelSetStore) -> None:
    store.add_version(doc())
    store.add_version(doc())
    store.add_version(doc(name="other"))
    assert store.delete("general", "garments") == 2
    assert store.get_version("general", "garments") is None
    assert [d["name"] for d in store.list_versions()] == ["other"]
    assert store.active_versions("general")[0]["name"] == "other"
    assert store.delete("general", "garments") == 0
    assert store.add_version(doc())["version"] == 1  # a deleted set starts again


def test_a_version_needs_profile_and_name(store: LabelSetStore) -> None:
    with pytest.raises(InvalidInputError, match="profile"):
        store.add_version({"name": "x"})


def test_concurrent_training_gets_distinct_versions(store: LabelSetStore) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def train() -> None:
        stored = store.add_version(doc())
        with lock:
            results.append(int(stored["version"]))

    threads = [threading.Thread(target=train) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [1, 2, 3, 4]
    assert [d["version"] for d in store.list_versions()] == [1, 2, 3, 4]


def test_analysis_goes_on_when_the_label_set_container_is_missing() -> None:
    """A deployment without the ``labelsets`` container: Cosmos answers 404; records get no custom labels."""
    transport = FakeCosmosTransport(databases={"imagepipe": ["images"]})
    store = CosmosLabelSetStore(ENDPOINT, "imagepipe", "labelsets", StaticCredential(), transport=transport)
    assert custom_labels_patch(store, None, "general", b"image") == {}


def test_a_transient_store_failure_is_retried_by_the_step() -> None:
    transport = FakeCosmosTransport(databases={"imagepipe": ["images", "labelsets"]})
    store = CosmosLabelSetStore(ENDPOINT, "imagepipe", "labelsets", StaticCredential(), transport=transport)
    store.add_version(doc())
    transport.fail_next(503, count=20)
    with pytest.raises(TransientServiceError):
        custom_labels_patch(store, None, "general", b"image")


def test_analysis_goes_on_when_the_model_file_is_missing(tmp_path: Path) -> None:
    store = SqliteLabelSetStore(str(tmp_path / "records.sqlite3"))
    store.add_version(doc())
    embedder = OnnxImageEmbedder(tmp_path / "no-models")
    with pytest.raises(ModelUnavailableError, match="is missing"):
        embedder.embed(images.png())
    assert custom_labels_patch(store, embedder, "general", images.png()) == {}
    # bytes the embedder cannot decode: no custom labels, the analysis goes on
    assert custom_labels_patch(store, OnnxImageEmbedder(), "general", b"not an image") == {}
    assert custom_labels_patch(store, None, "general", b"image") == {}  # CUSTOM_LABELS_EMBEDDER=off


def test_sqlite_reads_take_no_write_lock_and_connections_stay_bounded(tmp_path: Path) -> None:
    """Analysis reads the active sets for every image: that read must not queue behind a record write (it shares
    the records' file), and many analysing threads must share a fixed handful of connections."""
    path = tmp_path / "records.sqlite3"
    store = SqliteLabelSetStore(str(path))
    store.add_version(doc())
    writer = sqlite3.connect(str(path), isolation_level=None, timeout=0.1)
    writer.execute("BEGIN IMMEDIATE")  # a record write in progress holds the write lock
    try:
        started = time.monotonic()
        assert [v["name"] for v in store.active_versions("general")] == ["garments"]
        assert store.get_version("general", "garments") is not None and len(store.list_versions()) == 1
        assert time.monotonic() - started < 5  # before: BEGIN IMMEDIATE waited out the 30 s busy timeout
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    threads = [threading.Thread(target=lambda: [store.active_versions("general") for _ in range(20)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.open_connections <= store.max_connections == 2
    store.close()
    assert store.open_connections == 0
