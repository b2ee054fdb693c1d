"""Recommendation data: reading, implicit feedback, leak-free splits, negative sampling, metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import omnitune
from omnitune_recsys.datasets import interactions_file
from omnitune_recsys.plugin import InteractionsFileConfig
from omnitune_recsys.ranking import evaluate_scores, popularity_scores, rank_metrics
from omnitune_recsys.sampling import NegativeSampler, SeenPairs, negative_weights
from omnitune_recsys.splits import EvalUser


def write(path: Path, header: str, rows: list[str], delimiter: str = ",") -> Path:
    lines = [header, *rows]
    path.write_text("".join(line.replace(",", delimiter) + "\n" for line in lines))
    return path


def events(tmp_path: Path) -> Path:
    """Two users, five items; timestamps deliberately out of file order."""
    rows = ["u1,a,5,30", "u1,b,4,10", "u1,c,5,20", "u1,d,2,40", "u1,e,4,50",
            "u2,a,4,5", "u2,c,4,1", "u2,e,5,3", "u2,b,5,4", "u2,a,5,9"]
    return write(tmp_path / "events.csv", "user_id,item_id,rating,timestamp", rows)


def load(path: Path, **options: object) -> omnitune.Splits:
    return interactions_file(InteractionsFileConfig(interactions=str(path), min_user_interactions=1,
                                                    **options))


def item_ids(splits: omnitune.Splits, indices: tuple[int, ...] | list[int]) -> list[str]:
    return [splits.info["items"][i] for i in indices]


def test_leave_last_out_holds_out_the_latest_and_masks_history(tmp_path: Path) -> None:
    splits = load(events(tmp_path), rating_threshold=4)
    users = splits.info["users"]
    by_user = {users[e.user]: e for e in splits.test}
    # u1 positives by time: b(10) c(20) a(30) e(50); d is rated 2, so not positive
    assert item_ids(splits, by_user["u1"].targets) == ["e"]
    assert sorted(item_ids(splits, by_user["u1"].masked)) == ["a", "b", "c"]
    validation = {users[e.user]: e for e in splits.validation}
    assert item_ids(splits, validation["u1"].targets) == ["a"]
    assert sorted(item_ids(splits, validation["u1"].masked)) == ["b", "c"]
    # u2: c(1) e(3) b(4) a(5, and again at 9: one pair, its earliest event)
    assert item_ids(splits, by_user["u2"].targets) == ["a"]
    assert item_ids(splits, validation["u2"].targets) == ["b"]
    train = {(users[p.user], splits.info["items"][p.item]) for p in splits.train}
    assert train == {("u1", "b"), ("u1", "c"), ("u2", "c"), ("u2", "e")}
    assert splits.info["items"] == ["a", "b", "c", "e"]  # d has no positive interaction
    assert splits.info["popularity"] == [0, 1, 2, 1]
    assert splits.info["train_items"] == [[1, 2], [2, 3]]


def test_random_split_never_puts_a_pair_in_two_splits(tmp_path: Path) -> None:
    rows = [f"u{u},i{i},5,{u * 100 + i}" for u in range(20) for i in range(15) if (u + i) % 3]
    path = write(tmp_path / "many.csv", "user_id,item_id,rating,timestamp", rows)
    splits = load(path, split="random", validation_fraction=0.2, test_fraction=0.2, seed=3)
    train = {(p.user, p.item) for p in splits.train}
    held = [(e.user, t) for split in (splits.validation, splits.test) for e in split for t in e.targets]
    assert len(train) + len(held) == len(rows)
    assert not train & set(held) and len(set(held)) == len(held)
    assert abs(len(splits.train) - 0.6 * len(rows)) <= 2
    for example in splits.test:
        assert set(splits.info["train_items"][example.user]) <= set(example.masked)


def test_minimum_counts_are_applied_until_stable(tmp_path: Path) -> None:
    rows = ["u1,a,5,1", "u1,b,5,2", "u2,a,5,3", "u2,b,5,4", "u3,a,5,5", "u3,c,5,6"]
    path = write(tmp_path / "core.csv", "user_id,item_id,rating,timestamp", rows)
    splits = interactions_file(InteractionsFileConfig(interactions=str(path), min_user_interactions=2,
                                                      min_item_interactions=2))
    # c has one interaction -> dropped -> u3 has one left -> dropped
    assert splits.info["users"] == ["u1", "u2"] and splits.info["items"] == ["a", "b"]


def test_cold_items_never_reach_training(tmp_path: Path) -> None:
    rows = [f"u{u},i{i},5,{i}" for u in range(30) for i in range(20) if (u * 7 + i) % 4 == 0]
    items = write(tmp_path / "items.tsv", "item_id,title,genres",
                  [f"i{i},title {i},genre {i % 3}" for i in range(20)], delimiter="\t")
    path = write(tmp_path / "cold.csv", "user_id,item_id,rating,timestamp", rows)
    splits = load(path, items=str(items), cold_item_fraction=0.25)
    cold = set(splits.info["cold_items"])
    assert len(cold) == 5
    assert not cold & {p.item for p in splits.train}
    assert all(splits.info["popularity"][i] == 0 for i in cold)
    assert splits.test and all(set(e.targets) <= cold and set(e.candidates) == cold for e in splits.test)
    assert splits.info["item_texts"][0] == "title 0. genre 0"


def test_typed_headers_and_tabs_like_recbole(tmp_path: Path) -> None:
    path = tmp_path / "tiny.inter"
    path.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                    "1\t10\t4\t1\n1\t11\t4\t2\n1\t12\t4\t3\n")
    splits = load(path)
    assert splits.info["items"] == ["10", "11", "12"]


@pytest.mark.parametrize(("row", "message"), [
    ("u1,a,five,3", r"bad\.csv, row 3: field 'rating' must be a number, got 'five'"),
    ("u1,a,5,", r"bad\.csv, row 3: field 'timestamp' must be a number, got ''"),
    ("u1,a,5", r"bad\.csv, row 3: expected 4 fields \(user_id, item_id, rating, timestamp\), found 3"),
    (",a,5,3", r"bad\.csv, row 3: field 'user_id' is empty"),
])
def test_bad_rows_name_the_file_row_and_field(tmp_path: Path, row: str, message: str) -> None:
    path = write(tmp_path / "bad.csv", "user_id,item_id,rating,timestamp", ["u1,b,5,1", row])
    with pytest.raises(omnitune.DataError, match=message):
        load(path)


def test_missing_column_names_the_file_and_the_header(tmp_path: Path) -> None:
    path = write(tmp_path / "cols.csv", "user,item_id,rating,timestamp", ["u1,a,5,1"])
    with pytest.raises(omnitune.DataError, match=r"cols\.csv: missing column\(s\) \['user_id'\]"):
        load(path)


def test_threshold_without_rating_column_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="rating_threshold needs a rating_column"):
        InteractionsFileConfig(interactions="x.csv", rating_column=None, rating_threshold=4)


def test_user_file_features_become_indices_with_unknown_for_missing_users(tmp_path: Path) -> None:
    users = tmp_path / "people.user"  # tab-separated, RecBole-style typed header
    users.write_text("user_id:token\tage:token\tgender:token\tzip:token\n"
                     "u1\t25\tF\t123\nghost\t70\tM\t999\n")
    splits = load(events(tmp_path), users=str(users), user_feature_columns=["age", "gender"])
    features = splits.info["user_features"]
    assert features["columns"] == ["age", "gender"]
    assert features["vocabularies"] == {"age": ["25"], "gender": ["F"]}  # only users left in the data
    assert splits.info["users"] == ["u1", "u2"]
    assert features["indices"] == [[1, 1], [0, 0]]  # u2 has no row in the user file: unknown (0)


@pytest.mark.parametrize(("content", "message"), [
    (None, r"nobody\.csv: file not found"),
    ("", r"nobody\.csv: the file is empty"),
    ("user_id,gender\n", r"nobody\.csv: no users"),
    ("user_id,sex\nu1,F\n", r"nobody\.csv: missing column\(s\) \['gender'\]"),
    ("user_id,gender\nu1,F\nu1,M\n", r"nobody\.csv, row 3: user 'u1' appears twice"),
    ("user_id,gender\n,F\n", r"nobody\.csv, row 2: field 'user_id' is empty"),
    ("user_id,gender\nu1\n", r"nobody\.csv, row 2: expected 2 fields"),
])
def test_bad_user_files_name_the_file_row_and_field(tmp_path: Path, content: str | None,
                                                    message: str) -> None:
    users = tmp_path / "nobody.csv"
    if content is not None:
        users.write_text(content)
    with pytest.raises(omnitune.DataError, match=message):
        load(events(tmp_path), users=str(users), user_feature_columns=["gender"])


def test_user_file_without_feature_columns_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="users needs user_feature_columns"):
        InteractionsFileConfig(interactions="x.csv", users="u.csv")


@settings(max_examples=40, deadline=None)
@given(seen=st.lists(st.sets(st.integers(0, 29), max_size=29), min_size=1, max_size=8),
       kind=st.sampled_from(["uniform", "popularity"]), count=st.integers(1, 6), seed=st.integers(0, 99))
def test_negatives_are_never_items_the_user_has_seen(seen: list[set[int]], kind: str, count: int,
                                                     seed: int) -> None:
    torch.manual_seed(seed)
    popularity = [(i * 7) % 11 + 1 for i in range(30)]
    sampler = NegativeSampler(SeenPairs([sorted(s) for s in seen], 30), negative_weights(popularity, kind))
    users = [u % len(seen) for u in range(12)]
    drawn = sampler.sample(torch.tensor(users), count)
    assert drawn.shape == (12, count)
    for user, row in zip(users, drawn.tolist(), strict=True):
        assert not set(row) & seen[user]


def test_negatives_skip_items_without_training_data() -> None:
    sampler = NegativeSampler(SeenPairs([[0]], 4), negative_weights([3, 0, 5, 0], "uniform"))
    assert set(sampler.sample(torch.zeros(50, dtype=torch.long), 4).flatten().tolist()) == {2}
    weights = negative_weights([1, 8, 0], "popularity", exponent=1.0)
    assert weights.tolist() == [1.0, 8.0, 0.0]
    with pytest.raises(omnitune.DataError, match="every item"):
        NegativeSampler(SeenPairs([[0, 2]], 3), negative_weights([3, 0, 5], "uniform")).sample(
            torch.tensor([0]), 1)


def test_rank_metrics_by_hand() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    targets = torch.zeros(2, 6, dtype=torch.bool)
    targets[0, [2, 5]] = True
    targets[1, 0] = True
    excluded = torch.zeros(2, 6, dtype=torch.bool)
    excluded[0, 0] = True  # user 0's ranking: 1, 2*, 3, 4, 5*
    results = rank_metrics(scores, targets, excluded, cutoffs=(2, 5))
    assert results["recall_at_2"].tolist() == pytest.approx([0.5, 0.0])
    assert results["recall_at_5"].tolist() == pytest.approx([1.0, 0.0])  # user 1's target is 6th
    assert results["hitrate_at_2"].tolist() == [1.0, 0.0]
    ideal = 1 + 1 / math.log2(3)
    assert results["ndcg_at_2"][0].item() == pytest.approx((1 / math.log2(3)) / ideal)
    assert results["ndcg_at_5"][0].item() == pytest.approx((1 / math.log2(3) + 1 / math.log2(6)) / ideal)
    assert results["mrr"].tolist() == pytest.approx([0.5, 1 / 6])


def test_popularity_baseline_uses_the_same_ranking() -> None:
    examples = [EvalUser(0, (1,), (0,)), EvalUser(1, (3,), ()), EvalUser(2, (2,), (), (2, 3))]
    metrics = evaluate_scores(popularity_scores([9, 5, 1, 0]), examples, num_items=4)
    # user 0: 0 masked so 1 ranks first; user 1: 3 ranks last of 4; user 2: 2 beats 3 among candidates
    assert metrics["mrr"] == pytest.approx((1 + 1 / 4 + 1) / 3)


def test_in_batch_negatives_never_include_items_the_user_trained_on(tmp_path: Path) -> None:
    from omnitune_recsys.backbones import MatrixFactorization
    from omnitune_recsys.plugin import MatrixFactorizationConfig, RecommendationConfig
    from omnitune_recsys.task import Recommendation

    splits = load(events(tmp_path), rating_threshold=4)  # training: u1 has b, c; u2 has c, e
    task = Recommendation(RecommendationConfig(loss="softmax"), head=None, data_info=splits.info,
                          backbone=MatrixFactorization(MatrixFactorizationConfig(dim=4)))
    batch = task.collate(list(splits.train))
    users, positives = batch["users"].tolist(), batch["positives"].tolist()
    for row, user in enumerate(users):
        for column, item in enumerate(positives):
            trained = item in splits.info["train_items"][user]
            assert batch["false_negatives"][row, column].item() == (trained and row != column)
    assert batch["false_negatives"].any()
    loss = task.training_step(task.model, batch).loss
    assert torch.isfinite(loss)
