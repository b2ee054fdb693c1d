"""The results of a search: a table of trials, the best config as a run config, Optuna's plots."""

from __future__ import annotations

import json
import logging
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from omnitune.config import load_config
from omnitune.tuning import TuneResult
from omnitune.tuning_space import with_values

log = logging.getLogger("omnitune")


def trial_rows(study: Any) -> list[dict[str, Any]]:
    """One row per trial: the best first, then the other complete trials by value, then pruned,
    failed and running ones."""
    from optuna.trial import TrialState

    order = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1, TrialState.FAIL: 2}
    reverse = study.direction.name == "MAXIMIZE"
    rows = []
    for trial in study.get_trials(deepcopy=False):
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() \
            if trial.datetime_complete and trial.datetime_start else None
        last_step = trial.last_step
        rows.append({
            "number": trial.number,
            "state": trial.state.name.lower(),
            "value": trial.value,
            "pruned_at_examples": last_step if trial.state == TrialState.PRUNED else None,
            "params": trial.params,
            "metrics": trial.user_attrs.get("metrics", {}),
            "seconds": seconds,
            "cpu_s": trial.user_attrs.get("cpu_s"),
            "host": trial.user_attrs.get("host"),
        })
    rows.sort(key=lambda r: (order.get(TrialState[r["state"].upper()], 3),
                             -(r["value"] or 0) if reverse else (r["value"] or 0), r["number"]))
    return rows


def format_table(rows: list[dict[str, Any]], metric: str) -> str:
    """The trials as a text table; pruned trials marked with the training examples they had seen."""
    keys = sorted({key for row in rows for key in row["params"]})
    header = ["trial", "state", metric, *keys, "seconds", "cpu s"]
    lines = [header]
    for row in rows:
        state = row["state"] if row["pruned_at_examples"] is None else f"pruned@{row['pruned_at_examples']}ex"
        value = "" if row["value"] is None else f"{row['value']:.4f}"
        params = [_short(row["params"].get(key)) for key in keys]
        seconds, cpu = (f"{row[k]:.0f}" if row[k] is not None else "" for k in ("seconds", "cpu_s"))
        lines.append([str(row["number"]), state, value, *params, seconds, cpu])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def write_results(study: Any, base: dict[str, Any], folder: Path, metric: str) -> TuneResult:
    """Print the table; write trials.json, best_config.yaml and the plots into ``folder``."""
    rows = trial_rows(study)
    print(format_table(rows, metric))
    files = {"trials": folder / "trials.json"}
    files["trials"].write_text(json.dumps(rows, indent=2, default=str) + "\n", encoding="utf-8")
    best = _best_trial(study)
    if best is None:
        log.warning("no trial completed: no best config to write")
        return TuneResult(study, None, {}, None, None, files)
    config = load_config(with_values(base, best.params))
    files["best_config"] = folder / "best_config.yaml"
    files["best_config"].write_text(
        f"# best of study {study.study_name!r}: trial {best.number}, {metric} = {best.value:.6g}\n"
        + yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    files |= _plots(study, folder)
    artifact = Path(best.user_attrs["artifact"]) if "artifact" in best.user_attrs else None
    print(f"best: trial {best.number}, {metric} = {best.value:.4f}, {best.params}\n"
          f"best config: {files['best_config']}\nbest artifact: {artifact}")
    return TuneResult(study, best.value, best.params, config, artifact, files)


def _plots(study: Any, folder: Path) -> dict[str, Path]:
    """Optuna's optimisation history and parameter importances, as PNG (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as plots
    except ImportError:
        log.warning("matplotlib is not installed: no plots (pip install 'omnitune[report]')")
        return {}
    written = {}
    ranked = _rankable_params(study)
    for name, draw in (("history", plots.plot_optimization_history),
                       ("importances", partial(plots.plot_param_importances, params=ranked))):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                axes = draw(study)
            path = folder / f"{name}.png"
            axes.figure.tight_layout()
            axes.figure.savefig(path, dpi=120)
            plt.close(axes.figure)
            written[name] = path
        except (ValueError, RuntimeError) as error:  # e.g. importances need two complete trials
            log.warning("no %s plot: %s", name, error)
    return written


def _rankable_params(study: Any) -> list[str]:
    """Parameters Optuna can rank by importance: not a categorical with list choices
    (``task.scale``), whose distribution Optuna cannot hash."""
    names: set[str] = set()
    lists: set[str] = set()
    for trial in study.get_trials(deepcopy=False):
        for name, distribution in trial.distributions.items():
            names.add(name)
            if any(isinstance(c, list) for c in getattr(distribution, "choices", ())):
                lists.add(name)
    return sorted(names - lists)


def _best_trial(study: Any) -> Any:
    try:
        return study.best_trial
    except ValueError:
        return None


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
