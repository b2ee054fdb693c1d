"""The run config: pydantic models, YAML loading and ``--set`` overrides. Pure data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from omnitune.errors import ConfigError, shorten
from omnitune.inputs import DEVICE_PATTERN
from omnitune.registry import Kind, Registry, format_validation_error

DEFAULT_CONFIG = Path(__file__).parent / "defaults" / "main.yaml"
MAX_YAML_NODES = 100_000
MAX_CONFIG_BYTES = 1_000_000
MAX_EPOCHS = 100_000
MAX_STEPS = 10**9
MAX_BATCH = 2**20


class ComponentSpec(BaseModel):
    """A registered component by name, with its options (checked by its own config model)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1, description="Registered name, as listed by `omnitune tasks`.")

    @model_validator(mode="before")
    @classmethod
    def _name_alone(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @property
    def options(self) -> dict[str, Any]:
        """Everything but the name."""
        return dict(self.model_extra or {})


class LoraSettings(BaseModel):
    """LoRA adapters (through peft) for ``strategy: lora``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    rank: int = Field(8, ge=1, description="Rank of the update matrices.")
    alpha: float = Field(16.0, gt=0, description="Scaling: updates are multiplied by alpha / rank.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: list[str] | None = Field(
        None, description="Linear layers to adapt, by name suffix; default: the backbone's choice."
    )


LoggerName = Literal["jsonl", "tensorboard", "csv", "mlflow", "wandb"]


class TrackingSettings(BaseModel):
    """Where the experiment trackers (``train.loggers``) put a run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment: str = Field("omnitune", min_length=1, description="MLflow experiment / W&B project.")
    run_name: str | None = Field(None, description="Name of the run; default: the output_dir's name.")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default: MLFLOW_TRACKING_URI, else sqlite:///<output_dir>/mlflow.db."
    )
    wandb_mode: Literal["online", "offline", "disabled"] | None = Field(
        None, description="W&B mode; default: WANDB_MODE, else W&B's own default (online)."
    )


class DistillSettings(BaseModel):
    """Knowledge distillation from a fine-tuned teacher artifact (Hinton et al.)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    teacher: str = Field(min_length=1, description="Artifact folder of the teacher (same labels).")
    temperature: float = Field(2.0, gt=0, description="Softens both distributions: logits / T.")
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of the distillation term; the task "
                         "loss gets 1 - alpha.")
    cache_logits: bool = Field(False, description="Compute the teacher's logits on the training "
                               "split once, before the first epoch, instead of at every step.")


class TrainConfig(BaseModel):
    """How the loop trains: optimisation, schedule, evaluation, checkpoints, hardware.
    Numbers are finite (no ``.inf``/``.nan``) and counts bounded, so a typo fails here."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    epochs: int = Field(3, ge=1, le=MAX_EPOCHS, description="Passes over the training split.")
    max_steps: int | None = Field(None, ge=1, le=MAX_STEPS, description="Stop after this many steps.")
    batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH)] | Literal["auto"] = Field(
        "auto", description="Examples per micro-batch; auto: 32, or 16 or 8 when the epochs would "
        "otherwise make fewer than 50 optimizer steps (a small training split)."
    )
    eval_batch_size: int | None = Field(None, ge=1, le=MAX_BATCH, description="Defaults to batch_size.")
    grad_accum: int = Field(1, ge=1, le=MAX_BATCH, description="Micro-batches per optimizer step.")
    lr: float = Field(5e-5, gt=0, description="Learning rate of the backbone.")
    head_lr: float | None = Field(None, gt=0, description="Learning rate of the head; default lr.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW decay; never on norms or biases.")
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="Fraction of steps warming up.")
    schedule: Literal["constant", "linear", "cosine", "one-cycle"] = Field(
        "linear", description="LR decay after a linear warm-up; one-cycle: torch's OneCycleLR (cosine "
        "warm-up from lr/25 over warmup_ratio, cosine down to lr/25e4, Adam's beta1 cycled 0.95-0.85-0.95)."
    )
    max_grad_norm: float | None = Field(1.0, gt=0, description="Clip gradients; null: no clip.")
    strategy: Literal["full", "freeze-backbone", "freeze-then-unfreeze", "lora"] = Field(
        "full", description="What trains: everything, the head alone, the head first, or LoRA adapters."
    )
    lora: LoraSettings = Field(default_factory=LoraSettings, description="Used by strategy: lora.")
    unfreeze_epoch: int = Field(1, ge=1, description="freeze-then-unfreeze: epoch to unfreeze at.")
    cache_backbone_outputs: bool = Field(
        False, description="While the backbone is frozen, compute its output for each distinct input "
        "once and reuse it every epoch (backbones with cache_outputs: text). No use with augmentation."
    )
    layer_decay: float | None = Field(
        None, gt=0, le=1, description="Layer-wise LR decay: layer k of n trains at lr * decay**(n-k)."
    )
    eval_every: int | None = Field(None, ge=1, description="Evaluate every N steps; null: each epoch.")
    checkpoint_every: int | None = Field(
        None, ge=1, description="Checkpoint every N steps; null: at each evaluation."
    )
    keep_checkpoints: int = Field(2, ge=1, description="Checkpoints kept on disk.")
    monitor: str | None = Field(
        None, description="Validation metric for best/early stop; default: the task's (classification: "
        "macro_f1 when the largest training class has over 1.5x the examples of the smallest, else accuracy)."
    )
    monitor_mode: Literal["max", "min"] | None = Field(None, description="Default: the task's.")
    select_by: Literal["validation", "train_loss", "last"] = Field(
        "validation", description="Which weights the run keeps: the best train.monitor on validation, "
        "the lowest mean training loss between evaluations, or the last (a fixed number of epochs)."
    )
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after this many evaluations without improvement."
    )
    seed: int = Field(42, ge=0, le=2**32 - 1,
                      description="Seeds Python, NumPy and torch, and the data order (NumPy takes 32 bits).")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 on GPUs that support it, else fp32."
    )
    device: str = Field("auto", pattern=DEVICE_PATTERN, description="auto: cuda, mps, cpu.")
    distributed: Literal["ddp", "fsdp"] = Field(
        "ddp", description="Under torchrun: replicate the model on every process (ddp), or shard "
        "parameters, gradients and optimizer state across processes (fsdp)."
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations to save memory.")
    compile: str | None = Field(None, description="torch.compile backend (e.g. inductor); null: eager.")
    on_nonfinite_loss: Literal["stop", "skip"] = Field(
        "stop", description="A NaN/inf loss stops the run, or its step is skipped."
    )
    init_from: str | None = Field(
        None, description="Artifact folder whose weights start the run (same architecture)."
    )
    distill: DistillSettings | None = Field(None, description="Learn from a teacher artifact too.")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")
    log_every: int = Field(10, ge=1, description="Log training loss every N steps.")
    loggers: list[LoggerName] = Field(
        default_factory=lambda: ["jsonl"],
        description="Where metrics go: jsonl (<output_dir>/metrics.jsonl, always written), "
        "tensorboard, csv, mlflow, wandb.",
    )
    tracking: TrackingSettings = Field(default_factory=TrackingSettings,
                                       description="Experiment and run names for the trackers.")
    progress: bool = Field(True, description="Show a progress bar.")


class RunConfig(BaseModel):
    """Everything a run needs; validated before any model or data is loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: ComponentSpec
    backbone: ComponentSpec
    head: ComponentSpec = Field(default_factory=lambda: ComponentSpec(name="linear"))
    dataset: ComponentSpec
    train: TrainConfig = Field(default_factory=TrainConfig)
    output_dir: str = Field("runs/omnitune", min_length=1, description="Checkpoints and artifact.")
    overwrite: bool = Field(False, description="Start afresh even if output_dir has checkpoints.")


COMPONENTS: tuple[Kind, ...] = ("task", "backbone", "head", "dataset")


def load_config(
    source: str | Path | dict[str, Any] | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> RunConfig:
    """Build a RunConfig from a YAML file, a dict or the built-in default, then ``--set`` overrides."""
    if source is None:
        source = DEFAULT_CONFIG
    data = read_yaml(Path(source)) if isinstance(source, str | Path) else dict(source)
    for override in overrides:
        apply_override(data, override)
    where = f" in {source}" if isinstance(source, str | Path) else ""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"invalid run config{where}:\n{format_validation_error(error)}") from error


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file and line."""
    data = parse_yaml(_read_text(path), where=f"config file {path}")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    return data


def parse_yaml(text: str, where: str) -> Any:
    """Safe YAML with two refusals: aliases that expand beyond ``MAX_YAML_NODES`` nodes (a
    "billion laughs" bomb) and a key given twice in one mapping (YAML would keep the last)."""
    try:
        loader = yaml.SafeLoader(text)  # checks the characters at once
    except yaml.YAMLError as error:
        raise ConfigError(f"{where} is not valid YAML: {error}") from error
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise ConfigError(f"{where} is not valid YAML: {error}") from error
    except RecursionError as error:
        raise ConfigError(f"{where} is nested too deeply") from error
    finally:
        loader.dispose()


def _check_nodes(root: yaml.Node, where: str) -> None:
    """Count the nodes ``root`` expands to (each alias counted in full, memoised per node) and
    refuse duplicate keys, cycles and anything beyond ``MAX_YAML_NODES``."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            if sizes[id(node)] < 0:
                raise ConfigError(f"{where}: an alias refers to a node that contains it (line "
                                  f"{node.start_mark.line + 1})")
            return sizes[id(node)]
        sizes[id(node)] = -1
        total = 1
        if isinstance(node, yaml.MappingNode):
            _refuse_duplicate_keys(node, where)
            total += sum(size(key) + size(value) for key, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        if total > MAX_YAML_NODES:
            raise ConfigError(f"{where}: its aliases expand to more than {MAX_YAML_NODES} values "
                              f"(line {node.start_mark.line + 1}); a run config needs far fewer")
        sizes[id(node)] = total
        return total

    size(root)


def _refuse_duplicate_keys(node: yaml.MappingNode, where: str) -> None:
    seen: set[str] = set()
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
            if key.value in seen:
                raise ConfigError(f"{where}, line {key.start_mark.line + 1}: key {shorten(key.value)} "
                                  "is given twice in one mapping; keep one")
            seen.add(key.value)


def _read_text(path: Path) -> str:
    """The text of a config file; every way of not being a readable UTF-8 file is a ConfigError."""
    try:
        if path.is_dir():
            raise ConfigError(f"config file {path} is a directory; expected a YAML file")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {path} is {path.stat().st_size} bytes; a run config "
                              f"is at most {MAX_CONFIG_BYTES}")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ConfigError(f"config file not found: {path}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {error.start}: "
                          f"{error.reason})") from error
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error.strerror or error}") from error


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply ``a.b.c=value`` to nested ``data``; the value is parsed as YAML (``3e-5``, ``[1, 2]``)."""
    path, sep, raw = override.partition("=")
    if not sep or not path:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. train.lr=3e-5), got {shorten(override)}")
    *parents, leaf = path.strip().split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if isinstance(child, str):  # "task: text-classification" shorthand
            child = {"name": child}
        if child is None:
            child = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {shorten(override)}: {shorten(part)} is not a section")
        node[part] = child
        node = child
    node[leaf] = parse_yaml(raw, where=f"--set {shorten(override)}: the value")


def validate_components(config: RunConfig, registry: Registry) -> dict[Kind, BaseModel]:
    """Check every component name and its options against the registry; nothing is built."""
    resolved: dict[Kind, BaseModel] = {}
    for kind in COMPONENTS:
        spec: ComponentSpec = getattr(config, kind)
        contribution = registry.get(kind, spec.name)
        resolved[kind] = contribution.validate_options(spec.options, where=kind)
    return resolved
