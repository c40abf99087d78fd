"""Custom label sets as a service: train a version from examples, list/show/test/delete, and label a record.

Used by the admin API (``triggers/api_labelsets.py``), the CLI (``imagepipe labels ...``) and the pipeline
(``analyze_image`` calls ``custom_labels_patch``). The math is in ``imagepipe.custom_labels``; the stored
versions go through the ``LabelSetStore`` port, the embeddings through the ``ImageEmbedder`` port.

A training request (JSON)::

    {"profile": "general", "name": "garments",
     "labels": {"dress": ["<imageId>", {"imageId": "<imageId>"}, {"data": "<base64 image>"}], "shoe": [...]}}

An example is an image already uploaded (its id: the stored blob's bytes) or an image sent in the request
(base64). Every example is validated with ``validate_image`` under the app's upload limits; the errors name
the label and the example's position.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from imagepipe import label_rules
from imagepipe.errors import (
    ImagepipeError,
    InvalidInputError,
    ModelUnavailableError,
    NotFoundError,
    PermanentImageError,
    TransientServiceError,
)
from imagepipe.ids import is_image_id
from imagepipe.imagefacts import validate_image
from imagepipe.ports import BlobStore, ImageEmbedder, JsonDict, LabelSetStore, RecordStore
from imagepipe.profiles import Profile
from imagepipe.settings import Settings

log = logging.getLogger("imagepipe.labelsets")

#: The most bytes a training request's body may have (base64 examples included).
MAX_TRAIN_BODY_BYTES = 32 * 1024 * 1024
#: The most examples a training request may carry as bytes (the rest must be uploaded images' ids).
MAX_UPLOADED_EXAMPLES = 100


class LabelServices(Protocol):
    """What label sets use (``imagepipe.composition.Services`` provides it)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def blobs(self) -> BlobStore: ...
    @property
    def records(self) -> RecordStore: ...
    @property
    def profiles(self) -> dict[str, Profile]: ...
    @property
    def labelsets(self) -> LabelSetStore: ...
    @property
    def embedder(self) -> ImageEmbedder | None: ...


@dataclass(frozen=True)
class Example:
    label: str
    position: int
    image_id: str | None = None
    data: bytes | None = None

    @property
    def where(self) -> str:
        return f"example {self.position + 1} of label '{self.label}'"


@dataclass(frozen=True)
class TrainingRequest:
    profile: str
    name: str
    examples: dict[str, list[Example]]


def _example(label: str, position: int, raw: Any) -> Example:
    where = f"example {position + 1} of label '{label}'"
    if isinstance(raw, str):
        raw = {"imageId": raw}
    if not isinstance(raw, dict) or len({"imageId", "data"} & set(raw)) != 1:
        raise InvalidInputError(
            f'{where} must be an image id, {{"imageId": ...}} or {{"data": <base64 image>}}',
            code="invalid_example",
        )
    if "imageId" in raw:
        image_id = raw["imageId"]
        if not isinstance(image_id, str) or not is_image_id(image_id):
            raise InvalidInputError(f"{where}: '{str(image_id)[:40]}' is not an image id", code="invalid_example")
        return Example(label, position, image_id=image_id)
    data = raw["data"]
    if not isinstance(data, str):
        raise InvalidInputError(f"{where}: 'data' must be a base64 string", code="invalid_example")
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(f"{where}: 'data' is not valid base64", code="invalid_example") from exc
    return Example(label, position, data=decoded)


def parse_training_request(body: JsonDict) -> TrainingRequest:
    """The request's profile, name and examples, checked against every limit (a 400 naming the problem)."""
    unknown = sorted(set(body) - {"profile", "name", "labels"})
    if unknown:
        raise InvalidInputError(f"unknown field(s) {', '.join(unknown)}; expected profile, name, labels")
    profile = body.get("profile", "general")
    if not isinstance(profile, str) or not profile:
        raise InvalidInputError("'profile' must be a profile name")
    name = label_rules.check_name(body.get("name"), "label set name")
    labels = body.get("labels")
    if not isinstance(labels, dict):
        raise InvalidInputError("'labels' must be an object {label: [examples]}", code="invalid_label_set")
    for label, items in labels.items():
        label_rules.check_name(label, "label")
        if not isinstance(items, list):
            raise InvalidInputError(f"label '{label}' must have a list of examples", code="invalid_label_set")
    label_rules.check_label_counts({label: len(items) for label, items in labels.items()})
    examples = {label: [_example(label, i, raw) for i, raw in enumerate(items)] for label, items in labels.items()}
    uploaded = sum(1 for items in examples.values() for e in items if e.data is not None)
    if uploaded > MAX_UPLOADED_EXAMPLES:
        raise InvalidInputError(
            f"at most {MAX_UPLOADED_EXAMPLES} examples may be sent as bytes, got {uploaded}; upload the others "
            "first and name them by image id",
            code="too_many_examples",
        )
    return TrainingRequest(profile, name, examples)


def _named(error: ImagepipeError, where: str) -> ImagepipeError:
    """The same client error with ``where`` in front of its message."""
    named = type(error)(f"{where}: {error.message}")
    named.code = error.code
    return named


def _validated(svc: LabelServices, data: bytes, where: str) -> bytes:
    """``data`` when it is an acceptable image; else the client error named by ``where``."""
    try:
        validate_image(data, svc.settings.image_limits)
    except ImagepipeError as exc:
        if exc.http_status >= 500:
            raise
        raise _named(exc, where) from exc
    return data


def example_bytes(svc: LabelServices, example: Example) -> bytes:
    """The example's validated bytes: sent in the request, or the stored blob of an uploaded image."""
    data = example.data
    if data is None:
        assert example.image_id is not None
        record = svc.records.get(example.image_id)
        blob = (record or {}).get("blob") or {}
        if not isinstance(blob, dict) or not isinstance(blob.get("name"), str):
            raise InvalidInputError(f"{example.where}: image {example.image_id} does not exist", code="unknown_image")
        try:
            data, _ = svc.blobs.download(blob["name"])
        except NotFoundError as exc:
            raise InvalidInputError(
                f"{example.where}: image {example.image_id} has no stored bytes", code="unknown_image"
            ) from exc
    return _validated(svc, data, example.where)


class UnavailableEmbedder:
    """Stands in for the embedding model when it cannot be imported (a package without the local extra):
    the app still starts and analyses; custom labels answer ``ModelUnavailableError`` naming the fix."""

    model = "unavailable"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def embed(self, image: bytes) -> list[float]:
        raise ModelUnavailableError(self.reason)


def _embedder(svc: LabelServices) -> ImageEmbedder:
    embedder = svc.embedder
    if embedder is None:
        raise ModelUnavailableError(
            "custom labels are turned off (CUSTOM_LABELS_EMBEDDER=off)", code="custom_labels_unavailable"
        )
    if isinstance(embedder, UnavailableEmbedder):
        raise ModelUnavailableError(embedder.reason, code="custom_labels_unavailable")
    return embedder


def train_label_set(svc: LabelServices, body: JsonDict) -> JsonDict:
    """Train and store a new active version from a training request; returns its summary."""
    request = parse_training_request(body)
    if request.profile not in svc.profiles:
        raise InvalidInputError(
            f"profile '{request.profile[:40]}' is not configured; use one of {', '.join(sorted(svc.profiles))}"
        )
    embedder = _embedder(svc)
    started = time.perf_counter()
    vectors: dict[str, list[list[float]]] = {}
    provenance: list[JsonDict] = []
    for label, examples in request.examples.items():
        rows = []
        for example in examples:
            data = example_bytes(svc, example)
            try:
                rows.append(embedder.embed(data))
            except ImagepipeError as exc:
                if exc.http_status >= 500:
                    raise
                raise _named(exc, example.where) from exc
            provenance.append(
                {
                    "label": label,
                    "imageId": example.image_id,
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
        vectors[label] = rows
    embedded = time.perf_counter()
    from imagepipe import custom_labels  # numpy: only where label sets are used (docs/custom-labels.md)

    model = custom_labels.train(vectors)
    fitted = time.perf_counter()
    doc = {
        "profile": request.profile,
        "name": request.name,
        "embeddingModel": embedder.model,
        **model,
        "examples": provenance,
        "training": {"embedMs": round((embedded - started) * 1000, 1), "fitMs": round((fitted - embedded) * 1000, 3)},
    }
    stored = svc.labelsets.add_version(doc)
    log.info(
        "label set %s/%s version %s trained: %d labels, LOO accuracy %s",
        request.profile,
        request.name,
        stored.get("version"),
        len(vectors),
        model["loo"]["accuracy"],
    )
    return summary(stored, active=True)


def summary(doc: JsonDict, *, active: bool) -> JsonDict:
    """A version as the API shows it: everything but the centroid vectors and example hashes, plus ``active``."""
    out = {k: v for k, v in doc.items() if k not in ("labels", "examples")}
    out["labels"] = [{"name": label.get("name"), "examples": label.get("examples")} for label in doc.get("labels", [])]
    out["active"] = active
    return out


def list_label_sets(svc: LabelServices, profile: str | None = None) -> list[JsonDict]:
    """Every label set (of ``profile`` when given): ``{profile, name, activeVersion, versions: [summary]}``."""
    sets: dict[tuple[str, str], JsonDict] = {}
    active: dict[str, dict[str, int]] = {}
    for doc in svc.labelsets.list_versions(profile):
        p, n = str(doc["profile"]), str(doc["name"])
        if p not in active:
            active[p] = {str(d["name"]): int(d["version"]) for d in svc.labelsets.active_versions(p)}
        entry = sets.setdefault((p, n), {"profile": p, "name": n, "activeVersion": active[p].get(n), "versions": []})
        entry["versions"].append(summary(doc, active=active[p].get(n) == doc["version"]))
    return list(sets.values())


def show_label_set(svc: LabelServices, profile: str, name: str, version: int | None = None) -> JsonDict:
    doc = svc.labelsets.get_version(profile, name, version)
    if doc is None:
        which = f"version {version} of " if version is not None else ""
        raise NotFoundError(f"{which}label set '{name}' of profile '{profile}' does not exist")
    current = svc.labelsets.get_version(profile, name)
    return summary(doc, active=current is not None and current.get("version") == doc.get("version"))


def classify(doc: JsonDict, embedding: list[float]) -> JsonDict:
    """One version's verdict on an embedding: ``{labelSet, version, name, confidence, similarity}``."""
    from imagepipe import custom_labels

    verdict = custom_labels.Centroids.of(doc).classify(embedding)
    return {"labelSet": doc["name"], "version": doc["version"], **verdict}


def try_image(svc: LabelServices, profile: str, name: str, data: bytes, version: int | None = None) -> JsonDict:
    """Classify ``data`` against a version (the active one by default) without recording anything."""
    doc = svc.labelsets.get_version(profile, name, version)
    if doc is None:
        raise NotFoundError(f"label set '{name}' of profile '{profile}' has no such version")
    _validated(svc, data, "the test image")
    embedder = _embedder(svc)
    if doc.get("embeddingModel") != embedder.model:
        raise InvalidInputError(
            f"label set '{name}' was trained on {doc.get('embeddingModel')}, this app embeds with {embedder.model}; "
            "train it again",
            code="embedding_mismatch",
        )
    return classify(doc, embedder.embed(data))


def custom_labels_patch(store: LabelSetStore, embedder: ImageEmbedder | None, profile: str, data: bytes) -> JsonDict:
    """``{customLabels, customLabelNames}`` for a record: the verdict of each active set of ``profile``.

    Empty when the profile has no active set. With the embedder off or unavailable, the analysis goes on
    without custom labels (logged as an error: the operator has to fix the setting or the package).
    """
    try:
        versions = store.active_versions(profile)
    except TransientServiceError:
        raise  # the step is retried, as for the record write that follows
    except ImagepipeError as exc:  # e.g. no label set container in this deployment: analysis goes on
        log.error("custom labels skipped: the label set store failed (%s: %s)", exc.code, exc.message)
        return {}
    if not versions:
        return {}
    if embedder is None:
        log.warning("profile %s has custom label sets but CUSTOM_LABELS_EMBEDDER=off", profile)
        return {}
    try:
        embedding = embedder.embed(data)
    except ModelUnavailableError as exc:
        log.error("custom labels skipped: %s", exc.message)
        return {}
    except PermanentImageError as exc:  # the analyzer read it; custom labels are not worth failing the run
        log.warning("custom labels skipped: %s", exc.message)
        return {}
    verdicts = []
    for doc in versions:
        if doc.get("embeddingModel") != embedder.model:
            log.warning("label set %s/%s was trained on another model; train it again", profile, doc.get("name"))
            continue
        verdict = classify(doc, embedding)
        verdicts.append({k: verdict[k] for k in ("labelSet", "version", "name", "confidence")})
    return {
        "customLabels": verdicts,
        "customLabelNames": sorted({f"{v['labelSet']}:{v['name']}" for v in verdicts}),
    }
