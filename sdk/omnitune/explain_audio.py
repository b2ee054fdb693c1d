"""Integrated Gradients for audio classification: over the features the speech backbone reads
(log-mel bands x frames), from those of a silent clip; drawn as a heat map over the features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from omnitune.errors import ConfigError
from omnitune.explain import Explanation


def explain_frames(model: torch.nn.Module, batch: dict[str, torch.Tensor], raw: Any, label: str,
                   index: int, steps: int) -> Explanation:
    """Attributions ``(bands, frames)`` of the logit ``index`` over the output of the backbone's
    ``feature_module()`` (Captum's LayerIntegratedGradients). The baseline is a silent clip of
    the same length, so the attributions add up to the logit minus silence's logit."""
    from captum.attr import LayerIntegratedGradients

    backbone = getattr(model, "backbone", None)
    layer = backbone.feature_module() if hasattr(backbone, "feature_module") else None
    if layer is None:
        raise ConfigError("explain for audio needs a backbone that reads mel features (speech-cnn, ge2e, "
                          f"speech-embedding); {type(backbone).__name__} reads raw waveforms")
    waveforms, lengths = batch["waveforms"], batch["lengths"]
    silence = torch.zeros_like(waveforms)
    explainer = LayerIntegratedGradients(lambda w, n: model(w, n).float(), layer)
    attributions, delta = explainer.attribute(waveforms, baselines=silence, target=index, n_steps=steps,
                                              additional_forward_args=(lengths,), internal_batch_size=16,
                                              return_convergence_delta=True)
    with torch.no_grad():
        score, base = (model(w, lengths).float()[0, index].item() for w in (waveforms, silence))
    features = _layer_output(model, layer, waveforms, lengths)
    return Explanation(raw, label, attributions[0].detach().cpu(), score, base, float(delta[0]),
                       features=features)


@torch.no_grad()
def _layer_output(model: torch.nn.Module, layer: torch.nn.Module, waveforms: torch.Tensor,
                  lengths: torch.Tensor) -> torch.Tensor:
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _module, _inputs, output: seen.append(output))
    try:
        model(waveforms, lengths)
    finally:
        handle.remove()
    return seen[0][0].detach().float().cpu()


def spectrogram_png(explanation: Explanation, path: Path) -> Path:
    """The front-end features above their attributions (bands x frames), with the total per band
    beside them."""
    from matplotlib.figure import Figure

    values = explanation.attributions
    scale = values.abs().max().item() or 1.0
    figure = Figure(figsize=(9, 6))
    grid = figure.add_gridspec(2, 2, width_ratios=(5, 1))
    features, heat = figure.add_subplot(grid[0, 0]), figure.add_subplot(grid[1, 0])
    bands = figure.add_subplot(grid[1, 1], sharey=heat)
    features.imshow(explanation.features.numpy(), origin="lower", aspect="auto", cmap="magma")
    features.set_title("features the model reads (bands x frames)")
    shown = heat.imshow(values.numpy(), origin="lower", aspect="auto", cmap="RdYlGn", vmin=-scale, vmax=scale)
    heat.set_title(f"attribution towards {explanation.label!r}")
    heat.set_xlabel("frame")
    for axes in (features, heat):
        axes.set_ylabel("band")
    per_band = values.sum(1).numpy()
    bands.barh(range(len(per_band)), per_band, color=["tab:green" if v > 0 else "tab:red" for v in per_band])
    bands.tick_params(axis="x", labelsize=7, labelrotation=90)
    bands.set_title("per band")
    figure.colorbar(shown, ax=[heat, bands])
    figure.savefig(path, dpi=100, bbox_inches="tight")
    return path
