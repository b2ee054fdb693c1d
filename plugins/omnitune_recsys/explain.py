"""Which of a user's history items made the model recommend an item, one number per history item
that together add up to the item's score minus a baseline score:

- sasrec: Integrated Gradients (Captum) over the embeddings of the history's items, from the
  padding embedding (zeros) with the same positions and attention mask;
- lightgcn: Integrated Gradients over the weights of the user's edges to its history items in
  the graph, from 0 (the user cut off from them) to 1;
- mf and two-tower, whose user vector is learned per user rather than read from the history: the
  user vector re-expressed as a ridge combination of its history items' vectors, each item's
  share of the score; ``baseline_score`` is the part of the score the history does not express.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from omnitune.errors import DataError
from omnitune.explain import Explanation
from omnitune_recsys.sasrec import history_tensor

if TYPE_CHECKING:
    from omnitune_recsys.task import Recommendation

RIDGE = 1e-2  # times the mean squared norm of the history's item vectors


def explain_recommendation(task: Recommendation, user: str, history: list[int] | None,
                           target: str | None, steps: int) -> Explanation:
    """Attributions of the score of ``target`` (default: the top recommended item) for ``user``
    over the history items (catalogue indices in time order; ``None``: the training history)."""
    task.model.eval()
    history = _history(task, user, history)
    item = _target(task, user, history, target)
    backbone = task.model.backbone
    if task.sequential:
        history = history[-backbone.max_length:]
        values, score, base, delta = _sequence_gradients(task, history, item, steps)
    elif hasattr(backbone, "propagate"):
        values, score, base, delta = _edge_gradients(task, task.user_index[user], history, item, steps)
    else:
        values, score, base, delta = _fold_in(task, task.user_index[user], history, item)
    return Explanation(user, task.items[item], values.detach().cpu(), score, base, delta,
                       items=[task.items[i] for i in history])


def _history(task: Recommendation, user: str, given: list[int] | None) -> list[int]:
    if given is None:
        index = task.user_index.get(user)
        if index is None:
            raise DataError(f"user {user!r} is not in the training data, so it has no history to explain; "
                            "give a history (sequential backbones)")
        given = task.train_sequences[index] if task.sequential else task.train_items[index]
    if not given:
        raise DataError(f"user {user!r}: no history item in the model's catalogue to explain a "
                        "recommendation by")
    return list(given)


def _target(task: Recommendation, user: str, history: list[int], target: str | None) -> int:
    if target is None:
        listing = (task._recommend_from_history(user, [task.items[i] for i in history], 1) if task.sequential
                   else task.recommend(user, k=1))
        target = listing["items"][0]["item"]
    index = task.item_index.get(str(target))
    if index is None:
        raise DataError(f"--target: unknown item {str(target)!r}; the model's catalogue has "
                        f"{len(task.items)} items (e.g. {', '.join(map(repr, task.items[:3]))})")
    return index


Attribution = tuple[torch.Tensor, float, float, float]


def _sequence_gradients(task: Recommendation, history: list[int], item: int, steps: int) -> Attribution:
    from captum.attr import IntegratedGradients

    backbone = task.model.backbone
    device = task._device()
    histories = history_tensor([history], backbone.max_length).to(device)
    wanted = backbone.item_vectors(torch.tensor([item], device=device))

    def score(embeddings: torch.Tensor) -> torch.Tensor:
        hidden = backbone.encode(embeddings, histories.expand(len(embeddings), -1))
        return task._score(hidden[:, -1], wanted)[:, 0].float()

    embeddings = backbone.items(histories).detach()
    attributions, delta = IntegratedGradients(score).attribute(
        embeddings, baselines=torch.zeros_like(embeddings), n_steps=steps, internal_batch_size=32,
        return_convergence_delta=True)
    with torch.no_grad():
        ends = score(torch.cat([embeddings, torch.zeros_like(embeddings)]))
    return attributions[0].sum(-1), ends[0].item(), ends[1].item(), float(delta[0])


def _edge_gradients(task: Recommendation, user: int, history: list[int], item: int,
                    steps: int) -> Attribution:
    from captum.attr import IntegratedGradients

    backbone = task.model.backbone
    device = task._device()
    nodes = torch.tensor(history, device=device) + backbone.num_users
    weights = _csr_row(backbone.adjacency, user)[nodes]  # the normalised adjacency of the user's edges

    def score(presence: torch.Tensor) -> torch.Tensor:
        return torch.stack([_propagated_score(task, user, nodes, weights * (row - 1), item)
                            for row in presence])

    ones = torch.ones(1, len(history), device=device)
    attributions, delta = IntegratedGradients(score).attribute(
        ones, baselines=torch.zeros_like(ones), n_steps=steps, return_convergence_delta=True)
    with torch.no_grad():
        ends = score(torch.cat([ones, torch.zeros_like(ones)]))
    return attributions[0], ends[0].item(), ends[1].item(), float(delta[0])


def _propagated_score(task: Recommendation, user: int, nodes: torch.Tensor, change: torch.Tensor,
                      item: int) -> torch.Tensor:
    """LightGCN's score of ``item`` for ``user`` with ``change`` added to the adjacency values of
    the user's edges to ``nodes`` (both directions)."""
    backbone = task.model.backbone
    layer = backbone.embeddings.weight.detach()
    total = layer
    for _ in range(backbone.config.layers):
        step = backbone.adjacency @ layer
        step = step.index_add(0, torch.tensor([user], device=layer.device),
                              (change.unsqueeze(1) * layer[nodes]).sum(0, keepdim=True))
        layer = step.index_add(0, nodes, change.unsqueeze(1) * layer[user])
        total = total + layer
    mean = total / (backbone.config.layers + 1)
    node = backbone.num_users + item
    return task._score(mean[user:user + 1], mean[node:node + 1])[0, 0]


def _csr_row(matrix: torch.Tensor, row: int) -> torch.Tensor:
    """One row of a sparse CSR matrix, dense."""
    start, end = matrix.crow_indices()[row].item(), matrix.crow_indices()[row + 1].item()
    dense = torch.zeros(matrix.shape[1], dtype=matrix.dtype, device=matrix.device)
    return dense.index_put_((matrix.col_indices()[start:end],), matrix.values()[start:end], accumulate=True)


@torch.no_grad()
def _fold_in(task: Recommendation, user: int, history: list[int], item: int) -> Attribution:
    backbone = task.model.backbone
    device = task._device()
    user_vector = backbone.user_vectors(torch.tensor([user], device=device))[0].float()
    vectors = backbone.item_vectors(torch.tensor(history, device=device)).float()
    wanted = backbone.item_vectors(torch.tensor([item], device=device))[0].float()
    if task.config.similarity == "cosine":
        user_vector, wanted = (v / v.norm().clamp(min=1e-12) for v in (user_vector, wanted))
    gram = vectors @ vectors.T
    ridge = RIDGE * gram.diagonal().mean().clamp(min=1e-12)
    shares = torch.linalg.solve(gram + ridge * torch.eye(len(history), device=device), vectors @ user_vector)
    values = shares * (vectors @ wanted)
    residual = (user_vector - shares @ vectors) @ wanted
    score = (user_vector @ wanted).item()
    return values, score, residual.item(), score - residual.item() - values.sum().item()
