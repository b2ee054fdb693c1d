"""Leak-free splits of implicit feedback: leave-last-out, random, and cold-start items.

Training examples are ``Positive(user, item)`` pairs. Validation and test examples are one
``EvalUser`` per user: the held-out items to find, the items to mask (what the user already
had: training items, and at test time also validation items), and optionally the candidates
to rank (the cold items) instead of the whole catalogue.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from omnitune.data import Splits
from omnitune.errors import DataError
from omnitune_recsys.interactions import Interaction
from omnitune_recsys.plugin import InteractionSplitOptions

log = logging.getLogger("omnitune")


class Positive(NamedTuple):
    """A training interaction, as catalogue indices."""

    user: int
    item: int


class EvalUser(NamedTuple):
    """One user to evaluate: find ``targets`` among the candidates, never ranking ``masked``."""

    user: int
    targets: tuple[int, ...]
    masked: tuple[int, ...]
    candidates: tuple[int, ...] | None = None  # None: the whole catalogue
    history: tuple[int, ...] | None = None  # what the user had before the targets, in time order


def make_splits(events: Sequence[Interaction], options: InteractionSplitOptions,
                item_texts: dict[str, str] | None) -> Splits:
    """Index users and items, hold out cold items if asked, split the rest, and describe the
    catalogue in ``info`` (ids, item texts, training items per user, popularity)."""
    if not events:
        raise DataError("no interactions left after the rating threshold and the minimum counts; "
                        "lower dataset.rating_threshold or dataset.min_user_interactions")
    users = sorted({e.user for e in events})
    items = sorted({e.item for e in events})
    user_index = {u: i for i, u in enumerate(users)}
    item_index = {it: i for i, it in enumerate(items)}
    cold = _draw_cold_items(items, options.cold_item_fraction, options.seed)
    by_user: dict[int, list[int]] = defaultdict(list)
    cold_by_user: dict[int, list[int]] = defaultdict(list)
    for event in sorted(events, key=lambda e: (e.timestamp, e.order)):
        target = cold_by_user if event.item in cold else by_user
        target[user_index[event.user]].append(item_index[event.item])
    if options.split == "leave-last-out":
        train, validation, test = _leave_last_out(by_user)
    else:
        train, validation, test = _random_split(by_user, options)
    if cold:
        test = [EvalUser(user, tuple(chosen), (), tuple(sorted(item_index[i] for i in cold)))
                for user, chosen in sorted(cold_by_user.items()) if train.get(user)]
    info = {
        "users": users,
        "items": items,
        "item_texts": _texts_in_order(items, item_texts),
        "train_items": [sorted(train.get(u, ())) for u in range(len(users))],
        "train_sequences": [_in_time_order(train.get(u, []), by_user.get(u, [])) for u in range(len(users))],
        "popularity": _popularity(train, len(items)),
        "cold_items": sorted(item_index[i] for i in cold),
        "split": options.split,
    }
    positives = [Positive(user, item) for user, chosen in sorted(train.items()) for item in chosen]
    return Splits(positives, validation, test, info)


def _leave_last_out(by_user: dict[int, list[int]]) -> tuple[dict[int, list[int]], list[EvalUser],
                                                             list[EvalUser]]:
    """Each user's last item is test, the one before validation; users with fewer than three
    items keep them all for training."""
    train, validation, test = {}, [], []
    for user, chosen in sorted(by_user.items()):
        if len(chosen) < 3:
            train[user] = chosen
            continue
        train[user] = chosen[:-2]
        earlier, before_test = tuple(chosen[:-2]), tuple(chosen[:-1])
        validation.append(EvalUser(user, (chosen[-2],), tuple(sorted(earlier)), history=earlier))
        test.append(EvalUser(user, (chosen[-1],), tuple(sorted(before_test)), history=before_test))
    return train, validation, test


def _random_split(by_user: dict[int, list[int]], options: InteractionSplitOptions) -> tuple[
        dict[int, list[int]], list[EvalUser], list[EvalUser]]:
    """Interactions drawn at random into the three splits; users are evaluated only where they
    have training items (a user without history is a cold-start user, not measured here)."""
    pairs = [(user, item) for user, chosen in sorted(by_user.items()) for item in chosen]
    random.Random(options.seed).shuffle(pairs)
    n_test = round(options.test_fraction * len(pairs))
    n_validation = round(options.validation_fraction * len(pairs))
    test_items = _by_user(pairs[:n_test])
    validation_items = _by_user(pairs[n_test:n_test + n_validation])
    train = _by_user(pairs[n_test + n_validation:])
    validation = [EvalUser(u, tuple(sorted(chosen)), tuple(sorted(train[u])))
                  for u, chosen in sorted(validation_items.items()) if train.get(u)]
    test = [EvalUser(u, tuple(sorted(chosen)), tuple(sorted(train[u] + validation_items.get(u, []))))
            for u, chosen in sorted(test_items.items()) if train.get(u)]
    return train, validation, test


def _by_user(pairs: Sequence[tuple[int, int]]) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = defaultdict(list)
    for user, item in pairs:
        grouped[user].append(item)
    return dict(grouped)


def _draw_cold_items(items: list[str], fraction: float, seed: int) -> set[str]:
    if fraction == 0:
        return set()
    count = max(1, round(fraction * len(items)))
    return set(random.Random(f"cold:{seed}").sample(items, count))


def _in_time_order(items: Sequence[int], ordered: Sequence[int]) -> list[int]:
    """``items`` in the order they have in ``ordered`` (a user's items by time)."""
    kept = set(items)
    return [item for item in ordered if item in kept]


def _texts_in_order(items: list[str], texts: dict[str, str] | None) -> list[str] | None:
    if texts is None:
        return None
    missing = [item for item in items if item not in texts]
    if missing:
        log.warning("%d item(s) have no row in the item file (first: %r); their text is empty",
                    len(missing), missing[0])
    return [texts.get(item, "") for item in items]


def _popularity(train: dict[int, list[int]], num_items: int) -> list[int]:
    counts = Counter(item for chosen in train.values() for item in chosen)
    return [counts[i] for i in range(num_items)]

