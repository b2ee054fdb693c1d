"""int8 recipes for a transformer-style bundle, judged on the VALIDATION split (never the test
split): onnxruntime's dynamic quantisation with per-tensor or per-channel weight scales, reduced
range, MatMul only (embeddings kept fp32), and the classifier's last layers kept fp32. For each:
accuracy and its change against fp32, the share of predictions equal to fp32's, size, CPU time.
``omnitune export --quantize int8`` uses the recipe this picked (per-channel; docs/deploy.md).

    .venv/bin/python benchmarks/int8_recipes.py runs/main/artifact runs/main/bundle
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import onnx
import onnxruntime
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process

import omnitune
from omnitune.export import export_spec
from omnitune.export_checks import agreement, dataset_splits
from omnitune.serving import Bundle


def recipes(prepared: Path) -> dict[str, dict[str, Any]]:
    """The quantize_dynamic settings tried; the last two MatMul/Gemm nodes are the classifier's end."""
    matmuls = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type in ("MatMul", "Gemm")]
    return {
        "per-tensor (onnxruntime default)": {},
        "per-channel": {"per_channel": True},
        "reduce_range": {"reduce_range": True},
        "MatMul only": {"op_types_to_quantize": ["MatMul"]},
        "MatMul only, per-channel": {"op_types_to_quantize": ["MatMul"], "per_channel": True},
        "MatMul only, per-channel, reduce_range": {"op_types_to_quantize": ["MatMul"], "per_channel": True,
                                                   "reduce_range": True},
        "MatMul only, last 2 fp32": {"op_types_to_quantize": ["MatMul"], "nodes_to_exclude": matmuls[-2:]},
        "MatMul only, per-channel, last 2 fp32": {"op_types_to_quantize": ["MatMul"], "per_channel": True,
                                                  "nodes_to_exclude": matmuls[-2:]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artifact", type=Path)
    parser.add_argument("bundle", type=Path, help="its fp32 bundle (omnitune export)")
    parser.add_argument("--samples", type=int, default=1000, help="validation inputs, at most")
    args = parser.parse_args()
    predictor = omnitune.Predictor.load(args.artifact, device="cpu")
    spec = export_spec(predictor)
    examples = list(dataset_splits(predictor).validation)[:args.samples]
    raw = [spec.raw_input(e) for e in examples]
    bundle = Bundle(args.bundle)
    fp32 = bundle.predict(raw)
    base = spec.score(fp32, examples)
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "model.prep.onnx"
        quant_pre_process(str(args.bundle / "model.onnx"), str(prepared), skip_symbolic_shape=True)
        for name, settings in recipes(prepared).items():
            target = Path(scratch) / "model.int8.onnx"
            quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8, **settings)
            bundle.session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
            cpu = time.process_time()
            got = bundle.predict(raw)
            score = spec.score(got, examples)
            rows[name] = {spec.score_name: score, "change": score - base,
                          "identical_to_fp32": agreement(fp32, got),
                          "size_mb": target.stat().st_size / 1e6, "cpu_s": time.process_time() - cpu}
    print(f"\n{len(raw)} validation inputs; fp32 {spec.score_name} {base:.4f}")
    print(f"{'recipe':<42}{spec.score_name:>10}{'change':>8}{'= fp32':>8}{'MB':>7}{'cpu s':>7}")
    for name, row in rows.items():
        print(f"{name:<42}{row[spec.score_name]:>10.4f}{row['change']:>+8.3f}{row['identical_to_fp32']:>8.3f}"
              f"{row['size_mb']:>7.1f}{row['cpu_s']:>7.1f}")
    print(json.dumps({"inputs": f"{len(raw)} validation examples", "fp32": base, "recipes": rows}))


if __name__ == "__main__":
    main()
