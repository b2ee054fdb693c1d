"""The ``omnitune`` command line. Exit codes: 0 ok, 1 unexpected error, 2 config error,
3 data error, 4 plugin error, 5 asset error, 6 checkpoint error, 7 non-finite loss,
8 output_dir in use by another run, 130 interrupted (a checkpoint was saved; continue with --resume)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omnitune.errors import EXIT_INTERRUPTED, OmnituneError, PluginError

LISTABLE = {"tasks": "task", "backbones": "backbone", "heads": "head", "datasets": "dataset",
            "metrics": "metric"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``omnitune`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
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

    evaluate = commands.add_parser("eval", help="evaluate an artifact on a dataset split")
    evaluate.add_argument("artifact", help="artifact folder written by train")
    evaluate.add_argument("--split", default="test", choices=["train", "validation", "test"])
    _add_set(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    _add_trust_remote_code(evaluate)
    evaluate.set_defaults(handler=_eval)

    _add_compress(commands)

    predict = commands.add_parser("predict", help="predict with an artifact on raw inputs")
    predict.add_argument("artifact", help="artifact folder written by train")
    predict.add_argument("inputs", nargs="+", help="raw inputs: texts, file paths or ids; '-' reads "
                                                   "one input per line from standard input")
    predict.add_argument("--device", default="auto", help="auto, cpu, mps, cuda or cuda:N")
    _add_trust_remote_code(predict)
    predict.add_argument("--json", action="store_true", help="print one JSON object per input")
    predict.set_defaults(handler=_predict)
    return parser


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


def _eval(args: argparse.Namespace) -> int:
    from omnitune.api import evaluate

    metrics = evaluate(args.artifact, split=args.split, overrides=args.overrides,
                       trust_remote_code=args.trust_remote_code)
    print(json.dumps(metrics) if args.json else "\n".join(f"{k}: {v:.4f}" for k, v in metrics.items()))
    return 0


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
    from omnitune.inputs import check_device, check_inputs, read_stdin_inputs
    from omnitune.predict import Predictor

    check_device(args.device, "--device")
    inputs = read_stdin_inputs() if args.inputs == ["-"] else args.inputs
    check_inputs(inputs, text=False)  # before the model loads; the text checks follow in predict()
    predictions = Predictor.load(args.artifact, device=args.device,
                                 trust_remote_code=args.trust_remote_code).predict(inputs)
    for raw, prediction in zip(inputs, predictions, strict=True):
        if args.json:
            print(json.dumps({"input": raw, **prediction}))
        else:
            print(f"{prediction.get('label', prediction)}\t{raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
