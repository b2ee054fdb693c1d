"""RecBole's MovieLens protocol, checked on a hand-made log: every rating an implicit positive, no
minimum counts, leave-last-out by time, full ranking with the user's earlier items masked, and
Recall@K / NDCG@K / MRR@K / Hit@K per user as RecBole 1.2.1 defines them
(recbole/evaluator/metrics.py), averaged over users."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from omnitune_recsys.datasets import interactions_file
from omnitune_recsys.plugin import InteractionsFileConfig
from omnitune_recsys.ranking import rank_metrics

from conftest import write_csv

# (user, item, rating, timestamp): ratings 1-5 all count; u2's last two share a timestamp,
# so file order decides (RecBole sorts stably by time); u3 has two events, too few to hold out.
LOG = [("u1", "a", 1, 10), ("u1", "b", 5, 20), ("u1", "c", 2, 30), ("u1", "d", 3, 40), ("u1", "e", 4, 50),
       ("u2", "c", 5, 7), ("u2", "a", 2, 5), ("u2", "e", 1, 9), ("u2", "b", 3, 9),
       ("u3", "d", 1, 1), ("u3", "f", 5, 2)]


@pytest.fixture
def recbole_protocol(tmp_path: Path):
    rows = [{"user_id": u, "item_id": i, "rating": str(r), "timestamp": str(t)} for u, i, r, t in LOG]
    path = write_csv(tmp_path / "log.csv", rows)
    return interactions_file(InteractionsFileConfig(interactions=str(path), rating_threshold=None,
                                                    min_user_interactions=1))


def test_split_and_masking_follow_recbole(recbole_protocol) -> None:
    splits = recbole_protocol
    items, users = splits.info["items"], splits.info["users"]
    named = {users[e.user]: ([items[i] for i in e.targets], sorted(items[i] for i in e.masked),
                             [items[i] for i in e.history]) for e in splits.test}
    valid = {users[e.user]: ([items[i] for i in e.targets], sorted(items[i] for i in e.masked))
             for e in splits.validation}
    assert items == ["a", "b", "c", "d", "e", "f"]  # rated 1 or 2 still counts
    assert named["u1"] == (["e"], ["a", "b", "c", "d"], ["a", "b", "c", "d"])  # test masks train + validation
    assert valid["u1"] == (["d"], ["a", "b", "c"])
    assert named["u2"] == (["b"], ["a", "c", "e"], ["a", "c", "e"])  # tie at 9: file order, e then b
    assert valid["u2"] == (["e"], ["a", "c"])
    assert "u3" not in named and "u3" not in valid  # two events: both train
    assert splits.info["train_sequences"] == [[0, 1, 2], [0, 2], [3, 5]]
    assert splits.info["popularity"] == [2, 1, 2, 1, 0, 1]


def test_metrics_follow_recbole_definitions() -> None:
    # user 0: one target ranked 3rd once the masked item 0 is skipped; user 1: two targets, one at
    # rank 1 and one at rank 7; user 2: its target ranked 12th (outside every cutoff used here)
    scores = torch.tensor([[9.0, 8, 7, 6, 5, 4, 3, 2, 1, 0, -1, -2],
                           [12.0, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
                           [12.0, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]])
    targets = torch.zeros(3, 12, dtype=torch.bool)
    targets[0, 3], targets[1, 0], targets[1, 6], targets[2, 11] = True, True, True, True
    excluded = torch.zeros(3, 12, dtype=torch.bool)
    excluded[0, 0] = True
    got = rank_metrics(scores, targets, excluded, cutoffs=(5, 10))
    log2 = math.log2
    assert got["recall_at_5"].tolist() == pytest.approx([1, 0.5, 0])  # hits in top K / held-out items
    assert got["recall_at_10"].tolist() == pytest.approx([1, 1, 0])
    assert got["hitrate_at_5"].tolist() == [1, 1, 0]
    # NDCG@K: DCG of the hits over the ideal DCG of min(K, held-out) hits
    assert got["ndcg_at_5"].tolist() == pytest.approx([1 / log2(4), 1 / (1 + 1 / log2(3)), 0])
    ideal_two = 1 + 1 / log2(3)
    assert got["ndcg_at_10"].tolist() == pytest.approx([1 / log2(4), (1 + 1 / log2(8)) / ideal_two, 0])
    assert got["mrr_at_5"].tolist() == pytest.approx([1 / 3, 1, 0])  # first hit in the top K, else 0
    assert got["mrr"].tolist() == pytest.approx([1 / 3, 1, 1 / 12])  # uncut

