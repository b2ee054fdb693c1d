"""Knowledge distillation (Hinton et al., 2015): a fine-tuned teacher, rebuilt from its artifact,
guides a student through its softened logits on the same batches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from omnitune.config import DistillSettings
from omnitune.errors import ConfigError
from omnitune.hookspecs import hookimpl
from omnitune.plugins import Plugins
from omnitune.runtime import Runtime
from omnitune.task import StepOutput, Task

TEACHER_INPUTS = "teacher_inputs"
TEACHER_LOGITS = "teacher_logits"
LOGITS_MASK = "logits_mask"  # a sequence task's real (unpadded) positions, beside its logits
COMPARED_INFO = ("labels", "vocabulary")


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      task_loss: torch.Tensor, *, temperature: float, alpha: float,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """``alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * task_loss``."""
    kl = softened_kl(student_logits, teacher_logits, temperature, mask)
    return alpha * temperature**2 * kl + (1 - alpha) * task_loss


def softened_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                temperature: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``KL(softmax(teacher / T) || softmax(student / T))`` averaged over items (every position
    of a sequence is an item, a CTC model's every frame); the logits' last dimension holds the
    classes. With ``mask`` (the logits' shape less that dimension, True at real positions)
    padded positions are left out of both the sum and the count."""
    classes = student_logits.shape[-1]
    student = F.log_softmax(student_logits.float().reshape(-1, classes) / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits.float().reshape(-1, classes) / temperature, dim=-1)
    if mask is not None:
        real = mask.reshape(-1).to(student.device)
        student, teacher = student[real], teacher[real]
    return F.kl_div(student, teacher, reduction="batchmean", log_target=True)


class Teacher:
    """A fine-tuned model from its artifact: frozen, in eval mode, on the student's device."""

    def __init__(self, task: Task, folder: Path, shares_inputs: bool) -> None:
        self.task, self.folder, self.shares_inputs = task, folder, shares_inputs
        task.model.eval().requires_grad_(False)

    @classmethod
    def load(cls, folder: str | Path, student: Task, task_name: str, data_info: dict[str, Any],
             runtime: Runtime, plugins: Plugins | None = None) -> Teacher:
        """Rebuild the teacher through the registry; refuse one whose task, labels or vocabulary
        differ from the student's, naming both."""
        from omnitune.predict import Predictor

        folder = Path(folder)
        predictor = Predictor.load(folder, device=str(runtime.device), plugins=plugins)
        check_compatible(folder, predictor.config.task.name, predictor.data_info, task_name, data_info)
        shares_inputs = predictor.task.preprocessing() == student.preprocessing()
        return cls(predictor.task, folder, shares_inputs)

    @torch.no_grad()
    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        """The teacher's logits for a batch of its own inputs (call under the loop's autocast)."""
        return _logits(self.task, self.task.training_step(self.task.model, batch), "teacher")


class Distiller:
    """The loop's side of distillation: batches carry the teacher's logits (cached) or inputs,
    and extra loss terms (the ``loss_terms`` hook) make the task's loss the distillation loss.
    A task with logits per position (CTC frames) marks the real ones in ``outputs["logits_mask"]``."""

    def __init__(self, settings: DistillSettings, teacher: Teacher, student: Task) -> None:
        self.settings, self.teacher, self.student = settings, teacher, student
        self.cache: list[torch.Tensor] | None = None

    @classmethod
    def create(cls, settings: DistillSettings, student: Task, task_name: str,
               data_info: dict[str, Any], runtime: Runtime, plugins: Plugins | None = None) -> Distiller:
        """Load ``settings.teacher`` for ``student`` (a ``task_name`` task on ``data_info``)."""
        teacher = Teacher.load(settings.teacher, student, task_name, data_info, runtime, plugins)
        return cls(settings, teacher, student)

    def cache_logits(self, examples: Sequence[Any], runtime: Runtime, batch_size: int) -> None:
        """Run the teacher once over ``examples`` (the training split) and keep its logits."""
        cache: list[torch.Tensor] = []
        for start in range(0, len(examples), batch_size):
            batch = runtime.to_device(self.teacher.task.collate(list(examples[start:start + batch_size])))
            with runtime.autocast():
                cache.extend(self.teacher.logits(batch).float().cpu())
        if len({tuple(logits.shape) for logits in cache}) > 1:
            raise ConfigError("train.distill.cache_logits: the teacher's logits differ in shape "
                              "between examples (sequences); run without the cache")
        self.cache = cache

    def dataset(self, examples: Sequence[Any]) -> Dataset[tuple[int, Any]]:
        """The training examples with their positions, so a batch can find its cached logits."""
        return _Indexed(examples)

    def collate(self, items: list[tuple[int, Any]]) -> dict[str, Any]:
        """The student's batch, plus the teacher's logits (cached) or its inputs when they differ."""
        examples = [example for _, example in items]
        batch = self.student.collate(examples)
        if self.cache is not None:
            batch[TEACHER_LOGITS] = torch.stack([self.cache[index] for index, _ in items])
        elif not self.teacher.shares_inputs:
            batch[TEACHER_INPUTS] = self.teacher.task.collate(examples)
        return batch

    @hookimpl
    def loss_terms(self, model: Any, batch: dict[str, Any], output: StepOutput) -> dict[str, torch.Tensor]:
        """Terms that turn the task's loss into the distillation loss: the weighted KL term, and
        ``-alpha`` times the task loss (so that it keeps its ``1 - alpha`` share)."""
        if TEACHER_LOGITS in batch:
            teacher_logits = batch[TEACHER_LOGITS]
        else:
            teacher_logits = self.teacher.logits(batch.get(TEACHER_INPUTS, batch))
        student_logits = _logits(self.student, output, "student")
        if student_logits.shape != teacher_logits.shape:
            raise ConfigError(f"train.distill: the student's logits have shape "
                              f"{tuple(student_logits.shape)}, the teacher's ({self.teacher.folder}) "
                              f"{tuple(teacher_logits.shape)}; both must score the same classes "
                              "(over the same positions: CTC frames, tokens)")
        alpha = self.settings.alpha
        kl = softened_kl(student_logits, teacher_logits, self.settings.temperature,
                         output.outputs.get(LOGITS_MASK))
        return {"distillation": alpha * self.settings.temperature**2 * kl,
                "task_share": -alpha * output.loss}


def check_compatible(folder: Path, teacher_task: str, teacher_info: dict[str, Any],
                     student_task: str, student_info: dict[str, Any]) -> None:
    """Refuse a teacher whose task, label map or vocabulary is not the student's."""
    if teacher_task != student_task:
        raise ConfigError(f"train.distill.teacher: {folder} is a {teacher_task!r} model, the "
                          f"student a {student_task!r} one; distillation needs the same task")
    for key in COMPARED_INFO:
        teacher, student = teacher_info.get(key), student_info.get(key)
        if teacher != student:
            raise ConfigError(f"train.distill.teacher: the teacher's {key} ({folder}) are "
                              f"{_short(teacher)}, the student's dataset's are {_short(student)}; "
                              "distillation needs the same ones in the same order")


class _Indexed(Dataset):
    def __init__(self, examples: Sequence[Any]) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> tuple[int, Any]:
        return index, self.examples[index]


def _logits(task: Task, out: StepOutput, who: str) -> torch.Tensor:
    logits = out.outputs.get("logits")
    if logits is None:
        raise ConfigError(f"train.distill: the {who}'s task {type(task).__name__} returns no "
                          "outputs['logits'] from training_step; distillation needs its logits")
    return logits


def _short(values: Any, limit: int = 8) -> str:
    if not isinstance(values, list) or len(values) <= limit:
        return repr(values)
    return f"{values[:limit]!r}... ({len(values)} in all)"

