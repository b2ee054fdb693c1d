"""Keyword spotting on speech-commands-synth (synthetic espeak-ng speech), split by voice variant:
the small CNN distilled from the fine-tuned GE2E model against the same CNN trained alone.

    python benchmarks/speech_keywords_distill.py [--manifest PATH] [--output-dir DIR] \\
        [--temperature 2] [--alpha 0.5] [--epochs 10] [--reuse]

The teacher is benchmarks/speech_keywords.py's GE2E run (pretrained encoder frozen, linear head
fine-tuned, 10 epochs); the students are its speech-cnn run (``--epochs``, 10 there), alone and with
``train.distill`` from the teacher's artifact (logits cached). Both backbones take the same 16 kHz,
1-second waveforms and apply their own front ends inside the model (GE2E: 40 power-mel bands,
volume raised to -30 dBFS; the CNN: normalised log-mels), so the teacher scores exactly the clips
the student gets, before the student's own augmentation. With ``--reuse`` a run whose artifact
exists under ``--output-dir`` is read, not retrained (the teacher, typically). Prints a table
(accuracy on the test voices, parameters, training wall and CPU seconds), then a JSON object last.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from speech_common import MANIFEST, dataset, print_table
from speech_keywords import RUNS

import omnitune

TEACHER = "GE2E pretrained, frozen + linear head"
STUDENT = "speech-cnn, from scratch"


def train(run: dict[str, Any], output_dir: Path, reuse: bool) -> dict[str, Any]:
    """Fine-tune ``run`` into ``output_dir`` (or read its artifact with ``reuse``): its metrics,
    parameter count, wall and CPU seconds (all threads of this process)."""
    artifact = output_dir / "artifact"
    costs: dict[str, Any] = {"reused": True}
    if not (reuse and (artifact / "metrics.json").is_file()):
        wall, cpu = time.perf_counter(), time.process_time()
        artifact = omnitune.finetune({**run, "output_dir": str(output_dir), "overwrite": True}).artifact
        costs = {"train_wall_s": round(time.perf_counter() - wall, 1),
                 "train_cpu_s": round(time.process_time() - cpu, 1)}
    metrics = json.loads((artifact / "metrics.json").read_text(encoding="utf-8"))
    model = omnitune.Predictor.load(artifact, device="cpu").task.model
    return {"test_accuracy": metrics["test_accuracy"], "test_macro_f1": metrics["test_macro_f1"],
            "eval_accuracy": metrics["eval_accuracy"],
            "parameters": sum(p.numel() for p in model.parameters()),
            **costs, "artifact": str(artifact)}


def with_settings(name: str, data: dict[str, Any], distill: dict[str, Any] | None = None,
                  epochs: int | None = None) -> dict[str, Any]:
    run = RUNS[name]
    train = {**run["train"], "progress": False, "seed": 0, "distill": distill}
    return {**run, "dataset": data, "train": train | ({"epochs": epochs} if epochs else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--output-dir", type=Path, default=Path("runs/speech-kws-distill"))
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=10, help="the students' epochs")
    parser.add_argument("--reuse", action="store_true", help="read runs already under --output-dir")
    args = parser.parse_args()
    data = dataset(args.manifest, "label")
    out, suffix = args.output_dir, "" if args.epochs == 10 else f"-{args.epochs}ep"
    teacher = train(with_settings(TEACHER, data), out / "teacher-ge2e", args.reuse)
    distill = {"teacher": teacher["artifact"], "temperature": args.temperature, "alpha": args.alpha,
               "cache_logits": True}
    results = {"teacher: " + TEACHER: teacher,
               "student alone: " + STUDENT: train(with_settings(STUDENT, data, epochs=args.epochs),
                                                  out / f"cnn-alone{suffix}", args.reuse),
               "student distilled: " + STUDENT: train(
                   with_settings(STUDENT, data, distill, args.epochs),
                   out / f"cnn-distilled-T{args.temperature:g}-a{args.alpha:g}{suffix}", args.reuse)}
    print_table(("model (test voices never heard in training)", "test accuracy", "test macro-F1",
                 "validation accuracy", "parameters", "train wall s", "train CPU s"),
                [(name, r["test_accuracy"], r["test_macro_f1"], r["eval_accuracy"], f"{r['parameters']:,}",
                  r.get("train_wall_s", "reused"), r.get("train_cpu_s", "reused"))
                 for name, r in results.items()])
    print(json.dumps({"benchmark": "speech_keywords_distill", "temperature": args.temperature,
                      "alpha": args.alpha, "student_epochs": args.epochs, "results": results}))


if __name__ == "__main__":
    main()
