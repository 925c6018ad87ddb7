"""Fit the finding detector on the TRAINING sources (never the test split) and ship it as JSON.

    python -m medq.describe.calibrate [--n2d 3600] [--n3d 150] [--heads MODEL] [--view]
                                      [--zoom central|anywhere] [--seed 0] [--folds 1]
                                      [--hidden 64] [--dropout 0.0] [--output PATH]
                                      [--extras spike_contrast] [--ladders N]
                                      [--rank-weight 3] [--rank-margin 0.1]
                                      [--noisy-base 0.35] [--trees 0.5]

Without `--view` the features are computed on the full planes (`evidence.feature_vector`) and
the result is the description's calibration (`assess/detector-full.json`); with `--view` on the
quality model's views of at most 256 px (the mean of `evidence.evidence_rows`) and it is the
assessment's (`assess/detector-view.json`, its evidence score).

1. **Data**: `degraded_item` on `sources('train', …)` (with `realism`: sub-threshold baseline
   noise and zoomed fields of view, by default for the full planes the `central` profile — 30 %
   of grey 2D images cropped to their middle 45–75 % per side —, with `--view` the quality
   benchmark's `anywhere` — 40 %, 25–75 % anywhere, half at a small matrix; MR sources three
   times as often), the
   evidence features of each image (`medq.assess.evidence`) and its continuous severity per
   finding type (`items.severity_targets`); with `--heads`, also the named model's raw finding
   scores and score (then the detector is tied to that checkpoint's SHA-256). Built and cached
   under `cache_dir()/describe/` by `medq.describe.calibration_data`.
2. **Fit**: a small ensemble of MLPs (standardised features → per type a presence logit and a
   continuous severity), trained on 80 % of the items; the other 20 % pick each type's presence
   threshold (fewest weighted errors, severity ≥ mild is "present"; per modality group where
   the group has enough positives), the fraction of the thresholds below which a type is stated
   absent (`NORMAL_FRACTIONS`, the best mean description total /8 on those items) and give the
   validation numbers written into the calibration file.

`--data NPZ` fits on an existing calibration data file (as cached by step 1) instead.
`--ladders N` also fits on N severity ladders of the training sources (`medq.describe.ladders`;
built and cached like the items; tried, not shipped).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medq.assess.detector import (
    FIXED_FEATURES,
    HEAD_NAMES,
    Detector,
    det_threshold,
    with_fixed,
)
from medq.assess.evidence import feature_names, modality_group
from medq.assess.models.blocks import FINDING_TYPES
from medq.assess.trees import fit_forest
from medq.describe.calibration_data import (
    model_sha,
)
from medq.describe.ladders import (
    LADDER_BATCH,
    RANK_MARGIN,
    RANK_WEIGHT,
    Rungs,
    held_out_spearman,
    ladder_loss,
)

ENSEMBLE = 3
HIDDEN = 64
STEPS = 2500
RANGE_PERCENTILES = (0.5, 99.5)
"""Every feature is clipped to this percentile range of the training items (here and at
inference), so an image unlike any calibration image is not extrapolated from."""
MIN_GROUP_POSITIVES = 20
"""Validation positives a modality group needs for its own threshold of a type."""
MISS_COST = 1.5
"""Cost of missing a moderate-or-worse finding, relative to a false or a missed mild one."""
NORMAL_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
"""Candidate fractions of a type's threshold below which the report states the type absent
(0: never); the description metrics never reward such a statement and count a wrong one as a
contradiction, so validation decides whether the detector is sure enough to make them."""
MISSING_WEIGHT = 0.25
"""Weight of the severity loss on types absent from an item (most entries are 0)."""


def allowed_matrix(modalities: np.ndarray) -> np.ndarray:
    """Boolean `[n, types]`: the finding types the engine makes for each item's modality."""
    from medq.assess.assessment import finding_types_for

    table = {m: [t in finding_types_for(str(m)) for t in FINDING_TYPES]
             for m in set(modalities.tolist())}
    return np.array([table[m] for m in modalities.tolist()], dtype=bool)


def _fit_one(x: np.ndarray, y: np.ndarray, allowed: np.ndarray, seed: int, steps: int = STEPS,
             hidden: int = HIDDEN, dropout: float = 0.0,
             ladders: Rungs | None = None) -> list[dict]:
    """Train one MLP (`dropout` after each hidden layer while fitting; with `ladders`, also
    their weight × `ladder_loss` on `LADDER_BATCH` of them per step); returns its layers as
    lists (JSON-ready)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    n_types = y.shape[1]
    net = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Dropout(dropout),
                        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                        nn.Linear(hidden, 2 * n_types))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    mask = torch.from_numpy(allowed).float()
    present = (yt >= 0.5).float()
    weight = mask * torch.where(yt > 0, 1.0, MISSING_WEIGHT)
    gen = torch.Generator().manual_seed(seed)
    lz, ly, la = (torch.from_numpy(np.asarray(a, np.float32))
                  for a in (ladders.z, ladders.y, ladders.allowed)) if ladders \
        else (None, None, None)
    for _ in range(steps):
        idx = torch.randint(0, len(xt), (256,), generator=gen)
        out = net(xt[idx] + 0.05 * torch.randn(len(idx), x.shape[1], generator=gen))
        logit, sev = out[:, :n_types], out[:, n_types:]
        bce = nn.functional.binary_cross_entropy_with_logits(logit, present[idx],
                                                             reduction="none")
        huber = nn.functional.smooth_l1_loss(sev, yt[idx], reduction="none")
        loss = ((bce * mask[idx]).sum() + (huber * weight[idx]).sum()) / mask[idx].sum()
        if lz is not None:
            li = torch.randint(0, len(lz), (LADDER_BATCH,), generator=gen)
            noisy = lz[li] + 0.05 * torch.randn(lz[li].shape, generator=gen)
            loss = loss + ladders.weight * ladder_loss(net, noisy, ly[li], la[li],
                                                       ladders.margin)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return [{"w": m.weight.detach().numpy().T.round(5).tolist(),
             "b": m.bias.detach().numpy().round(5).tolist()}
            for m in net if isinstance(m, nn.Linear)]


def _best_threshold(p: np.ndarray, value: np.ndarray) -> float:
    """Presence threshold with the fewest weighted errors on items with continuous severities.

    The costs follow the description metrics: a false finding costs 1 (preciseness), a missed
    mild finding 1 and a missed moderate-or-worse one `MISS_COST` (completeness and the
    type-accuracy check). 0.5 when the type never occurs.
    """
    truth = value >= 0.5
    if truth.sum() == 0:
        return 0.5
    miss = np.where(value >= 1.5, MISS_COST, 1.0)
    grid = np.linspace(0.05, 0.95, 37)
    costs = [float(miss[truth & (p < t)].sum() + (~truth & (p >= t)).sum()) for t in grid]
    return float(grid[int(np.argmin(costs))])


def _description_metrics(p: np.ndarray, s: np.ndarray, allowed: np.ndarray,
                         groups: np.ndarray, y: np.ndarray, thresholds: dict[str, float],
                         normal_fraction: float) -> dict[str, Any]:
    """The description metrics the thresholds give on validation items (`validation`)."""
    from medq.describe.metrics import summarise
    from medq.describe.validation import references, rows, threshold_matrix

    return summarise(rows(p, s, allowed, threshold_matrix(thresholds, groups), references(y),
                          normal_fraction))


def type_validation(reported: np.ndarray, severity: np.ndarray, value: np.ndarray
                    ) -> dict[str, Any]:
    """Validation numbers of one finding type over items: how many, how many have it (true
    severity ≥ mild), recall and precision of `reported`, and the error of the estimated
    `severity` where it is present."""
    truth = value >= 0.5
    tp = int((reported & truth).sum())
    return {"n": int(len(value)), "positives": int(truth.sum()),
            "recall": round(tp / max(int(truth.sum()), 1), 3),
            "precision": round(tp / max(int(reported.sum()), 1), 3),
            "severity_mae": round(float(np.abs(severity - value)[truth].mean()), 3)
            if truth.any() else None}


def thresholds_for(p: np.ndarray, y: np.ndarray, allowed: np.ndarray, groups: np.ndarray
                   ) -> dict[str, float]:
    """Presence threshold of every type (`_best_threshold` on the items that can have it), and
    of a type in a modality group (`type@group`) where the group has `MIN_GROUP_POSITIVES`."""
    out: dict[str, float] = {}
    for j, kind in enumerate(FINDING_TYPES):
        sel = allowed[:, j]
        out[kind] = round(_best_threshold(p[sel, j], y[sel, j]), 3)
        for group in sorted(set(groups[sel].tolist())):
            g = sel & (groups == group)
            if (y[g, j] >= 0.5).sum() >= MIN_GROUP_POSITIVES:
                out[f"{kind}@{group}"] = round(_best_threshold(p[g, j], y[g, j]), 3)
    return out


def scaling(x: np.ndarray, rows: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The detector's input scaling from the `rows` it is fitted on: each feature's
    `RANGE_PERCENTILES` range (low, high), and the mean and spread of the clipped features."""
    lo, hi = np.percentile(x[rows], RANGE_PERCENTILES, axis=0)
    clipped = np.clip(x[rows], lo, hi)
    return lo, hi, clipped.mean(0), clipped.std(0) + 1e-6


def validation_masks(n: int, seed: int, folds: int) -> list[np.ndarray]:
    """Validation items of each fit: one random 20 % (`folds` ≤ 1), or the `folds` parts of a
    random partition (each item validates the nets fitted without it)."""
    rng = np.random.default_rng(seed)
    if folds <= 1:
        return [rng.random(n) < 0.2]
    part = rng.integers(0, folds, n)
    return [part == k for k in range(folds)]


def column_names(data: dict[str, np.ndarray]) -> list[str]:
    """The names of a calibration data file's feature columns: as it states them, else (files
    built before they did) the evidence features and the first extras of its width."""
    if "features" in data:
        return [str(name) for name in data["features"]]
    return list(feature_names(data["x"].shape[1]))


def fit(data: dict[str, np.ndarray], model: str | None = None, seed: int = 0,
        steps: int = STEPS, ensemble: int = ENSEMBLE, hidden: int = HIDDEN, dropout: float = 0.0,
        folds: int = 1, ladders: dict[str, np.ndarray] | None = None,
        rank_weight: float = RANK_WEIGHT, rank_margin: float = RANK_MARGIN,
        trees: float = 0.0) -> dict[str, Any]:
    """Fit the detector on 80 % of the calibration items, thresholds and scores on the rest; or,
    with `folds` > 1, cross-fitted: `ensemble` nets per fold, each fitted without its fold, all
    of them shipped (their mean is the detector), the thresholds chosen on every item's
    out-of-fold prediction. Cross-fitting spends every item on both jobs and averages over the
    splits, whose luck otherwise moves the held-out SRCC of `medq assess` by ±0.03.

    With `ladders` (`calibration_data.build_ladders`), each fit also learns that a worse rung
    of the same image reads worse (`ladder_loss`, weighted `rank_weight`, its margin
    `rank_margin`), on the ladders outside its validation part
    (one random 20 %, or the fold); the validation parts give `ladder_spearman`, the mean
    Spearman of the evidence score along each ladder (1: every ladder falls).

    With `trees` > 0 (one split only), gradient-boosted trees are fitted beside the nets on the
    same items (`trees.fit_forest`) and the detector's outputs are `trees` × theirs +
    (1 − `trees`) × the nets'; the thresholds are chosen on the blend."""
    from medq.workers import set_threads

    set_threads(1)  # a tiny MLP: one thread is fastest, and leaves the other core free
    x = data["x"].astype(np.float32)
    if model:
        x = np.concatenate([x, data["h"].astype(np.float32)], axis=1)
    names = column_names(data) + (list(HEAD_NAMES) if model else [])
    fixed = {n: v for n, v in FIXED_FEATURES.items() if n in names}
    x = with_fixed(x, {names.index(n): v for n, v in fixed.items()}).astype(np.float32)
    y = data["y"].astype(np.float32)
    allowed = allowed_matrix(data["modality"])
    masks = validation_masks(len(x), seed, folds)
    val = np.logical_or.reduce(masks)  # the items whose prediction chooses the thresholds
    scaled = ~masks[0] if folds <= 1 else np.ones(len(x), bool)  # items the scaling comes from
    lo, hi, mean, std = scaling(x, scaled)
    x = np.clip(x, lo, hi)
    z = ((x - mean) / std).astype(np.float32)
    calib = {"version": 1, "features": names, "fixed": fixed,
             "types": list(FINDING_TYPES), "low": lo.round(6).tolist(),
             "high": hi.round(6).tolist(), "mean": mean.round(6).tolist(),
             "std": std.round(6).tolist(), "nets": [], "thresholds": {},
             "model": model, "model_sha": model and model_sha(model)}
    if ladders and ladders["x"].shape[-1] != x.shape[1]:
        from medq.errors import InvalidParameter

        raise InvalidParameter(f"the ladders have {ladders['x'].shape[-1]} features and the "
                               f"items {x.shape[1]}: ladders carry the evidence features alone "
                               "(not with heads or extras)")
    if trees:
        if folds > 1:
            from medq.errors import InvalidParameter

            raise InvalidParameter("gradient-boosted trees are fitted on one 80/20 split only "
                                   "(--folds 1)")
        calib["trees"] = {"weight": trees, **fit_forest(x[~masks[0]], y[~masks[0]],
                                                        allowed[~masks[0]], seed)}
    prob, sev = np.zeros(y.shape), np.zeros(y.shape)
    lmasks = validation_masks(len(ladders["x"]), seed + 1, folds) if ladders else []
    fold_nets = []
    for k, held in enumerate(masks):
        rungs = _scaled_ladders(ladders, ~lmasks[k], (lo, hi, mean, std), rank_weight,
                                rank_margin) if ladders else None
        nets = [_fit_one(z[~held], y[~held], allowed[~held], seed + k * ensemble + j, steps,
                         hidden, dropout, rungs) for j in range(ensemble)]
        prob[held], sev[held] = Detector({**calib, "nets": nets}).predict(x[held])
        calib["nets"] += nets
        fold_nets.append(nets)
    p, s = prob[val], sev[val]
    groups = np.array([modality_group(m) for m in data["modality"][val]])
    calib["thresholds"] = thresholds_for(p, y[val], allowed[val], groups)
    report = {}
    for j, kind in enumerate(FINDING_TYPES):
        sel = allowed[val][:, j]
        pred = p[sel, j] >= np.array([det_threshold(calib, kind, str(g)) for g in groups[sel]])
        report[kind] = type_validation(pred, s[sel, j], y[val][sel, j])
    by_fraction = {f: _description_metrics(p, s, allowed[val], groups, y[val],
                                           calib["thresholds"], f) for f in NORMAL_FRACTIONS}
    calib["normal_fraction"] = max(NORMAL_FRACTIONS, key=lambda f: (by_fraction[f]["total"], f))
    metrics = by_fraction[calib["normal_fraction"]]
    calib["validation"] = {"items": int(val.sum()), "per_type": report,
                           "description_metrics": metrics,
                           "total_by_normal_fraction": {str(f): round(m["total"], 3)
                                                        for f, m in by_fraction.items()},
                           "note": ("20 % of the training-source items (same sources as the fit, "
                                    "which also chose the thresholds)") if folds <= 1 else
                           (f"every training-source item, predicted by the nets of the "
                            f"{folds}-fold cross-fit that were fitted without it (same sources; "
                            "these predictions also chose the thresholds)")}
    if ladders:
        calib["ladders"] = {"n": len(ladders["x"]), "weight": rank_weight, "margin": rank_margin}
        calib["validation"]["ladder_spearman"] = round(held_out_spearman(
            calib, fold_nets, ladders, lmasks), 3)
    calib["seed"], calib["folds"] = seed, max(1, folds)
    calib["trained_on"] = {"items": int((~masks[0]).sum()) if folds <= 1 else len(x),
                           "sources": sorted(set(data["source"].tolist()))}
    return calib


def _scaled_ladders(ladders: dict[str, np.ndarray], rows: np.ndarray,
                    scale: tuple[np.ndarray, ...], weight: float, margin: float) -> Rungs:
    """The `rows` ladders as `_fit_one` takes them: features clipped and standardised as the
    items' (`scale`: `scaling`'s low, high, mean, spread), severities, the types each ladder's
    modality can have, and the term's weight and margin."""
    lo, hi, mean, std = scale
    z = ((np.clip(ladders["x"][rows], lo, hi) - mean) / std).astype(np.float32)
    return Rungs(z, ladders["y"][rows].astype(np.float32),
                 allowed_matrix(ladders["modality"][rows]), weight, margin)


if __name__ == "__main__":  # the command line lives in calibrate_cli
    from medq.describe.calibrate_cli import main

    main()
