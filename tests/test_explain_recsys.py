"""Which history items made a recommendation, for mf (ridge fold-in), lightgcn (Integrated
Gradients over the user's edges) and sasrec (Integrated Gradients over the history's item
embeddings): complete, and on hand-made weights where one history item decides, that item."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_recsys_end_to_end import recsys_run, write_world

import omnitune
from omnitune.cli import main
from omnitune.errors import DataError
from omnitune.explain import explain
from omnitune.predict import Predictor

USER = "user3"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory, recsys_artifact: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("explain-recsys")
    world = write_world(root, users=30)
    made = {"mf": recsys_artifact}
    for name, backbone in (("lightgcn", {"name": "lightgcn", "dim": 16, "layers": 2}),
                           ("sasrec", {"name": "sasrec", "dim": 16, "layers": 1, "max_length": 8,
                                       "dropout": 0.0})):
        made[name] = omnitune.finetune(recsys_run(world, root / name, backbone, epochs=1)).artifact
    return made


def _history_ids(predictor: Predictor, user: str) -> list[str]:
    task = predictor.task
    index = task.user_index[user]
    if task.sequential:
        return [task.items[i] for i in task.train_sequences[index][-task.model.backbone.max_length:]]
    return [task.items[i] for i in task.train_items[index]]


@pytest.mark.parametrize("backbone", ["mf", "lightgcn", "sasrec"])
def test_attributions_of_the_top_item_are_complete(artifacts: dict[str, Path], backbone: str) -> None:
    predictor = Predictor.load(artifacts[backbone])
    (e,) = explain(predictor, [USER], steps=32)
    (top,) = predictor.predict([USER])[0]["items"][:1]
    assert e.label == top["item"] and e.score == pytest.approx(top["score"], abs=1e-4)
    assert e.items == _history_ids(predictor, USER) and len(e.attributions) == len(e.items)
    difference = e.score - e.baseline_score
    assert e.attributions.sum().item() == pytest.approx(difference, abs=1e-4 + 0.01 * abs(difference))
    assert abs(e.delta) < 1e-3 and e.attributions.abs().max() > 0


def _orthogonal(count: int, dim: int) -> torch.Tensor:
    return torch.linalg.qr(torch.randn(dim, dim, generator=torch.Generator().manual_seed(0)))[0][:count]


def _outside(predictor: Predictor, user: str) -> int:
    """A catalogue item the user never had in training."""
    task = predictor.task
    seen = set(task.train_items[task.user_index[user]])
    return next(i for i in range(len(task.items)) if i not in seen)


def test_mf_the_history_item_the_user_vector_is_made_of_decides(artifacts: dict[str, Path]) -> None:
    predictor = Predictor.load(artifacts["mf"])
    task, backbone = predictor.task, predictor.task.model.backbone
    history, user = task.train_items[task.user_index[USER]], task.user_index[USER]
    target, deciding = _outside(predictor, USER), history[2]
    with torch.no_grad():
        backbone.items.weight[history] = _orthogonal(len(history), backbone.items.weight.shape[1])
        backbone.users.weight[user] = 3 * backbone.items.weight[deciding]
        table = backbone.items.weight
        table[target] = table[deciding] + 0.1 * table[history[0]]
    (e,) = explain(predictor, [USER], target=task.items[target])
    assert e.items[int(e.attributions.argmax())] == task.items[deciding]
    assert e.attributions.max() > 5 * e.attributions.sort().values[-2].abs()


def test_lightgcn_the_one_connected_item_decides(artifacts: dict[str, Path]) -> None:
    """Every layer-0 embedding is zero but the deciding history item's and the target's, so the
    user's vector reaches the target only through its edge to that item."""
    predictor = Predictor.load(artifacts["lightgcn"])
    task, backbone = predictor.task, predictor.task.model.backbone
    history = task.train_items[task.user_index[USER]]
    target, deciding = _outside(predictor, USER), history[1]
    with torch.no_grad():
        vector = torch.randn(backbone.embeddings.weight.shape[1], generator=torch.Generator().manual_seed(1))
        backbone.embeddings.weight.zero_()
        backbone.embeddings.weight[[backbone.num_users + deciding, backbone.num_users + target]] = vector
    (e,) = explain(predictor, [USER], target=task.items[target], steps=16)
    assert e.items[int(e.attributions.argmax())] == task.items[deciding]
    assert e.attributions.sum().item() == pytest.approx(e.attributions.max().item(), rel=1e-4)
    assert e.score > e.baseline_score == pytest.approx(0.0, abs=1e-6)


def test_sasrec_only_the_item_with_an_embedding_counts(artifacts: dict[str, Path]) -> None:
    """The other history items get the padding embedding (zeros): they carry nothing, and the
    attribution lands on the position of the one item that does, whatever its place."""
    predictor = Predictor.load(artifacts["sasrec"])
    task, backbone = predictor.task, predictor.task.model.backbone
    history = task.train_sequences[task.user_index[USER]][-backbone.max_length:]
    deciding = history[2]
    with torch.no_grad():
        others = [i + 1 for i in history if i != deciding]
        backbone.items.weight[others] = 0.0
    (e,) = explain(predictor, [{"user": USER, "history": [task.items[i] for i in history]}], steps=32)
    assert e.items[int(e.attributions.abs().argmax())] == task.items[deciding]
    assert e.attributions.abs().sum().item() == pytest.approx(e.attributions.abs().max().item(), rel=1e-4)
    with pytest.raises(DataError, match="no history item in the model's catalogue"):
        explain(predictor, [{"user": "new", "history": ["no-such-item"]}])


def test_explain_command_ranks_history_items(artifacts: dict[str, Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(artifacts["mf"]), USER, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert len(record["items"]) == len(record["attributions"]) > 1
    with pytest.raises(DataError, match="'nobody' is not in the training data"):
        explain(Predictor.load(artifacts["mf"]), ["nobody"])
    with pytest.raises(DataError, match="unknown item 'item-x'"):
        explain(Predictor.load(artifacts["mf"]), [USER], target="item-x")
