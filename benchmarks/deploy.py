"""PyTorch eager vs ONNX fp32 vs ONNX int8 on an artifact's test split (score, batch-1 latency
p50/p99, throughput at batch 32, model size), and a load test of ``omnitune serve`` on 127.0.0.1
(N concurrent clients for a bounded time) with batching on and off.

Prints a table, then (last line) a JSON object with the figures:

    .venv/bin/python benchmarks/deploy.py runs/main/artifact --bundle runs/main/bundle
    .venv/bin/python benchmarks/deploy.py runs/bench-vision/pretrained/artifact --load-seconds 0
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

import omnitune
from omnitune.export import export, export_spec
from omnitune.export_checks import held_out
from omnitune.serving import Bundle


def timed_runs(predict: Any, inputs: list[Any], latency_inputs: int) -> dict[str, float]:
    """Batch-1 latency p50/p99 over the first ``latency_inputs`` inputs, throughput at batch 32."""
    predict(inputs[:2])  # warm up
    latencies = []
    for item in inputs[:latency_inputs]:
        started = time.perf_counter()
        predict([item])
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    predictions = [p for i in range(0, len(inputs), 32) for p in predict(inputs[i:i + 32])]
    seconds = time.perf_counter() - started
    return {"p50_ms": 1000 * float(np.percentile(latencies, 50)),
            "p99_ms": 1000 * float(np.percentile(latencies, 99)),
            "throughput_per_s": len(inputs) / seconds, "predictions": predictions}


def compare_engines(artifact: Path, bundle: Path, samples: int, latency_inputs: int) -> dict[str, Any]:
    predictor = omnitune.Predictor.load(artifact, device="cpu")
    spec = export_spec(predictor)
    data = held_out(predictor, spec, None, samples)
    engines = {"pytorch": (predictor.predict, (artifact / "model.safetensors").stat().st_size),
               "onnx_fp32": (Bundle(bundle).predict, (bundle / "model.onnx").stat().st_size),
               "onnx_int8": (Bundle(bundle, variant="int8").predict,
                             (bundle / "model.int8.onnx").stat().st_size)}
    rows = {}
    for name, (predict, size) in engines.items():
        figures = timed_runs(predict, data.raw, latency_inputs)
        predictions = figures.pop("predictions")
        rows[name] = {spec.score_name: spec.score(predictions, data.examples), **figures,
                      "size_mb": size / 1e6}
    return {"inputs": data.source, "score": spec.score_name, "engines": rows,
            "raw": data.raw[:256] if isinstance(data.raw[0], str) else None}


def load_test(bundle: Path, inputs: list[Any], clients: int, seconds: float,
              batching: bool) -> dict[str, float]:
    """``clients`` threads each posting one input per request until ``seconds`` have passed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "omnitune.cli", "serve", str(bundle), "--port", str(port)]
    server = subprocess.Popen(command + ([] if batching else ["--no-batching"]))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url)
        latencies: list[float] = []
        failures: list[int] = []
        deadline = time.monotonic() + seconds

        def client(offset: int) -> None:
            with httpx.Client(timeout=60) as http:
                index = offset
                while time.monotonic() < deadline:
                    started = time.perf_counter()
                    try:
                        ok = http.post(f"{url}/predict", json={"inputs": [inputs[index % len(inputs)]]}
                                       ).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    (latencies if ok else failures).append(time.perf_counter() - started)
                    index += clients

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {"requests_per_s": len(latencies) / elapsed, "p50_ms": 1000 * float(np.percentile(latencies, 50)),
            "p99_ms": 1000 * float(np.percentile(latencies, 99)), "requests": len(latencies),
            "errors": len(failures)}


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.5)
    raise RuntimeError("server did not become healthy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--bundle", type=Path, help="bundle folder (exported with int8 if missing)")
    parser.add_argument("--samples", type=int, default=1000, help="test inputs, at most")
    parser.add_argument("--latency-inputs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--load-seconds", type=float, default=60.0, help="0: no load test")
    args = parser.parse_args()
    bundle = args.bundle or args.artifact.parent / "bundle"
    if not (bundle / "model.int8.onnx").is_file():
        export(args.artifact, bundle, quantize="int8", samples=args.samples)
    manifest = json.loads((bundle / "manifest.json").read_text())
    result = compare_engines(args.artifact, bundle, args.samples, args.latency_inputs)
    raw = result.pop("raw")
    if args.load_seconds > 0 and raw:
        result["serve"] = {mode: load_test(bundle, raw, args.clients, args.load_seconds, mode == "batching")
                           for mode in ("batching", "one-at-a-time")}
    result["parity"] = {k: manifest["parity"][k] for k in ("max_abs_diff", "identical_predictions")}
    _print_table(args.artifact, result)
    print(json.dumps(result))


def _print_table(artifact: Path, result: dict[str, Any]) -> None:
    score = result["score"]
    print(f"\n{artifact}: {result['inputs']}")
    print(f"{'engine':<11}{score:>10}{'p50 ms':>9}{'p99 ms':>9}{'b32 /s':>9}{'MB':>8}")
    for name, row in result["engines"].items():
        print(f"{name:<11}{row[score]:>10.4f}{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}"
              f"{row['throughput_per_s']:>9.1f}{row['size_mb']:>8.1f}")
    for mode, row in result.get("serve", {}).items():
        print(f"serve {mode:<14} {row['requests_per_s']:.1f} req/s, p50 {row['p50_ms']:.0f} ms, "
              f"p99 {row['p99_ms']:.0f} ms, errors {row['errors']} of {row['requests'] + row['errors']}")


if __name__ == "__main__":
    main()
