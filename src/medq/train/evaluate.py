"""Score a packed benchmark split with a model and summarise agreement per subset."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from medq.assess.assessment import USER_SCALE
from medq.assess.models.blocks import IQAModel
from medq.assess.precision import model_device, model_precision
from medq.data.bench import item_slices, slice_measures
from medq.metrics.correlation import MIN_PAIRS, finite_rows, plcc_logistic, rmse, srcc
from medq.metrics.uncertainty import srcc_gain_interval, srcc_interval
from medq.wording import plural


@torch.no_grad()
def predict(model: IQAModel, data: dict[str, np.ndarray], use_prompts: bool = True,
            salient: bool = True, batch_size: int = 32, precision: str = "auto") -> np.ndarray:
    """Predicted score of every item: 2D items directly, 3D items by learned slice weighting.

    `salient=False` scores a 3D item on its middle stored slice only (the ablation without
    salient slices and slice weighting). `precision` as `medq assess` (`medq.assess.precision`).
    """
    model.eval()
    device = model_device(model)
    with model_precision(precision, device.type):
        return _predict(model, data, use_prompts, salient, batch_size, device)


def model_measures(model: IQAModel, data: dict[str, np.ndarray], rows: Any) -> np.ndarray | None:
    """The stored evidence rows of slices `rows` as `model` reads them: its `n_measures` leading
    columns (a plan's row extras come after the features, so a model trained without them reads
    the same features from rows that have them)."""
    m = slice_measures(data, rows)
    return m[:, :model.n_measures] if m is not None and model.uses_measures else m


def _predict(model: IQAModel, data: dict[str, np.ndarray], use_prompts: bool, salient: bool,
             batch_size: int, device: torch.device) -> np.ndarray:
    """`predict` under the precision context already entered, inputs moved to `device`."""
    n = len(data["score"])
    out = np.zeros(n, dtype=np.float32)
    flat = [i for i in range(n) if data["dim"][i] == "2d"]
    for start in range(0, len(flat), batch_size):
        idx = flat[start:start + batch_size]
        rows = data["offset"][idx]
        x = torch.from_numpy(data["x"][rows].astype(np.float32)).to(device)
        p = torch.from_numpy(data["prompt"][idx]).to(device) if use_prompts else None
        out[idx] = model.run(x, p, model_measures(model, data, rows)).score.float().cpu().numpy()
    for i in (i for i in range(n) if data["dim"][i] == "3d"):
        o, k = int(data["offset"][i]), int(data["n_valid"][i])
        p = torch.from_numpy(data["prompt"][i]).to(device) if use_prompts else None
        x = torch.from_numpy(item_slices(data, i)).to(device)
        m = model_measures(model, data, np.arange(o, o + k))
        if salient:
            out[i] = float(model.forward_volume(x, p, m).score)
        else:
            mid = slice(k // 2, k // 2 + 1)
            out[i] = float(model.run(x[mid], p, None if m is None else m[mid]).score[0])
    return out


def not_computed(pred: np.ndarray, target: np.ndarray) -> str | None:
    """Why a subset's correlations are undefined (too few items, constant scores), else None."""
    p, t = finite_rows(pred, target)
    if p.size < MIN_PAIRS:
        return f"{plural(int(p.size), 'held-out image')} (need ≥ {MIN_PAIRS} with different scores)"
    if np.ptp(t) == 0:
        return f"all {p.size} held-out images have score {t[0]:g} (need different scores)"
    if np.ptp(p) == 0:
        return f"the model gives all {p.size} held-out images the same score"
    return None


def subset_metrics(pred: np.ndarray, target: np.ndarray, interval: bool = False
                   ) -> dict[str, Any]:
    """SRCC, PLCC and RMSE (both after the 4-parameter logistic fit) of one subset; with
    `interval`, also the SRCC's 95 % bootstrap interval over the subset's items (`srcc_ci`).
    Where the correlations are undefined, `not_computed` says why and `rmse_raw` is the RMSE
    without the logistic map."""
    out: dict[str, Any] = {"n": int(len(pred)), "srcc": srcc(pred, target),
                           "plcc": plcc_logistic(pred, target),
                           "rmse": rmse(pred, target, logistic=True)}
    why = not_computed(pred, target)
    if why:
        out.update(not_computed=why, rmse_raw=rmse(pred, target))
    if interval:
        out["srcc_ci"] = list(srcc_interval(pred, target))
    return out


SUBSETS = {"CT": ("CT",), "MR": ("MR",), "PT": ("PT",), "XR": ("DX", "CR"), "OP": ("OP",)}
"""Modality subsets of the benchmark table."""


def subset_masks(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Item mask of every table subset with items: overall, each modality subset, 2D, 3D."""
    masks = {"overall": np.ones(len(data["score"]), dtype=bool)}
    masks.update({name: np.isin(data["modality"], mods) for name, mods in SUBSETS.items()})
    masks.update({dim.upper(): data["dim"] == dim for dim in ("2d", "3d")})
    return {name: sel for name, sel in masks.items() if sel.any()}


def evaluate(pred: np.ndarray, data: dict[str, np.ndarray], interval: bool = True
             ) -> dict[str, Any]:
    """Metrics overall, per modality subset, and for 2D / 3D items (with `interval`, each
    SRCC's 95 % bootstrap interval, `srcc_ci`)."""
    target = data["score"]
    return {name: subset_metrics(pred[sel], target[sel], interval)
            for name, sel in subset_masks(data).items()}


BASELINES = ("cnniqa", "wadiqam")
"""The learned baselines the issue's acceptance compares `mediqa-s` with, subset by subset."""


def margins(pred: np.ndarray, baselines: dict[str, np.ndarray], data: dict[str, np.ndarray]
            ) -> dict[str, dict[str, dict[str, Any]]]:
    """SRCC(pred) − SRCC(baseline) per table subset, with its 95 % paired bootstrap interval
    (both on the same resampled items: `medq.metrics.uncertainty.srcc_gain_interval`)."""
    target = data["score"]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, base in baselines.items():
        out[name] = {}
        for subset, sel in subset_masks(data).items():
            gain = srcc(pred[sel], target[sel]) - srcc(base[sel], target[sel])
            out[name][subset] = {"gain": gain, "ci": list(srcc_gain_interval(
                pred[sel], base[sel], target[sel]))}
    return out


CLASSICAL = {"noise σ (wavelet MAD)": ("noise_sigma_wavelet", -1.0),
             "sharpness": ("sharpness", 1.0),
             "EFC (MRIQC)": ("efc", -1.0),
             "BRISQUE (generic NR-IQA)": ("brisque", -1.0)}
"""Classical measures and peers scored as quality (`medq.assess.iqms` functions, or BRISQUE of
`medq.train.peers`; sign: +1 when higher means better)."""


def classical_scores(data: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A classical measure or peer on each item's model view (its grey window in [0, 1]; mean
    over a volume's slices), signed; ModelError when a peer's package is not installed."""
    from medq.assess import iqms
    from medq.train.peers import brisque_scorer

    what, sign = CLASSICAL[name]
    func = brisque_scorer() if what == "brisque" else getattr(iqms, what)
    out = np.zeros(len(data["score"]), dtype=np.float64)
    for i in range(len(out)):
        slices = item_slices(data, i)
        out[i] = sign * np.mean([func(s.mean(0)) for s in slices])
    return out


def assess_scores(pred: np.ndarray, data: dict[str, np.ndarray]) -> np.ndarray:
    """The scores `medq assess` gives the items: each model score combined with the evidence
    score of the item's stored evidence rows (`assessment.combined_score`; the benchmark's
    items are no larger than `evidence.LARGE_PLANE`, so their evidence is their views', but for
    the noise of those whose views average it away, which `medq assess` also reads on the full
    planes: `benchmarks/probes/hidden_noise.py` scores them)."""
    from medq.assess.assessment import combined_score
    from medq.assess.detector import read_evidence

    out = np.zeros(len(pred), dtype=np.float32)
    for i, p in enumerate(pred):
        o, k = int(data["offset"][i]), int(data["n_valid"][i])
        out[i] = combined_score(float(p), read_evidence(data["m"][o:o + k],
                                                        str(data["modality"][i])).score)
    return out


def benchmark_rows(data: dict[str, np.ndarray], models: list[str], classical: bool = True,
                   baselines: Sequence[str] = BASELINES,
                   progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Rows of the IQA table: each model (shipped name or path), ablations, classical measures.

    `mediqa-s` (and a checkpoint path of a model that takes measures, such as a trial run) also
    gives the row "medq assess (<model> + evidence score)" (the scores `medq assess` would report
    with it: `assess_scores`; not for a model fine-tuned on its users' ratings, whose score
    `medq assess` reports alone: its row is marked `score_scale: user`), the rows "mediqa-s (no
    salient slices)" (its 3D items scored on the middle slice alone) and "prompts zeroed at
    inference" (the same weights without prompts; the trained ablation is `mediqa-s-noprompt`).
    A seed ensemble also gives one row per member ("(seed k alone)"), comparable with
    single-seed rows.
    Models missing from disk, or whose measure input was taken on views of another size
    (`weights.check_evidence_size`), are skipped with a `missing` note. When `baselines` (by
    default the learned ones, `BASELINES`) are among the models, the rows of the first model and
    of its `medq assess` get their `margins` over each baseline (`margins`: SRCC differences
    per subset with paired bootstrap intervals). `progress` is told each row as it is scored
    (an ensemble and its ablations score the split several times).
    """
    from medq.assess.weights import check_evidence_size, load_weights
    from medq.errors import ModelError

    rows: list[dict[str, Any]] = []
    preds: dict[str, np.ndarray] = {}

    started = time.time()

    def add(name: str, pred: np.ndarray) -> None:
        preds[name] = pred
        rows.append(table_row(name, pred, data))
        if progress:
            progress(f"scored {len(pred)} items: {name} ({time.time() - started:.0f} s)")

    for name in models:
        try:
            model, record = load_weights(name)
            check_evidence_size(record, name)
            check_measure_columns(model, data, name)
        except ModelError as e:
            rows.append({"model": name, "missing": e.message})
            continue
        use_prompts = bool(record.get("use_prompts", True))
        pred = predict(model, data, use_prompts)
        add(name, pred)
        if record.get("score_scale") == USER_SCALE:  # its raters' scale: `medq assess` reports
            rows[-1]["score_scale"] = USER_SCALE  # its score alone, so no combined row
        elif (name == "mediqa-s" or name.endswith(".pt")) and "m" in data and model.uses_measures:
            add(f"medq assess ({name} + evidence score)", assess_scores(pred, data))
        seeds = record.get("ensemble_seeds") or []
        for seed, member in zip(seeds, getattr(model, "members", []), strict=False):
            add(f"{name} (seed {seed} alone)", predict(member, data, use_prompts))
        if name == "mediqa-s":
            add("mediqa-s (no salient slices)", predict(model, data, use_prompts, salient=False))
            add("mediqa-s (prompts zeroed at inference)", predict(model, data, False))
    first = models[0] if models else None
    against = {b: preds[b] for b in baselines if b in preds and b != first}
    for row in rows:
        if against and row["model"] in (first, f"medq assess ({first} + evidence score)"):
            row["margins"] = margins(preds[row["model"]], against, data)
    if classical:
        for name in CLASSICAL:
            try:
                rows.append(table_row(name, classical_scores(data, name), data))
            except ModelError as e:
                rows.append({"model": name, "missing": e.message})
    return rows


def check_measure_columns(model: IQAModel, data: dict[str, np.ndarray], name: str) -> None:
    """ModelError when the benchmark's evidence rows have fewer columns than `model` reads (a
    model trained with row extras on a plan without them: list it first, its plan is used)."""
    from medq.errors import ModelError

    have = data["m"].shape[1] if "m" in data else 0
    if model.uses_measures and have < model.n_measures:
        raise ModelError(f"reads {model.n_measures} measures per slice; this benchmark's "
                         f"rows have {have} (list the model trained with row extras first: "
                         "the table is built on the first model's plan)", name)


def table_row(name: str, pred: np.ndarray, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """One row of the IQA table: metrics per subset (`evaluate`) and SRCC/PLCC/RMSE within each
    test source (`per_source`; beside the table, for sources such as a lossy-stored file)."""
    masks = {str(s): data["source"] == s for s in dict.fromkeys(data["source"].tolist())}
    return {"model": name, "metrics": evaluate(pred, data),
            "per_source": {s: subset_metrics(pred[m], data["score"][m]) for s, m in masks.items()}}


RANKING_KINDS = {"CT": ("ct_low_dose", "blur"), "MR": ("mr_undersample", "mr_noise", "mr_motion",
                                                       "blur"),
                 "DX": ("xr_quantum_noise", "blur")}
"""Degradation kinds of the severity-ranking check, per modality."""

RANKING_SEVERITIES = (0.6, 1.3, 2.0, 2.7)
"""Continuous severities of the ladder (after the clean image)."""


def ranking_ladders(images: dict[str, Any], seed: int = 0
                    ) -> Iterator[tuple[str, str, list[Any]]]:
    """(image name, kind, ladder) of every ranking ladder: each image clean, then degraded by
    each of its modality's kinds at `RANKING_SEVERITIES`."""
    from medq.degrade import get_spec, simulate

    for name, image in images.items():
        for kind in RANKING_KINDS.get(image.modality, ()):
            spec = get_spec(kind)
            yield name, kind, [image] + [simulate(image, kind, level=spec.level_at(s),
                                                  seed=seed)[0] for s in RANKING_SEVERITIES]


def ladder_hinge(found: torch.Tensor, true: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean hinge over neighbouring rungs of ladders `[n, rungs]` of a quantity that must rise
    rung by rung: `found` must rise by at least `margin` times the rise of `true`."""
    return torch.relu(margin * (true[:, 1:] - true[:, :-1])
                      - (found[:, 1:] - found[:, :-1])).mean()


def ladder_spearman(scores: Sequence[float]) -> float:
    """Spearman(severity rank, falling score) of one ladder's scores (1 = perfectly monotone)."""
    from scipy.stats import spearmanr

    return float(spearmanr(np.arange(len(scores)), -np.asarray(scores))[0])


def ranking_summary(pairs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ranking result of per-ladder results (`"<image>/<kind>"` → `spearman`, …): the
    ladders, the mean per kind and the mean over kinds."""
    kinds = sorted({k.split("/")[1] for k in pairs})
    per_kind = {k: float(np.mean([v["spearman"] for n, v in pairs.items()
                                  if n.endswith("/" + k)])) for k in kinds}
    return {"pairs": pairs, "per_kind": per_kind,
            "mean": float(np.mean(list(per_kind.values()))) if per_kind else float("nan")}


def ranking_check(assessor: Any, images: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Score each image clean and at rising severities of each kind; Spearman(severity, −score).

    Returns per (image, kind) the scores and the Spearman correlation between severity rank and
    falling score (1 = perfectly monotone), the mean per kind, and the mean over kinds.
    """
    pairs: dict[str, dict[str, Any]] = {}
    for name, kind, ladder in ranking_ladders(images, seed):
        scores = [a.score for a in assessor.assess_many(ladder)]
        pairs[f"{name}/{kind}"] = {"scores": scores, "spearman": ladder_spearman(scores)}
    return ranking_summary(pairs)


def ranking_over_seeds(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The ranking result over ladders drawn with several seeds (`ranking_check` per seed):
    each kind's mean over the seeds, the mean over kinds, the lowest and highest seed's mean
    over kinds (`mean_range`), and every seed's own result (`per_seed`)."""
    kinds = sorted({k for r in per_seed.values() for k in r["per_kind"]})
    per_kind = {k: float(np.mean([r["per_kind"][k] for r in per_seed.values()
                                  if k in r["per_kind"]])) for k in kinds}
    means = [r["mean"] for r in per_seed.values()]
    return {"seeds": sorted(per_seed), "per_kind": per_kind,
            "mean": float(np.mean(list(per_kind.values()))) if per_kind else float("nan"),
            "mean_range": [float(min(means)), float(max(means))],
            "per_seed": {str(s): r for s, r in per_seed.items()}}


def held_out_images() -> dict[str, Any]:
    """Real images held out from all training: pydicom CT/MR files and the skull radiograph."""
    from medq.data.sources import sources

    names = ("ct_small", "ct_693", "ct_head_j2k", "mr_small", "mr_abdomen", "xr_head")
    found = {s.name: s for s in sources("test")}
    rng = np.random.default_rng(0)
    return {n: found[n].draw(rng, "2d") for n in names}
