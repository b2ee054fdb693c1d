"""The ``omnitune`` command line. Exit codes: 0 ok, 1 unexpected error, 2 config error,
3 data error, 4 plugin error, 5 asset error, 6 checkpoint error, 7 non-finite loss,
8 output_dir in use by another run, 9 export failed its parity check,
130 interrupted (a checkpoint was saved; continue with --resume)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omnitune.errors import EXIT_INTERRUPTED, ConfigError, OmnituneError, PluginError

LISTABLE = {"tasks": "task", "backbones": "backbone", "heads": "head", "datasets": "dataset",
            "metrics": "metric"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``omnitune`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # peft imports bitsandbytes, whose CPU backend warns about optional kernels on import; its
    # kernels serve QLoRA only, which runs on CUDA (a CPU run is refused with its own message)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    try:
        return args.handler(args)
    except OmnituneError as error:
        if os.environ.get("OMNITUNE_DEBUG"):
            raise
        print(f"omnitune: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("omnitune: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    from omnitune import __version__

    parser = argparse.ArgumentParser(prog="omnitune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"omnitune {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    plugins = commands.add_parser("plugins", help="list loaded plugins and any that failed")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(handler=_plugins, doctor=False, verbose=False)
    doctor = plugins.add_subparsers(dest="plugins_command").add_parser(
        "doctor", help="diagnose plugins: versions, hooks, registrations, every failure; "
                       "exit code 4 if any plugin failed")
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.add_argument("--verbose", "-v", action="store_true", help="show each failure's traceback")
    doctor.set_defaults(handler=_plugins, doctor=True)

    new_plugin = commands.add_parser("new-plugin", help="create a plugin package to start from")
    new_plugin.add_argument("name", help="plugin name, e.g. 'tabular' (lower case, digits, dashes)")
    new_plugin.add_argument("--directory", default=".", help="where the package folder is created")
    new_plugin.set_defaults(handler=_new_plugin)

    for command, kind in LISTABLE.items():
        listing = commands.add_parser(command, help=f"list registered {kind}s")
        listing.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'text-*'")
        listing.add_argument("--json", action="store_true", help="print JSON")
        listing.add_argument("--options", action="store_true",
                             help="show each option: type, default, constraints, description")
        listing.set_defaults(handler=_list, kind=kind)

    train = commands.add_parser("train", help="fine-tune; with no config, the built-in default run")
    train.add_argument("config", nargs="?", help="YAML run config (default: the built-in main job)")
    _add_set(train)
    train.add_argument("--output-dir", help="where checkpoints and the artifact go")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    train.add_argument("--overwrite", action="store_true", help="discard a previous run in output_dir")
    train.add_argument("--dry-run", action="store_true", help="validate and print the config only")
    train.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    train.set_defaults(handler=_train)

    _add_tune(commands)

    evaluate = commands.add_parser("eval", help="evaluate an artifact on a dataset split")
    evaluate.add_argument("artifact", help="artifact folder written by train")
    evaluate.add_argument("--split", default="test", choices=["train", "validation", "test"])
    _add_set(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    _add_trust_remote_code(evaluate)
    evaluate.set_defaults(handler=_eval)

    report = commands.add_parser("report", help="write report.html and its PNG figures for a run")
    report.add_argument("run_dir", help="a run's output_dir (holds metrics.jsonl and artifact/)")
    report.add_argument("--split", default="test", choices=["train", "validation", "test"])
    report.add_argument("--output-dir", help="where the report goes (default: RUN_DIR/report)")
    report.set_defaults(handler=_report)

    explain = commands.add_parser("explain", help="which parts of an input made the prediction "
                                                  "(Integrated Gradients through Captum)")
    explain.add_argument("artifact", help="artifact folder written by train")
    explain.add_argument("inputs", nargs="+", help="raw inputs: texts, image or audio paths, user ids")
    explain.add_argument("--target", help="label, or recommended item id, to explain (default: the "
                                          "predicted one)")
    explain.add_argument("--steps", type=int, default=64, help="integration steps")
    explain.add_argument("--output-dir", default=".", help="where explanation.html or the PNGs go")
    explain.add_argument("--json", action="store_true", help="print one JSON object per input")
    explain.set_defaults(handler=_explain)

    _add_compress(commands)

    predict = commands.add_parser("predict", help="predict with an artifact (or bundle) on raw inputs")
    predict.add_argument("artifact", help="artifact folder written by train, or a bundle from export")
    predict.add_argument("inputs", nargs="*", help="raw inputs: texts, file paths or ids; '-' reads "
                                                   "one input per line from standard input")
    predict.add_argument("--device", default="auto", help="auto, cpu, mps, cuda or cuda:N")
    _add_trust_remote_code(predict)
    predict.add_argument("--json", action="store_true", help="print one JSON object per input")
    _add_batch_predict(predict)
    _add_set(predict)
    predict.set_defaults(handler=_predict)
    _add_export(commands)
    _add_serve(commands)

    chat = commands.add_parser("chat", help="chat with a causal-LM artifact in the terminal (streamed)")
    chat.add_argument("artifact", help="artifact folder written by train")
    chat.add_argument("--device", default="auto")
    _add_set(chat)
    chat.set_defaults(handler=_chat)

    export_hf = commands.add_parser(
        "export-hf", help="save a causal-LM artifact as a Hugging Face folder (LoRA merged) that "
                          "transformers loads without omnitune")
    export_hf.add_argument("artifact", help="artifact folder written by train")
    export_hf.add_argument("output", help="folder to write")
    export_hf.set_defaults(handler=_export_hf)
    return parser


def _add_batch_predict(predict: argparse.ArgumentParser) -> None:
    predict.add_argument("--input", type=Path, help="CSV/TSV/JSONL/text file of inputs, or a folder of "
                         "image or audio files; predictions go to --output")
    predict.add_argument("--output", type=Path, help="JSONL file: one line per input, in order; a rerun "
                         "appends only what is missing")
    predict.add_argument("--column", help="CSV column or JSONL key holding the input (default: first column)")
    predict.add_argument("--batch-size", type=int, default=32)
    predict.add_argument("--bad-inputs", choices=["error", "skip"], default="error",
                         help="stop at a bad input, or write its error line and go on")


def _add_export(commands: Any) -> None:
    export = commands.add_parser("export", help="export an artifact to an ONNX bundle that runs without "
                                 "torch, proving parity on held-out inputs")
    export.add_argument("artifact", help="artifact folder written by train")
    export.add_argument("--output", required=True, type=Path, help="bundle folder to write")
    export.add_argument("--format", choices=["onnx"], default="onnx")
    export.add_argument("--quantize", choices=["int8"], help="also write an int8 model and its score change")
    export.add_argument("--opset", type=int, default=18)
    export.add_argument("--exporter", choices=["auto", "dynamo", "torchscript"], default="auto",
                        help="auto: dynamo, falling back to TorchScript where dynamo fails")
    export.add_argument("--atol", type=float, default=1e-4, help="largest |ONNX - PyTorch| output allowed")
    export.add_argument("--min-identical", type=float, default=0.99,
                        help="smallest share of predictions equal to PyTorch's")
    export.add_argument("--max-int8-drop", type=float, default=0.01,
                        help="largest int8 score drop (absolute, e.g. 0.01 = 1 point)")
    export.add_argument("--inputs", type=Path, help="held-out inputs for the parity check (same formats as "
                        "predict --input) when the artifact's dataset does not resolve")
    export.add_argument("--column", help="column or key of --inputs")
    export.add_argument("--samples", type=int, default=1000, help="held-out inputs checked, at most")
    export.add_argument("--json", action="store_true", help="print the manifest's checks as JSON")
    export.set_defaults(handler=_export)


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve an artifact or bundle over HTTP (FastAPI + uvicorn)")
    serve.add_argument("model", help="bundle folder (ONNX, no torch needed) or artifact folder")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="server processes")
    serve.add_argument("--variant", choices=["fp32", "int8"], default="fp32", help="bundle model to serve")
    serve.add_argument("--no-batching", action="store_true", help="answer requests one at a time")
    serve.add_argument("--max-batch-size", type=int, default=32)
    serve.add_argument("--max-wait-ms", type=float, default=5.0)
    serve.add_argument("--max-inputs", type=int, default=256, help="most inputs per request")
    serve.add_argument("--max-body-mb", type=float, default=16.0, help="largest request body")
    serve.add_argument("--graceful-timeout", type=float, default=30.0,
                       help="seconds in-flight requests get to finish after SIGTERM")
    serve.set_defaults(handler=_serve)


def _add_tune(commands: Any) -> None:
    tune = commands.add_parser("tune", help="search hyperparameters with Optuna: pruning, "
                               "resumable, parallel across processes and machines")
    tune.add_argument("config", nargs="?", help="YAML run config (default: the built-in main job)")
    tune.add_argument("--space", required=True, help="YAML search space over the config's dotted keys")
    tune.add_argument("--trials", type=int, default=20, help="finished trials the study should hold")
    tune.add_argument("--timeout", type=float, help="start no new trial after this many seconds")
    tune.add_argument("--metric", default="eval_accuracy", help="validation metric to optimise")
    tune.add_argument("--direction", choices=["maximize", "minimize"],
                      help="default: minimize for a loss, else maximize")
    tune.add_argument("--storage", help="Optuna storage: an RDB URL (sqlite:///study.db, "
                      "postgresql://...) or a journal file path; default: OUTPUT_DIR/study.db")
    tune.add_argument("--study", default="omnitune", help="study name within the storage")
    tune.add_argument("--resume", action="store_true", help="continue the study, or join it from "
                      "another process or machine")
    tune.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"])
    tune.add_argument("--startup-trials", type=int, default=3, help="trials before the median pruner prunes")
    tune.add_argument("--prune-after", type=int, default=0, metavar="EXAMPLES",
                      help="no trial is pruned before it has seen this many training examples "
                           "(early evaluations say little)")
    tune.add_argument("--seed", type=int, help="seed of the TPE sampler (give each process its own)")
    tune.add_argument("--output-dir", help="trials, results and plots "
                      "(default: the config's output_dir + '-tune')")
    tune.add_argument("--keep-all", action="store_true", help="keep every complete trial's artifact")
    _add_set(tune)
    tune.set_defaults(handler=_tune)


def _add_compress(commands: Any) -> None:
    compress = commands.add_parser(
        "compress", help="a smaller student from an artifact's own weights (layers kept, heads "
                         "pruned), optionally fine-tuned with distillation from it")
    compress.add_argument("artifact", help="artifact folder of the teacher, written by train")
    compress.add_argument("--output-dir", required=True, help="where the student run and artifact go")
    compress.add_argument("--layers", type=_layer_list, metavar="I,J,...",
                          help="encoder layers to keep, e.g. 0,2,4")
    compress.add_argument("--prune-heads", type=_head_map, metavar="'{LAYER: [HEAD, ...]}'",
                          help="attention heads to remove, by original layer, e.g. '{0: [1, 5]}'")
    compress.add_argument("--fine-tune", action="store_true", help="then fine-tune the student")
    compress.add_argument("--distill", action="store_true",
                          help="then fine-tune it learning from the artifact too (train.distill)")
    _add_set(compress)
    compress.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    compress.set_defaults(handler=_compress)


def _layer_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected layer indices like 0,2,4, got {text!r}") from error


def _head_map(text: str) -> dict[int, list[int]]:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(f"expected a mapping like '{{0: [1, 5]}}': {error}") from error
    valid = isinstance(value, dict) and all(
        isinstance(k, int) and isinstance(v, list) and all(isinstance(h, int) for h in v)
        for k, v in value.items())
    if not valid:
        raise argparse.ArgumentTypeError(f"expected a mapping like '{{0: [1, 5]}}', got {text!r}")
    return value


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.lr=3e-5 (repeatable)")


def _add_trust_remote_code(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow the artifact to run Python code shipped in its own files")


def _plugins(args: argparse.Namespace) -> int:
    from omnitune.doctor import format_report, report, unfindable_factories
    from omnitune.plugins import load_plugins

    plugins = load_plugins()
    failures = plugins.failures + (unfindable_factories(plugins) if args.doctor else [])
    data = report(plugins, failures)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_report(data, hooks=args.doctor, tracebacks=args.verbose))
    return PluginError.exit_code if args.doctor and failures else 0


def _new_plugin(args: argparse.Namespace) -> int:
    from omnitune.scaffold import create_plugin

    folder = create_plugin(args.name, Path(args.directory))
    print(f"created {folder}\nnext: pip install -e {folder} && pytest {folder}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from omnitune.plugins import load_plugins

    found = load_plugins().registry.list(args.kind, args.pattern)
    if args.options:
        return _list_options(found, as_json=args.json)
    rows = [{"name": c.name, "plugin": c.plugin, "description": c.description} for c in found]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(r["name"]) for r in rows), default=0)
    for r in rows:
        print(f"{r['name']:<{width}}  [{r['plugin']}]  {r['description']}")
    return 0


def _list_options(found: list[Any], as_json: bool) -> int:
    from omnitune.describe import describe_options, text_table

    rows = [{"name": c.name, "plugin": c.plugin, "description": c.description,
             "options": describe_options(c.config)} for c in found]
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for row in rows:
        print(f"{row['name']}  [{row['plugin']}]  {row['description']}\n{text_table(row['options'])}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from omnitune.api import compose_config, finetune
    from omnitune.config import validate_components
    from omnitune.plugins import load_plugins

    fields: dict[str, Any] = {}
    if args.output_dir:
        fields["output_dir"] = args.output_dir
    if args.overwrite:
        fields["overwrite"] = True
    run = compose_config(args.config, overrides=args.overrides, **fields)
    plugins = load_plugins()
    resolved = validate_components(run, plugins.registry)
    if args.dry_run:
        shown = run.model_dump(mode="json")
        for kind, options in resolved.items():  # with every component default filled in
            shown[kind] = {"name": shown[kind]["name"], **options.model_dump(mode="json")}
        print(json.dumps(shown, indent=2))
        if run.train.monitor is None and run.train.select_by == "validation":
            from omnitune.options import IMBALANCE_RATIO

            print("train.monitor: the task's default; classification tasks decide it from the training "
                  f"split when the run starts: macro_f1 if its largest class has over {IMBALANCE_RATIO}x "
                  "the examples of its smallest, else accuracy (the choice and its reason are logged)",
                  file=sys.stderr)
        return 0
    result = finetune(run, resume=args.resume, plugins=plugins)
    if not result.is_main:  # under torchrun, rank 0 alone reports
        return 0
    summary = {"metrics": result.metrics, "artifact": str(result.artifact),
               "output_dir": str(result.output_dir)}
    if args.json:
        print(json.dumps(summary))
    else:
        print("\n".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}"
                        for k, v in result.metrics.items()))
        print(f"artifact: {result.artifact}")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from omnitune.tuning import tune

    tune(args.config, args.space, trials=args.trials, timeout=args.timeout, metric=args.metric,
         direction=args.direction, storage=args.storage, study=args.study, resume=args.resume,
         pruner=args.pruner, startup_trials=args.startup_trials,
         prune_after=args.prune_after, seed=args.seed,
         output_dir=args.output_dir, keep_all=args.keep_all, overrides=args.overrides)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from omnitune.api import evaluate

    metrics = evaluate(args.artifact, split=args.split, overrides=args.overrides,
                       trust_remote_code=args.trust_remote_code, progress=not args.json)
    print(json.dumps(metrics) if args.json else "\n".join(f"{k}: {v:.4f}" for k, v in metrics.items()))
    return 0


def _report(args: argparse.Namespace) -> int:
    from omnitune.report import write_report

    print(write_report(args.run_dir, split=args.split, output_dir=args.output_dir))
    return 0


def _explain(args: argparse.Namespace) -> int:
    from omnitune.explain import explain, heatmap_png, html_text
    from omnitune.explain_audio import spectrogram_png
    from omnitune.predict import Predictor

    explanations = explain(Predictor.load(args.artifact), args.inputs, target=args.target, steps=args.steps)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    for index, e in enumerate(explanations):
        written = None
        if e.pixels is not None:
            written = heatmap_png(e, output / f"explanation-{index}.png")
        if e.features is not None:
            written = spectrogram_png(e, output / f"explanation-{index}.png")
        if args.json:
            print(json.dumps({"input": str(e.input), "label": e.label, "score": e.score,
                              "baseline_score": e.baseline_score, "delta": e.delta, "tokens": e.tokens,
                              "items": e.items, "attributions": e.attributions.tolist(),
                              "heatmap": str(written or "")}))
        else:
            print(f"{e.label}\t{_shown(e, written)}")
    if explanations and explanations[0].tokens is not None:
        (output / "explanation.html").write_text(html_text(explanations), encoding="utf-8")
    return 0


def _shown(explanation: Any, written: Path | None) -> str:
    """The terminal line of one explanation: coloured tokens, history items by attribution, or the PNG."""
    from omnitune.explain import terminal_text

    if explanation.tokens:
        return terminal_text(explanation)
    if explanation.items:
        ranked = sorted(zip(explanation.items, explanation.attributions.tolist(), strict=True),
                        key=lambda pair: -abs(pair[1]))
        return "  ".join(f"{item} {value:+.4f}" for item, value in ranked)
    return str(written)


def _compress(args: argparse.Namespace) -> int:
    from omnitune.compress import compress

    artifact = compress(args.artifact, args.output_dir, layers=args.layers, prune_heads=args.prune_heads,
                        fine_tune=args.fine_tune, distill=args.distill, overrides=args.overrides)
    metrics = json.loads((artifact / "metrics.json").read_text(encoding="utf-8"))
    if args.json:
        print(json.dumps({"metrics": metrics, "artifact": str(artifact)}))
    else:
        print("\n".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}"
                        for k, v in metrics.items()))
        print(f"artifact: {artifact}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    if args.input is not None or args.output is not None:
        return _predict_file(args)
    if not args.inputs:
        raise ConfigError("predict: give inputs, or --input FILE_OR_FOLDER --output preds.jsonl")
    from omnitune.inputs import check_device, check_inputs, read_stdin_inputs
    from omnitune.predict import Predictor

    check_device(args.device, "--device")
    inputs = read_stdin_inputs() if args.inputs == ["-"] else args.inputs
    check_inputs(inputs, text=False)  # before the model loads; the text checks follow in predict()
    predictions = Predictor.load(args.artifact, device=args.device, overrides=args.overrides,
                                 trust_remote_code=args.trust_remote_code).predict(inputs)
    for raw, prediction in zip(inputs, predictions, strict=True):
        if args.json:
            print(json.dumps({"input": raw, **prediction}))
        else:
            shown = prediction.get("label", prediction.get("generated_text", prediction))
            print(f"{shown}\t{raw}")
    return 0


def _predict_file(args: argparse.Namespace) -> int:
    from omnitune.batch_predict import predict_file
    from omnitune.serving.models import load_model

    if args.input is None or args.output is None or args.inputs:
        raise ConfigError("predict: --input and --output go together, without inputs on the command line")
    counts = predict_file(load_model(args.artifact), args.input, args.output, column=args.column,
                          batch_size=args.batch_size, bad_inputs=args.bad_inputs)
    print(json.dumps(counts) if args.json else ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


def _export(args: argparse.Namespace) -> int:
    from omnitune.batch_predict import read_items
    from omnitune.export import Tolerances, export

    inputs = [item.value for item in read_items(args.inputs, args.column)] if args.inputs else None
    tolerances = Tolerances(args.atol, args.min_identical, args.max_int8_drop)
    manifest = export(args.artifact, args.output, quantize=args.quantize, opset=args.opset,
                      exporter=args.exporter, tolerances=tolerances, inputs=inputs, samples=args.samples)
    checks = {key: manifest.get(key) for key in ("parity", "quantization", "models", "exporter")}
    print(json.dumps(checks) if args.json else json.dumps(checks, indent=2))
    print(f"bundle: {args.output}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from omnitune.serving.app import SETTINGS_ENV, ServeSettings

    settings = ServeSettings(path=str(args.model), variant=args.variant, batching=not args.no_batching,
                             max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                             max_inputs=args.max_inputs, max_body_bytes=int(args.max_body_mb * 2**20))
    from omnitune.serving.models import load_model

    load_model(settings.path, settings.variant)  # fail here, with a clear message, not in each worker
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    uvicorn.run("omnitune.serving.app:app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, timeout_graceful_shutdown=args.graceful_timeout, log_level="warning")
    return 0
def _chat(args: argparse.Namespace) -> int:
    """Read user turns from stdin, stream each answer; the conversation is kept as history."""
    from omnitune.predict import Predictor

    predictor = Predictor.load(args.artifact, device=args.device, overrides=args.overrides)
    stream_chat = _task_method(predictor, "stream_chat", "chat")
    history: list[dict[str, str]] = []
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line or line.strip() in ("/exit", "/quit"):
            return 0
        history.append({"role": "user", "content": line.rstrip("\n")})
        answer = ""
        for piece in stream_chat(history):
            answer += piece
            print(piece, end="", flush=True)
        print(flush=True)
        history.append({"role": "assistant", "content": answer})


def _export_hf(args: argparse.Namespace) -> int:
    from omnitune.predict import Predictor

    predictor = Predictor.load(args.artifact, device="cpu", merge_lora=True)
    folder = _task_method(predictor, "save_pretrained", "export-hf")(Path(args.output))
    print(f"saved {folder}")
    return 0


def _task_method(predictor: Any, name: str, command: str) -> Any:
    method = getattr(predictor.task, name, None)
    if method is None:
        raise ConfigError(f"{command}: task {predictor.config.task.name!r} does not support it "
                          f"(it has no {name}); it works with causal-lm artifacts")
    return method


if __name__ == "__main__":
    sys.exit(main())
