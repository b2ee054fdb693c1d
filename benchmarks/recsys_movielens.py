"""MovieLens 100k on two protocols; omnitune's models side by side with RecBole's.

``recbole`` protocol (RecBole's standard one): every rating is an implicit positive, no minimum
counts, leave-last-out by time, each user's held-out movie ranked against the whole catalogue
with the earlier movies masked. Models: popularity, ItemKNN, MF-BPR, MF with a full softmax,
two-tower (frozen MiniLM item text), LightGCN, SASRec, GRU4Rec. With ``--recbole-python`` (a scratch venv
made by recbole_venv.sh, never the project's), RecBole 1.2.1's own models run in the same session,
one subprocess each, through the peer script recbole_movielens.py, and omnitune's models train on
RecBole's own split (``--split recbole``, the default then): recbole_split_dump.py writes the
interactions in the order RecBole splits them, read by ``interactions-file``. Without it (or with
``--split omnitune``) omnitune's ``movielens-100k`` splits by the exact timestamps: 4 users' test
items differ, because RecBole stores timestamps as float32 and events seconds apart tie.
``threshold`` protocol: ratings of 4 and 5 are positives, at least 5 per user; popularity, MF-BPR,
two-tower, then cold start (10% of items removed from training, ranked by the two-tower model).

Every model reports its wall time and CPU time (user + sys). Prints tables and, as the last line,
a JSON object. Usage:
    .venv/bin/python benchmarks/recsys_movielens.py [--protocol recbole|threshold|both]
        [--recbole-python /tmp/recbole-venv/bin/python] [--threads 1] [--output-dir DIR]

One torch thread by default: these models are small, and on a shared CPU two threads made a
BPR step about ten times slower than one (thread contention), not faster.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import omnitune
from omnitune.assets import resolve
from omnitune.data import Splits
from omnitune_recsys.datasets import MOVIELENS_100K, interactions_file, movielens_100k
from omnitune_recsys.plugin import InteractionsFileConfig, MovieLens100kConfig
from omnitune_recsys.ranking import (
    ScoreFn,
    evaluate_scores,
    item_knn_scores,
    popularity_scores,
    random_scores,
)
from omnitune_recsys.splits import EvalUser

REPORTED = ("recall_at_10", "ndcg_at_10", "mrr_at_10", "hitrate_at_10")
RECBOLE_PROTOCOL = {"rating_threshold": None, "min_user_interactions": 1, "user_feature_columns": []}
MOVIELENS = {"name": "movielens-100k"}
# Chosen on the validation split (ndcg@10) only; see the README for what was tried. On RecBole's
# protocol: full softmax beat BPR for MF and LightGCN, and both peaked within 15 epochs. MF-BPR:
# 4 negatives per positive, batch 2,048, peaked at epoch 15 of 30 (validation 0.0672; 0.0666 at
# epoch 8, so patience 5 stopped at 13); patience 10, as RecBole, stops it at 25.
MF_LR, TWO_TOWER_LR = 1e-2, 5e-3
MF_BPR = {"lr": 1e-2, "epochs": 30, "batch_size": 2048, "task": {"num_negatives": 4},
          "train": {"early_stopping_patience": 10}}
GRU4REC = {"lr": 3e-3, "epochs": 20}
ITEM_KNN = {"neighbours": 300, "shrink": 0.0}  # best validation NDCG@10 of k 20-500 x shrink 0/10/50
RECBOLE_ITEM_KNN = {"neighbours": 100, "shrink": 0.0}  # RecBole's defaults: the like-for-like row
COLD_FRACTION = 0.1
TWO_TOWER = {"name": "two-tower", "dim": 64, "user_features": False}  # the README figures use none
RECBOLE_RUNS = {"Pop": "popularity", "ItemKNN": "item-knn", "BPR": "mf-bpr", "LightGCN": "lightgcn",
                "SASRec": "sasrec", "GRU4Rec": "gru4rec"}
RECBOLE_METRICS = {"recall@10": "recall_at_10", "ndcg@10": "ndcg_at_10", "mrr@10": "mrr_at_10",
                   "hit@10": "hitrate_at_10"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=("recbole", "threshold", "both"), default="both")
    parser.add_argument("--recbole-python", help="python of a RecBole 1.2.1 venv: run RecBole side by side")
    parser.add_argument("--recbole-script", help="the peer script recbole_movielens.py (shared/peers/)")
    parser.add_argument("--recbole-models", nargs="*", default=list(RECBOLE_RUNS))
    parser.add_argument("--recbole-sasrec-epochs", type=int, default=5,
                        help="RecBole's SASRec epochs (it needs minutes per epoch on 2 cores)")
    parser.add_argument("--recbole-gru4rec-epochs", type=int, default=20, help="RecBole's GRU4Rec epochs")
    parser.add_argument("--split", choices=("omnitune", "recbole"),
                        help="whose split of RecBole's protocol omnitune trains on (default: RecBole's "
                        "when --recbole-python is given)")
    parser.add_argument("--models", nargs="*", help="omnitune models on RecBole's protocol (default: all)")
    parser.add_argument("--recbole-timeout", type=float, default=1800, help="seconds per RecBole model")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--output-dir", default="runs/bench-recsys")
    args = parser.parse_args()
    if args.recbole_python and not args.recbole_script:
        parser.error("--recbole-python needs --recbole-script (the peer script recbole_movielens.py)")
    args.split = args.split or ("recbole" if args.recbole_python else "omnitune")
    if args.split == "recbole" and not args.recbole_python:
        parser.error("--split recbole needs --recbole-python (RecBole itself writes its split)")
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count()}
    if args.protocol in ("recbole", "both"):
        results["recbole_protocol"] = recbole_protocol(args, Path(args.output_dir) / "recbole-protocol")
        print_table("RecBole's protocol: every rating positive, leave-last-out, full ranking (omnitune)",
                    results["recbole_protocol"]["omnitune"])
        if results["recbole_protocol"].get("recbole"):
            print_table("The same protocol, RecBole 1.2.1 in the same session",
                        results["recbole_protocol"]["recbole"])
    if args.protocol in ("threshold", "both"):
        results["threshold_protocol"] = threshold_protocol(args, Path(args.output_dir) / "threshold")
        print_table("Ratings >= 4 as positives, >= 5 per user: leave-last-out test",
                    results["threshold_protocol"]["warm"])
        print_table("Cold start: items never seen in training, ranked among themselves",
                    results["threshold_protocol"]["cold"])
    print(json.dumps(results))


def recbole_protocol(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Every omnitune model on RecBole's protocol, then (if asked) RecBole's own."""
    dataset = recbole_split(args.recbole_python, out) if args.split == "recbole" else {
        "name": "movielens-100k", **RECBOLE_PROTOCOL}
    splits = load_splits(dataset)
    num_items = len(splits.info["items"])
    train_items, mf = splits.info["train_items"], {"name": "mf", "dim": 64}
    softmax = {"loss": "full-softmax"}
    runs: dict[str, Callable[[], dict[str, float]]] = {
        "popularity": lambda: baseline(popularity_scores(splits.info["popularity"]), splits.test, num_items),
        "item-knn": lambda: baseline(item_knn_scores(train_items, num_items, **RECBOLE_ITEM_KNN),
                                     splits.test, num_items),
        "item-knn-tuned": lambda: baseline(item_knn_scores(train_items, num_items, **ITEM_KNN), splits.test,
                                           num_items),
        "mf-bpr": lambda: train(mf, MF_BPR["task"], dataset, MF_BPR["lr"], MF_BPR["epochs"], out / "mf",
                                batch_size=MF_BPR["batch_size"], **MF_BPR["train"]),
        "mf-softmax": lambda: train(mf, softmax, dataset, MF_LR, 15, out / "mf-softmax"),
        "two-tower": lambda: train(TWO_TOWER, {}, dataset, TWO_TOWER_LR, args.epochs, out / "two-tower"),
        "lightgcn": lambda: train({"name": "lightgcn", "dim": 64}, softmax, dataset, 2e-2, 15,
                                  out / "lightgcn"),
        "sasrec": lambda: train({"name": "sasrec"}, {}, dataset, 1e-3, 20, out / "sasrec", batch_size=2048),
        "gru4rec": lambda: train({"name": "gru4rec"}, {}, dataset, GRU4REC["lr"], GRU4REC["epochs"],
                                 out / "gru4rec", batch_size=2048),
    }
    rows = {name: run() for name, run in runs.items() if args.models is None or name in args.models}
    result: dict[str, Any] = {"dataset": {"split": args.split, "users": len(splits.info["users"]),
                                          "items": num_items,
                                          "train_pairs": len(splits.train), "test_users": len(splits.test)},
                              "omnitune": rows}
    if args.recbole_python:
        result["recbole"] = {RECBOLE_RUNS[name]: run_recbole(name, args) for name in args.recbole_models}
    return result


def threshold_protocol(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The plugin's first protocol (ratings >= 4), and cold-start items."""
    splits = movielens_100k(MovieLens100kConfig())
    num_items = len(splits.info["items"])
    warm = {"popularity": timed(lambda: evaluate_scores(popularity_scores(splits.info["popularity"]),
                                                        splits.test, num_items)),
            "mf-bpr": train({"name": "mf", "dim": 64}, {}, MOVIELENS, MF_LR, args.epochs, out / "mf"),
            "two-tower": train(TWO_TOWER, {}, MOVIELENS, TWO_TOWER_LR, args.epochs, out / "two-tower")}
    cold_options = {"cold_item_fraction": COLD_FRACTION}
    cold = movielens_100k(MovieLens100kConfig(**cold_options))
    cold_rows = {"random": timed(lambda: evaluate_scores(random_scores(num_items), cold.test, num_items)),
                 "two-tower": train(TWO_TOWER, {}, MOVIELENS | cold_options, TWO_TOWER_LR, args.epochs,
                                    out / "cold")}
    return {"warm": warm, "cold": cold_rows,
            "cold_setup": {"cold_items": len(cold.info["cold_items"]), "test_users": len(cold.test)}}


def recbole_split(recbole_python: str, out: Path) -> dict[str, Any]:
    """An ``interactions-file`` dataset holding MovieLens 100k in RecBole's split order, which
    recbole_split_dump.py writes with RecBole's python; item texts from the same wheel's file."""
    out.mkdir(parents=True, exist_ok=True)
    order = (out / "recbole-order.csv").resolve()
    subprocess.run([recbole_python, str(Path(__file__).with_name("recbole_split_dump.py")), str(order)],
                   check=True, capture_output=True, cwd=out)
    return {"name": "interactions-file", "interactions": str(order),
            "items": str(resolve(MOVIELENS_100K) / "ml-100k.item"),
            "item_text_columns": ["movie_title", "class"], **RECBOLE_PROTOCOL}


def load_splits(dataset: dict[str, Any]) -> Splits:
    """The splits a run config's ``dataset`` section names (one of the two used here)."""
    options = {key: value for key, value in dataset.items() if key != "name"}
    if dataset["name"] == "movielens-100k":
        return movielens_100k(MovieLens100kConfig(**options))
    return interactions_file(InteractionsFileConfig(**options))


def baseline(score_fn: ScoreFn, examples: list[EvalUser], num_items: int) -> dict[str, float]:
    """A scoring function's test metrics, timed (building the scores included)."""
    return timed(lambda: evaluate_scores(score_fn, examples, num_items))


def timed(measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """``measure()``'s metrics with its wall and CPU (user + sys, this process) seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    metrics = measure()
    return metrics | {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def train(backbone: dict[str, Any], task: dict[str, Any], dataset: dict[str, Any], lr: float, epochs: int,
          output_dir: Path, batch_size: int = 1024, **options: Any) -> dict[str, float]:
    """Fine-tune through omnitune.finetune; the test metrics of the best validation checkpoint."""
    def fit() -> dict[str, float]:
        result = omnitune.finetune(
            task={"name": "recommendation", "loss": "bpr", **task}, backbone=backbone,
            dataset=dataset, output_dir=str(output_dir), overwrite=True,
            epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=0.0, warmup_ratio=0.0, progress=False,
            **options,
        )
        metrics = {key.removeprefix("test_"): value for key, value in result.metrics.items()
                   if key.startswith("test_") and key != "test_loss"}
        return metrics | {"best_step": result.metrics.get("best_step")}

    return timed(fit)


def run_recbole(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One RecBole model in its own process: its test metrics, training time, and the process's
    wall and CPU time; a failure is reported, not raised."""
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads)}
    epochs = {"SASRec": args.recbole_sasrec_epochs, "GRU4Rec": args.recbole_gru4rec_epochs}
    if name in epochs:
        env["EPOCHS"] = str(epochs[name])
    workdir = Path(args.output_dir) / "recbole"  # RecBole writes its saved/ and log/ folders here
    workdir.mkdir(parents=True, exist_ok=True)
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    try:
        done = subprocess.run([args.recbole_python, str(Path(args.recbole_script).resolve()), name],
                              capture_output=True, text=True, env=env, timeout=args.recbole_timeout,
                              cwd=workdir)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {args.recbole_timeout:.0f} s"}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    timing = {"wall_s": time.perf_counter() - started,
              "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)}
    if done.returncode != 0:
        return timing | {"error": done.stderr.strip().splitlines()[-1][:300]}
    measured = json.loads(done.stdout.strip().splitlines()[-1])[name]
    return {RECBOLE_METRICS.get(key, key): value for key, value in measured.items()} | timing


def print_table(title: str, rows: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(f"| model | {' | '.join(name.replace('_at_', '@') for name in REPORTED)} | wall time | CPU time |")
    print("|---|" + "---|" * (len(REPORTED) + 2))
    for model, metrics in rows.items():
        if "error" in metrics:
            print(f"| {model} | failed: {metrics['error']} |")
            continue
        cells = " | ".join(f"{metrics[name]:.4f}" for name in REPORTED)
        print(f"| {model} | {cells} | {metrics['wall_s']:.1f} s | {metrics['cpu_s']:.1f} s |")


if __name__ == "__main__":
    main()
