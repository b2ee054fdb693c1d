"""``omnitune report`` for speech recognition (CER distribution, worst transcripts) and
recommendation (Recall/NDCG by K beside the popularity baseline), on tiny trained runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from headless_chromium import render
from PIL import Image

import omnitune
from omnitune.report import write_report
from omnitune.report_tasks import cutoffs, mean_at_cutoffs, worst_utterances

NUMBER = r"([\d.]+)"
NAMES = [f"{metric}_at_{k}" for metric in ("recall", "ndcg") for k in (5, 10, 20)]  # the table's columns


def _figure_ok(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 200


def test_a_speech_dataset_lists_its_limitations_in_the_model_card(ctc_artifact: Path) -> None:
    card = (ctc_artifact / "README.md").read_text()
    known = card.split("## Known limitations", 1)[1]
    assert "- Synthetic audio: tone sequences stand in for speech." in known


def _renders(report: Path, browser: Path) -> None:
    rendered = render(browser, report)
    assert rendered.images >= 2 and (rendered.broken_images, rendered.console) == (0, [])


def test_speech_recognition_report_lists_the_worst_transcripts(ctc_artifact: Path, tmp_path: Path,
                                                               headless_chromium: Path) -> None:
    from omnitune_speech.metrics import edit_distance

    report = write_report(ctc_artifact.parent, output_dir=tmp_path, wrong_examples=3)
    _renders(report, headless_chromium)
    page = report.read_text()
    _figure_ok(tmp_path / "cer_distribution.png")
    assert "(cer_distribution.png)" in page and page.count('src="data:image/png;base64,') >= 2
    rows = re.findall(r"<tr><td>(clip\d+\.flac)</td><td>([abAB]+)</td><td>([abAB]*)</td><td>" + NUMBER
                      + "</td></tr>", page)
    tested = int(re.search(r"Evaluation on test \((\d+) examples\)", page).group(1))
    assert len(rows) == min(3, tested)
    rates = [float(rate) for *_, rate in rows]
    assert rates == sorted(rates, reverse=True)
    for _, reference, transcript, rate in rows:  # the transcript shown is the one the CER was computed from
        assert float(rate) == pytest.approx(edit_distance(transcript, reference) / len(reference), abs=1e-3)
    overall = float(re.search(r"Character error rate over the split: " + NUMBER, page).group(1))
    assert overall == pytest.approx(omnitune.evaluate(ctc_artifact, split="test")["test_cer"], abs=1e-4)


def test_recommendation_report_compares_with_the_popularity_baseline(recsys_artifact: Path, tmp_path: Path,
                                                                      headless_chromium: Path) -> None:
    from omnitune_recsys.ranking import evaluate_scores, popularity_scores

    report = write_report(recsys_artifact.parent, output_dir=tmp_path)
    _renders(report, headless_chromium)
    page = report.read_text()
    _figure_ok(tmp_path / "ranking_by_k.png")
    assert "(ranking_by_k.png)" in page
    assert "<th>Recall@5</th><th>Recall@10</th><th>Recall@20</th><th>NDCG@5</th>" in page
    model, popular = (_row(page, who) for who in ("model", "popularity"))
    metrics = omnitune.evaluate(recsys_artifact, split="test")
    assert model == pytest.approx([metrics[f"test_{name}"] for name in NAMES], abs=1e-4)
    predictor = omnitune.Predictor.load(recsys_artifact)
    from omnitune.api import dataset_split

    baseline = evaluate_scores(popularity_scores(predictor.task.popularity.tolist()),
                               dataset_split(predictor, "test"), len(predictor.task.items))
    assert popular == pytest.approx([baseline[name] for name in NAMES], abs=1e-4)
    assert model != popular


def _row(page: str, ranker: str) -> list[float]:
    return [float(v) for v in re.search(f"<tr><td>{ranker}</td>" + f"<td>{NUMBER}</td>" * 6, page).groups()]


def test_worst_utterances_and_cutoffs() -> None:
    outputs = {"char_errors": torch.tensor([0, 2, 2, 1]), "ref_chars": torch.tensor([3, 4, 2, 1])}
    assert worst_utterances(outputs, 3) == [2, 3, 1]  # CER 1.0 (2 edits), 1.0 (1 edit), 0.5
    ranking = {"recall_at_10": torch.tensor([1.0, 0.0]), "ndcg_at_10": torch.tensor([0.5, 0.0]),
               "recall_at_5": torch.tensor([0.5, 0.5]), "ndcg_at_5": torch.tensor([0.25, 0.25]),
               "recall_at_20": torch.tensor([1.0, 1.0]), "mrr": torch.tensor([1.0, 0.5])}
    assert cutoffs(ranking) == [5, 10]  # recall_at_20 has no ndcg_at_20
    assert mean_at_cutoffs(ranking) == {"recall": [0.5, 0.5], "ndcg": [0.25, 0.25]}
