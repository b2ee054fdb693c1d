"""A search space over a run config's dotted keys, checked against the config models before any
trial runs.

```yaml
train.lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
train.epochs: {type: int, low: 1, high: 3}
train.batch_size: {type: categorical, choices: [16, 32]}
backbone.pooling: {type: categorical, choices: [mean, cls]}
```
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from omnitune.config import load_config, read_yaml, validate_components
from omnitune.errors import ConfigError
from omnitune.registry import Registry, format_validation_error

RESERVED_KEYS = ("output_dir", "overwrite")
Scalar = bool | int | float | str | None


class FloatParam(BaseModel):
    """A float drawn from ``[low, high]``, on a log scale with ``log: true``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0, description="Discretise: low, low + step, ...")

    @model_validator(mode="after")
    def _check_range(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self

    def suggest(self, trial: Any, key: str) -> float:
        return trial.suggest_float(key, self.low, self.high, log=self.log, step=self.step)

    def extremes(self) -> list[float]:
        return [self.low, self.high]


class IntParam(BaseModel):
    """An integer drawn from ``[low, high]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _check_range(self) -> IntParam:
        _check_range(self.low, self.high, self.log, None if self.step == 1 else self.step)
        return self

    def suggest(self, trial: Any, key: str) -> int:
        return trial.suggest_int(key, self.low, self.high, log=self.log, step=self.step)

    def extremes(self) -> list[int]:
        return [self.low, self.high]


class CategoricalParam(BaseModel):
    """One of ``choices``: scalars, or lists for a list-valued field (``task.scale: [[0.35, 1.0],
    [1.0, 1.0]]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["categorical"]
    choices: list[Scalar | list[Scalar]] = Field(min_length=1)

    def suggest(self, trial: Any, key: str) -> Scalar | list[Scalar]:
        with warnings.catch_warnings():  # Optuna stores a list choice by its index, as any other
            warnings.filterwarnings("ignore", "Choices for a categorical distribution", UserWarning)
            return trial.suggest_categorical(key, self.choices)

    def extremes(self) -> list[Scalar | list[Scalar]]:
        return list(self.choices)


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]
Space = dict[str, Param]
_SPACE = TypeAdapter(dict[str, Param])


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high})")
    if log and low <= 0:
        raise ValueError(f"log: true needs low > 0 (got {low})")
    if log and step is not None:
        raise ValueError("log: true and step cannot be combined")


def load_space(source: str | Path | dict[str, Any]) -> Space:
    """Read a search space from a YAML file or a dict; a malformed entry names its key."""
    where = f" in {source}" if isinstance(source, str | Path) else ""
    data = read_yaml(Path(source)) if isinstance(source, str | Path) else dict(source)
    if not data:
        raise ConfigError(f"search space{where} is empty: give at least one key, e.g. "
                          "train.lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}")
    try:
        return _SPACE.validate_python(data)
    except ValidationError as error:
        raise ConfigError(f"invalid search space{where}:\n{format_validation_error(error)}") from error


def check_space(space: Space, base: dict[str, Any], registry: Registry) -> None:
    """Refuse a key the run config does not have, or a value at either end of a range (or any
    choice) that the config's own models reject, naming the key; nothing is built."""
    for key, param in space.items():
        if key.split(".")[0] in RESERVED_KEYS:
            raise ConfigError(f"search space: {key!r} cannot be searched; the search sets it per trial")
        for value in param.extremes():
            try:
                run = load_config(with_values(base, {key: value}))
                validate_components(run, registry)
            except ConfigError as error:
                raise ConfigError(
                    f"search space: {key} = {value!r} is refused by the run config: {error}"
                ) from error


def with_values(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of the config dict ``base`` with each dotted key set to its value."""
    data = copy.deepcopy(base)
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            child = node.get(part)
            if isinstance(child, str):  # "head: linear" shorthand
                child = {"name": child}
            if not isinstance(child, dict):
                raise ConfigError(f"search space: {key!r}: {part!r} is not a section of the run config")
            node[part] = child = dict(child)
            node = child
        node[leaf] = value
    return data
