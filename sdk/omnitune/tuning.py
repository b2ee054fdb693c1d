"""Hyperparameter search on Optuna: one study, trials that are ordinary runs, pruning through a
loop-event plugin, shared storage for resuming and for several processes or machines."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnitune.api import compose_config, finetune
from omnitune.config import RunConfig
from omnitune.errors import ConfigError, TrainingError, TrainingInterrupted
from omnitune.hookspecs import hookimpl
from omnitune.plugins import Plugins, load_plugins
from omnitune.tuning_space import Space, check_space, load_space, with_values

log = logging.getLogger("omnitune")
PRUNERS = ("median", "hyperband", "none")


@dataclass
class TrialReporter:
    """A loop-event plugin for one trial: reports ``metric`` after each validation pass and asks
    the loop to stop (``state.should_stop``) when the pruner finds the trial hopeless.

    The value is reported at the number of training examples seen (steps x
    ``state.examples_per_step``), not at the step: Optuna's pruners compare trials at equal
    reported steps, and a batch-64 trial has seen twice the examples of a batch-32 one at the
    same step."""

    trial: Any
    metric: str
    pruned_at: int | None = None
    missing_from: list[str] | None = None

    @hookimpl
    def on_evaluate_end(self, state: Any, split: str, metrics: dict[str, float]) -> None:
        if split != "eval":
            return
        if self.metric not in metrics:  # stop at once; the search reports it
            self.missing_from, state.should_stop = sorted(metrics), True
            return
        self.trial.report(metrics[self.metric], state.step * state.examples_per_step)
        if self.trial.should_prune():
            self.pruned_at = state.step
            state.should_stop = True


@dataclass(frozen=True)
class TuneResult:
    """What ``tune`` returns: the study, the best trial's config and artifact, and the files written."""

    study: Any
    best_value: float | None
    best_params: dict[str, Any]
    best_config: RunConfig | None
    best_artifact: Path | None
    files: dict[str, Path] = field(default_factory=dict)


@dataclass
class _Search:
    """One ``tune`` call in this process: the study, the base run, where trials go."""

    study: Any
    storage: Any
    space: Space
    base: dict[str, Any]
    metric: str
    output_dir: Path
    plugins: Plugins
    keep_all: bool

    @property
    def trials_dir(self) -> Path:
        return self.output_dir / "trials"

    def run_trial(self, trial: Any) -> float:
        """Optuna's objective: one ordinary run with the trial's values; its validation metric."""
        import optuna

        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        params = {key: param.suggest(trial, key) for key, param in self.space.items()}
        folder = self.trials_dir / f"trial-{trial.number:04d}"
        run = compose_config(with_values(self.base, params) | {"output_dir": str(folder), "overwrite": True})
        reporter = TrialReporter(trial, self.metric)
        cpu_started = time.process_time()
        try:
            result = finetune(run, plugins=self.plugins, callbacks=[reporter], evaluate_test=False)
        except TrainingError as error:  # a non-finite loss: this trial failed, the search goes on
            trial.set_user_attr("error", str(error))
            raise
        except (TrainingInterrupted, KeyboardInterrupt):  # runs again on --resume
            trial.set_user_attr("interrupted", True)
            raise
        finally:
            trial.set_user_attr("cpu_s", time.process_time() - cpu_started)
            if reporter.pruned_at is not None or not (folder / "artifact").is_dir():
                shutil.rmtree(folder, ignore_errors=True)  # a pruned trial leaves nothing behind
        if reporter.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned at step {reporter.pruned_at}")
        if reporter.missing_from is not None or self.metric not in result.metrics:
            shutil.rmtree(folder, ignore_errors=True)
            computed = reporter.missing_from or "nothing (no validation split)"
            raise ConfigError(f"--metric {self.metric!r} is not computed on the validation split "
                              f"of this run; it computes {computed}")
        for name in ("checkpoints", "best"):  # the artifact holds the best weights
            shutil.rmtree(folder / name, ignore_errors=True)
        trial.set_user_attr("metrics", result.metrics)
        trial.set_user_attr("artifact", str(result.artifact.resolve()))
        return result.metrics[self.metric]

    def sweep(self, *_args: Any) -> None:
        """Remove the folders of this machine's trials that are not the best (or, with
        ``keep_all``, not complete); a trial still running anywhere is left alone."""
        from optuna.trial import TrialState

        states = {t.number: t.state for t in self.study.get_trials(deepcopy=False)}
        best = _best_number(self.study)
        for folder in sorted(self.trials_dir.glob("trial-*")):
            number = int(folder.name.removeprefix("trial-"))
            state = states.get(number)
            if state is None or state == TrialState.RUNNING or state == TrialState.WAITING:
                continue
            if state == TrialState.COMPLETE and (number == best or self.keep_all):
                continue
            shutil.rmtree(folder, ignore_errors=True)

    def requeue_interrupted(self) -> None:
        """Queue again, with the same values, every trial an earlier search left unfinished: one
        stopped by SIGINT/SIGTERM, or left RUNNING by a killed process of this machine (then
        marked failed first)."""
        from optuna.trial import TrialState

        study_id = self.storage.get_study_id_from_name(self.study.study_name)
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            attrs = trial.user_attrs
            if attrs.get("host") != socket.gethostname() or _alive(attrs.get("pid")):
                continue
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            self.storage.set_trial_user_attr(trial_id, "interrupted", True)
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        trials = self.study.get_trials(deepcopy=False)
        retried = {t.user_attrs.get("retry_of") for t in trials}
        for trial in trials:
            if trial.state == TrialState.FAIL and trial.user_attrs.get("interrupted") \
                    and trial.number not in retried:
                self.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
                log.info("trial %d was interrupted; queued again with the same values", trial.number)

    def finished(self) -> int:
        """Trials that count towards ``--trials``: complete, pruned, or failed by a non-finite
        loss (not those a killed process left behind: they run again)."""
        from optuna.trial import TrialState

        done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        trials = self.study.get_trials(deepcopy=False, states=done)
        return sum(1 for t in trials if t.state != TrialState.FAIL or "error" in t.user_attrs)


def tune(
    config: str | Path | dict[str, Any] | RunConfig | None,
    space: str | Path | dict[str, Any],
    *,
    trials: int = 20,
    timeout: float | None = None,
    metric: str = "eval_accuracy",
    direction: str | None = None,
    storage: str | None = None,
    study: str = "omnitune",
    resume: bool = False,
    pruner: str | Any = "median",
    startup_trials: int = 3,
    prune_after: int = 0,
    sampler: Any = None,
    seed: int | None = None,
    output_dir: str | Path | None = None,
    keep_all: bool = False,
    plugins: Plugins | None = None,
    overrides: tuple[str, ...] | list[str] = (),
) -> TuneResult:
    """Search ``space`` (dotted run-config keys) for the run ``config`` with Optuna.

    Runs trials until the study holds ``trials`` finished ones (complete, pruned or failed), or
    starts no new one after ``timeout`` seconds. ``storage`` (an Optuna RDB URL such as
    ``sqlite:///study.db``, or a journal file path) defaults to ``<output_dir>/study.db``; with
    ``resume`` an existing study of that name is continued or joined by this process. Each
    evaluation is reported at the number of training examples seen, and no trial is pruned
    before ``prune_after`` examples.
    """
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1 (got {trials})")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("omnitune tune does not run under torchrun (each process would start its own "
                          "trials); run several tune processes on one --storage instead")
    plugins = plugins or load_plugins()
    run = compose_config(config, overrides=overrides)
    parsed = load_space(space)
    base = run.model_dump(mode="json")
    check_space(parsed, base, plugins.registry)
    folder = Path(output_dir or f"{run.output_dir}-tune").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    storage_obj = open_storage(storage or f"sqlite:///{folder / 'study.db'}")
    direction = direction or ("minimize" if metric.endswith("loss") else "maximize")
    opened = open_study(storage_obj, study, direction, resume=resume,
                        sampler=sampler or _default_sampler(trials, seed),
                        pruner=make_pruner(pruner, startup_trials, prune_after))
    search = _Search(opened, storage_obj, parsed, base, metric, folder, plugins, keep_all)
    search.requeue_interrupted()
    deadline = None if timeout is None else time.monotonic() + timeout
    while search.finished() < trials and (deadline is None or time.monotonic() < deadline):
        opened.optimize(search.run_trial, n_trials=1, catch=(TrainingError,), callbacks=[search.sweep])
    search.sweep()
    from omnitune.tuning_report import write_results

    return write_results(opened, base, folder, metric)


def open_storage(url: str) -> Any:
    """An Optuna storage: an RDB URL (``sqlite:///...``, ``postgresql://...``), whose trials
    send heartbeats so another process can fail and retry a dead machine's trial, or a journal
    file path (for a filesystem shared by several machines)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    if "://" in url:
        return _rdb_storage(url)
    path = Path(url.removeprefix("journal:"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path), JournalFileOpenLock(str(path))))


def _rdb_storage(url: str, attempts: int = 3) -> Any:
    """Workers started together on a fresh database race to create its tables and stamp its schema
    version (a lost race is an OperationalError or an IntegrityError); the losers retry."""
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError

    def connect() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, heartbeat_interval=60, grace_period=180,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(1))

    for attempt in range(attempts - 1):
        try:
            return connect()
        except (OperationalError, IntegrityError):
            time.sleep(1 + attempt)
    return connect()


def open_study(storage: Any, name: str, direction: str, *, resume: bool, sampler: Any,
               pruner: Any) -> Any:
    """Create the study, or with ``resume`` load (join) it; refuse to mix two searches silently."""
    import optuna

    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"--direction must be 'maximize' or 'minimize', got {direction!r}")
    existing = next((s for s in optuna.get_all_study_summaries(storage) if s.study_name == name), None)
    if existing is not None and not resume and existing.n_trials:
        raise ConfigError(f"study {name!r} already holds {existing.n_trials} trial(s) in this storage; "
                          "pass --resume to continue it (or join it from another process), "
                          "or choose another --study")
    if existing is not None and existing.direction.name.lower() != direction:
        raise ConfigError(f"study {name!r} was created to {existing.direction.name.lower()}, "
                          f"not to {direction}; use the same --direction or another --study")
    return optuna.create_study(storage=storage, study_name=name, direction=direction, sampler=sampler,
                               pruner=pruner, load_if_exists=True)


def make_pruner(pruner: str | Any, startup_trials: int = 3, prune_after: int = 0) -> Any:
    """``median`` (prune below the median of earlier trials at the same count of training
    examples seen, after ``startup_trials`` trials), ``hyperband``, ``none``, or any Optuna
    pruner object; the median and Hyperband pruners leave every trial alone before
    ``prune_after`` examples."""
    import optuna

    if not isinstance(pruner, str):
        return pruner
    if prune_after < 0:
        raise ConfigError(f"--prune-after must be a count of training examples, 0 or more, got {prune_after}")
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=prune_after)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, prune_after))
    if pruner == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"--pruner must be one of {', '.join(PRUNERS)}, got {pruner!r}")


def _default_sampler(trials: int, seed: int | None) -> Any:
    """TPE; its random start-up phase is a third of the trials (3 to 10)."""
    import optuna

    return optuna.samplers.TPESampler(n_startup_trials=min(10, max(3, trials // 3)), seed=seed)


def _best_number(study: Any) -> int | None:
    try:
        return study.best_trial.number
    except ValueError:  # no complete trial yet
        return None


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
