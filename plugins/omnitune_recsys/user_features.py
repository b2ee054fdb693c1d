"""Categorical user features as indices: one vocabulary per column, index 0 for unknown."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from omnitune.errors import DataError

UNKNOWN = 0

log = logging.getLogger("omnitune")


def encode_user_features(users: Sequence[str], features: Mapping[str, Mapping[str, str]],
                         columns: Sequence[str]) -> dict[str, Any]:
    """Each column's vocabulary (values of the given users, sorted; index ``i + 1``) and each
    user's indices, in ``users`` order. Users without a row, and empty values, get ``UNKNOWN``."""
    missing = [user for user in users if user not in features]
    if missing:
        log.warning("%d user(s) have no row in the user file (first: %r); their features are unknown",
                    len(missing), missing[0])
    vocabularies = {column: sorted({features[u][column] for u in users if features.get(u, {}).get(column)})
                    for column in columns}
    info = {"columns": list(columns), "vocabularies": vocabularies}
    return info | {"indices": [feature_indices(info, features.get(user, {})) for user in users]}


def feature_indices(info: Mapping[str, Any], given: Mapping[str, Any]) -> list[int]:
    """The index of each column's value in ``given`` (absent or unseen values: ``UNKNOWN``);
    a column the model does not know is an error that lists the ones it does."""
    unknown = sorted(set(given) - set(info["columns"]))
    if unknown:
        raise DataError(f"unknown user feature(s) {unknown}; the model's user features are {info['columns']}")
    return [_index(info["vocabularies"][column], given.get(column)) for column in info["columns"]]


def vocabulary_sizes(info: Mapping[str, Any]) -> list[int]:
    """Rows each column's embedding needs (its values plus ``UNKNOWN``)."""
    return [len(info["vocabularies"][column]) + 1 for column in info["columns"]]


def _index(vocabulary: Sequence[str], value: Any) -> int:
    if value is None:
        return UNKNOWN
    text = str(value).strip()
    return vocabulary.index(text) + 1 if text in vocabulary else UNKNOWN
