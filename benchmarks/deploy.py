"""PyTorch eager vs ONNX fp32 vs ONNX int8 on an artifact's test split (score, batch-1 latency
p50/p99, throughput at batch 32, model size), and a load test of ``omnitune serve`` on 127.0.0.1
(32 concurrent clients, 60 s per segment, bounded, stopping by itself) with batching on and off:
two servers run side by side and the segments alternate (on, off, on, off...), so that the load
of a shared machine falls on both alike.

Prints a table, then (last line) a JSON object with the figures:

    .venv/bin/python benchmarks/deploy.py runs/main/artifact --bundle runs/main/bundle
    .venv/bin/python benchmarks/deploy.py runs/deploy-vision/artifact --train-vision --load-seconds 0

``--train-vision`` first fine-tunes the vision artifact when it is missing: ImageNet
EfficientNet-Lite0 on 1,000 Fashion-MNIST training images at 48 px, 2 epochs (``vision_run``;
small, for a shared 2-core CPU).
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
import torch

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
    threads = torch.get_num_threads()  # onnxruntime gets as many threads as PyTorch
    engines = {"pytorch": (predictor.predict, (artifact / "model.safetensors").stat().st_size),
               "onnx_fp32": (Bundle(bundle, threads=threads).predict, (bundle / "model.onnx").stat().st_size),
               "onnx_int8": (Bundle(bundle, variant="int8", threads=threads).predict,
                             (bundle / "model.int8.onnx").stat().st_size)}
    rows = {}
    for name, (predict, size) in engines.items():
        figures = timed_runs(predict, data.raw, latency_inputs)
        predictions = figures.pop("predictions")
        rows[name] = {spec.score_name: spec.score(predictions, data.examples), **figures,
                      "size_mb": size / 1e6}
    return {"inputs": data.source, "score": spec.score_name, "threads": threads, "engines": rows,
            "raw": data.raw[:256] if isinstance(data.raw[0], str) else None}


def vision_run(output: Path) -> dict[str, Any]:
    """The vision artifact's run: ImageNet EfficientNet-Lite0 fine-tuned on Fashion-MNIST."""
    return {"task": {"name": "image-classification", "image_size": 48, "scale": [0.35, 1.0]},
            "backbone": {"name": "efficientnet-lite0", "pretrained": True},
            "head": {"name": "linear", "dropout": 0.2},
            "dataset": {"name": "fashion-mnist", "max_train_samples": 1000, "max_eval_samples": 500,
                        "validation_fraction": 0.1, "seed": 0},
            "train": {"epochs": 2, "batch_size": 32, "lr": 1e-3, "warmup_ratio": 0.06, "schedule": "cosine",
                      "device": "cpu", "precision": "fp32", "seed": 0, "progress": False},
            "output_dir": str(output), "overwrite": True}


def load_test(bundle: Path, inputs: list[Any], clients: int, seconds: float,
              rounds: int) -> dict[str, dict[str, Any]]:
    """Two servers of ``bundle``, batching on and off; ``rounds`` segments each, alternating, of
    ``clients`` threads posting one input per request for ``seconds``."""
    modes = {"batching": [], "one-at-a-time": ["--no-batching"]}
    servers = {mode: _start_server(bundle, flags) for mode, flags in modes.items()}
    segments: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    try:
        for url, _ in servers.values():
            _wait_healthy(url)
            httpx.post(f"{url}/predict", json={"inputs": inputs[:4]}, timeout=120)  # warm up
        for _ in range(rounds):
            for mode, (url, _) in servers.items():
                segments[mode].append(_load_segment(url, inputs, clients, seconds))
    finally:
        for _, server in servers.values():
            server.terminate()
            server.wait(timeout=60)
    return {mode: _summary(runs) for mode, runs in segments.items()}


def _start_server(bundle: Path, flags: list[str]) -> tuple[str, subprocess.Popen]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "omnitune.cli", "serve", str(bundle), "--port", str(port), *flags]
    return f"http://127.0.0.1:{port}", subprocess.Popen(command)


def _load_segment(url: str, inputs: list[Any], clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads each posting one input per request until ``seconds`` have passed."""
    latencies: list[float] = []
    failures: list[float] = []
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
    return {"seconds": time.perf_counter() - started, "latencies": latencies, "errors": len(failures)}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = [t for run in runs for t in run["latencies"]]
    seconds = sum(run["seconds"] for run in runs)
    return {"requests_per_s": len(latencies) / seconds, "p50_ms": 1000 * float(np.percentile(latencies, 50)),
            "p99_ms": 1000 * float(np.percentile(latencies, 99)), "requests": len(latencies),
            "errors": sum(run["errors"] for run in runs), "seconds": seconds,
            "segments_requests_per_s": [round(len(run["latencies"]) / run["seconds"], 2) for run in runs]}


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
    parser.add_argument("--load-seconds", type=float, default=60.0, help="per segment; 0: no load test")
    parser.add_argument("--rounds", type=int, default=2, help="load-test segments per mode, alternating")
    parser.add_argument("--train-vision", action="store_true",
                        help="fine-tune the vision artifact (vision_run) first when it is missing")
    args = parser.parse_args()
    if args.train_vision and not (args.artifact / "model.safetensors").is_file():
        omnitune.finetune(vision_run(args.artifact.parent))
    bundle = args.bundle or args.artifact.parent / "bundle"
    if not (bundle / "model.int8.onnx").is_file():
        export(args.artifact, bundle, quantize="int8", samples=args.samples)
    manifest = json.loads((bundle / "manifest.json").read_text())
    result = compare_engines(args.artifact, bundle, args.samples, args.latency_inputs)
    raw = result.pop("raw")
    if args.load_seconds > 0 and raw:
        result["serve"] = load_test(bundle, raw, args.clients, args.load_seconds, args.rounds)
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
        segments = row["segments_requests_per_s"]
        print(f"serve {mode:<14} {row['requests_per_s']:.1f} req/s (segments {segments}), "
              f"p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms, "
              f"errors {row['errors']} of {row['requests'] + row['errors']}")


if __name__ == "__main__":
    main()
