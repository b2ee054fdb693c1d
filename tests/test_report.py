"""``omnitune report``: PNG figures and a self-contained report.html, rendered in headless Chromium
with no console error and no broken image."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from headless_chromium import render
from PIL import Image

import omnitune
from omnitune.cli import main
from omnitune.report import confusion_matrix, most_confidently_wrong, per_class_scores

FIGURES = ("loss.png", "eval_accuracy.png", "eval_macro_f1.png", "lr.png", "samples_per_s.png",
           "confusion_matrix.png")


@pytest.fixture(scope="module")
def report(trained_text_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("report")
    assert main(["report", str(trained_text_run), "--output-dir", str(output)]) == 0
    return output / "report.html"


def test_report_writes_every_figure_and_embeds_it(report: Path) -> None:
    page = report.read_text()
    for name in FIGURES:
        with Image.open(report.parent / name) as image:
            assert image.format == "PNG" and image.width > 200
        assert f"({name})" in page
    assert page.count('src="data:image/png;base64,') == len(FIGURES)
    assert "src=\"http" not in page and "<link" not in page  # nothing fetched from elsewhere


def test_report_tables_match_the_artifact(report: Path, trained_text_run: Path) -> None:
    page = report.read_text()
    metrics = omnitune.evaluate(trained_text_run / "artifact", split="test")
    assert f"<td>test_accuracy</td><td>{metrics['test_accuracy']:.4f}</td>" in page
    supports = [int(s) for s in re.findall(r"<td>\d\.\d{3}</td><td>(\d+)</td></tr>", page)]
    tested = int(re.search(r"Evaluation on test \((\d+) examples\)", page).group(1))
    assert sum(supports) == tested and len(supports) == 2
    row = r"<tr><td>([^<]*)</td><td>(pos|neg)</td><td>(pos|neg)</td><td>([\d.]+)</td></tr>"
    wrong = re.findall(row, page)
    assert wrong, "the flipped labels leave wrong predictions in the test split"
    assert all(true != predicted for _, true, predicted, _ in wrong)
    confidences = [float(c) for *_, c in wrong]
    assert confidences == sorted(confidences, reverse=True)


def test_confusion_matrix_and_class_scores() -> None:
    targets = torch.tensor([0, 0, 0, 1, 1, 2])
    predictions = torch.tensor([0, 0, 1, 1, 2, 2])
    matrix = confusion_matrix(targets, predictions, 3)
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    first, second, third = per_class_scores(matrix)
    assert (first["precision"], first["recall"], first["support"]) == (1.0, pytest.approx(2 / 3), 3)
    assert second["f1"] == pytest.approx(0.5) and third["precision"] == pytest.approx(0.5)
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    outputs = {"scores": scores, "predictions": scores.argmax(1), "targets": torch.tensor([1, 0, 2])}
    assert most_confidently_wrong(outputs, 5) == [0, 1]


def test_report_renders_in_headless_chromium(report: Path, headless_chromium: Path, tmp_path: Path) -> None:
    page = render(headless_chromium, report)
    assert (page.images, page.broken_images, page.console) == (len(FIGURES), 0, [])
    broken = tmp_path / "broken.html"  # the check itself sees a bad image and a console message
    broken.write_text(report.read_text().replace("base64,", "base64,AAAA", 1)
                      .replace("</body>", "<script>console.error('bad')</script></body>"))
    page = render(headless_chromium, broken)
    assert (page.broken_images, page.console) == (1, ["bad"])


def test_report_of_a_folder_without_metrics_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(omnitune.ConfigError, match="metrics.jsonl is missing"):
        from omnitune.report import write_report

        write_report(tmp_path)
