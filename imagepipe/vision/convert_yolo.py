"""Standalone converter: a Darknet YOLOv3-tiny (``.cfg`` + ``.weights``) -> ONNX graph of its raw head outputs.

Runs in the conversion venv made by ``imagepipe.vision.prepare`` (needs only ``onnx`` and ``numpy``; it imports
nothing from imagepipe). Batch norm is folded into each convolution (Darknet's ``(x - mean) / (sqrt(var) +
1e-6)``); the graph ends at the two ``[yolo]`` layers' inputs (N x 255 x 13 x 13 and N x 255 x 26 x 26 for a
416 px input; any multiple of 32 works); decoding (sigmoid, anchors, grid) happens in numpy at run time
(``imagepipe.vision.detector``).
Usage: ``python convert_yolo.py MODEL.cfg MODEL.weights OUT.onnx``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: Darknet's own epsilon in the batch-norm denominator (added to the standard deviation, not the variance).
BN_EPS = 1e-6
LEAKY_SLOPE = 0.1


def parse_cfg(text: str) -> list[dict[str, str]]:
    """The cfg's sections in order, each a dict with its ``type`` and its ``key=value`` options."""
    sections: list[dict[str, str]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            sections.append({"type": line.strip("[]").strip()})
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1][key.strip()] = value.strip()
    return sections


def convert(cfg_path: Path, weights_path: Path, onnx_path: Path) -> None:
    sections = parse_cfg(cfg_path.read_text(encoding="utf-8"))
    net, layers = sections[0], sections[1:]
    data = np.fromfile(weights_path, dtype=np.uint8)
    major, minor, _ = np.frombuffer(data[:12].tobytes(), dtype=np.int32)
    offset = 12 + (8 if major * 10 + minor >= 2 else 4)
    weights = np.frombuffer(data[offset:].tobytes(), dtype=np.float32)
    pos = 0

    def take(n: int) -> np.ndarray[Any, Any]:
        nonlocal pos
        out = weights[pos : pos + n].copy()
        if out.size != n:
            raise SystemExit(f"{weights_path} ends early (needs {n} more floats at {pos})")
        pos += n
        return out

    nodes: list[Any] = []
    inits: list[Any] = []
    outputs: list[str] = []  # the tensor each layer produces
    channels: list[int] = []
    current, c_in = "images", int(net.get("channels", "3"))
    for i, layer in enumerate(layers):
        kind, name = layer["type"], f"l{i}"
        if kind == "convolutional":
            filters, k = int(layer["filters"]), int(layer["size"])
            stride, pad = int(layer.get("stride", "1")), (k // 2 if layer.get("pad", "0") == "1" else 0)
            if layer.get("batch_normalize", "0") == "1":
                bias, scale, mean, var = take(filters), take(filters), take(filters), take(filters)
                w = take(filters * c_in * k * k).reshape(filters, c_in, k, k)
                factor = scale / (np.sqrt(var) + BN_EPS)
                w = w * factor[:, None, None, None]
                bias = bias - mean * factor
            else:
                bias = take(filters)
                w = take(filters * c_in * k * k).reshape(filters, c_in, k, k)
            inits += [
                numpy_helper.from_array(w.astype(np.float32), f"{name}_w"),
                numpy_helper.from_array(bias.astype(np.float32), f"{name}_b"),
            ]
            conv_out = f"{name}_conv" if layer.get("activation") == "leaky" else name
            nodes.append(
                helper.make_node(
                    "Conv",
                    [current, f"{name}_w", f"{name}_b"],
                    [conv_out],
                    kernel_shape=[k, k],
                    strides=[stride, stride],
                    pads=[pad, pad, pad, pad],
                )
            )
            if layer.get("activation") == "leaky":
                nodes.append(helper.make_node("LeakyRelu", [conv_out], [name], alpha=LEAKY_SLOPE))
            elif layer.get("activation", "linear") != "linear":
                raise SystemExit(f"layer {i}: activation {layer['activation']!r} is not supported")
            current, c_in = name, filters
        elif kind == "maxpool":
            k, stride = int(layer["size"]), int(layer["stride"])
            # Darknet pads (size - 1) at the end only: a stride-1 pool keeps the size, its window running off
            # the right and bottom edges (ONNX MaxPool's padding never wins the max).
            end = k - 1 if stride == 1 else 0
            nodes.append(
                helper.make_node(
                    "MaxPool", [current], [name], kernel_shape=[k, k], strides=[stride, stride], pads=[0, 0, end, end]
                )
            )
            current = name
        elif kind == "upsample":
            factor = float(layer.get("stride", "2"))
            inits.append(numpy_helper.from_array(np.asarray([1, 1, factor, factor], np.float32), f"{name}_s"))
            nodes.append(helper.make_node("Resize", [current, "", f"{name}_s"], [name], mode="nearest"))
            current = name
        elif kind == "route":
            refs = [int(v) for v in layer["layers"].split(",")]
            refs = [r if r >= 0 else i + r for r in refs]
            if len(refs) == 1:
                current, c_in = outputs[refs[0]], channels[refs[0]]
            else:
                nodes.append(helper.make_node("Concat", [outputs[r] for r in refs], [name], axis=1))
                current, c_in = name, sum(channels[r] for r in refs)
        elif kind == "yolo":
            pass  # decoded at run time; its input is a graph output
        else:
            raise SystemExit(f"layer {i}: [{kind}] is not supported")
        outputs.append(current)
        channels.append(c_in)
    if pos != weights.size:
        raise SystemExit(f"{weights_path}: {weights.size - pos} floats left over; the cfg does not match")
    heads = [outputs[i - 1] for i, layer in enumerate(layers) if layer["type"] == "yolo"]
    graph = helper.make_graph(
        nodes,
        "yolov3_tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info(h, TensorProto.FLOAT, ["batch", 255, None, None]) for h in heads],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="imagepipe")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))
    print(f"exported {onnx_path}: heads {heads}")


if __name__ == "__main__":
    convert(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
