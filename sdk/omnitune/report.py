"""The run report: ``omnitune report RUN_DIR`` draws the run's curves and, for classification, the
confusion matrix, per-class scores and the most confidently wrong test examples (speech
recognition and recommendation: see report_tasks), as PNG files (matplotlib) and one
self-contained ``report.html`` that embeds them."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from omnitune.errors import ConfigError
from omnitune.plugins import Plugins


@dataclass(frozen=True)
class Figure:
    """One PNG of the report."""

    title: str
    path: Path


def write_report(run_dir: str | Path, *, split: str = "test", output_dir: str | Path | None = None,
                 plugins: Plugins | None = None, wrong_examples: int = 12) -> Path:
    """Write the report of the run in ``run_dir`` (its ``metrics.jsonl`` and ``artifact/``) into
    ``output_dir`` (default ``run_dir/report``); returns the path of ``report.html``."""
    run_dir = Path(run_dir)
    log = run_dir / "metrics.jsonl"
    if not log.is_file():
        raise ConfigError(f"{run_dir} is not a run folder: metrics.jsonl is missing")
    output = Path(output_dir) if output_dir else run_dir / "report"
    output.mkdir(parents=True, exist_ok=True)
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]
    sections = [_summary(run_dir, records), figures_html("Training", training_figures(records, output))]
    if (run_dir / "artifact").is_dir():
        sections.append(_evaluation_section(run_dir / "artifact", split, output, plugins, wrong_examples))
    page = output / "report.html"
    page.write_text(_page(f"omnitune report: {run_dir.resolve().name}", sections), encoding="utf-8")
    return page


# -- curves ---------------------------------------------------------------------------------


DATA_PROPERTIES = ("eval_truncated_fraction",)  # of the split, not of training: in the tables, no curve


def training_figures(records: list[dict[str, Any]], output: Path) -> list[Figure]:
    """Loss (training and validation), each validation metric, learning rate and throughput."""
    steps = [r for r in records if "loss" in r and not r.get("final")]
    evals = [r for r in records if any(k.startswith("eval_") for k in r) and not r.get("final")]
    figures = [_line_plot(output / "loss.png", "Loss", {
        "training": [(r["step"], r["loss"]) for r in steps],
        "validation": [(r["step"], r["eval_loss"]) for r in evals if "eval_loss" in r]})]
    names = sorted({k for r in evals for k in r
                    if k.startswith("eval_") and k not in ("eval_loss", *DATA_PROPERTIES)})
    for name in names:
        points = [(r["step"], r[name]) for r in evals if name in r]
        figures.append(_line_plot(output / f"{name}.png", f"Validation {name.removeprefix('eval_')}",
                                  {"validation": points}))
    for key, title in (("lr", "Learning rate"), ("samples_per_s", "Throughput (samples/s)")):
        points = [(r["step"], r[key]) for r in steps if key in r]
        if points:
            figures.append(_line_plot(output / f"{key}.png", title, {title: points}))
    return figures


def _line_plot(path: Path, title: str, series: dict[str, list[tuple[float, float]]]) -> Figure:
    figure, axes = figure_axes()
    for label, points in series.items():
        if points:
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, marker="o" if len(points) < 30 else None, label=label)
    axes.set_xlabel("optimizer step")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if len([s for s in series.values() if s]) > 1:
        axes.legend()
    return save_figure(figure, path, title)


def figure_axes(size: tuple[float, float] = (6, 3.6)) -> tuple[Any, Any]:
    from matplotlib.figure import Figure as MatplotlibFigure  # no pyplot: no global state

    figure = MatplotlibFigure(figsize=size)
    return figure, figure.add_subplot()


def save_figure(figure: Any, path: Path, title: str) -> Figure:
    """Write a matplotlib figure as the PNG ``path``."""
    figure.savefig(path, dpi=100, bbox_inches="tight")
    return Figure(title, path)


# -- evaluation on a split ------------------------------------------------------------------


def _evaluation_section(artifact: Path, split: str, output: Path, plugins: Plugins | None,
                        wrong_examples: int) -> str:
    from omnitune.api import dataset_split
    from omnitune.outputs import collect_outputs
    from omnitune.predict import Predictor

    predictor = Predictor.load(artifact, plugins=plugins)
    examples = dataset_split(predictor, split)
    outputs = collect_outputs(predictor.task, examples, predictor.runtime.device)
    labels = json.loads((artifact / "data_info.json").read_text(encoding="utf-8")).get("labels")
    heading = f"<h2>Evaluation on {split} ({len(examples):,} examples)</h2>"
    if is_single_label_classification(outputs) and labels:
        matrix = confusion_matrix(outputs["targets"], outputs["predictions"], len(labels))
        figure = _confusion_plot(output / "confusion_matrix.png", matrix, labels)
        wrong = most_confidently_wrong(outputs, wrong_examples)
        return (heading + figures_html("", [figure]) + _class_table(matrix, labels)
                + _wrong_table(wrong, examples, labels, outputs, output))
    from omnitune import report_tasks

    if report_tasks.is_speech_recognition(outputs):
        section = report_tasks.recognition_section(predictor, examples, outputs, output, wrong_examples)
        return heading + section
    if report_tasks.is_ranking(outputs):
        return heading + report_tasks.ranking_section(predictor, examples, outputs, output)
    return (f"<h2>Evaluation on {split}</h2><p>This task's outputs are not single-label classes, "
            "transcripts or rankings; the report shows its curves only.</p>")


def is_single_label_classification(outputs: dict[str, torch.Tensor]) -> bool:
    """Outputs with one class index per example and a score per class."""
    needed = ("scores", "predictions", "targets")
    return all(k in outputs for k in needed) and outputs["predictions"].ndim == 1 \
        and outputs["scores"].ndim == 2


def confusion_matrix(targets: torch.Tensor, predictions: torch.Tensor, classes: int) -> torch.Tensor:
    """``matrix[true, predicted]`` counts."""
    flat = targets.long() * classes + predictions.long()
    return torch.bincount(flat, minlength=classes * classes).reshape(classes, classes)


def per_class_scores(matrix: torch.Tensor) -> list[dict[str, float]]:
    """Precision, recall, F1 and support of each class, from a confusion matrix."""
    correct = matrix.diag().double()
    predicted, actual = matrix.sum(0).double(), matrix.sum(1).double()
    precision = torch.where(predicted > 0, correct / predicted.clamp(min=1), 0.0)
    recall = torch.where(actual > 0, correct / actual.clamp(min=1), 0.0)
    both = precision + recall
    f1 = torch.where(both > 0, 2 * precision * recall / both.clamp(min=1e-12), 0.0)
    columns = zip(precision.tolist(), recall.tolist(), f1.tolist(), actual.tolist(), strict=True)
    return [{"precision": p, "recall": r, "f1": f, "support": int(s)} for p, r, f, s in columns]


def most_confidently_wrong(outputs: dict[str, torch.Tensor], count: int) -> list[int]:
    """Indices of wrong predictions, highest score of the predicted class first."""
    wrong = (outputs["predictions"] != outputs["targets"]).nonzero().flatten()
    confidence = outputs["scores"][wrong, outputs["predictions"][wrong]]
    return wrong[confidence.argsort(descending=True)][:count].tolist()


def _confusion_plot(path: Path, matrix: torch.Tensor, labels: list[str]) -> Figure:
    size = max(4.0, 0.45 * len(labels) + 2)
    figure, axes = figure_axes((size + 1, size))
    image = axes.imshow(matrix.numpy(), cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = range(len(labels))
    axes.set_xticks(ticks, labels, rotation=90 if len(labels) > 6 else 0)
    axes.set_yticks(ticks, labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if len(labels) <= 20:
        threshold = matrix.max().item() / 2
        for (row, column), value in zip(torch.cartesian_prod(torch.arange(len(labels)),
                                                               torch.arange(len(labels))).tolist(),
                                        matrix.flatten().tolist(), strict=True):
            axes.text(column, row, str(value), ha="center", va="center",
                      color="white" if value > threshold else "black")
    axes.set_title("Confusion matrix")
    return save_figure(figure, path, "Confusion matrix")


# -- HTML -----------------------------------------------------------------------------------


def _summary(run_dir: Path, records: list[dict[str, Any]]) -> str:
    final = next((r for r in reversed(records) if r.get("final")), None)
    if final is None:
        return "<p>The run has not finished: no final metrics yet.</p>"
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_number(v)}</td></tr>"
                   for k, v in final.items() if k != "final")
    card = run_dir / "artifact" / "README.md"
    note = " The model card is <code>artifact/README.md</code>." if card.is_file() else ""
    return f"<h2>Final metrics</h2><table>{rows}</table><p>From metrics.jsonl.{note}</p>"


def figures_html(heading: str, figures: list[Figure]) -> str:
    images = "".join(
        f'<figure><img alt="{html.escape(f.title)}" src="{_data_uri(f.path.read_bytes())}">'
        f"<figcaption>{html.escape(f.title)} ({html.escape(f.path.name)})</figcaption></figure>"
        for f in figures)
    return (f"<h2>{html.escape(heading)}</h2>" if heading else "") + f'<div class="figures">{images}</div>'


def _class_table(matrix: torch.Tensor, labels: list[str]) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(label))}</td><td>{s['precision']:.3f}</td>"
                   f"<td>{s['recall']:.3f}</td><td>{s['f1']:.3f}</td><td>{s['support']}</td></tr>"
                   for label, s in zip(labels, per_class_scores(matrix), strict=True))
    return ("<h3>Per class</h3><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>"
            f"<th>support</th></tr>{rows}</table>")


def _wrong_table(indices: list[int], examples: Any, labels: list[str],
                 outputs: dict[str, torch.Tensor], output: Path) -> str:
    if not indices:
        return "<h3>Most confidently wrong</h3><p>No wrong predictions.</p>"
    rows = []
    for index in indices:
        predicted, true = int(outputs["predictions"][index]), int(outputs["targets"][index])
        confidence = outputs["scores"][index, predicted].item()
        rows.append(f"<tr><td>{describe(examples[index])}</td><td>{html.escape(str(labels[true]))}</td>"
                    f"<td>{html.escape(str(labels[predicted]))}</td><td>{confidence:.3f}</td></tr>")
    return ("<h3>Most confidently wrong</h3><table><tr><th>example</th><th>true</th><th>predicted</th>"
            f"<th>confidence</th></tr>{''.join(rows)}</table>")


def describe(example: Any) -> str:
    """HTML for one dataset example: a text snippet, an image thumbnail, or a file name."""
    if isinstance(getattr(example, "text", None), str):
        text = example.text
        return html.escape(text if len(text) <= 300 else text[:300] + "…")
    image = _image_of(example)
    if image is not None:
        image.thumbnail((96, 96))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        name = html.escape(str(getattr(example, "name", "")))
        return f'<img class="thumb" alt="{name}" src="{_data_uri(buffer.getvalue())}"> {name}'
    for attribute in ("path", "name"):
        if getattr(example, attribute, None):
            return html.escape(Path(str(getattr(example, attribute))).name)
    return html.escape(repr(example)[:200])


def _image_of(example: Any) -> Any:
    image = getattr(example, "image", None)
    source = getattr(example, "source", None)
    if image is None and source is None:
        return None
    from PIL import Image

    if image is not None:
        return image.copy()
    if isinstance(source, str | Path):
        return Image.open(source)
    return Image.fromarray(source)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.figures{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}figure img{max-width:560px}
img.thumb{vertical-align:middle}"""


def _page(title: str, sections: list[str]) -> str:
    body = "\n".join(sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
            f"</title><style>{STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")
