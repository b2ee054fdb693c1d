"""Vision datasets and image decoding on generated files: loaders, splits, bad images."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from vision_fixtures import picture, write_idx, write_image_folder

import omnitune
from omnitune_vision.datasets import fashion_mnist, image_folder, image_table
from omnitune_vision.images import open_rgb
from omnitune_vision.plugin import FashionMNISTConfig, ImageFolderConfig, ImageTableConfig
from omnitune_vision.records import ImageRecord, ImageSplit


def bad_images(folder: Path) -> dict[str, Path]:
    """A corrupt PNG, a truncated PNG and a text file named .jpg."""
    folder.mkdir(parents=True, exist_ok=True)
    encoded = io.BytesIO()
    picture("red", seed=0).save(encoded, format="PNG")
    png = encoded.getvalue()
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(png[:40] + bytes(range(256)) * 4 + png[-40:])
    truncated = folder / "truncated.png"
    truncated.write_bytes(png[: len(png) // 2])
    text = folder / "notes.jpg"
    text.write_text("these are my holiday notes, not a photo\n")
    return {"corrupt": corrupt, "truncated": truncated, "text": text}


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "text"])
def test_bad_image_is_a_data_error_naming_the_file(kind: str, tmp_path: Path) -> None:
    path = bad_images(tmp_path)[kind]
    with pytest.raises(omnitune.DataError, match="not a readable image") as caught:
        open_rgb(path)
    assert str(path) in str(caught.value)
    split = ImageSplit([ImageRecord(str(path), "red", str(path))], augment=False)
    with pytest.raises(omnitune.DataError, match=str(path)):
        split[0]


def test_bad_image_error_crosses_a_dataloader_worker(tmp_path: Path) -> None:
    path = bad_images(tmp_path)["truncated"]
    split = ImageSplit([ImageRecord(str(path), "red", str(path))], augment=False)
    loader = DataLoader(split, batch_size=1, num_workers=1, collate_fn=list)
    with pytest.raises(omnitune.DataError, match="truncated.png"):
        next(iter(loader))


def test_skip_counts_bad_images_and_collate_drops_them(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    root = write_image_folder(tmp_path / "images", ["red", "blue"], per_class=6)
    for path in bad_images(root / "red").values():
        assert path.parent.name == "red"
    config = ImageFolderConfig(train=str(root), validation_fraction=0, test_fraction=0, bad_files="skip")
    train = image_folder(config).train
    assert len(train) == 15  # 12 pictures and 3 bad files, all listed: nothing is decoded up front
    with caplog.at_level(logging.WARNING, logger="omnitune"):
        examples = [train[i] for i in range(len(train))]
    assert sorted(Path(name).name for name in train.skipped) == ["corrupt.png", "notes.jpg", "truncated.png"]
    assert sum(e.image is None for e in examples) == 3
    assert "truncated.png" in caplog.text

    from omnitune_vision.backbone import timm_backbone
    from omnitune_vision.classification import ImageClassification
    from omnitune_vision.plugin import ImageClassificationConfig, TimmBackboneConfig

    backbone = timm_backbone(TimmBackboneConfig(model="test_efficientnet", pretrained=False))
    task = ImageClassification(ImageClassificationConfig(image_size=32), backbone=backbone,
                               head=nn.Linear,
                               data_info={"labels": ["blue", "red"]})
    batch = task.collate(examples)
    assert batch["images"].shape == (12, 3, 32, 32) and len(batch["labels"]) == 12
    with pytest.raises(omnitune.DataError, match="every image of a batch was unreadable"):
        task.collate([e for e in examples if e.image is None])


def test_image_folder_splits_by_class(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "images", ["red", "green", "blue"], per_class=20)
    splits = image_folder(ImageFolderConfig(train=str(root), validation_fraction=0.2, test_fraction=0.1,
                                            max_eval_samples=5, seed=3))
    assert splits.info == {"labels": ["blue", "green", "red"]}
    labels = [r.label for r in splits.train.records]
    assert {name: labels.count(name) for name in set(labels)} == {"red": 14, "green": 14, "blue": 14}
    assert len(splits.validation) == 5 and len(splits.test) == 5
    names = [{r.name for r in s.records} for s in (splits.train, splits.validation, splits.test)]
    assert names[0].isdisjoint(names[1] | names[2])
    assert splits.train.augment and not splits.validation.augment
    assert splits.train[0].image.mode == "RGB"  # RGBA and JPEG files are decoded to RGB


def test_image_folder_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(omnitune.DataError, match="image folder not found"):
        image_folder(ImageFolderConfig(train=str(tmp_path / "nope")))
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(omnitune.DataError, match="no images found"):
        image_folder(ImageFolderConfig(train=str(tmp_path / "empty")))
    train = write_image_folder(tmp_path / "train", ["red", "blue"], per_class=3)
    validation = write_image_folder(tmp_path / "val", ["red", "white"], per_class=2)
    with pytest.raises(omnitune.DataError, match=r"validation split has label\(s\) \['white'\]"):
        image_folder(ImageFolderConfig(train=str(train), validation=str(validation)))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_image_table_resolves_paths_relative_to_the_file(suffix: str, tmp_path: Path) -> None:
    write_image_folder(tmp_path / "data" / "pics", ["red", "blue"], per_class=5)
    rows = [{"file": f"pics/{p.parent.name}/{p.name}", "colour": p.parent.name}
            for p in sorted((tmp_path / "data" / "pics").rglob("*.*"))]
    table = tmp_path / "data" / f"labels{suffix}"
    if suffix == ".csv":
        table.write_text("file,colour\n" + "".join(f"{r['file']},{r['colour']}\n" for r in rows))
    else:
        table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = ImageTableConfig(train=str(table), path_column="file", label_column="colour",
                              validation_fraction=0.2, test_fraction=0.0)
    splits = image_table(config)
    assert splits.info["labels"] == ["blue", "red"]
    assert len(splits.train) == 8 and len(splits.validation) == 2 and splits.test is None
    assert splits.train[0].image.size == (40, 40)


def test_image_table_names_row_of_a_missing_image(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "pics", ["red", "blue"], per_class=2)
    table = tmp_path / "t.csv"
    table.write_text("path,label\npics/red/0.png,red\npics/red/gone.png,red\npics/blue/0.png,blue\n")
    with pytest.raises(omnitune.DataError, match=r"t.csv, row 3: image file .*gone.png not found"):
        image_table(ImageTableConfig(train=str(table)))
    splits = image_table(ImageTableConfig(train=str(table), bad_files="skip", validation_fraction=0,
                                          test_fraction=0))
    assert len(splits.train) == 2
    table.write_text("path,label\n,red\n")
    with pytest.raises(omnitune.DataError, match="row 2: field 'path' should be an image path"):
        image_table(ImageTableConfig(train=str(table)))


def write_fashion_idx(folder: Path, train: int, test: int) -> Path:
    """The four Fashion-MNIST IDX files (train gzipped, test plain) with 28x28 pictures."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, count, suffix in (("train", train, ".gz"), ("t10k", test, "")):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (count, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(count) % 10)
    return folder


def test_fashion_mnist_from_a_folder_of_idx_files(tmp_path: Path) -> None:
    folder = write_fashion_idx(tmp_path / "fm", train=200, test=50)
    splits = fashion_mnist(FashionMNISTConfig(folder=str(folder), validation_fraction=0.1, seed=1))
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (180, 20, 50)
    assert sorted(r.label for r in splits.validation.records).count("Bag") == 2  # stratified
    assert splits.info["labels"][9] == "Ankle boot"
    example = splits.test[3]
    assert (example.label, example.image.size, example.image.mode) == ("Dress", (28, 28), "RGB")
    capped = fashion_mnist(FashionMNISTConfig(folder=str(folder), max_train_samples=30, max_eval_samples=7))
    assert (len(capped.train), len(capped.validation), len(capped.test)) == (30, 7, 7)


def test_fashion_mnist_rejects_broken_idx_files(tmp_path: Path) -> None:
    folder = write_fashion_idx(tmp_path / "fm", train=20, test=10)
    labels = folder / "t10k-labels-idx1-ubyte"
    write_idx(labels, np.arange(9) % 10)
    with pytest.raises(omnitune.DataError, match=r"t10k images \(10, 28, 28\) and labels \(9,\)"):
        fashion_mnist(FashionMNISTConfig(folder=str(folder)))
    labels.write_bytes(b"\x00\x00\x0d\x01" + bytes(8))
    with pytest.raises(omnitune.DataError, match="t10k-labels-idx1-ubyte: not an IDX file"):
        fashion_mnist(FashionMNISTConfig(folder=str(folder)))
    labels.write_bytes(b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + bytes(3))
    with pytest.raises(omnitune.DataError, match=r"needs 18 bytes, the file has 11"):
        fashion_mnist(FashionMNISTConfig(folder=str(folder)))
    with pytest.raises(omnitune.DataError, match="not a folder"):
        fashion_mnist(FashionMNISTConfig(folder=str(tmp_path / "none")))


def test_grayscale_and_alpha_become_rgb(tmp_path: Path) -> None:
    transparent = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    transparent.save(tmp_path / "clear.png")
    assert open_rgb(tmp_path / "clear.png").getpixel((0, 0)) == (255, 255, 255)  # laid on white
    Image.new("L", (8, 8), 77).save(tmp_path / "gray.png")
    assert open_rgb(tmp_path / "gray.png").getpixel((0, 0)) == (77, 77, 77)
    Image.fromarray(np.full((8, 8), 4000, dtype=np.uint16)).save(tmp_path / "deep.png")
    assert open_rgb(tmp_path / "deep.png").mode == "RGB"
