"""The recommendation task: implicit-feedback retrieval trained with BPR or sampled softmax,
evaluated by ranking the whole catalogue, and queried with ``recommend`` / ``similar_items``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from omnitune.errors import ConfigError, DataError
from omnitune.task import StepOutput, Task
from omnitune_recsys.backbones import Catalogue
from omnitune_recsys.plugin import METRICS, RecommendationConfig
from omnitune_recsys.ranking import eval_batch, rank_metrics
from omnitune_recsys.sampling import NegativeSampler, SeenPairs, negative_weights
from omnitune_recsys.sasrec import history_tensor, training_windows
from omnitune_recsys.splits import EvalUser, Positive
from omnitune_recsys.user_features import UNKNOWN, feature_indices

if TYPE_CHECKING:
    from omnitune.explain import Explanation


class Recommender(nn.Module):
    """Wraps a backbone so that the loop (and DDP) sees one ``forward``: the vectors of
    ``users`` (or, for a sequential backbone, of every position of ``histories``) and of
    ``items`` (``None``: every item)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, users: torch.Tensor | None = None, items: torch.Tensor | None = None,
                histories: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if histories is not None:
            return self.backbone.history_vectors(histories), self.backbone.item_vectors(items)
        if hasattr(self.backbone, "vectors"):  # graph backbones: one propagation for both sides
            return self.backbone.vectors(users, items)
        return self.backbone.user_vectors(users), self.backbone.item_vectors(items)


class Recommendation(Task):
    """Top-k item retrieval from implicit feedback. The ``head`` option is not used: both towers
    end in their own embeddings."""

    metrics = METRICS
    monitor = "ndcg_at_10"
    monitor_mode = "max"

    def __init__(self, config: RecommendationConfig, *, backbone: nn.Module,
                 head: Callable[[int, int], nn.Module], data_info: dict[str, Any]) -> None:
        if not hasattr(backbone, "build"):
            raise ConfigError("recommendation needs a recommendation backbone (mf, two-tower, lightgcn, "
                              f"sasrec, gru4rec), got {type(backbone).__name__}")
        self.config = config
        self.users: list[str] = data_info["users"]
        self.items: list[str] = data_info["items"]
        self.item_texts: list[str] | None = data_info.get("item_texts")
        self.user_index = {user: i for i, user in enumerate(self.users)}
        self.item_index = {item: i for i, item in enumerate(self.items)}
        self.train_items: list[list[int]] = data_info["train_items"]
        self.popularity = torch.tensor(data_info["popularity"], dtype=torch.float32)
        self.sequential = bool(getattr(backbone, "sequential", False))
        self.train_sequences: list[list[int]] = data_info.get("train_sequences") or self.train_items
        self.positions = [{item: t for t, item in enumerate(sequence)} for sequence in self.train_sequences]
        backbone.build(Catalogue(len(self.users), len(self.items), self.item_texts, data_info["popularity"],
                                 data_info.get("user_features"), self.train_items))
        self.model = Recommender(backbone)
        weights = negative_weights(data_info["popularity"], config.negatives, config.popularity_exponent)
        self.seen = SeenPairs(self.train_items, len(self.items))
        self.sampler = NegativeSampler(self.seen, weights)

    # -- training and evaluation ---------------------------------------------------------

    def collate(self, examples: list[Positive | EvalUser]) -> dict[str, torch.Tensor]:
        if isinstance(examples[0], EvalUser):
            batch = eval_batch(examples, len(self.items))
            if self.sequential:
                batch["histories"] = self._histories([self.train_sequences[e.user] if e.history is None
                                                      else e.history for e in examples])
            return batch
        if self.sequential:
            return self._windows(examples)
        users = torch.tensor([e.user for e in examples])
        positives = torch.tensor([e.item for e in examples])
        if self.config.loss == "full-softmax":
            return {"users": users, "positives": positives}
        if self.config.loss == "bpr":
            return {"users": users, "positives": positives,
                    "negatives": self.sampler.sample(users, self.config.num_negatives)}
        # in-batch negatives the user trained on (another row's positive) are masked, not pushed down
        false_negatives = self.seen.contains(users.unsqueeze(1), positives.unsqueeze(0)).fill_diagonal_(False)
        return {"users": users, "positives": positives, "false_negatives": false_negatives}

    def num_items(self, batch: dict[str, torch.Tensor]) -> int:
        return int((batch["targets"] >= 0).sum()) if "inputs" in batch else len(batch["users"])

    def _windows(self, examples: list[Positive]) -> dict[str, torch.Tensor]:
        """Next-item windows for a sequential backbone. Each training pair ends a window (of up
        to ``max_length`` predictions) with probability ``1 / max_length``, so that an epoch
        predicts every pair about once, from windows that start anywhere."""
        length = self.model.backbone.max_length
        ends = [(e.user, self.positions[e.user][e.item]) for e in examples]
        ends = [(user, position) for user, position in ends if position > 0]
        if not ends:  # only first items, which have no history to be predicted from
            user = max(range(len(self.train_sequences)), key=lambda u: len(self.train_sequences[u]))
            ends = [(user, len(self.train_sequences[user]) - 1)]
        keep = (torch.rand(len(ends)) < 1 / length).nonzero().flatten().tolist() or [0]
        inputs, targets = training_windows([self.train_sequences[ends[i][0]] for i in keep],
                                           [ends[i][1] for i in keep], length)
        return {"inputs": inputs, "targets": targets}

    def _histories(self, histories: Sequence[Sequence[int]]) -> torch.Tensor:
        return history_tensor(histories, self.model.backbone.max_length)

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        if "inputs" in batch:
            hidden, item_vectors = model(histories=batch["inputs"])
            logits = self._score(hidden, item_vectors) / self.config.temperature
            return StepOutput(F.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten()))
        users, positives = batch["users"], batch["positives"]
        if self.config.loss == "full-softmax":
            user_vectors, item_vectors = model(users)
            logits = self._score(user_vectors, item_vectors) / self.config.temperature
            return StepOutput(F.cross_entropy(logits, positives))
        if self.config.loss == "bpr":
            negatives = batch["negatives"]
            user_vectors, item_vectors = model(users, torch.cat([positives, negatives.flatten()]))
            positive_vectors = item_vectors[:len(users)]
            negative_vectors = item_vectors[len(users):].view(*negatives.shape, -1)
            positive = self._score(user_vectors, positive_vectors, pairwise=True)
            negative = self._score(user_vectors.unsqueeze(1), negative_vectors, pairwise=True)
            return StepOutput(-F.logsigmoid(positive.unsqueeze(1) - negative).mean())
        user_vectors, item_vectors = model(users, positives)
        logits = self._score(user_vectors, item_vectors) / self.config.temperature
        logits = logits.masked_fill(batch["false_negatives"], float("-inf"))
        return StepOutput(F.cross_entropy(logits, torch.arange(len(users), device=logits.device)))

    def evaluation_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        """Rank the whole catalogue for each user; the loss is the cross-entropy of the held-out
        items under a softmax over the items not masked."""
        if "histories" in batch:
            hidden, item_vectors = model(histories=batch["histories"])
            user_vectors = hidden[:, -1]
        else:
            user_vectors, item_vectors = model(batch["users"])
        scores = self._score(user_vectors, item_vectors).float()
        log_probs = (scores / self.config.temperature).masked_fill(batch["excluded"], float("-inf"))
        log_probs = log_probs.log_softmax(dim=1)
        targets = batch["targets"]
        loss = -(log_probs.masked_fill(~targets, 0).sum(1) / targets.sum(1).clamp(min=1)).mean()
        return StepOutput(loss, rank_metrics(scores, targets, batch["excluded"]))

    def popularity_outputs(self, examples: Sequence[EvalUser],
                           batch_size: int = 256) -> dict[str, torch.Tensor]:
        """The per-user ranking metrics of the popularity baseline (training interaction counts
        as every user's scores) on ``examples``, masked as the model's are (for reports)."""
        parts = []
        for start in range(0, len(examples), batch_size):
            batch = eval_batch(examples[start:start + batch_size], len(self.items))
            scores = self.popularity.expand(len(batch["users"]), -1)
            parts.append(rank_metrics(scores, batch["targets"], batch["excluded"]))
        return {name: torch.cat([part[name] for part in parts]) for name in parts[0]} if parts else {}

    # -- prediction ----------------------------------------------------------------------

    def encode_inputs(self, inputs: list[Any]) -> dict[str, Any]:
        """Each input is a user id, or ``{"user": id, "features": {column: value}}``, or (sequential
        backbones) ``{"user": id, "history": [item ids in time order]}``."""
        return {"queries": [_query(value) for value in inputs]}

    def predict_step(self, model: nn.Module, batch: dict[str, Any]) -> list[dict[str, Any]]:
        return [self.recommend(user, features=features, history=history)
                for user, features, history in batch["queries"]]

    @torch.no_grad()
    def recommend(self, user_id: str | int, k: int | None = None, features: Mapping[str, Any] | None = None,
                  history: Sequence[str | int] | None = None) -> dict[str, Any]:
        """The top ``k`` items for a user, leaving out what the user had in training
        (``basis: history``). With a sequential backbone, ``history`` (item ids in time order)
        is read at prediction time instead, so a new user with a few clicks is answered without
        retraining (``basis: given history``). A user the model never saw is scored from
        ``features`` when given and the model has user features (``basis: features``), else gets
        the most popular items (``basis: popular``); either way the answer says so."""
        k = min(k or self.config.top_k, len(self.items))
        user = str(user_id)
        index = self.user_index.get(user)
        if history is not None:
            return self._recommend_from_history(user, [str(item) for item in history], k)
        if index is not None:
            scores = self._known_user_scores(index)
            scores[self.train_items[index]] = float("-inf")
            return {"user": user, "known_user": True, "basis": "history",
                    "items": self._listing(scores.topk(k))}
        if features:
            return self._recommend_from_features(user, features, k)
        return self._popular(user, k, "not in the training data")

    def _known_user_scores(self, index: int) -> torch.Tensor:
        if self.sequential:
            return self._history_scores(self.train_sequences[index])
        user_vectors, item_vectors = self.model(torch.tensor([index], device=self._device()))
        return self._score(user_vectors, item_vectors)[0].float()

    def _history_scores(self, history: Sequence[int]) -> torch.Tensor:
        """Scores of every item as the next one after ``history`` (catalogue indices)."""
        hidden, item_vectors = self.model(histories=self._histories([history]).to(self._device()))
        return self._score(hidden[:, -1], item_vectors)[0].float()

    def _recommend_from_history(self, user: str, history: list[str], k: int) -> dict[str, Any]:
        """Score the next item after ``history``, leaving its items out; unknown items are skipped."""
        if not self.sequential:
            backbone = type(self.model.backbone).__name__
            raise DataError(f"user {user!r}: a history was given but the {backbone} backbone "
                            "does not read histories; train a sequential backbone (sasrec, gru4rec)")
        known = [self.item_index[item] for item in history if item in self.item_index]
        skipped = [item for item in history if item not in self.item_index]
        if not known:
            return self._popular(user, k, f"none of its history items {history[:5]} are in the catalogue")
        scores = self._history_scores(known)
        scores[known] = float("-inf")
        answer = {"user": user, "known_user": user in self.user_index, "basis": "given history",
                  "items": self._listing(scores.topk(min(k, len(self.items) - len(set(known)))))}
        if skipped:
            answer["note"] = f"history items not in the catalogue were skipped: {skipped[:5]}"
        return answer

    def _recommend_from_features(self, user: str, features: Mapping[str, Any], k: int) -> dict[str, Any]:
        """Score an unknown user from its categorical features alone."""
        info = getattr(self.model.backbone, "user_feature_info", None)
        if info is None:
            raise DataError(f"user {user!r}: features were given but this model has no user features; "
                            "train a two-tower backbone on a dataset with a user file")
        indices = feature_indices(info, features)
        if all(index == UNKNOWN for index in indices):
            why = f"not in the training data and none of its features {dict(features)} were seen in training"
            return self._popular(user, k, why)
        device = self._device()
        user_vectors = self.model.backbone.feature_user_vectors(torch.tensor([indices], device=device))
        scores = self._score(user_vectors, self.model.backbone.item_vectors(None))[0].float()
        return {"user": user, "known_user": False, "basis": "features",
                "items": self._listing(scores.topk(k)),
                "note": f"unknown user {user!r}: not in the training data, so these items are scored "
                        f"from its features {dict(features)}"}

    def _popular(self, user: str, k: int, why: str) -> dict[str, Any]:
        order = torch.sort(self.popularity, descending=True, stable=True).indices[:k]  # ties: catalogue order
        return {"user": user, "known_user": False, "basis": "popular",
                "items": self._listing(torch.return_types.topk((self.popularity[order], order))),
                "note": f"unknown user {user!r}: {why}, so these are the most popular items"}

    def explain_input(self, raw: Any, target: str | None, steps: int) -> Explanation:
        """Which history items made the model recommend ``target`` (default: its top item) to the
        user ``raw`` (an id, or ``{"user": id, "history": [...]}`` for sequential backbones)."""
        from omnitune_recsys.explain import explain_recommendation

        user, _, given = _query(raw)
        if given is not None and not self.sequential:
            backbone = type(self.model.backbone).__name__
            raise DataError(f"user {user!r}: a history was given but the {backbone} backbone does not "
                            "read histories; explain a known user by id")
        history = None if given is None else [self.item_index[str(i)] for i in given
                                              if str(i) in self.item_index]
        return explain_recommendation(self, user, history, target, steps)

    @torch.no_grad()
    def similar_items(self, item_id: str | int, k: int | None = None) -> dict[str, Any]:
        """The ``k`` items whose vectors are closest (cosine) to ``item_id``'s."""
        index = self.item_index.get(str(item_id))
        if index is None:
            raise DataError(f"unknown item {str(item_id)!r}: the model's catalogue has {len(self.items)} "
                            f"items (e.g. {', '.join(map(repr, self.items[:3]))})")
        k = min(k or self.config.top_k, len(self.items) - 1)
        vectors = F.normalize(self.model.backbone.item_vectors(None).float(), dim=1)
        scores = vectors @ vectors[index]
        scores[index] = float("-inf")
        return {"item": str(item_id), "text": self._text(index), "items": self._listing(scores.topk(k))}

    def preprocessing(self) -> dict[str, Any]:
        return {"users": len(self.users), "items": len(self.items), "similarity": self.config.similarity,
                "top_k": self.config.top_k,
                "unknown_user": "scored from features when given and the model has user features, "
                                "else the most popular items"}

    # -- helpers -------------------------------------------------------------------------

    def _score(self, users: torch.Tensor, items: torch.Tensor, pairwise: bool = False) -> torch.Tensor:
        """Dot or cosine scores: each user against each item, or row by row with ``pairwise``."""
        if self.config.similarity == "cosine":
            users, items = F.normalize(users, dim=-1), F.normalize(items, dim=-1)
        return (users * items).sum(-1) if pairwise else users @ items.T

    def _listing(self, top: torch.return_types.topk) -> list[dict[str, Any]]:
        return [{"item": self.items[i], "score": round(s, 4), "text": self._text(i)}
                for s, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]

    def _text(self, index: int) -> str | None:
        return self.item_texts[index] if self.item_texts else None

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device


def _query(value: Any) -> tuple[str, Mapping[str, Any] | None, list[Any] | None]:
    """``(user id, features, history)`` of a predict input: an id, or a dict with ``user`` and
    ``features`` or ``history``."""
    if isinstance(value, Mapping):
        if "user" not in value:
            raise DataError(f"a recommendation input dict needs a 'user' key, got keys {sorted(value)}")
        history = value.get("history")
        if history is not None and (isinstance(history, str | bytes) or not isinstance(history, Sequence)):
            raise DataError(f"user {value['user']!r}: 'history' must be a list of item ids, got {history!r}")
        return str(value["user"]), value.get("features"), None if history is None else list(history)
    return str(value), None, None
