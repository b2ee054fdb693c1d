"""Character CTC on speech-commands-synth (synthetic espeak-ng speech): the word as transcript,
split by voice variant.

    python benchmarks/speech_ctc.py [--manifest PATH] [--output-dir DIR]

Reports the test CER/WER of the same model untrained and after training. Prints a table, then a
JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from speech_common import AUGMENT_2026_11_23, MANIFEST, dataset, print_table, timed_finetune

import omnitune
from omnitune.api import compose_config
from omnitune.build import build_dataset, build_metrics, build_task
from omnitune.config import validate_components
from omnitune.loop import evaluate
from omnitune.runtime import Runtime, seed_everything

TRAIN = {"epochs": 15, "batch_size": 8, "lr": 3e-3, "head_lr": 3e-3, "progress": False, "seed": 0}


def untrained_metrics(run: dict) -> dict[str, float]:
    """Test CER/WER of the freshly initialised model, before any step."""
    config = compose_config(run)
    plugins = omnitune.load_plugins()
    options = validate_components(config, plugins.registry)
    seed_everything(0)
    splits = build_dataset(config, options, plugins.registry)
    task = build_task(config, options, plugins.registry, splits.info)
    return evaluate(task, task.model, splits.test, Runtime.create("cpu", "fp32"),
                    build_metrics(task, plugins.registry), prefix="test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--output-dir", type=Path, default=Path(tempfile.mkdtemp(prefix="speech-ctc-")))
    args = parser.parse_args()
    run = {"task": {"name": "speech-recognition", "augment": AUGMENT_2026_11_23},
           "backbone": {"name": "speech-cnn"},
           "dataset": dataset(args.manifest, "transcript"), "train": TRAIN, "overwrite": True,
           "output_dir": str(args.output_dir / "ctc")}
    before = untrained_metrics(run)
    after, seconds = timed_finetune(run)
    rows = [("speech-cnn + CTC, untrained", before["test_cer"], before["test_wer"], ""),
            (f"speech-cnn + CTC, {TRAIN['epochs']} epochs", after["test_cer"], after["test_wer"],
             f"{seconds:.0f} s")]
    print_table(("test voices never heard in training", "test CER", "test WER", "wall time"), rows)
    untrained = {k: before[k] for k in ("test_cer", "test_wer")}
    print(json.dumps({"benchmark": "speech_ctc", "untrained": untrained,
                      "trained": {"test_cer": after["test_cer"], "test_wer": after["test_wer"],
                                  "epochs": TRAIN["epochs"], "wall_s": round(seconds, 1)}}))


if __name__ == "__main__":
    main()
