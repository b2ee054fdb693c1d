"""Is omnitune's ItemKNN RecBole's ItemKNN? Both on both splits of MovieLens 100k.

RecBole's split and item-item weights come from recbole_itemknn_dump.py (run by a RecBole 1.2.1
venv: ``--recbole-python``). Four test NDCG@10 / Recall@10 figures, all scored by omnitune's
evaluator: omnitune's ItemKNN and RecBole's weights, each on omnitune's split (exact timestamps)
and on RecBole's (it stores timestamps as float32, so events seconds apart tie and can swap
places; a few users' validation and test items differ). Same model: the rows agree on each split.
Usage:
    .venv/bin/python benchmarks/recsys_itemknn_vs_recbole.py --recbole-python /tmp/recbole-venv/bin/python
Prints a table and, as the last line, a JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

from omnitune_recsys.datasets import movielens_100k
from omnitune_recsys.plugin import MovieLens100kConfig
from omnitune_recsys.ranking import ScoreFn, evaluate_scores, item_knn_scores
from omnitune_recsys.splits import EvalUser

RECBOLE_PROTOCOL = {"rating_threshold": None, "min_user_interactions": 1, "user_feature_columns": []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recbole-python", required=True, help="python of a RecBole 1.2.1 venv")
    parser.add_argument("--neighbours", type=int, default=100, help="k of both (RecBole's default 100)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dump = recbole_dump(args.recbole_python, args.neighbours)
    splits = movielens_100k(MovieLens100kConfig(**RECBOLE_PROTOCOL))
    items, own_train = splits.info["items"], splits.info["train_items"]
    item_index = {token: i for i, token in enumerate(items)}
    recbole_train, recbole_test = recbole_split(dump, splits.info["users"], item_index)
    weights = recbole_weights(dump, item_index, len(items))
    rows = {"omnitune ItemKNN, omnitune's split": (item_knn_scores(own_train, len(items), args.neighbours),
                                                   splits.test),
            "RecBole's weights, omnitune's split": (product(own_train, weights), splits.test),
            "omnitune ItemKNN, RecBole's split": (item_knn_scores(recbole_train, len(items), args.neighbours),
                                                 recbole_test),
            "RecBole's weights, RecBole's split": (product(recbole_train, weights), recbole_test)}
    result: dict[str, Any] = {name: pick(evaluate_scores(score, test, len(items)))
                              for name, (score, test) in rows.items()}
    result["RecBole's own evaluation"] = {"ndcg_at_10": dump["recbole_test"]["ndcg@10"],
                                          "recall_at_10": dump["recbole_test"]["recall@10"]}
    result["users whose training items differ"] = sum(
        set(own) != set(theirs) for own, theirs in zip(own_train, recbole_train, strict=True))
    print(f"| ItemKNN, k = {args.neighbours}, test | NDCG@10 | Recall@10 |\n|---|---|---|")
    for name, metrics in result.items():
        if isinstance(metrics, dict):
            print(f"| {name} | {metrics['ndcg_at_10']:.4f} | {metrics['recall_at_10']:.4f} |")
    print(json.dumps(result))


def recbole_dump(python: str, neighbours: int) -> dict[str, Any]:
    """What recbole_itemknn_dump.py writes, run by RecBole's python."""
    with tempfile.TemporaryDirectory() as folder:
        dump_file = Path(folder) / "recbole_itemknn.json"
        subprocess.run([python, str(Path(__file__).with_name("recbole_itemknn_dump.py")), str(dump_file),
                        str(neighbours)], check=True, capture_output=True, cwd=folder)
        return json.loads(dump_file.read_text())


def recbole_split(dump: dict[str, Any], users: list[str],
                  item_index: dict[str, int]) -> tuple[list[list[int]], list[EvalUser]]:
    """RecBole's training items per user (omnitune's user order) and its test users, masking
    training and validation items as omnitune's test split does."""
    user_index = {token: i for i, token in enumerate(users)}
    train = [[item_index[token] for token in dump["train"].get(user, [])] for user in users]
    test = [EvalUser(user_index[user], (item_index[found[0]],),
                     tuple(train[user_index[user]]) + tuple(item_index[t] for t in dump["valid"][user]))
            for user, found in dump["test"].items()]
    return train, test


def recbole_weights(dump: dict[str, Any], item_index: dict[str, int], num_items: int) -> torch.Tensor:
    """RecBole's item-item weights (its index 0 is padding) in omnitune's item order."""
    order = torch.tensor([item_index.get(token, -1) for token in dump["items"]])
    rows, columns, values = (torch.tensor(part) for part in dump["weights"])
    weights = torch.zeros(num_items, num_items)
    weights[order[rows], order[columns]] = values.float()
    return weights


def product(train_items: list[list[int]], weights: torch.Tensor) -> ScoreFn:
    """Scores as RecBole's ItemKNN makes them: the user's training items times the weights."""
    interactions = torch.zeros(len(train_items), weights.shape[0])
    for user, items in enumerate(train_items):
        interactions[user, items] = 1.0
    return lambda users: interactions[users] @ weights


def pick(metrics: dict[str, float]) -> dict[str, float]:
    return {name: metrics[name] for name in ("ndcg_at_10", "recall_at_10")}


if __name__ == "__main__":
    main()
