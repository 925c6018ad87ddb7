"""Shipped and local model weights: find a checkpoint by name or path and rebuild its model.

Shipped weights live in `medq/weights/<name>.pt` with a model card `<name>.md` beside them;
any path to a checkpoint written by `medq train` works as well. Nothing is ever downloaded.
"""

from __future__ import annotations

import warnings
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from medq.errors import InvalidParameter, MedqError, ModelError

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
"""Folder of the shipped weights (package data)."""

DEFAULT_MODEL = "mediqa-s"
"""Model used by `medq assess` when none is named."""

RESTORER_PREFIX = "restore-"
"""Name prefix of the shipped restoration networks."""

PROMPT_CLASSIFIER = "prompt-classifier"
"""Name of the shipped prompt classifier (`medq.assess.prompt_classifier`)."""


def shipped() -> list[str]:
    """Names of the shipped checkpoints."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def why(exc: BaseException) -> str:
    """`<type>: <first line of the message>` of a loading failure, a line over 120 characters cut
    at a word (and marked " …")."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    first = lines[0] if len(lines[0]) <= 120 else lines[0][:120].rsplit(" ", 1)[0] + " …"
    return f"{type(exc).__name__}: {first}"


def checkpoint_error(reason: str, path: str | Path) -> MedqError:
    """The error of a checkpoint that cannot be used: ModelError (an internal error, exit code 1)
    for shipped weights, InvalidParameter (bad input, exit code 2) for a file the user named."""
    shipped_file = Path(path).resolve().parent == WEIGHTS_DIR
    return (ModelError if shipped_file else InvalidParameter)(reason, path)


def restorers() -> list[str]:
    """Names of the shipped restoration networks (what `--model` of `medq restore` takes)."""
    return [n for n in shipped() if n.startswith(RESTORER_PREFIX)]


def quality_models() -> list[str]:
    """Names of the shipped quality models (what `--model` of `medq assess` takes)."""
    return [n for n in shipped() if n not in restorers() and n != PROMPT_CLASSIFIER]


def resolve(name_or_path: str | Path, wanted: str = "quality model") -> Path:
    """Path of a shipped checkpoint name of the `wanted` kind (a key of `CHECKPOINT_FAMILIES`),
    or of an existing checkpoint file or run folder; InvalidParameter (bad input) otherwise."""
    path = run_checkpoint(Path(name_or_path).expanduser())
    if path.is_file() and (path.suffix == ".pt" or not (WEIGHTS_DIR / f"{path.name}.pt").is_file()):
        return path  # any existing file is tried as a checkpoint (and refused if it is none)
    candidate = WEIGHTS_DIR / f"{name_or_path}.pt"
    names = quality_models() if wanted == "quality model" else restorers()
    if candidate.is_file() and candidate.stem in names:
        return candidate
    raise unknown_weights(name_or_path, wanted)


def run_checkpoint(path: Path) -> Path:
    """The checkpoint of a run folder `medq train` wrote (`<folder>/model.pt`), else `path`."""
    return path / "model.pt" if path.is_dir() and (path / "model.pt").is_file() else path


def unknown_weights(name: str | Path, wanted: str) -> InvalidParameter:
    """The error for a `--model(s)` value that names no checkpoint of the `wanted` kind (a key
    of `CHECKPOINT_FAMILIES`): a path that does not exist, a shipped network of the other
    kind, or a name medq does not ship."""
    text = str(name)
    if not text.strip():
        return InvalidParameter(f"an empty name names no {wanted}: give a shipped name or a "
                                "checkpoint path")
    folder = Path(text).expanduser()
    if folder.is_dir():  # a run folder without its model.pt
        if (folder / "resume.pt").is_file():
            return InvalidParameter("a run not finished yet (its resume.pt, no model.pt): run "
                                    "its medq train command again to finish it", text)
        return InvalidParameter(f"a folder without model.pt: give a {wanted}'s checkpoint "
                                "file or the run folder medq train wrote", text)
    if "/" in text or "\\" in text or text.endswith(".pt"):
        return InvalidParameter("checkpoint file not found", text)
    shipped_names = quality_models() if wanted == "quality model" else restorers()
    other = restorers() if wanted == "quality model" else quality_models()
    if text in other:
        kind = next(k for k in CHECKPOINT_FAMILIES if k != wanted)
        return InvalidParameter(f"a shipped {kind}, not a {wanted}: "
                                f"{CHECKPOINT_FAMILIES[kind][1]} take it", text)
    return InvalidParameter(f"no {wanted} weights called {text!r}: give a checkpoint path or "
                            f"one of the shipped ones ({', '.join(shipped_names) or 'none'})")


CHECKPOINT_FAMILIES = {
    "quality model": (("MedIQA", "CNNIQA", "WaDIQaM", "SeedEnsemble"),
                      "`medq assess --model`, `medq bench iqa --models`"),
    "restoration network": (("RestoreUNet", "RestoreEnsemble"),
                            "`medq restore --model`, `medq bench restore --models`"),
}
"""The model classes a checkpoint of each kind names, and the commands that take it."""


def check_family(ckpt: dict[str, Any], wanted: str, path: str) -> None:
    """InvalidParameter (bad input wherever the file lies) when a checkpoint is of the other
    kind than `wanted` (a key of `CHECKPOINT_FAMILIES`), naming the commands that take it."""
    for kind, (classes, commands) in CHECKPOINT_FAMILIES.items():
        if kind != wanted and ckpt.get("model") in classes:
            raise InvalidParameter(f"a {kind}, not a {wanted}: {commands} take it", path)


def read_checkpoint(path: str, what: str) -> dict[str, Any]:
    """The entries of a checkpoint file medq wrote (`torch.save` of a dict, read without
    pickled code), or the error naming `what` it should have been: a file torch.save did not
    write, one whose pickle holds code, or one holding a bare tensor rather than a dict."""
    import torch

    if not zipfile.is_zipfile(path):  # what torch.save writes; torch.load's own errors on any
        raise checkpoint_error("not a PyTorch checkpoint file (medq train writes them as .pt)",
                               path)  # other file read like "KeyError: 101"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 — a pickle with code in it, a damaged archive
        raise checkpoint_error(f"not a {what} (it holds more than tensors and plain values, "
                               f"or is damaged: {type(e).__name__})", path) from e
    if not isinstance(ckpt, dict) or "model" not in ckpt and "members" not in ckpt:
        raise checkpoint_error(f"not a {what} (it holds a {type(ckpt).__name__} without medq's "
                               "entries)", path)
    if "optimizer" in ckpt and "step" in ckpt:  # read as a model it failed as a TypeError
        raise checkpoint_error("a training run's resume state, not a model: the run's model.pt "
                               "is written when it ends (run its medq train command again to "
                               "finish it)", path)
    return ckpt


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> tuple[Any, dict[str, Any]]:
    """The model and record of checkpoint `path` as of its modification time `mtime` (a file
    rewritten in place, as by a training run, is read again)."""
    from medq.assess.models import checkpoint_class

    ckpt = read_checkpoint(path, "medq quality checkpoint")
    check_family(ckpt, "quality model", path)
    try:  # read once: the file may hold several members
        model = checkpoint_class(ckpt["model"]).from_dict(ckpt)
    except ModelError as e:
        raise checkpoint_error(e.reason, path) from e
    except Exception as e:  # noqa: BLE001 — whatever torch.load or the rebuild trips on
        raise checkpoint_error(f"not a medq quality checkpoint ({why(e)})", path) from e
    return model, dict(ckpt.get("medq", {}))


def model_id(name_or_path: str | Path, record: dict[str, Any]) -> str:
    """The model an assessment names: a shipped model's name; a checkpoint's run name with its
    file (`mediqa-s-finetuned (/abs/runs/x/model.pt)`), so two runs of one config differ."""
    path = resolve(name_or_path)
    name = str(record.get("name") or path.stem)
    return name if path.resolve().parent == WEIGHTS_DIR else f"{name} ({path.resolve()})"


def load_weights(name_or_path: str | Path) -> tuple[Any, dict[str, Any]]:
    """(model in eval mode, training record) of a shipped name or a checkpoint path (cached)."""
    path = resolve(name_or_path)
    return _load(str(path), path.stat().st_mtime)


def row_extras(record: dict[str, Any], name: str | Path) -> tuple[str, ...]:
    """The evidence row extras a checkpoint's measure input was trained with (its benchmark
    plan's `evidence_extras`, `evidence.ROW_EXTRAS`; none for the shipped model); a model error
    for one this medq does not compute."""
    from medq.assess.evidence import ordered_row_extras

    wanted = tuple((record.get("bench_plan") or {}).get("evidence_extras") or ())
    try:
        return ordered_row_extras(wanted)
    except ValueError as e:
        raise ModelError(f"trained on {e}", name) from None


def check_evidence_size(record: dict[str, Any], name: str | Path) -> None:
    """ModelError when a checkpoint's measure input was taken on views of another size than
    `medq assess` and the default benchmark take (`evidence.EVIDENCE_SIZE`): its scores would
    be of rows it never saw (a trial plan's `evidence_size`, recorded in its `bench_plan`)."""
    from medq.assess.evidence import EVIDENCE_SIZE

    size = int((record.get("bench_plan") or {}).get("evidence_size", EVIDENCE_SIZE))
    if size != EVIDENCE_SIZE:
        raise ModelError(f"trained on evidence rows of {size}-px views; medq assess and the "
                         f"default benchmark take them on {EVIDENCE_SIZE}-px views "
                         "(its own benchmark plan's metrics are in its model card)", name)

