"""Shared fixtures: a fresh plugin manager per test, a tiny random BERT on disk, generated text."""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import sysconfig
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import omnitune

pytest_plugins = ["deploy_fixtures", "headless_chromium"]  # tiny artifacts of every task; the browser


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> None:
    """Tiny models gain nothing from intra-op threads and lose much to contention on a shared CPU
    (two threads spin-waited 60x slower on a busy machine); every test runs on one."""
    torch.set_num_threads(1)


POSITIVE = ["great", "wonderful", "superb", "lovely", "brilliant", "delightful", "moving", "fun"]
NEGATIVE = ["awful", "boring", "dreadful", "dull", "terrible", "clumsy", "tedious", "weak"]
EXAMPLES = Path(__file__).parent.parent / "examples"
EXAMPLE_PLUGINS = ("acme-tabular", "acme-csv-logger")
FILLER = ["the", "movie", "film", "plot", "acting", "was", "really", "quite", "and", "story"]


@pytest.fixture
def plugins() -> omnitune.Plugins:
    """A fresh plugin manager and registry; nothing survives the test."""
    return omnitune.load_plugins()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT with hidden size 32 and a word-level vocabulary, saved like a hub model."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), dropout=0.1)


@pytest.fixture(scope="session")
def tiny_bert_without_dropout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny BERT without dropout: runs that must match across processes need it."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-no-dropout"), dropout=0.0)


def save_tiny_bert(folder: Path, dropout: float = 0.1, layers: int = 2, heads: int = 2) -> Path:
    """Write the tiny BERT (``layers`` layers of ``heads`` heads) and its tokenizer into ``folder``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *POSITIVE, *NEGATIVE, *FILLER]
    words = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    words.normalizer = normalizers.BertNormalizer(lowercase=True)
    words.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    BertTokenizerFast(tokenizer_object=words, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                      sep_token="[SEP]", mask_token="[MASK]").save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=37, max_position_embeddings=64,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return folder


def sentiment_rows(count: int, seed: int = 0) -> list[dict[str, str]]:
    """Short reviews whose label is carried by one sentiment word among filler."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        label = "pos" if index % 2 == 0 else "neg"
        words = rng.sample(FILLER, 4) + [rng.choice(POSITIVE if label == "pos" else NEGATIVE)]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": label, "source": f"s{index % 17}"})
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def sentiment_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "reviews.csv", sentiment_rows(400))


def tiny_run(tiny_bert: Path, data: Path, output_dir: Path, **train: object) -> dict:
    """A run config for the tiny BERT on a generated CSV."""
    return {
        "task": {"name": "text-classification", "max_length": 16},
        "backbone": {"name": "transformers", "model": str(tiny_bert), "pooling": "mean"},
        "head": {"name": "linear", "dropout": 0.1},
        "dataset": {"name": "text-file", "train": str(data), "group_column": "source"},
        "train": {"epochs": 2, "batch_size": 16, "lr": 3e-3, "progress": False, **train},
        "output_dir": str(output_dir),
    }


def tabular_rows(count: int, seed: int = 0) -> list[dict[str, object]]:
    """Rows of three numeric features on different scales; the label depends on two of them."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        income, age, noise = rng.gauss(50_000, 15_000), rng.uniform(18, 80), rng.gauss(0, 1)
        label = "yes" if (income - 50_000) / 15_000 + (age - 49) / 18 > 0 else "no"
        rows.append({"income": round(income, 2), "age": round(age, 1), "noise": round(noise, 3),
                     "label": label})
    return rows


def tabular_run(data: Path, output_dir: Path, **train: object) -> dict:
    """A run config for the example plugin's tabular classification on a generated CSV."""
    return {
        "task": "tabular-classification",
        "backbone": {"name": "tabular-mlp", "width": 16, "depth": 2},
        "head": {"name": "linear", "dropout": 0.0},
        "dataset": {"name": "csv-table", "train": str(data)},
        "train": {"epochs": 8, "batch_size": 16, "lr": 1e-2, "progress": False, **train},
        "output_dir": str(output_dir),
    }


@dataclass(frozen=True)
class PluginEnv:
    """A throwaway virtual environment layered on the test interpreter's packages."""

    python: Path
    site_packages: Path

    def source_paths(self) -> list[Path]:
        """The folders its editable installs put on sys.path (the lines of their .pth files)."""
        lines = (line.strip() for pth in self.site_packages.glob("__editable__*.pth")
                 for line in pth.read_text().splitlines())
        return [Path(line) for line in lines if line and Path(line).is_dir()]


def plugin_env(folder: Path, *projects: Path) -> PluginEnv:
    """Create a venv in ``folder`` that sees this interpreter's packages (omnitune, torch, pytest)
    and ``pip install --no-deps --no-build-isolation -e`` each of ``projects`` into it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    site_packages = next((folder / "lib").glob("python3*/site-packages"))
    parent = sysconfig.get_paths()["purelib"]
    (site_packages / "_omnitune_parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    python = folder / "bin" / "python"
    editable = [arg for project in projects for arg in ("-e", str(project))]
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "--no-deps", "--no-build-isolation", *editable], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return PluginEnv(python, site_packages)


@pytest.fixture(scope="session")
def example_env(tmp_path_factory: pytest.TempPathFactory) -> PluginEnv:
    """The example plugins pip-installed into a throwaway venv, once per session."""
    return plugin_env(tmp_path_factory.mktemp("example-env") / "venv",
                      *(EXAMPLES / name for name in EXAMPLE_PLUGINS))


@pytest.fixture
def example_plugins(example_env: PluginEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginEnv]:
    """Makes the installed example plugins visible to entry-point discovery in this process,
    for this test only."""
    for path in [example_env.site_packages, *example_env.source_paths()]:
        monkeypatch.syspath_prepend(str(path))
    yield example_env
    for name in [m for m in sys.modules if m.split(".")[0] in ("acme_tabular", "acme_csv_logger")]:
        del sys.modules[name]


HUB_PROBE = "https://huggingface.co/hf-internal-testing/tiny-random-BertModel/resolve/main/config.json"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``gpu`` tests run wherever CUDA is present, ``network`` tests wherever the Hugging Face hub
    answers; each is skipped elsewhere."""
    skips = {"gpu": None if torch.cuda.is_available() else "needs CUDA"}
    if any("network" in item.keywords for item in items):
        skips["network"] = None if _hub_reachable() else "the Hugging Face hub is unreachable"
    for item in items:
        for marker, reason in skips.items():
            if reason and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


def _hub_reachable(timeout: float = 5.0) -> bool:
    """Whether the hub serves a file now (a model's config), not merely whether DNS answers."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    probe = urllib.request.Request(HUB_PROBE, method="HEAD")
    try:
        with urllib.request.urlopen(probe, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False
@pytest.fixture(scope="session")
def trained_text_run(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT trained on generated reviews (one sentiment word decides the label) and
    tested on a file where every sixth label is flipped, started from inside a git repository:
    its output folder, with ``artifact/``. Shared by the report, model-card and explanation
    tests; treat it as read-only."""
    root = tmp_path_factory.mktemp("trained-text")
    data = write_csv(root / "reviews.csv", sentiment_rows(300))
    tested = sentiment_rows(60, seed=1)
    for row in tested[3::6]:  # wrong labels in the test file, so the report has mistakes to show
        row["label"] = {"pos": "neg", "neg": "pos"}[row["label"]]
    test_file = write_csv(root / "tested.csv", tested)
    repository = root / "repository"
    repository.mkdir()
    identity = ["-c", "user.name=t", "-c", "user.email=t@t"]
    for command in (["init", "-q"], [*identity, "commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", "-C", str(repository), *command], check=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repository)
        run = tiny_run(tiny_bert, data, root / "run", epochs=4)
        run["dataset"]["test"] = str(test_file)
        omnitune.finetune(run, plugins=omnitune.load_plugins())
    return root / "run"
