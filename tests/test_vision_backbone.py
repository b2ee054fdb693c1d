"""timm backbones: local checkpoints (never executing code), export and rebuild, layer depths."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

import omnitune
from omnitune.errors import AssetError
from omnitune_vision.backbone import timm_backbone
from omnitune_vision.plugin import TimmBackboneConfig
from omnitune_vision.weights import map_in_order, read_state_dict


def random_init(model: str = "test_efficientnet") -> TimmBackboneConfig:
    return TimmBackboneConfig(model=model, pretrained=False)


def test_pooled_features_and_layer_depths() -> None:
    backbone = timm_backbone(random_init())
    features = backbone(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, backbone.num_features)
    assert backbone.layer_index("model.conv_stem.weight") == 0
    depths = [backbone.layer_index(name) for name, _ in backbone.named_parameters()]
    assert depths == sorted(depths)  # stem, then blocks in order, then the head convolution
    assert max(depths) == backbone.num_layers - 1 and backbone.num_layers > 3


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_checkpoint_loads_with_its_classifier_ignored(suffix: str, tmp_path: Path) -> None:
    source = timm.create_model("test_resnet", pretrained=False, num_classes=7)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        save_file(source.state_dict(), path)
    else:
        torch.save({"state_dict": source.state_dict(), "epoch": 3}, path)
    config = TimmBackboneConfig(model="test_resnet", pretrained=False, checkpoint=str(path))
    loaded = timm_backbone(config).model.state_dict()
    assert torch.equal(loaded["conv1.0.weight"], source.state_dict()["conv1.0.weight"])
    assert not any(name.startswith("fc.") for name in loaded)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoint_that_would_run_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    marker = tmp_path / "ran"
    path.write_bytes(pickle.dumps(Exploit(str(marker))))
    with pytest.raises(AssetError, match="could not read weights safely"):
        read_state_dict(path)
    assert not marker.exists()


class Exploit:
    """Unpickling this with full pickle would create a file: weights_only must refuse it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (Path(self.marker),))


def test_checkpoint_of_another_architecture_is_an_asset_error(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file(timm.create_model("test_efficientnet", pretrained=False).state_dict(), path)
    with pytest.raises(AssetError, match=r"other.safetensors: does not fit ResNet"):
        timm_backbone(TimmBackboneConfig(model="test_resnet", pretrained=False, checkpoint=str(path)))


def test_export_rebuilds_without_fetching(tmp_path: Path) -> None:
    backbone = timm_backbone(random_init())
    backbone.export(tmp_path / "backbone")
    hub_config = TimmBackboneConfig(model="test_efficientnet", pretrained=True)  # not fetched
    rebuilt = timm_backbone(hub_config, export_dir=tmp_path / "backbone")
    assert rebuilt.data_config == backbone.data_config
    assert rebuilt.state_dict().keys() == backbone.state_dict().keys()


def test_unknown_architecture_suggests_close_names() -> None:
    with pytest.raises(omnitune.ConfigError, match="Did you mean: .*test_efficientnet"):
        timm_backbone(random_init("test_eficientnet"))


def test_pretrained_and_checkpoint_together_is_a_config_error(plugins: omnitune.Plugins) -> None:
    spec = plugins.registry.get("backbone", "timm")
    with pytest.raises(omnitune.ConfigError, match="either pretrained"):
        spec.validate_options({"model": "resnet18", "checkpoint": "w.pth"}, where="backbone")


def test_in_order_mapping_refuses_a_shape_mismatch(tmp_path: Path) -> None:
    target = {"a.weight": torch.zeros(3, 2), "a.bias": torch.zeros(3)}
    mapped = map_in_order({"x": torch.ones(3, 2), "y": torch.ones(3)}, target, tmp_path)
    assert torch.equal(mapped["a.bias"], torch.ones(3))
    with pytest.raises(AssetError, match=r"tensor 1 has shape \(4,\), but a.bias expects \(3,\)"):
        map_in_order({"x": torch.ones(3, 2), "y": torch.ones(4)}, target, tmp_path)
