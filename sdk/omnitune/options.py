"""Base models for plugin options: strict, immutable, and the split fractions datasets share."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Options(BaseModel):
    """Base of every contribution's options model: unknown keys are errors, values are frozen,
    numbers are finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SplitFractions(Options):
    """Validation and test shares cut from one source; together they must leave some training."""

    validation_fraction: float = Field(0.1, ge=0, lt=1, description="Held out for validation.")
    test_fraction: float = Field(0.1, ge=0, lt=1, description="Held out for testing.")

    @model_validator(mode="after")
    def _fractions_leave_training(self) -> SplitFractions:
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError("validation_fraction + test_fraction must be below 1")
        return self


IMBALANCE_RATIO = 1.5
"""Training classes are imbalanced when the largest has more than this many times the examples
of the smallest; classification tasks then monitor macro-F1 (accuracy would reward the majority)."""

ClassWeights = Literal["balanced"] | dict[str, Annotated[float, Field(gt=0)]] | None


class ClassificationOptions(Options):
    """Options every classification task shares."""

    class_weights: ClassWeights = Field(
        "balanced", description="Weigh the loss per class: balanced (n / (k * count) from the training "
        "split; multi-label: positives weighed by negatives / positives per label), {label: "
        "weight} (multi-label: that label's positive weight; labels left out weigh 1), or null."
    )
