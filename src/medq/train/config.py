"""Training configurations: a YAML file → `TrainConfig` (validated, with clear errors)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medq.assess.precision import DEVICES, resolve_precision
from medq.data.bench import BenchPlan
from medq.errors import InvalidParameter

LOSS_NAMES = ("physics", "score", "findings", "rank", "acquisition", "l1", "ssim", "prior")
"""Loss terms a stage can weight (`rank`: severity ladders, `ladders:`; `acquisition`: what the
DICOM headers of `medq train --tagged` images state; `l1`, `ssim`, `prior`: restoration,
`task: restore`)."""


@dataclass
class Stage:
    """One training stage: which losses, how many steps, the learning rate."""

    name: str
    steps: int
    lr: float = 3e-4
    losses: dict[str, float] = field(default_factory=lambda: {"score": 1.0})
    warmup: int = 50


@dataclass
class TrainConfig:
    """Everything `medq train` needs; see `configs/*.yaml` for annotated examples."""

    name: str
    model: str
    task: str = "quality"
    model_args: dict[str, Any] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    bench: BenchPlan = field(default_factory=BenchPlan)
    seed: int = 0
    batch_size: int = 16
    use_prompts: bool = True
    train_crop: int | None = None
    slice_steps: int = 300
    grad_clip: float = 1.0
    weight_decay: float = 0.05
    init: str | None = None
    ensemble: int = 1  # seeds seed … seed+n−1 trained and averaged (medq.train.ensemble)
    output: str = "runs/{name}"
    pairs: dict[str, Any] = field(default_factory=dict)  # restoration pair plans (task: restore)
    # restoration ensembles: per member, overrides of `pairs` (medq.train.restore_ensemble)
    member_pairs: list[dict[str, Any]] = field(default_factory=list)
    log_every: int = 100
    # quality models: severity ladders (`medq.data.bench.build_ladders`) for the `rank` loss, how
    # many per step, and the hinge's margin as a fraction of the reference scores' fall per rung
    ladders: int = 0
    ladder_batch: int = 4
    rank_margin: float = 0.25
    # quality models: arithmetic of the training steps (`medq.assess.precision`); auto is
    # bfloat16 where the CPU has it natively (faster steps: see the mediqa-s card), else float32
    precision: str = "float32"
    # where the steps run: auto (a CUDA GPU when PyTorch sees one, else the CPU), cpu or cuda
    device: str = "auto"
    # seconds of training between saves of the training state (`medq.train.resume`: an
    # interrupted run continues where it stopped); 0: never saved
    checkpoint_every_s: float = 120.0
    # the YAML file this config was read from (`load_config`), named by the model card
    config_file: str | None = None

    def output_dir(self) -> Path:
        """Where the run writes its checkpoint, card and metrics."""
        return Path(self.output.format(name=self.name))


NOT_USER_KEYS = ("config_file",)
"""Config fields medq sets itself (the file a config was read from), not a YAML key."""


def check_fields(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    """`data`, when it only has fields of dataclass `cls`; else InvalidParameter naming the
    unknown ones and those `cls` takes."""
    known = {f.name for f in dataclasses.fields(cls)} - set(NOT_USER_KEYS)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidParameter(f"unknown {where} field(s) {', '.join(unknown)}; "
                               f"expected some of {', '.join(sorted(known))}")
    return data


QUALITY_ONLY = ("bench", "use_prompts", "slice_steps", "ladders", "ladder_batch", "rank_margin")
"""TrainConfig fields only a quality run uses: a restoration config may hold them at their
defaults only (its config.yaml writes every default out)."""


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build and validate a TrainConfig from plain data (the parsed YAML): every field of its
    declared type and within range, its model built from `model_args` (`config_check`)."""
    if not isinstance(data, dict):
        raise InvalidParameter("a training config must be a mapping")
    from medq.train.config_check import check_ranges, check_sections, typed

    data = dict(check_fields(TrainConfig, data, "config"))
    raw_stages = data.pop("stages", []) or []
    if not isinstance(raw_stages, list) or not all(isinstance(r, dict) for r in raw_stages):
        raise InvalidParameter("stages must be a list of mappings (name, steps, lr, losses, "
                               "warmup)")
    stages = []
    for i, raw in enumerate(raw_stages):
        missing = [k for k in ("name", "steps") if k not in raw]
        if missing:
            raise InvalidParameter(f"stages[{i}]: needs {' and '.join(missing)} (and lr, "
                                   "losses, warmup)")
        stages.append(Stage(**typed(Stage, check_fields(Stage, dict(raw), f"stages[{i}]"),
                                    f"stages[{i}].")))
    raw_bench = data.pop("bench", {}) or {}
    if not isinstance(raw_bench, dict):
        raise InvalidParameter(f"bench: must be a mapping, got {raw_bench!r}")
    bench = BenchPlan(**typed(BenchPlan, check_fields(BenchPlan, dict(raw_bench), "bench"),
                              "bench."))
    for key in ("name", "model"):
        if key not in data:
            raise InvalidParameter(f"config needs a {key!r}")
    cfg = TrainConfig(**typed(TrainConfig, data, ""), stages=stages, bench=bench)
    if cfg.task not in ("quality", "prompts", "restore"):
        raise InvalidParameter(f"task must be 'quality', 'prompts' or 'restore', got {cfg.task!r}")
    _check_model(cfg)
    if cfg.member_pairs and (cfg.task != "restore" or not all(
            isinstance(m, dict) and set(m) <= {"train", "extra"} for m in cfg.member_pairs)):
        raise InvalidParameter("member_pairs is for task: restore, a list of overrides of the "
                               "'train' and 'extra' pair plans")
    if any(s.losses.get("rank") for s in cfg.stages) and (cfg.ladders < 1
                                                          or cfg.ladder_batch < 1):
        raise InvalidParameter("a stage weights the rank loss: set ladders and ladder_batch ≥ 1")
    if cfg.task == "restore":  # quality settings a restoration run cannot use were ignored
        defaults = TrainConfig(name="", model="")
        unused = [n for n in QUALITY_ONLY if getattr(cfg, n) != getattr(defaults, n)]
        if unused:
            raise InvalidParameter(f"{', '.join(unused)}: a restoration run (task: restore) does "
                                   "not use it; its images come from pairs")
    if cfg.init and cfg.task != "quality":  # it was silently ignored
        raise InvalidParameter(f"init: a {cfg.task} run starts from fresh weights (init takes a "
                               "quality model's checkpoint); remove it")
    resolve_precision(cfg.precision)  # InvalidParameter for anything but auto/float32/bfloat16
    if cfg.device not in DEVICES:
        raise InvalidParameter(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    check_ranges(cfg)
    check_sections(cfg)
    return cfg


def _check_model(cfg: TrainConfig) -> None:
    """InvalidParameter unless `cfg.model` is in its task's registry and `model_args` a mapping."""
    if not isinstance(cfg.model_args, dict):
        raise InvalidParameter(f"model_args must be a mapping, got {cfg.model_args!r}")
    if cfg.task == "quality":
        from medq.assess.models import available_models

        known = available_models()
    elif cfg.task == "restore":
        from medq.restore.models import PRESETS

        known = sorted(PRESETS)
    else:
        return
    if cfg.model not in known:
        other = "restore" if cfg.task == "quality" else "quality"
        hint = f" ({cfg.model!r} is a model of task {other}: add task: {other})" \
            if cfg.model in _models_of(other) else ""
        raise InvalidParameter(f"unknown model {cfg.model!r} for task {cfg.task!r}; expected one "
                               f"of {', '.join(known)}{hint}")


def _models_of(task: str) -> list[str]:
    """The model names a config of `task` ('quality' or 'restore') may name."""
    if task == "quality":
        from medq.assess.models import available_models

        return list(available_models())
    from medq.restore.models import PRESETS

    return sorted(PRESETS)


def read_text_file(path: Path, what: str, kind: str) -> str:
    """The text of a file the user names (a UTF-8 BOM dropped); InvalidParameter naming `path`
    when it is missing, a folder (`what`: "training config") or not text ("not a <kind>")."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InvalidParameter(f"{what} not found", path) from None
    except IsADirectoryError:
        raise InvalidParameter(f"is a folder, not a {what}", path) from None
    except UnicodeDecodeError:
        raise InvalidParameter(f"not a {kind}", path) from None
    except OSError as e:
        raise InvalidParameter(f"cannot read the {what} ({e.strerror})", path) from None
    if "\x00" in text:
        raise InvalidParameter(f"not a {kind}", path)
    return text


def _unique_keys_loader() -> type:
    """PyYAML's SafeLoader refusing a key written twice in one mapping (it keeps the last one
    quietly: an edited value that is not the one read)."""
    import yaml

    class UniqueKeys(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is written twice", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeys


def yaml_problem(error: Exception) -> str:
    """A YAML error in one line: its problem and where (`line 6, column 13`), not PyYAML's
    several lines quoting "<unicode string>" and the text under a caret."""
    problem = getattr(error, "problem", None) or getattr(error, "context", None)
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    if not problem:
        return " ".join(str(error).split())
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML training config; InvalidParameter naming the file on any problem."""
    import yaml

    path = Path(path)
    text = read_text_file(path, "training config", "YAML text file")
    try:
        data = yaml.load(text, Loader=_unique_keys_loader())  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        raise InvalidParameter(f"not valid YAML ({yaml_problem(e)})", path) from None
    try:
        cfg = config_from_dict(data)
    except InvalidParameter as e:
        raise InvalidParameter(e.reason, path) from None
    except TypeError as e:
        raise InvalidParameter(f"bad config ({e})", path) from None
    cfg.config_file = shown_path(path)
    return cfg


def shown_path(path: Path) -> str:
    """A file path as a card shows it: relative to the working folder when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def config_path(cfg: TrainConfig) -> str:
    """The config file that reproduces `cfg`: the file it was read from, else the one named
    after it in `configs/`."""
    return cfg.config_file or f"configs/{cfg.name.replace('-', '_')}.yaml"
