"""Report sections for tasks whose outputs are not single-label classes: speech recognition (the
character error rate of each utterance and the worst transcripts) and recommendation (Recall@K
and NDCG@K against the popularity baseline)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import torch

from omnitune.report import Figure, describe, figure_axes, figures_html, save_figure


def is_speech_recognition(outputs: dict[str, torch.Tensor]) -> bool:
    """Per-utterance character edits and reference lengths (the speech-recognition task's outputs)."""
    return "char_errors" in outputs and "ref_chars" in outputs


def is_ranking(outputs: dict[str, torch.Tensor]) -> bool:
    """Per-user ranking metrics at cut-offs (``recall_at_K``, ``ndcg_at_K``)."""
    return bool(cutoffs(outputs))


def cutoffs(outputs: dict[str, torch.Tensor]) -> list[int]:
    """The K of every ``recall_at_K`` that has a matching ``ndcg_at_K``, ascending."""
    return sorted(int(k.removeprefix("recall_at_")) for k in outputs
                  if k.startswith("recall_at_") and f"ndcg_at_{k.removeprefix('recall_at_')}" in outputs)


# -- speech recognition ---------------------------------------------------------------------


def utterance_cer(outputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Character error rate of each utterance (edits over reference characters)."""
    return outputs["char_errors"].double() / outputs["ref_chars"].double().clamp(min=1)


def worst_utterances(outputs: dict[str, torch.Tensor], count: int) -> list[int]:
    """Indices of the utterances with the highest CER, most edits first among ties."""
    rates = utterance_cer(outputs)
    order = sorted(range(len(rates)), key=lambda i: (-rates[i].item(), -int(outputs["char_errors"][i])))
    return order[:count]


def recognition_section(predictor: Any, examples: Any, outputs: dict[str, torch.Tensor],
                        output: Path, worst: int) -> str:
    """The CER histogram and the worst transcripts (reference beside the model's transcript)."""
    rates = utterance_cer(outputs)
    figure = _cer_histogram(output / "cer_distribution.png", rates)
    indices = worst_utterances(outputs, worst)
    hypotheses = predictor.predict([examples[i].path for i in indices]) if indices else []
    rows = "".join(
        f"<tr><td>{describe(examples[i])}</td><td>{html.escape(str(examples[i].target))}</td>"
        f"<td>{html.escape(h['text'])}</td><td>{rates[i].item():.3f}</td></tr>"
        for i, h in zip(indices, hypotheses, strict=True))
    total = outputs["char_errors"].sum().item() / max(outputs["ref_chars"].sum().item(), 1)
    return (f"<p>Character error rate over the split: {total:.4f}; median per utterance "
            f"{rates.median().item():.4f}; {int((rates == 0).sum())} of {len(rates)} utterances exact.</p>"
            + figures_html("", [figure])
            + "<h3>Worst transcripts</h3><table><tr><th>audio</th><th>reference</th><th>transcript</th>"
            f"<th>CER</th></tr>{rows}</table>")


def _cer_histogram(path: Path, rates: torch.Tensor) -> Figure:
    figure, axes = figure_axes()
    top = max(1.0, rates.max().item())
    axes.hist(rates.numpy(), bins=20, range=(0.0, top), color="tab:blue", edgecolor="white")
    axes.set_xlabel("character error rate of the utterance")
    axes.set_ylabel("utterances")
    axes.set_title("CER distribution")
    return save_figure(figure, path, "CER distribution")


# -- recommendation -------------------------------------------------------------------------


def mean_at_cutoffs(outputs: dict[str, torch.Tensor]) -> dict[str, list[float]]:
    """``{"recall": [mean Recall@K per K], "ndcg": [...]}`` over the users of the split."""
    ks = cutoffs(outputs)
    return {name: [outputs[f"{name}_at_{k}"].double().mean().item() for k in ks]
            for name in ("recall", "ndcg")}


def ranking_section(predictor: Any, examples: Any, outputs: dict[str, torch.Tensor], output: Path) -> str:
    """Recall@K and NDCG@K of the model beside the popularity baseline (when the task gives it:
    a ``popularity_outputs(examples)`` method returning the same per-user metrics)."""
    ks = cutoffs(outputs)
    series = {"model": mean_at_cutoffs(outputs)}
    baseline = getattr(predictor.task, "popularity_outputs", None)
    if baseline is not None:
        series["popularity"] = mean_at_cutoffs(baseline(examples))
    figure = _by_k_plot(output / "ranking_by_k.png", ks, series)
    header = "".join(f"<th>{name}@{k}</th>" for name in ("Recall", "NDCG") for k in ks)
    rows = "".join(f"<tr><td>{html.escape(who)}</td>"
                   + "".join(f"<td>{v:.4f}</td>" for name in ("recall", "ndcg") for v in values[name])
                   + "</tr>" for who, values in series.items())
    return (figures_html("", [figure]) + f"<table><tr><th>ranker</th>{header}</tr>{rows}</table>"
            "<p>Each user's held-out items are ranked against the whole catalogue, without the items "
            "the user had in training; the popularity baseline ranks every user's items by their "
            "training interaction counts.</p>")


def _by_k_plot(path: Path, ks: list[int], series: dict[str, dict[str, list[float]]]) -> Figure:
    figure, axes = figure_axes((6, 3.6))
    styles = {"recall": ("-", "Recall"), "ndcg": ("--", "NDCG")}
    for who, values in series.items():
        colour = "tab:blue" if who == "model" else "tab:gray"
        for name, (style, metric) in styles.items():
            axes.plot(ks, values[name], style, marker="o", color=colour, label=f"{who} {metric}@K")
    axes.set_xticks(ks)
    axes.set_xlabel("K")
    axes.set_title("Recall@K and NDCG@K")
    axes.grid(alpha=0.3)
    axes.legend()
    return save_figure(figure, path, "Recall@K and NDCG@K")
