"""Why a model predicted what it did: Integrated Gradients (Captum) over token embeddings for text,
over pixels for images and over log-mel frames and bands for audio (explain_audio); shown as
coloured tokens (terminal, HTML) or a heat-map PNG. A task may explain its own inputs with an
``explain_input(raw, target, steps)`` method (recommendation: which history items mattered)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from omnitune.errors import ConfigError
from omnitune.predict import Predictor


@dataclass
class Explanation:
    """Attributions of one input towards one class (or recommended item). ``attributions`` has
    one value per token (text), per pixel (images, summed over channels), per (band, frame) of
    the front end's features (audio) or per history item (recommendation, ``items``); they add
    up to ``score - baseline_score`` (the logit of ``label``) up to ``delta``."""

    input: Any
    label: str
    attributions: torch.Tensor
    score: float
    baseline_score: float
    delta: float
    tokens: list[str] | None = None
    pixels: torch.Tensor | None = None
    features: torch.Tensor | None = None
    items: list[str] | None = None


def explain(predictor: Predictor, inputs: list[Any], *, target: str | None = None,
            steps: int = 64) -> list[Explanation]:
    """Integrated Gradients of the predicted class (or ``target``) for each raw input."""
    labels = list(getattr(predictor.task, "labels", []) or [])
    if target is not None and target not in labels and not hasattr(predictor.task, "explain_input"):
        raise ConfigError(f"--target: {target!r} is not a label of this model; expected one of {labels}")
    return [_explain_one(predictor, raw, labels, target, steps) for raw in inputs]


def _explain_one(predictor: Predictor, raw: Any, labels: list[str], target: str | None,
                 steps: int) -> Explanation:
    if hasattr(predictor.task, "explain_input"):
        return predictor.task.explain_input(raw, target, steps)
    batch = predictor.task.model_inputs(predictor.runtime.to_device(predictor.task.encode_inputs([raw])))
    model = predictor.task.model.eval()
    with torch.no_grad():
        logits = model(*batch.values())  # encode_inputs orders them as forward takes them
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or not labels:
        raise ConfigError(f"explain needs a classifier (one score per label) or a recommender; task "
                          f"{predictor.config.task.name!r} gives other outputs")
    index = labels.index(target) if target is not None else int(logits.argmax(-1)[0])
    if "input_ids" in batch:
        return _explain_tokens(predictor, model, batch, raw, labels[index], index, steps)
    if "images" in batch:
        return _explain_pixels(model, batch, raw, labels[index], index, steps)
    if "waveforms" in batch:
        from omnitune.explain_audio import explain_frames

        return explain_frames(model, batch, raw, labels[index], index, steps)
    raise ConfigError(f"explain supports text, image and audio classification and recommendation; task "
                      f"{predictor.config.task.name!r} gives inputs {sorted(batch)}")


def _explain_tokens(predictor: Predictor, model: torch.nn.Module, batch: dict[str, torch.Tensor],
                    raw: Any, label: str, index: int, steps: int) -> Explanation:
    from captum.attr import LayerIntegratedGradients

    tokenizer = predictor.task.tokenizer
    embeddings = model.backbone.encoder.get_input_embeddings()
    ids, mask = batch["input_ids"], batch["attention_mask"]
    special = tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)
    special = torch.tensor(special, dtype=torch.bool, device=ids.device)
    baseline = torch.where(special, ids, torch.full_like(ids, tokenizer.pad_token_id))  # keep [CLS]/[SEP]
    explainer = LayerIntegratedGradients(lambda i, m: model(i, m).float(), embeddings)
    attributions, delta = explainer.attribute(ids, baselines=baseline, target=index, n_steps=steps,
                                              additional_forward_args=(mask,), return_convergence_delta=True)
    scores = _scores(model, index, (ids, mask), (baseline, mask))
    return Explanation(raw, label, attributions.sum(-1)[0].detach().cpu(), *scores, float(delta[0]),
                       tokens=tokenizer.convert_ids_to_tokens(ids[0].tolist()))


def _explain_pixels(model: torch.nn.Module, batch: dict[str, torch.Tensor], raw: Any, label: str,
                    index: int, steps: int) -> Explanation:
    from captum.attr import IntegratedGradients

    images = batch["images"]
    baseline = torch.zeros_like(images)  # the normalised mean colour
    explainer = IntegratedGradients(lambda x: model(x).float())
    attributions, delta = explainer.attribute(images, baselines=baseline, target=index, n_steps=steps,
                                              internal_batch_size=16, return_convergence_delta=True)
    scores = _scores(model, index, (images,), (baseline,))
    return Explanation(raw, label, attributions.sum(1)[0].detach().cpu(), *scores, float(delta[0]),
                       pixels=images[0].detach().cpu())


@torch.no_grad()
def _scores(model: torch.nn.Module, index: int, inputs: tuple, baseline: tuple) -> tuple[float, float]:
    return model(*inputs).float()[0, index].item(), model(*baseline).float()[0, index].item()


# -- showing them ---------------------------------------------------------------------------


GREENS, REDS = (22, 28, 34, 40, 46), (52, 88, 124, 160, 196)  # xterm-256, weak to strong


def terminal_text(explanation: Explanation) -> str:
    """The tokens on ANSI backgrounds: green pushes towards the label, red away from it."""
    scale = explanation.attributions.abs().max().item() or 1.0
    parts = []
    for token, value in zip(explanation.tokens or [], explanation.attributions.tolist(), strict=True):
        strength = min(4, int(abs(value) / scale * 5))
        if abs(value) / scale < 0.1:
            parts.append(token)
            continue
        colour = (GREENS if value > 0 else REDS)[strength]
        parts.append(f"\x1b[48;5;{colour}m{token}\x1b[0m")
    return " ".join(parts)


def html_text(explanations: list[Explanation]) -> str:
    """A standalone HTML page with each input's tokens coloured by attribution."""
    rows = []
    for e in explanations:
        scale = e.attributions.abs().max().item() or 1.0
        spans = "".join(
            f'<span title="{value:+.4f}" style="background:{_css_colour(value / scale)}">'
            f"{html.escape(token)}</span> "
            for token, value in zip(e.tokens or [], e.attributions.tolist(), strict=True))
        rows.append(f"<p><b>{html.escape(e.label)}</b> (logit {e.score:.3f}, baseline "
                    f"{e.baseline_score:.3f}, delta {e.delta:.2e})<br>{spans}</p>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>omnitune explain</title>'
            "<style>body{font-family:system-ui,sans-serif;margin:2em}span{padding:1px 2px}</style>"
            f"</head><body><h1>Integrated Gradients</h1>{''.join(rows)}</body></html>\n")


def _css_colour(strength: float) -> str:
    alpha = min(1.0, abs(strength))
    return f"rgba(0,160,0,{alpha:.2f})" if strength > 0 else f"rgba(220,0,0,{alpha:.2f})"


def heatmap_png(explanation: Explanation, path: Path) -> Path:
    """The input picture (as the model saw it) beside its attribution heat map."""
    from matplotlib.figure import Figure

    pixels = explanation.pixels
    shown = (pixels - pixels.min()) / (pixels.max() - pixels.min()).clamp(min=1e-12)
    figure = Figure(figsize=(8, 4))
    left, right = figure.subplots(1, 2)
    left.imshow(shown.permute(1, 2, 0).numpy())
    left.set_title("input")
    right.imshow(shown.mean(0).numpy(), cmap="gray")
    heat = right.imshow(explanation.attributions.numpy(), cmap="bwr", alpha=0.6,
                        vmin=-explanation.attributions.abs().max().item(),
                        vmax=explanation.attributions.abs().max().item())
    right.set_title(f"attribution towards {explanation.label!r}")
    figure.colorbar(heat, ax=right)
    for axes in (left, right):
        axes.axis("off")
    figure.savefig(path, dpi=100, bbox_inches="tight")
    return path
