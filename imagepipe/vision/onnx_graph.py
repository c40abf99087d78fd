"""Expose a classifier's pooled features as an extra ONNX graph output, in memory, without the ``onnx`` package.

The app venv has onnxruntime but not ``onnx`` (torch and onnx live only in the conversion venv), and
onnxruntime only returns tensors that are graph outputs. So this module reads just enough of the ONNX
protobuf wire format (``ModelProto.graph`` -> ``GraphProto.node/output`` -> ``NodeProto.input/output/
op_type``) to find the feature tensor by structure, and appends one ``ValueInfoProto`` to the graph's
outputs. The model file on disk is never changed.

Finding the features by structure, not by name: start at the graph's first output (the logits), take the
node that produces it; it must be a ``Gemm`` or ``MatMul`` (optionally behind an ``Add`` for the bias),
whose data input is the feature vector. Walking back from that input through shape-only nodes
(``Reshape``, ``Flatten``, ``Squeeze``, ``Identity``, ``Dropout``) must reach a ``GlobalAveragePool`` or a
``ReduceMean`` (the global average pooling); anything else raises ``GraphEditError``. Field numbers are
those of onnx.proto (ModelProto.graph = 7; GraphProto.node = 1, initializer = 5, output = 12; NodeProto
input = 1, output = 2, op_type = 4; ValueInfoProto name = 1, type = 2; TypeProto.tensor_type = 1;
Tensor.elem_type = 1 (FLOAT = 1), shape = 2; Dimension dim_value = 1, dim_param = 2).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

_LEN = 2
_VARINT = 0
_FIXED64 = 1
_FIXED32 = 5
#: ModelProto.graph
_MODEL_GRAPH = 7
#: GraphProto fields
_GRAPH_NODE, _GRAPH_OUTPUT = 1, 12
#: NodeProto fields
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP = 1, 2, 4
_FLOAT = 1
_SHAPE_ONLY = frozenset({"Reshape", "Flatten", "Squeeze", "Identity", "Dropout"})
_POOLS = frozenset({"GlobalAveragePool", "ReduceMean"})


class GraphEditError(ValueError):
    """The model is not shaped as expected (no pooled features feeding the final linear layer)."""


@dataclass(frozen=True)
class Node:
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Field:
    number: int
    wire_type: int
    #: varint value, or (start, end) of the payload for length-delimited and fixed fields
    value: int | tuple[int, int]
    start: int
    end: int


def _varint(data: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(data):
            raise GraphEditError("truncated varint in the ONNX model")
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i
        if shift > 63:
            raise GraphEditError("varint too long in the ONNX model")


def fields(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Field]:
    """The top-level fields of the message in ``data[start:end]``."""
    i, stop = start, len(data) if end is None else end
    while i < stop:
        first = i
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, i = _varint(data, i)
            yield Field(number, wire, value, first, i)
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            yield Field(number, wire, (i, i + size), first, i + size)
            i += size
        elif wire == _LEN:
            size, i = _varint(data, i)
            if i + size > stop:
                raise GraphEditError("length-delimited field runs past its message in the ONNX model")
            yield Field(number, wire, (i, i + size), first, i + size)
            i += size
        else:
            raise GraphEditError(f"unsupported protobuf wire type {wire} in the ONNX model")
    if i != stop:
        raise GraphEditError("message overruns its length in the ONNX model")


def _span(f: Field) -> tuple[int, int]:
    if not isinstance(f.value, tuple):
        raise GraphEditError(f"field {f.number} is not length-delimited")
    return f.value


def _text(data: bytes, f: Field) -> str:
    start, end = _span(f)
    return data[start:end].decode("utf-8")


def _graph_field(data: bytes) -> Field:
    graphs = [f for f in fields(data) if f.number == _MODEL_GRAPH and f.wire_type == _LEN]
    if len(graphs) != 1:
        raise GraphEditError(f"expected one graph in the ONNX model, found {len(graphs)}")
    return graphs[0]


def read_graph(data: bytes) -> tuple[list[Node], list[str]]:
    """(the nodes in order, the graph output names) of a serialized ``ModelProto``."""
    graph = _graph_field(data)
    nodes: list[Node] = []
    outputs: list[str] = []
    for f in fields(data, *_span(graph)):
        if f.number == _GRAPH_NODE and f.wire_type == _LEN:
            ins: list[str] = []
            outs: list[str] = []
            op = ""
            for g in fields(data, *_span(f)):
                if g.wire_type != _LEN:
                    continue
                if g.number == _NODE_INPUT:
                    ins.append(_text(data, g))
                elif g.number == _NODE_OUTPUT:
                    outs.append(_text(data, g))
                elif g.number == _NODE_OP:
                    op = _text(data, g)
            nodes.append(Node(op, tuple(ins), tuple(outs)))
        elif f.number == _GRAPH_OUTPUT and f.wire_type == _LEN:
            for g in fields(data, *_span(f)):
                if g.number == 1 and g.wire_type == _LEN:
                    outputs.append(_text(data, g))
    return nodes, outputs


def pooled_feature_name(nodes: list[Node], outputs: list[str]) -> str:
    """The tensor that feeds the final linear layer and comes from global average pooling (see the docstring)."""
    if not outputs:
        raise GraphEditError("the graph has no outputs")
    producer = {out: node for node in nodes for out in node.outputs}
    node = producer.get(outputs[0])
    if node is not None and node.op_type == "Add":  # MatMul + Add: the bias add comes last
        node = next((producer[i] for i in node.inputs if i in producer and producer[i].op_type == "MatMul"), None)
    if node is None or node.op_type not in ("Gemm", "MatMul") or not node.inputs:
        raise GraphEditError(f"the output '{outputs[0]}' is not produced by a final Gemm/MatMul layer")
    features = node.inputs[0]
    current = producer.get(features)
    for _ in range(16):
        if current is None:
            break
        if current.op_type in _POOLS:
            return features
        if current.op_type not in _SHAPE_ONLY or not current.inputs:
            break
        current = producer.get(current.inputs[0])
    raise GraphEditError(f"the final layer's input '{features}' does not come from global average pooling")


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _key(number, _LEN) + _encode_varint(len(payload)) + payload


def float_output(name: str, dims: tuple[int | str, ...]) -> bytes:
    """A serialized ``ValueInfoProto``: a float tensor named ``name`` with the given dims (str = symbolic)."""
    shape = b"".join(
        _len_field(1, _key(1, _VARINT) + _encode_varint(d) if isinstance(d, int) else _len_field(2, d.encode()))
        for d in dims
    )
    tensor = _key(1, _VARINT) + _encode_varint(_FLOAT) + _len_field(2, shape)
    return _len_field(1, name.encode()) + _len_field(2, _len_field(1, tensor))


def with_extra_output(data: bytes, name: str, dims: tuple[int | str, ...]) -> bytes:
    """``data`` (a serialized ``ModelProto``) with ``name`` appended to its graph outputs."""
    graph = _graph_field(data)
    start, end = _span(graph)
    payload = data[start:end] + _len_field(_GRAPH_OUTPUT, float_output(name, dims))
    return data[: graph.start] + _len_field(_MODEL_GRAPH, payload) + data[graph.end :]


def expose_pooled_features(data: bytes, dims: tuple[int | str, ...] = ("N", "C")) -> tuple[bytes, str, str]:
    """(the model with its pooled features as a graph output, the logits name, the features name).

    A model whose outputs already include the pooled tensor (a converter that exports it) is returned as is.
    """
    nodes, outputs = read_graph(data)
    name = pooled_feature_name(nodes, outputs)
    if name in outputs:
        return data, outputs[0], name
    return with_extra_output(data, name, dims), outputs[0], name
