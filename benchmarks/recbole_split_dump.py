"""Run by RecBole's own python (a scratch venv, never the project's): MovieLens 100k's
interactions in the order RecBole 1.2.1 splits them under its standard protocol, as a CSV that
omnitune's ``interactions-file`` reads into the same leave-last-out split. RecBole stores
timestamps min-max scaled to [0, 1] in float32 (events seconds apart tie) and orders ties its own
way; the CSV keeps those stored timestamps and RecBole's row order, and omnitune breaks ties by
row. Ratings are written back on their 1-5 scale (RecBole scales them too).
Usage: PYTHON recbole_split_dump.py OUT.csv
"""

import csv
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


def main():
    config = Config(model="Pop", dataset="ml-100k", config_dict={
        "data_path": os.path.join(os.path.dirname(recbole.__file__), "dataset_example"),
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "seed": 0, "device": "cpu", "use_gpu": False, "show_progress": False, "state": "WARNING"})
    dataset = create_dataset(config)
    data_preparation(config, dataset)  # sorts the interactions by time, as every RecBole run does
    users, items = dataset.field2id_token["user_id"], dataset.field2id_token["item_id"]
    feat = dataset.inter_feat
    with open(sys.argv[1], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "rating", "timestamp"])
        for user, item, rating, timestamp in zip(feat["user_id"].tolist(), feat["item_id"].tolist(),
                                                 feat["rating"].tolist(), feat["timestamp"].tolist(),
                                                 strict=True):
            writer.writerow([users[user], items[item], round(rating * 4 + 1), repr(float(timestamp))])


if __name__ == "__main__":
    main()
