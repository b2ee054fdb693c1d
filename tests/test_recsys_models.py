"""SASRec, GRU4Rec, LightGCN and ItemKNN on generated interactions: a next item that is a
deterministic function of the previous one (SASRec and GRU4Rec learn it, MF cannot), and co-clicked
item pairs (LightGCN and ItemKNN rank the partner of a user's item first)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

import omnitune
from omnitune_recsys.datasets import interactions_file
from omnitune_recsys.plugin import InteractionsFileConfig
from omnitune_recsys.ranking import item_knn_scores

from conftest import write_csv

SOURCES = 20  # after a random item a<i> always comes b<NEXT[i]>


def next_of(source: int) -> int:
    return (7 * source + 3) % SOURCES


@pytest.fixture(scope="module")
def walks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 users, each with four random a-items, each followed by its b-item: the validation
    item is the last a-item (random) and the test item its b-item, which MF cannot know from
    training (the a-item is not in it) and SASRec reads from the history."""
    rng, rows = random.Random(0), []
    for user in range(240):
        sources = rng.sample(range(SOURCES), 4)
        items = [name for source in sources for name in (f"a{source}", f"b{next_of(source)}")]
        rows += [{"user_id": f"u{user}", "item_id": item, "timestamp": str(t)}
                 for t, item in enumerate(items)]
    return write_csv(tmp_path_factory.mktemp("walks") / "walks.csv", rows)


def fit(interactions: Path, backbone: dict, output_dir: Path, loss: str = "full-softmax",
        **train: object) -> omnitune.FitResult:
    return omnitune.finetune(
        task={"name": "recommendation", "loss": loss, "top_k": 3}, backbone=backbone,
        dataset={"name": "interactions-file", "interactions": str(interactions), "rating_column": None,
                 "min_user_interactions": 1},
        output_dir=str(output_dir), progress=False, weight_decay=0.0, warmup_ratio=0.0,
        **({"epochs": 30, "batch_size": 128, "lr": 1e-2, "monitor": "loss"} | train))


def test_sasrec_learns_the_next_item_where_mf_cannot(walks: Path, tmp_path: Path) -> None:
    sasrec = fit(walks, {"name": "sasrec", "dim": 32, "layers": 1, "heads": 1, "max_length": 8,
                         "dropout": 0.1}, tmp_path / "sasrec")
    mf = fit(walks, {"name": "mf", "dim": 32}, tmp_path / "mf")
    # MRR@5 is 1 only for a hit at rank 1, at most 1/2 otherwise: 0.9 means Hit@1 of at least 0.8
    assert sasrec.metrics["test_mrr_at_5"] > 0.9, sasrec.metrics
    assert mf.metrics["test_mrr_at_5"] < 0.5, mf.metrics

    predictor = omnitune.Predictor.load(sasrec.artifact)
    newcomer, = predictor.predict([{"user": "newcomer", "history": ["a4", "b9", "a1", "nope"]}])
    assert newcomer["basis"] == "given history" and not newcomer["known_user"]
    assert newcomer["items"][0]["item"] == f"b{next_of(1)}"  # cold user, answered from the history
    assert "nope" in newcomer["note"]
    known = predictor.task.recommend("u0")
    assert known["basis"] == "history" and known["known_user"]
    with pytest.raises(omnitune.DataError, match="history.*list of item ids"):
        predictor.predict([{"user": "x", "history": "a4"}])
    with pytest.raises(omnitune.DataError, match="does not read histories"):
        omnitune.Predictor.load(mf.artifact).predict([{"user": "x", "history": ["a4"]}])


def test_gru4rec_learns_the_next_item_and_answers_a_given_history(walks: Path, tmp_path: Path) -> None:
    gru4rec = fit(walks, {"name": "gru4rec", "dim": 32, "hidden": 64, "max_length": 8, "dropout": 0.0},
                  tmp_path / "gru4rec")
    assert gru4rec.metrics["test_mrr_at_5"] > 0.9, gru4rec.metrics  # Hit@1 of at least 0.8; MF stays < 0.5

    predictor = omnitune.Predictor.load(gru4rec.artifact)
    for history in (["a1"], ["a4", "b9", "a1"], ["a4", "b9", "a7", "b12", "a1"]):  # padding must not matter
        answer, = predictor.predict([{"user": "newcomer", "history": history}])
        assert answer["items"][0]["item"] == f"b{next_of(1)}", (history, answer)


def test_gru4rec_ignores_the_padding_in_front_of_a_history() -> None:
    from omnitune_recsys.backbones import Catalogue
    from omnitune_recsys.gru4rec import GRU4Rec
    from omnitune_recsys.plugin import GRU4RecConfig

    torch.manual_seed(0)
    model = GRU4Rec(GRU4RecConfig(dim=8, hidden=8, max_length=6, dropout=0.0))
    model.build(Catalogue(num_users=1, num_items=9, item_texts=None, popularity=[1] * 9))
    alone = model.history_vectors(torch.tensor([[3, 5, 7]]))
    padded = model.history_vectors(torch.tensor([[3, 5, 7], [0, 0, 2]]))  # padded to the same width
    assert torch.allclose(alone[0], padded[0])
    assert torch.allclose(padded[1, -1], model.history_vectors(torch.tensor([[2]]))[0, -1])


def pairs(folder: Path) -> Path:
    """Items come in pairs (2k, 2k+1) that every user clicks together; the user ``probe`` has
    clicked item p0 alone."""
    rng, rows = random.Random(1), [{"user_id": "probe", "item_id": "p0", "timestamp": "0"}]
    for user in range(120):
        for t, pair in enumerate(rng.sample(range(10), 3)):
            rows += [{"user_id": f"u{user}", "item_id": f"p{2 * pair + side}", "timestamp": str(2 * t + side)}
                     for side in (0, 1)]
    return write_csv(folder / "pairs.csv", rows)


def test_lightgcn_ranks_the_co_clicked_item_first(tmp_path: Path) -> None:
    result = fit(pairs(tmp_path), {"name": "lightgcn", "dim": 16}, tmp_path / "run", loss="bpr",
                 epochs=20, lr=5e-2)
    predictor = omnitune.Predictor.load(result.artifact)
    assert predictor.task.recommend("probe")["items"][0]["item"] == "p1"


def test_item_knn_ranks_the_co_clicked_item_first(tmp_path: Path) -> None:
    splits = interactions_file(InteractionsFileConfig(interactions=str(pairs(tmp_path)), rating_column=None,
                                                      min_user_interactions=1))
    items, users = splits.info["items"], splits.info["users"]
    scores = item_knn_scores(splits.info["train_items"], len(items), neighbours=5)
    probe = torch.tensor([users.index("probe")])
    assert items[int(scores(probe)[0].argmax())] == "p1"
