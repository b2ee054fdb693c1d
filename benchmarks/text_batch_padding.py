"""Why a padded text batch can cost more than one-at-a-time: CPU time per snippet of a text
bundle run on single snippets, on batches of 32 padded to their longest, and on batches of 32
run in groups of similar length (what the bundle does), alternating the three ``--rounds`` times.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/text_batch_padding.py runs/main/artifact runs/main/bundle
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import omnitune
from omnitune.export import export_spec
from omnitune.export_checks import dataset_splits
from omnitune.serving import Bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artifact", type=Path)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--samples", type=int, default=256, help="validation snippets")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    predictor = omnitune.Predictor.load(args.artifact, device="cpu")
    spec = export_spec(predictor)
    texts = [spec.raw_input(e) for e in list(dataset_splits(predictor).validation)[:args.samples]]
    bundle = Bundle(args.bundle, threads=1)
    tokenize = bundle.processor.tokenize
    ways: dict[str, Callable[[list[str]], object]] = {
        "one at a time": lambda batch: [bundle.run(tokenize([text])) for text in batch],
        "batch of 32, padded to the longest": lambda batch: bundle.run(tokenize(batch)),
        "batch of 32, groups of similar length": lambda batch: bundle.predict(batch, batch_size=32),
    }
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, run in ways.items():
            started = time.process_time()
            for start in range(0, len(texts), 32):
                run(texts[start:start + 32])
            cpu[name].append(1000 * (time.process_time() - started) / len(texts))
    lengths = [len(ids) for ids in tokenize.ids(texts)]
    print(f"\n{len(texts)} validation snippets, {np.mean(lengths):.1f} tokens on average, "
          f"{min(lengths)}-{max(lengths)}")
    for name, values in cpu.items():
        rounds = [round(value, 1) for value in values]
        print(f"{name:<40} CPU ms per snippet: median {np.median(values):6.1f}  (rounds {rounds})")
    print(json.dumps({"snippets": len(texts), "mean_tokens": float(np.mean(lengths)),
                      "cpu_ms_per_snippet": {name: float(np.median(v)) for name, v in cpu.items()}}))


if __name__ == "__main__":
    main()
