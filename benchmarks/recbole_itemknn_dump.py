"""Run by RecBole's own python (a scratch venv, never the project's): RecBole 1.2.1's ItemKNN on
MovieLens 100k in its standard protocol, dumped as JSON for recsys_itemknn_vs_recbole.py: its
item-item weights, its split (training items, validation and test items per user, as tokens)
and its own test NDCG@10 / Recall@10. Usage: PYTHON recbole_itemknn_dump.py OUT.json [K]
"""

import json
import os
import sys

import numpy as np

for old, new in {"float_": np.float64, "complex_": np.complex128, "unicode_": np.str_, "bool8": np.bool_,
                 "int_": np.int64}.items():  # RecBole 1.2.1 predates NumPy 2
    if not hasattr(np, old):
        setattr(np, old, new)
import recbole  # noqa: E402
from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.utils import get_model, get_trainer, init_seed  # noqa: E402


def held_out(loader, users, items):
    """Each user's held-out items of a full-ranking dataloader, as tokens."""
    found = {}
    for interaction, _, rows, columns in loader:
        for row, item in zip(rows.tolist(), columns.tolist(), strict=True):
            user = users[int(interaction["user_id"][row])]
            found.setdefault(str(user), []).append(str(items[item]))
    return found


def main():
    out, k = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100
    config = Config(model="ItemKNN", dataset="ml-100k", config_dict={
        "data_path": os.path.join(os.path.dirname(recbole.__file__), "dataset_example"),
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp", "k": k,
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["Recall", "NDCG"], "topk": [10], "valid_metric": "NDCG@10", "seed": 0,
        "device": "cpu", "use_gpu": False, "show_progress": False, "state": "WARNING"})
    init_seed(0, True)
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    model = get_model("ItemKNN")(config, train.dataset)
    users, items = dataset.field2id_token["user_id"], dataset.field2id_token["item_id"]
    weights = model.w.tocoo()
    matrix = train.dataset.inter_matrix(form="csr")
    trainer = get_trainer(config["MODEL_TYPE"], "ItemKNN")(config, model)
    measured = trainer.evaluate(test, load_best_model=False, show_progress=False)
    dump = {"items": [str(item) for item in items],
            "weights": [weights.row.tolist(), weights.col.tolist(), weights.data.tolist()],
            "train": {str(users[u]): [str(items[i]) for i in matrix[u].indices]
                      for u in range(1, matrix.shape[0])},
            "valid": held_out(valid, users, items), "test": held_out(test, users, items),
            "recbole_test": {name: float(value) for name, value in measured.items()}}
    with open(out, "w") as handle:
        json.dump(dump, handle)


if __name__ == "__main__":
    main()
