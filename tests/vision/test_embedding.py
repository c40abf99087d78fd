"""The classifier's pooled features: found by graph structure, exposed in memory, one pass with the logits.

Runs the real model file in .models (never re-exported here): the edited session's logits must equal the
plain session's and the torch reference kept by ``make models``; the features are 1280 values, L2-normalised,
and an image is nearer to a resized copy of itself than to another photo.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagepipe.vision.classifier import FEATURE_DIM, ONNX_NAME, ImageNetClassifier
from imagepipe.vision.embedding import MODEL_ID, OnnxImageEmbedder
from imagepipe.vision.onnx_graph import (
    GraphEditError,
    Node,
    expose_pooled_features,
    pooled_feature_name,
    read_graph,
)
from imagepipe.vision.prepare import REF_INPUT, REF_OUTPUT
from imagepipe.vision.runtime import DEFAULT_MODEL_DIR, ort_session
from tests.support.images import SAMPLES

pytestmark = pytest.mark.vision

MODEL = DEFAULT_MODEL_DIR / ONNX_NAME


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    if not MODEL.is_file():
        pytest.fail(f"{MODEL} is missing: run `make models` before the vision tests")
    return MODEL.read_bytes()


def test_the_pooled_tensor_is_found_by_structure(model_bytes: bytes) -> None:
    nodes, outputs = read_graph(model_bytes)
    name = pooled_feature_name(nodes, outputs)
    producer = {o: n for n in nodes for o in n.outputs}
    consumer = [n for n in nodes if name in n.inputs]
    assert [n.op_type for n in consumer] == ["Gemm"] and consumer[0].outputs == (outputs[0],)
    chain = [producer[name].op_type, producer[producer[name].inputs[0]].op_type]
    assert chain == ["Reshape", "GlobalAveragePool"]
    edited, logits, features = expose_pooled_features(model_bytes)
    assert (logits, features) == (outputs[0], name)
    assert read_graph(edited)[1] == [outputs[0], name]
    # already exposed (a converter exporting both outputs): returned unchanged
    assert expose_pooled_features(edited)[0] == edited


def test_one_pass_gives_unchanged_logits_and_normalised_features(model_bytes: bytes) -> None:
    batch = np.load(DEFAULT_MODEL_DIR / REF_INPUT)
    plain = ort_session(MODEL).run(None, {"input": batch})[0]
    classifier = ImageNetClassifier(DEFAULT_MODEL_DIR)
    logits, features = classifier.logits_and_features(batch)
    assert np.array_equal(logits, plain)
    assert np.abs(logits - np.load(DEFAULT_MODEL_DIR / REF_OUTPUT)).max() < 1e-3
    assert np.array_equal(classifier.logits(batch), plain)
    assert features.shape == (1, FEATURE_DIM)
    # averages of ReLU6-clipped activations
    assert 0 <= features.min() and features.max() <= 6


def test_embeddings_are_unit_vectors_and_nearer_for_the_same_photo() -> None:
    embedder = OnnxImageEmbedder()
    assert embedder.model == MODEL_ID
    cat = (SAMPLES / "cat.jpg").read_bytes()
    with Image.open(io.BytesIO(cat)) as img:
        smaller = img.convert("RGB").resize((img.width * 3 // 4, img.height * 3 // 4))
        buf = io.BytesIO()
        smaller.save(buf, format="PNG")
    a, b = np.array(embedder.embed(cat)), np.array(embedder.embed(buf.getvalue()))
    other = np.array(embedder.embed((SAMPLES / "motorcycle.jpg").read_bytes()))
    assert a.shape == (FEATURE_DIM,)
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert float(a @ b) > 0.9 > float(a @ other)


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ([Node("Softmax", ("x",), ("out",))], "not produced by a final Gemm/MatMul"),
        ([Node("Relu", ("img",), ("r",)), Node("Gemm", ("r", "w", "b"), ("out",))], "global average pooling"),
        ([], "not produced"),
    ],
)
def test_graphs_without_pooled_features_are_refused(nodes: list[Node], message: str) -> None:
    with pytest.raises(GraphEditError, match=message):
        pooled_feature_name(nodes, ["out"])


def test_matmul_plus_bias_and_reduce_mean_pooling_are_recognised() -> None:
    nodes = [
        Node("ReduceMean", ("act", "axes"), ("pooled",)),
        Node("Flatten", ("pooled",), ("flat",)),
        Node("MatMul", ("flat", "w"), ("mm",)),
        Node("Add", ("mm", "b"), ("out",)),
    ]
    assert pooled_feature_name(nodes, ["out"]) == "flat"


def test_a_truncated_model_is_refused(model_bytes: bytes) -> None:
    with pytest.raises(GraphEditError):
        read_graph(model_bytes[:1000])


def test_a_set_trained_on_another_model_is_skipped(tmp_path: Path) -> None:
    from imagepipe import custom_labels
    from imagepipe.adapters.sqlite_labelsets import SqliteLabelSetStore
    from imagepipe.labelsets import custom_labels_patch

    embedder = OnnxImageEmbedder()
    cat = (SAMPLES / "cat.jpg").read_bytes()
    vector = embedder.embed(cat)
    store = SqliteLabelSetStore(str(tmp_path / "records.sqlite3"))
    trained = custom_labels.train({"cat": [vector]})
    store.add_version({"profile": "general", "name": "old", "embeddingModel": "another-model", **trained})
    store.add_version({"profile": "general", "name": "pets", "embeddingModel": embedder.model, **trained})
    patch = custom_labels_patch(store, embedder, "general", cat)
    [verdict] = patch["customLabels"]
    assert verdict == {"labelSet": "pets", "version": 1, "name": "cat", "confidence": verdict["confidence"]}
    assert verdict["confidence"] > 0.99  # the example itself: similarity 1, far above the default 0.6
    assert patch["customLabelNames"] == ["pets:cat"]


def test_the_packaged_model_embeds_like_the_local_one(tmp_path: Path) -> None:
    """``make package`` copies the model into the app package; a relative model dir is the app root's, where
    Terraform's CUSTOM_LABELS_MODEL_DIR points, and .funcignore keeps that folder in the package."""
    from imagepipe.vision.embedding import resolve_model_dir
    from imagepipe.vision.package_model import PACKAGE_MODEL_DIR, package_embedding_model
    from imagepipe.vision.runtime import APP_ROOT
    from tests.unit.test_funcignore import ignored

    copied = package_embedding_model(DEFAULT_MODEL_DIR, tmp_path / "package" / PACKAGE_MODEL_DIR)
    assert copied.read_bytes() == (DEFAULT_MODEL_DIR / ONNX_NAME).read_bytes()
    image = (SAMPLES / "cat.jpg").read_bytes()
    packaged = OnnxImageEmbedder(copied.parent).embed(image)
    assert np.allclose(packaged, OnnxImageEmbedder(DEFAULT_MODEL_DIR).embed(image), atol=1e-6)
    assert resolve_model_dir(PACKAGE_MODEL_DIR) == APP_ROOT / PACKAGE_MODEL_DIR
    assert resolve_model_dir(None) == DEFAULT_MODEL_DIR and resolve_model_dir(str(tmp_path)) == tmp_path
    assert not ignored(f"{PACKAGE_MODEL_DIR}/{ONNX_NAME}")
    terraform = (APP_ROOT / "infra/terraform/main.functions.tf").read_text(encoding="utf-8")
    assert f'"CUSTOM_LABELS_MODEL_DIR" = "{PACKAGE_MODEL_DIR}"' in terraform
