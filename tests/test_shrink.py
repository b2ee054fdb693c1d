"""Smaller encoders from their own weights: kept layers, attention heads removed for good."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch.nn.utils import prune

from omnitune.errors import ConfigError
from omnitune_text.backbone import transformers_backbone
from omnitune_text.plugin import TransformersBackboneConfig
from omnitune_text.shrink import attention_heads

from conftest import save_tiny_bert


@pytest.fixture(scope="module")
def deep_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-layer tiny BERT with 4 heads of 8 features, no dropout (outputs are compared)."""
    return save_tiny_bert(tmp_path_factory.mktemp("deep-bert"), dropout=0.0, layers=4, heads=4)


def backbone(folder: Path, **options: object):
    return transformers_backbone(TransformersBackboneConfig(model=str(folder), pooling="mean", **options))


def tokens(model) -> dict[str, torch.Tensor]:
    encoded = model.tokenizer(["great film and fun", "dull boring plot", "the acting was weak"],
                              padding=True, return_tensors="pt")
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_kept_layers_carry_the_teachers_weights(deep_bert: Path) -> None:
    full, small = backbone(deep_bert), backbone(deep_bert, layers=[0, 2])

    assert small.encoder.config.num_hidden_layers == 2 and small.num_layers == 3
    for position, original in enumerate([0, 2]):
        kept = small.encoder.encoder.layer[position].state_dict()
        source = full.encoder.encoder.layer[original].state_dict()
        assert all(torch.equal(kept[name], source[name]) for name in source)
    # one layer's worth of parameters fewer per dropped layer
    layer = parameters(full.encoder.encoder.layer[0])
    assert parameters(full) - parameters(small) == 2 * layer
    assert small(**tokens(small)).shape == (3, 32)


def test_pruned_heads_give_the_masked_models_outputs_with_fewer_parameters(deep_bert: Path) -> None:
    removed = {0: [1, 3], 2: [0]}
    masked, pruned = backbone(deep_bert).eval(), backbone(deep_bert, prune_heads=removed).eval()
    width = 8
    for layer, heads in removed.items():  # the heads' share of the output projection, zeroed
        dense = masked.encoder.encoder.layer[layer].attention.output.dense
        mask = torch.ones_like(dense.weight)
        for head in heads:
            mask[:, head * width:(head + 1) * width] = 0
        prune.custom_from_mask(dense, "weight", mask)

    with torch.no_grad():
        expected, actual = masked(**tokens(masked)), pruned(**tokens(pruned))
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)
    assert attention_heads(pruned.encoder) == [2, 4, 3, 4]
    # each head removed takes its query, key and value rows (weights and biases) and its
    # output-projection columns: 4 * 8 * 32 + 3 * 8 parameters
    assert parameters(backbone(deep_bert)) - parameters(pruned) == 3 * (4 * 8 * 32 + 3 * 8)


def test_heads_are_pruned_by_their_original_layer_after_dropping_layers(deep_bert: Path) -> None:
    small = backbone(deep_bert, layers=[1, 3], prune_heads={3: [2]})
    assert attention_heads(small.encoder) == [4, 3]
    with pytest.raises(ConfigError, match=r"layers \[0\] are not among backbone.layers \[1, 3\]"):
        backbone(deep_bert, layers=[1, 3], prune_heads={0: [2]})


@pytest.mark.parametrize(("options", "message"), [
    ({"layers": [2, 0]}, r"increasing layer indices in 0..3, got \[2, 0\]"),
    ({"layers": [0, 4]}, r"increasing layer indices in 0..3, got \[0, 4\]"),
    ({"prune_heads": {1: [0, 1, 2, 3]}}, "layer 1 would lose all 4 heads"),
    ({"prune_heads": {1: [4]}}, r"layer 1 has heads 0..3, got \[4\]"),
])
def test_bad_shrink_options_are_refused(deep_bert: Path, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        backbone(deep_bert, **options)


def test_a_timm_vit_keeps_chosen_blocks_and_its_artifact_rebuilds_them(tmp_path: Path) -> None:
    from omnitune_vision.backbone import timm_backbone
    from omnitune_vision.plugin import TimmBackboneConfig

    full = timm_backbone(TimmBackboneConfig(model="test_vit", pretrained=False))
    small = copy.deepcopy(full)
    small.shrink(layers=[0, 3, 5])
    assert len(small.model.blocks) == 3 and small.num_layers == full.num_layers - 3
    for position, index in enumerate([0, 3, 5]):
        kept, source = small.model.blocks[position].state_dict(), full.model.blocks[index].state_dict()
        assert all(torch.equal(kept[name], source[name]) for name in source)
    assert parameters(full) - parameters(small) == 3 * parameters(full.model.blocks[0])

    small.export(tmp_path)
    rebuilt = timm_backbone(TimmBackboneConfig(model="test_vit", pretrained=False), export_dir=tmp_path)
    rebuilt.load_state_dict(small.state_dict())  # strict: the same three blocks
    images = torch.randn(2, 3, 160, 160)
    torch.testing.assert_close(rebuilt.eval()(images), small.eval()(images))
    with pytest.raises(ConfigError, match="test_resnet has no sequence of identical blocks"):
        timm_backbone(TimmBackboneConfig(model="test_resnet", pretrained=False, layers=[0]))
