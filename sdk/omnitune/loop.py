"""The one fine-tuning loop (fit / evaluate) that trains every task of every plugin."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from omnitune import checkpoint as ckpt
from omnitune.batch_size import batches_per_epoch, optimizer_steps, resolve_batch_size
from omnitune.config import TrainConfig
from omnitune.data import Splits
from omnitune.distill import Distiller
from omnitune.errors import ConfigError, TrainingError, TrainingInterrupted
from omnitune.events import RunEvents, run_events
from omnitune.metrics import Metric
from omnitune.plugins import Plugins
from omnitune.progress import ProgressLogger
from omnitune.runtime import Runtime, data_generator, epoch_order, rng_state, seed_everything, set_rng_state
from omnitune.selection import few_steps_warning, small_validation_warning
from omnitune.task import StepOutput, Task

log = logging.getLogger("omnitune")


@dataclass
class LoopState:
    """Where training is; saved in every checkpoint. Loop hooks may set ``should_stop``."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    total_steps: int = 0
    examples_per_step: int = 0  # batch_size x grad_accum x processes
    best_metric: float | None = None
    best_step: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    evaluated_step: int | None = None
    evals_without_improvement: int = 0
    skipped_steps: int = 0
    interval_loss: float = 0.0  # summed training loss (x items) since the last evaluation
    interval_items: int = 0
    should_stop: bool = False
    output_dir: str = ""


@dataclass
class FitResult:
    """Final metrics, where the loop left off, and the trained (best) weights, unsharded, to
    save: on rank 0 only (other processes get an empty dict)."""

    metrics: dict[str, float]
    state: LoopState
    weights: ckpt.Weights = field(default_factory=dict, repr=False)


def fit(
    task: Task,
    splits: Splits,
    train: TrainConfig,
    output_dir: Path,
    metric_fns: dict[str, Metric],
    *,
    runtime: Runtime | None = None,
    resume: bool = False,
    plugins: Plugins | None = None,
    callbacks: Sequence[object] = (),
    distiller: Distiller | None = None,
) -> FitResult:
    """Train ``task.model`` on ``splits.train``; evaluate, checkpoint and early-stop on the
    validation split; load the best weights; evaluate on the test split.

    Loop events go to ``plugins`` and to ``callbacks``, objects registered for this run only
    (see ``omnitune.hookspecs``). A ``distiller`` (``train.distill``) adds its loss terms like a
    callback and gives the training batches the teacher's logits or inputs. Under ``torchrun``
    every process calls ``fit``; only rank 0 logs, emits loop events and writes checkpoints.
    """
    runtime = runtime or Runtime.create(train.device, train.precision, train.distributed)
    train = resolve_batch_size(train, len(splits.train), runtime.world_size)
    logger = ProgressLogger(log_every=train.log_every, progress=train.progress)
    callbacks = [logger, *callbacks, *([distiller] if distiller is not None else [])]
    with run_events(plugins, callbacks, emit_events=runtime.is_main) as events:
        return _Fit(task, splits, train, output_dir, metric_fns, runtime, events, distiller).run(resume)


@torch.no_grad()
def evaluate(
    task: Task,
    model: nn.Module,
    examples: Sequence[Any],
    runtime: Runtime,
    metric_fns: dict[str, Metric],
    *,
    batch_size: int = 64,
    num_workers: int = 0,
    prefix: str = "eval",
    progress: bool = False,
) -> dict[str, float]:
    """Mean loss and every metric over ``examples``, keyed ``{prefix}_{name}``. Each process
    evaluates its shard; metrics are computed over all of them. ``progress`` shows a bar."""
    was_training = model.training
    model.eval()
    shard = runtime.shard(list(examples), even=False)
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, collate_fn=task.collate,
                        num_workers=num_workers, generator=data_generator(0), pin_memory=runtime.pin_memory)
    lockstep = runtime.lockstep(len(loader))  # agreed before any batch: FSDP forwards are collectives
    loss_sum, count, collected = 0.0, 0, []
    for batch in tqdm(loader, desc=prefix, unit="batch", leave=False, disable=not progress,
                      dynamic_ncols=True):
        items = task.num_items(batch)
        with runtime.autocast():
            out: StepOutput = task.evaluation_step(model, runtime.to_device(batch))
        loss_sum += out.loss.float().item() * items
        count += items
        collected.append({k: v.detach().float().cpu() if v.is_floating_point() else v.detach().cpu()
                          for k, v in out.outputs.items()})
    for _ in range(lockstep - len(loader)):  # results discarded
        with runtime.autocast():
            task.evaluation_step(model, runtime.to_device(task.collate([examples[0]])))
    model.train(was_training)
    parts = runtime.gather((loss_sum, count, collected))
    collected = [batch for _, _, batches in parts for batch in batches]
    outputs = {key: torch.cat([c[key] for c in collected]) for key in collected[0]} if collected else {}
    results = {f"{prefix}_loss": sum(p[0] for p in parts) / max(sum(p[1] for p in parts), 1)}
    for name, metric in metric_fns.items():
        results[f"{prefix}_{name}"] = metric(outputs)
    return results


@dataclass(frozen=True)
class StepResult:
    """What one optimizer step did: its mean loss, how many loss items and examples it saw,
    whether it applied."""

    loss: float
    items: int
    examples: int
    applied: bool = True  # False: the loss was not finite and the update was skipped


class _Fit:
    """One call of ``fit``, as a recipe: set up, train epoch by epoch, clean up."""

    def __init__(self, task: Task, splits: Splits, train: TrainConfig, output_dir: Path,
                 metric_fns: dict[str, Metric], runtime: Runtime, events: RunEvents,
                 distiller: Distiller | None = None) -> None:
        self.task, self.splits, self.train, self.runtime = task, splits, train, runtime
        self.metric_fns, self.events, self.distiller = metric_fns, events, distiller
        self.checkpoints = output_dir / "checkpoints"
        self.best_weights = output_dir / "best" / ckpt.WEIGHTS
        self.output_dir = output_dir
        self.monitor = train.monitor or task.monitor
        self.mode = train.monitor_mode or _default_mode(self.monitor, task)
        _check_settings(train, task, self.monitor, metric_fns)
        # -- model: LoRA, checkpointing, sharding, placement, DDP and compile in one call
        self.model, self.backbone = task.model, getattr(task.model, "backbone", None)
        self.train_model = runtime.setup(self.model, train)
        # what the backbone keeps fixed itself (a wav2vec2 feature encoder, say) stays fixed
        backbone_parameters = self.backbone.parameters() if self.backbone is not None else ()
        self.fixed = {id(p) for p in backbone_parameters if not p.requires_grad}
        self.frozen: bool | None = None
        # -- optimizer, schedule, loss scaling
        self.optimizer = build_optimizer(self.model, train, fused=runtime.device.type == "cuda")
        self.batches_per_epoch = batches_per_epoch(len(splits.train), runtime.world_size, train.batch_size)
        total = train.max_steps or optimizer_steps(len(splits.train), runtime.world_size, train.batch_size,
                                                   train.grad_accum, train.epochs)
        self.scheduler = build_scheduler(self.optimizer, train, total)
        self.scaler = runtime.grad_scaler()
        self.state = LoopState(total_steps=total, output_dir=str(output_dir),
                               examples_per_step=train.batch_size * train.grad_accum * runtime.world_size)
        self.stop_signal: int | None = None
        self.started, self.samples = time.perf_counter(), 0

    # -- the recipe -----------------------------------------------------------------------

    def run(self, resume: bool) -> FitResult:
        # setup: what the loss takes from the training split, then resume or seed a fresh start
        self.task.setup_training(self.splits.info)
        self._restore_or_seed(resume)
        if self.runtime.is_main:
            self._announce_selection()
            self._warn_few_steps()
        self.events.emit("on_fit_start", state=self.state)
        self.started = time.perf_counter()
        # train: epoch after epoch until the step budget or a stop
        with self._stop_on_signals():
            while not self._done():
                self._train_epoch()
        if self.state.evaluated_step != self.state.step:
            self._evaluate_and_checkpoint()
        # cleanup: best weights back, test metrics, the final report
        metrics = self._finish()
        return FitResult(metrics, self.state, self.runtime.full_weights(self.model))

    def _done(self) -> bool:
        return self.state.should_stop or self.state.step >= self.state.total_steps

    def _train_epoch(self) -> None:
        """Optimizer steps over the rest of this epoch; evaluate at its end unless ``eval_every``."""
        self._set_frozen(self.state.epoch < self._unfreeze_epoch)
        whole_epoch, applied = self.state.batches_in_epoch == 0, 0
        for window in _windows(self._epoch_batches(), self.train.grad_accum):
            result = self._optimizer_step(window)
            self.samples += result.examples
            self.state.batches_in_epoch += len(window)
            if not result.applied:
                continue
            applied += 1
            self.state.interval_loss += result.loss * result.items
            self.state.interval_items += result.items
            self.state.step += 1
            self.events.emit("on_step_end", state=self.state, logs=self._step_logs(result))
            self._after_step()
            if self._done():
                break
        if self.state.batches_in_epoch >= self.batches_per_epoch:
            if whole_epoch and not applied:  # every later epoch would skip every step too
                raise TrainingError(f"epoch {self.state.epoch} applied no optimizer step (every window was "
                                    "empty or its loss not finite); check the data and the task's settings")
            self.state.epoch += 1
            self.state.batches_in_epoch = 0
            if self.train.eval_every is None:
                self._evaluate_and_checkpoint()

    def _optimizer_step(self, window: list[dict[str, Any]]) -> StepResult:
        """Accumulate gradients over ``window`` (on every process) so the update equals that of
        one large batch: each micro-batch's mean loss is weighted by its share of all items."""
        self.model.train()
        if self.frozen:
            self.backbone.eval()
        sizes = [self.task.num_items(batch) for batch in window]
        examples = sum(self.task.num_examples(batch) for batch in window)
        total = self.runtime.sum(float(sum(sizes)))
        if total == 0:  # nothing to average over (every answer token cut at max_length, say)
            log.warning("skipped step %d: its %d micro-batch(es) hold no items the loss counts "
                        "(task.num_items is 0 on every process)", self.state.step + 1, len(window))
            return StepResult(0.0, 0, examples, applied=False)
        losses = []
        for index, (batch, size) in enumerate(zip(window, sizes, strict=True)):
            with self.runtime.accumulating(self.train_model, sync=index == len(window) - 1):
                loss = self._loss_step(self.runtime.to_device(batch))
            scale = size * self.runtime.world_size / total  # DDP averages over processes
            self.scaler.scale(loss * scale).backward()
            losses.append(loss.detach().float())
        # the losses stay on the device until here: one synchronisation per step
        values = torch.stack(losses).cpu().tolist()
        loss_value = self.runtime.sum(sum(v * s for v, s in zip(values, sizes, strict=True))) / total
        if not math.isfinite(loss_value):
            self._skip_nonfinite(loss_value)
            return StepResult(loss_value, sum(sizes), examples, applied=False)
        self._apply_gradients()
        return StepResult(loss_value, sum(sizes), examples)

    def _loss_step(self, batch: dict[str, Any]) -> torch.Tensor:
        """The one place a micro-batch's loss is formed: the task's step, plus any extra terms
        the run's plugins add (the ``loss_terms`` hook: distillation, regularisers)."""
        with self.runtime.autocast():
            output = self.task.training_step(self.train_model, batch)
            terms = self.events.loss_terms(self.train_model, batch, output)
        return output.loss + sum(terms) if terms else output.loss

    def _apply_gradients(self) -> None:
        """Clip, step the optimizer through the scaler, and step the schedule unless fp16
        overflowed (a lower scale means the update was skipped)."""
        if self.train.max_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.train.max_grad_norm)
        scale = self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler.get_scale() >= scale:
            self.scheduler.step()

    def _step_logs(self, result: StepResult) -> dict[str, float]:
        rate = self.samples / max(time.perf_counter() - self.started, 1e-9)
        return {"loss": result.loss, "lr": self.scheduler.get_last_lr()[0], "samples_per_s": rate}

    def _after_step(self) -> None:
        """Evaluate or checkpoint when due; agree on stopping across processes; honour signals."""
        if self.train.eval_every and self.state.step % self.train.eval_every == 0:
            self._evaluate_and_checkpoint()
        elif self.train.checkpoint_every and self.state.step % self.train.checkpoint_every == 0:
            self._save_checkpoint()
        self.state.should_stop, signalled = self.runtime.any(self.state.should_stop,
                                                             self.stop_signal is not None)
        if signalled:
            name = signal.Signals(self.stop_signal).name if self.stop_signal else "a signal"
            path = self._save_checkpoint()
            raise TrainingInterrupted(
                f"stopped by {name} at step {self.state.step}; checkpoint saved at {path}; "
                "continue with --resume"
            )

    # -- setup ----------------------------------------------------------------------------

    def _restore_or_seed(self, resume: bool) -> None:
        if self.runtime.is_main:
            for directory in (self.output_dir, self.checkpoints):
                if removed := ckpt.remove_staging(directory):
                    log.info("removed %d half-written folder(s) under %s", removed, directory)
        self.runtime.barrier()
        found = ckpt.load_latest_checkpoint(self.checkpoints) if resume else None
        if found is not None:
            self._restore(*found)
        else:
            if resume:
                log.warning("--resume: no checkpoint under %s; starting from scratch", self.checkpoints)
            seed_everything(self.train.seed + self.runtime.rank)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.distiller is not None and self.train.distill.cache_logits:
            self.distiller.cache_logits(self.splits.train, self.runtime,
                                        self.train.eval_batch_size or self.train.batch_size)

    def _restore(self, latest: Path, weights: ckpt.Weights, training_state: dict[str, Any]) -> None:
        self.runtime.check_layout(latest, training_state)
        self.runtime.load_full_weights(self.model, weights, latest)
        self.runtime.load_optimizer_state(self.model, self.optimizer, training_state["optimizer"])
        load_scheduler_state(self.scheduler, training_state["scheduler"])
        self.scaler.load_state_dict(training_state["scaler"])
        set_rng_state(training_state["rng"][self.runtime.rank])
        configured = self.state
        self.state = LoopState(**json.loads(training_state["loop"]))
        self.state.output_dir = str(self.output_dir)  # the run folder may have moved since
        self.state.examples_per_step = configured.examples_per_step
        if self.state.total_steps != configured.total_steps:  # --set train.max_steps / epochs changed
            log.warning("resuming with %d total steps instead of the checkpoint's %d; the LR "
                        "schedule follows the new total", configured.total_steps, self.state.total_steps)
            self.state.total_steps = configured.total_steps
        if self.runtime.is_main:
            log.info("resumed from %s (step %d of %d)", latest, self.state.step, self.state.total_steps)

    def _epoch_batches(self) -> Iterator[dict[str, Any]]:
        order = list(epoch_order(len(self.splits.train), self.train.seed, self.state.epoch))
        mine = self.runtime.shard(order, even=True)
        examples, collate = self.splits.train, self.task.collate
        if self.distiller is not None:  # batches carry the teacher's logits or inputs
            examples, collate = self.distiller.dataset(examples), self.distiller.collate
        loader = DataLoader(examples, batch_size=self.train.batch_size,
                            sampler=mine[self.state.batches_in_epoch * self.train.batch_size:],
                            collate_fn=collate, num_workers=self.train.num_workers,
                            generator=data_generator(self.train.seed), pin_memory=self.runtime.pin_memory)
        return iter(loader)

    @property
    def _unfreeze_epoch(self) -> float:
        return {"full": 0, "lora": 0, "freeze-backbone": math.inf,
                "freeze-then-unfreeze": self.train.unfreeze_epoch}[self.train.strategy]

    def _set_frozen(self, frozen: bool) -> None:
        """Freeze or unfreeze the backbone: only ``requires_grad`` changes (and, with
        ``cache_backbone_outputs``, whether the frozen backbone reuses its outputs)."""
        if frozen == self.frozen:
            return
        self.frozen = frozen
        if self.backbone is not None and self.train.strategy != "lora":
            for parameter in self.backbone.parameters():
                parameter.requires_grad_(not frozen and id(parameter) not in self.fixed)
        if self.train.cache_backbone_outputs:
            self.backbone.cache_outputs(frozen)

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM finish the current step, save a checkpoint and stop."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def remember(signum: int, _frame: object) -> None:
            self.stop_signal = signum

        previous = {s: signal.signal(s, remember) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    # -- evaluation, checkpoints, early stopping -------------------------------------------

    def _skip_nonfinite(self, loss: float) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        where = f"at step {self.state.step + 1} (epoch {self.state.epoch})"
        if self.train.on_nonfinite_loss == "stop":
            latest = ckpt.latest_checkpoint(self.checkpoints)
            raise TrainingError(
                f"the training loss became {loss} {where}; last good checkpoint: {latest or 'none'}. "
                "Lower train.lr, check the data, or set train.on_nonfinite_loss=skip"
            )
        self.state.skipped_steps += 1
        log.warning("skipped a step with a %s loss %s (%d skipped so far)", loss, where,
                    self.state.skipped_steps)

    def _announce_selection(self) -> None:
        """Log which weights the run will keep and why; warn when validation is too small to tell."""
        if self.train.select_by != "validation":
            log.info("keeping the %s weights (train.select_by=%s)", "last" if self.train.select_by ==
                     "last" else "lowest-training-loss", self.train.select_by)
            return
        why = ("train.monitor" if self.train.monitor else
               getattr(self.task, "monitor_reason", "the task's default"))
        log.info("monitoring %s (%s) on validation: %s", self.monitor, self.mode, why)
        if self.splits.validation and (warning := small_validation_warning(len(self.splits.validation),
                                                                           self.monitor)):
            log.warning(warning)

    def _warn_few_steps(self) -> None:
        """Warn when epochs (not an explicit ``max_steps``) give too few optimizer steps."""
        if self.train.max_steps is None and (warning := few_steps_warning(
                self.state.total_steps, len(self.splits.train), self.state.examples_per_step)):
            log.warning(warning)

    def _evaluate_and_checkpoint(self) -> None:
        self.state.evaluated_step = self.state.step
        metrics = self._evaluate(self.splits.validation, "eval") if self.splits.validation else {}
        if metrics or self.train.select_by != "validation":
            self._track_best(metrics)
        self._save_checkpoint()

    def _evaluate(self, examples: Sequence[Any], prefix: str) -> dict[str, float]:
        metrics = evaluate(self.task, self.model, examples, self.runtime, self.metric_fns,
                           batch_size=self.train.eval_batch_size or self.train.batch_size,
                           num_workers=self.train.num_workers, prefix=prefix,
                           progress=self.train.progress and self.runtime.is_main)
        self.events.emit("on_evaluate_end", state=self.state, split=prefix, metrics=metrics)
        return metrics

    def _selection(self, metrics: dict[str, float]) -> tuple[float, str, dict[str, float]]:
        """The number ``train.select_by`` compares, its direction, and the metrics to keep with it."""
        if self.train.select_by == "validation":
            return metrics[f"eval_{self.monitor}"], self.mode, metrics
        if self.train.select_by == "last":
            return float(self.state.step), "max", metrics
        loss = self.state.interval_loss / max(self.state.interval_items, 1)
        self.state.interval_loss, self.state.interval_items = 0.0, 0
        return loss, "min", metrics | {"selected_train_loss": loss}

    def _track_best(self, metrics: dict[str, float]) -> None:
        (value, mode, kept), best = self._selection(metrics), self.state.best_metric
        improved = best is None or (value > best if mode == "max" else value < best)
        if improved:
            self.state.best_metric, self.state.best_step = value, self.state.step
            self.state.best_metrics = kept
            self.state.evals_without_improvement = 0
            weights = self.runtime.full_weights(self.model)
            if self.runtime.is_main:
                self.best_weights.parent.mkdir(parents=True, exist_ok=True)
                ckpt.save_weights(weights, self.best_weights)
            return
        self.state.evals_without_improvement += 1
        patience = self.train.early_stopping_patience
        if patience is not None and self.state.evals_without_improvement >= patience:
            log.info("early stopping at step %d: no %s improvement in %d evaluations",
                     self.state.step, self.monitor, patience)
            self.state.should_stop = True

    def _save_checkpoint(self) -> Path:
        rng = self.runtime.gather(rng_state())
        weights = self.runtime.full_weights(self.model)
        optimizer = self.runtime.optimizer_state(self.model, self.optimizer)
        path = self.checkpoints / f"step-{self.state.step:08d}"
        if self.runtime.is_main:
            training_state = {
                "optimizer": optimizer,
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": rng,
                "loop": json.dumps(asdict(self.state)),
                "sharded": self.runtime.sharded,
            }
            path = ckpt.save_checkpoint(self.checkpoints, self.state.step, weights, training_state,
                                        self.train.keep_checkpoints)
            self.events.emit("on_checkpoint_saved", state=self.state, path=str(path))
        self.runtime.barrier()
        return path

    # -- cleanup --------------------------------------------------------------------------

    def _finish(self) -> dict[str, float]:
        seconds = time.perf_counter() - self.started
        if self.best_weights.is_file():
            best = ckpt.read_weights(self.best_weights)
            self.runtime.load_full_weights(self.model, best, self.best_weights)
        metrics: dict[str, float] = {"steps": self.state.step, "epochs": self.state.epoch}
        if seconds > 0 and self.samples:
            metrics |= {"train_runtime_s": seconds,
                        "train_samples_per_s": self.runtime.sum(self.samples) / seconds}
        if self.state.skipped_steps:
            metrics["skipped_steps"] = self.state.skipped_steps
        if self.state.best_step is not None:
            metrics |= self.state.best_metrics | {"best_step": self.state.best_step}
        if self.splits.test:
            metrics |= self._evaluate(self.splits.test, "test")
        if self.train.cache_backbone_outputs:
            self.backbone.cache_outputs(False)
        self.events.emit("on_fit_end", state=self.state, metrics=metrics)
        return metrics


def build_optimizer(model: nn.Module, train: TrainConfig, *, fused: bool = False) -> torch.optim.AdamW:
    """AdamW over backbone and head parameters, without weight decay on biases and norms.

    The head trains at ``head_lr``; the backbone at ``lr``, or with ``layer_decay`` at
    ``lr * layer_decay ** (num_layers - layer)`` using the backbone's ``layer_index(name)``.
    ``fused``: PyTorch's fused CUDA implementation (one kernel for all parameters).
    """
    backbone = getattr(model, "backbone", None)
    if train.layer_decay is not None and not hasattr(backbone, "layer_index"):
        raise ConfigError("train.layer_decay needs a backbone with layer_index(name) and num_layers; "
                          f"{type(backbone).__name__} has none")
    head_lr = train.head_lr or train.lr
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad and train.strategy == "lora":
            continue
        decay = train.weight_decay if parameter.ndim >= 2 else 0.0
        if not name.startswith("backbone."):
            lr = head_lr
        elif train.layer_decay is None:
            lr = train.lr
        else:
            depth = backbone.num_layers - backbone.layer_index(name.removeprefix("backbone."))
            lr = train.lr * train.layer_decay ** depth
        groups.setdefault((lr, decay), []).append(parameter)
    return torch.optim.AdamW([{"params": params, "lr": lr, "weight_decay": decay}
                              for (lr, decay), params in groups.items()], fused=fused or None)


def build_scheduler(optimizer: torch.optim.Optimizer, train: TrainConfig,
                    total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warmup over ``warmup_ratio`` of the steps, then constant, linear or cosine decay;
    or torch's one-cycle policy, peaking at each group's learning rate."""
    if train.schedule == "one-cycle":
        peaks = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total_steps,
                                                   pct_start=train.warmup_ratio)
    warmup = int(total_steps * train.warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total_steps - warmup)
        if train.schedule == "linear":
            return max(0.0, 1.0 - progress)
        if train.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def load_scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler, state: dict[str, Any]) -> None:
    """Restore a scheduler's position, keeping what the configured total decides (one-cycle's
    phase ends), so a resumed run with another ``max_steps`` follows the new total."""
    configured = ("total_steps", "_schedule_phases")
    scheduler.load_state_dict({k: v for k, v in state.items() if k not in configured})


def _check_settings(train: TrainConfig, task: Task, monitor: str, metric_fns: dict[str, Metric]) -> None:
    if monitor != "loss" and monitor not in metric_fns:
        raise ConfigError(f"train.monitor: {monitor!r} is not computed by this task; "
                          f"expected 'loss' or one of {sorted(metric_fns)}")
    if train.strategy != "full" and getattr(task.model, "backbone", None) is None:
        raise ConfigError(f"train.strategy {train.strategy!r} needs a model with a 'backbone'")
    if train.cache_backbone_outputs:
        if train.strategy not in ("freeze-backbone", "freeze-then-unfreeze"):
            raise ConfigError("train.cache_backbone_outputs needs a frozen backbone: train.strategy "
                              f"freeze-backbone or freeze-then-unfreeze, not {train.strategy!r}")
        backbone = task.model.backbone
        if not hasattr(backbone, "cache_outputs"):
            raise ConfigError(f"train.cache_backbone_outputs: backbone {type(backbone).__name__} "
                              "cannot reuse its outputs (it has no cache_outputs method)")


def _default_mode(monitor: str, task: Task) -> str:
    if monitor == task.monitor:
        return task.monitor_mode
    return "min" if monitor == "loss" else "max"


def _windows(iterable: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(iterable)
    while window := list(itertools.islice(iterator, size)):
        yield window
