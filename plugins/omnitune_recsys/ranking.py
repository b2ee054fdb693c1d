"""Full-catalogue ranking metrics per user, and baselines scored the same way.

A user's held-out items are ranked against every item of the catalogue (or against the given
candidates), with the items the user already had masked out. Each metric is one value per
user; the registered metrics average them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from omnitune_recsys.plugin import CUTOFFS
from omnitune_recsys.splits import EvalUser

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


def eval_batch(examples: Sequence[EvalUser], num_items: int) -> dict[str, torch.Tensor]:
    """Users, multi-hot targets and the mask of items never to rank, as tensors."""
    targets = torch.zeros(len(examples), num_items, dtype=torch.bool)
    excluded = torch.zeros(len(examples), num_items, dtype=torch.bool)
    for row, example in enumerate(examples):
        targets[row, list(example.targets)] = True
        excluded[row, list(example.masked)] = True
        if example.candidates is not None:
            outside = torch.ones(num_items, dtype=torch.bool)
            outside[list(example.candidates)] = False
            excluded[row] |= outside
    return {"users": torch.tensor([e.user for e in examples]), "targets": targets, "excluded": excluded}


def rank_metrics(scores: torch.Tensor, targets: torch.Tensor, excluded: torch.Tensor,
                 cutoffs: Sequence[int] = CUTOFFS) -> dict[str, torch.Tensor]:
    """Recall@K, NDCG@K, HitRate@K, MRR@K and MRR per user (row) of ``scores``, as RecBole
    defines them: Recall@K is hits in the top K over the user's held-out items, NDCG@K divides by
    the ideal DCG of min(K, held-out) hits, MRR@K is 1 / rank of the first hit in the top K (else 0).

    Ties rank by item index within the top K; the uncut MRR counts only strictly higher scores.
    """
    scores = scores.float().masked_fill(excluded, float("-inf"))
    depth = min(max(cutoffs), scores.shape[1])
    top = scores.topk(depth, dim=1).indices
    hits = targets.gather(1, top).float()
    relevant = targets.sum(dim=1).float().clamp(min=1)
    ranks = torch.arange(1, depth + 1, dtype=torch.float32, device=scores.device)
    discounts = 1.0 / torch.log2(ranks + 1)
    results = {}
    for k in cutoffs:
        ideal = torch.cumsum(discounts, 0)[(relevant.clamp(max=min(k, depth)) - 1).long()]
        results[f"recall_at_{k}"] = hits[:, :k].sum(dim=1) / relevant
        results[f"ndcg_at_{k}"] = (hits[:, :k] * discounts[:k]).sum(dim=1) / ideal
        results[f"hitrate_at_{k}"] = (hits[:, :k].sum(dim=1) > 0).float()
        results[f"mrr_at_{k}"] = (hits[:, :k] / ranks[:k]).max(dim=1).values
    best_target = scores.masked_fill(~targets, float("-inf")).max(dim=1, keepdim=True).values
    results["mrr"] = 1.0 / ((scores > best_target).sum(dim=1).float() + 1)
    return results


def evaluate_scores(score_fn: ScoreFn, examples: Sequence[EvalUser], num_items: int,
                    batch_size: int = 256) -> dict[str, float]:
    """Mean ranking metrics of a scoring function ``users -> (len(users), num_items)`` scores:
    baselines (popularity, random) are measured exactly as a trained model is."""
    sums: dict[str, float] = {}
    for start in range(0, len(examples), batch_size):
        batch = eval_batch(examples[start:start + batch_size], num_items)
        per_user = rank_metrics(score_fn(batch["users"]), batch["targets"], batch["excluded"])
        for name, values in per_user.items():
            sums[name] = sums.get(name, 0.0) + values.sum().item()
    return {name: total / max(len(examples), 1) for name, total in sums.items()}


def popularity_scores(popularity: Sequence[int]) -> ScoreFn:
    """Every user gets the training popularity of each item as its score."""
    counts = torch.tensor(popularity, dtype=torch.float32)
    return lambda users: counts.expand(len(users), -1)


def random_scores(num_items: int, seed: int = 0) -> ScoreFn:
    """Uniformly random scores: the floor any model should beat."""
    generator = torch.Generator().manual_seed(seed)
    return lambda users: torch.rand(len(users), num_items, generator=generator)


def item_knn_scores(train_items: Sequence[Sequence[int]], num_items: int, neighbours: int = 100,
                    shrink: float = 0.0) -> ScoreFn:
    """ItemKNN (RecBole's definition): item-item cosine over the training interaction matrix,
    ``co(i, j) / (sqrt(n_i * n_j) + shrink)``, keeping each item's ``neighbours`` most similar
    items; a user's score of item j is the sum of j's similarities to the user's training items.
    The co-occurrence product is a torch sparse matrix product."""
    rows = torch.tensor([u for u, items in enumerate(train_items) for _ in items], dtype=torch.long)
    columns = torch.tensor([i for items in train_items for i in items], dtype=torch.long)
    matrix = torch.sparse_coo_tensor(torch.stack([rows, columns]), torch.ones(len(rows)),
                                     (len(train_items), num_items)).coalesce()
    co = torch.sparse.mm(matrix.t(), matrix).to_dense()
    norms = co.diagonal().sqrt()
    similarity = co / (norms.unsqueeze(1) * norms.unsqueeze(0) + shrink).clamp(min=1e-12)
    similarity.fill_diagonal_(0)
    top = similarity.topk(min(neighbours, num_items), dim=0)  # each item's (column's) neighbours
    kept = torch.zeros_like(similarity).scatter_(0, top.indices, top.values)
    return lambda users: torch.sparse.mm(_rows(matrix, users), kept)


def _rows(matrix: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
    return matrix.index_select(0, users)
