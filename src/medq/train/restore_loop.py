"""`medq train` for `task: restore`: the restoration network on cached engine pairs.

Data: `medq.data.pairs` pairs of the config's `pairs.train` plan (training sources only); each
step takes `batch_size` random crops (`train_crop`², flips and 90° turns) of random pairs. The
conditioning vector is the engine's ground truth corrupted by `condition.perturb` (dropped,
jittered, findings removed or invented), so the network learns to use a description without
trusting it blindly. Losses (weights per stage): `l1` on the restored image, `ssim` (1 − SSIM,
optional) and `prior` (BCE on finding presence + L1 on severity of the degradation prior).
AdamW with warm-up and cosine decay (the quality loop's schedule), gradient clipping. At the end
the held-out `pairs.eval` plan (test sources only) is restored and scored per task; checkpoint,
metrics and model card go to the run folder.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medq.assess.models.blocks import FINDING_TYPES
from medq.assess.precision import resolve_device
from medq.data.pairs import SOFT_FWHM_PX, PairPlan, build_pairs, concat, pair_arrays
from medq.restore.condition import MODALITY_GROUPS, N_FINDINGS, perturb
from medq.restore.models import build_model, save_checkpoint
from medq.restore.normalise import network_input
from medq.train.card import number, resumed_text, train_command, where_trained
from medq.train.config import Stage, TrainConfig
from medq.train.resume import Checkpointer, fingerprint
from medq.train.run_files import write_run
from medq.train.steps import device_name, on_device, run_steps
from medq.workers import set_threads


def plan_from(cfg: TrainConfig, which: str) -> PairPlan:
    """The `pairs.<which>` plan of a config (`train`, `extra` or `eval`), seeded by it; an
    unknown field is refused naming the fields a plan takes."""
    from medq.train.config import check_fields

    raw = check_fields(PairPlan, dict(cfg.pairs.get(which, {}) or {}), f"pairs.{which}")
    raw.setdefault("split", "test" if which == "eval" else "train")
    raw.setdefault("seed", cfg.seed)
    for key in ("tasks", "severity_range", "source_names", "soft_skip"):
        if key in raw:
            raw[key] = tuple(raw[key])
    return PairPlan(**raw)


def _crop(x: np.ndarray, y: np.ndarray, size: int, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray]:
    """Random aligned crop (edge-padded when the image is smaller) with flips and turns."""
    h, w = x.shape
    if h < size or w < size:
        pad = ((0, max(0, size - h)), (0, max(0, size - w)))
        x, y = np.pad(x, pad, mode="reflect"), np.pad(y, pad, mode="reflect")
        h, w = x.shape
    y0, x0 = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    x, y = x[y0:y0 + size, x0:x0 + size], y[y0:y0 + size, x0:x0 + size]
    k = int(rng.integers(4))
    if rng.random() < 0.5:
        x, y = x[:, ::-1], y[:, ::-1]
    return np.rot90(x, k), np.rot90(y, k)


TEXTURE_NOISE = 0.03
"""Largest σ (normalised units) of the noise kept in both input and target of half the pairs
without a noise finding: real scans carry noise, and a network that only learned noise-free
targets would strip it (and fine texture) while it repairs aliasing, motion or blur."""

TEXTURE_NOISE_CT = 0.01
"""The same for CT, whose normalised unit is 1000 HU: 10 HU, about a standard-dose scan's own
noise (0.03 would be 30 HU, as much as mild low-dose noise, which the network must remove)."""


def make_batch(data: dict[str, np.ndarray], idx: np.ndarray, crop: int,
               rng: np.random.Generator, conditioned: bool) -> dict[str, torch.Tensor]:
    """One training batch: degraded/clean crops, perturbed conditioning, prior targets."""
    xs, ys = zip(*(_crop(*pair_arrays(data, int(i)), crop, rng) for i in idx), strict=True)
    cond = data["cond"][idx]
    noisy = cond[:, FINDING_TYPES.index("noise")] > 0.5
    limit = np.where(data["modality"][idx] == MODALITY_GROUPS.index("CT"), TEXTURE_NOISE_CT,
                     TEXTURE_NOISE)
    sigma = rng.uniform(0, limit) * (rng.random(len(idx)) < 0.5) * ~noisy
    texture = [s * rng.standard_normal(x.shape).astype(np.float32) for s, x in zip(sigma, xs,
                                                                                  strict=True)]
    xs = [x + t for x, t in zip(xs, texture, strict=True)]
    ys = [y + t for y, t in zip(ys, texture, strict=True)]
    given = np.stack([perturb(c, rng) for c in cond]) if conditioned else cond * 0
    x = np.stack([network_input(a) for a in xs])[:, None]
    return {"x": torch.from_numpy(np.ascontiguousarray(x)),
            "y": torch.from_numpy(np.ascontiguousarray(np.stack(ys)[:, None])),
            "cond": torch.from_numpy(given.astype(np.float32)),
            "presence": torch.from_numpy(cond[:, :N_FINDINGS].copy()),
            "severity": torch.from_numpy(cond[:, N_FINDINGS:2 * N_FINDINGS].copy())}


def ssim_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 − mean SSIM with a 7×7 box window, data range 1 (normalised units)."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu_x, mu_y = F.avg_pool2d(x, 7, 1), F.avg_pool2d(y, 7, 1)
    sxx = F.avg_pool2d(x * x, 7, 1) - mu_x ** 2
    syy = F.avg_pool2d(y * y, 7, 1) - mu_y ** 2
    sxy = F.avg_pool2d(x * y, 7, 1) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1)
                                                     * (sxx + syy + c2))
    return 1 - s.mean()


def losses(model: torch.nn.Module, batch: dict[str, torch.Tensor], weights: dict[str, float]
           ) -> dict[str, torch.Tensor]:
    """Loss terms of one batch (`l1`, `ssim`, `prior`) that have a weight."""
    out = model(batch["x"], batch["cond"])
    terms = {"l1": F.l1_loss(out["image"], batch["y"])}
    if weights.get("ssim"):
        terms["ssim"] = ssim_loss(out["image"], batch["y"])
    if weights.get("prior") and "prior_logits" in out:
        terms["prior"] = (F.binary_cross_entropy_with_logits(out["prior_logits"],
                                                             batch["presence"])
                          + F.l1_loss(out["prior_severity"], batch["severity"]))
    return terms


def finite_pairs(data: dict[str, np.ndarray]) -> np.ndarray:
    """Indices of the pairs whose input and target are finite everywhere (a training slice at
    the edge of a volume can hold almost nothing, and its normalised pixels overflow float16)."""
    ok = [np.isfinite(a).all() and np.isfinite(b).all()
          for a, b in (pair_arrays(data, i) for i in range(len(data["shape"])))]
    return np.flatnonzero(ok)


def run_stage(model: torch.nn.Module, data: dict[str, np.ndarray], stage: Stage,
              cfg: TrainConfig, rng: np.random.Generator, log: Any, pool: np.ndarray,
              ck: Checkpointer | None = None, index: int = 0) -> list[dict[str, float]]:
    """Train for `stage.steps` steps on the pairs `pool` (indices); returns the loss history
    (`loop.run_steps`)."""
    crop = int(cfg.train_crop or 96)

    def terms_of(device: torch.device) -> dict[str, torch.Tensor]:
        batch = on_device(make_batch(data, pool[rng.integers(0, len(pool), cfg.batch_size)],
                                     crop, rng, model.conditioning), device)
        return losses(model, batch, stage.losses)

    return run_steps(model, stage, cfg, rng, log, terms_of, 0.95, ck, index)


def _psnr(a: np.ndarray, ref: np.ndarray) -> float:
    """PSNR in dB with the reference's range (1 for a constant reference; normalised units)."""
    from medq.metrics.fidelity import psnr

    return psnr(a, ref, data_range=float(ref.max() - ref.min()) or 1.0)


@torch.no_grad()
def evaluate_pairs(model: torch.nn.Module, data: dict[str, np.ndarray], conditioned: bool
                   ) -> dict[str, dict[str, float]]:
    """Per task: mean PSNR of input and restoration (no description given), prior accuracy."""
    model.eval()
    rows: dict[str, dict[str, list[float]]] = {}
    for i in range(len(data["shape"])):
        x, y = pair_arrays(data, i)
        cond = data["cond"][i].copy()
        cond[:2 * N_FINDINGS + 1] = 0.0  # as at run time without an assessment
        out = model(torch.from_numpy(network_input(x))[None, None],
                    torch.from_numpy(cond)[None] if conditioned else None)
        restored = x + out["residual"][0, 0].numpy()
        row = rows.setdefault(str(data["task"][i]), {"input": [], "net": [], "prior_acc": []})
        row["input"].append(_psnr(x, y))
        row["net"].append(_psnr(restored, y))
        if "prior_logits" in out:
            truth = data["cond"][i][:N_FINDINGS] > 0.5
            row["prior_acc"].append(float(np.mean((out["prior_logits"][0].numpy() > 0) == truth)))
    return {task: {"n": len(r["input"]), **{k: round(float(np.mean(v)), 3) for k, v in r.items()
                                            if v and np.all(np.isfinite(v))}}
            for task, r in rows.items()}


def train_restorer(cfg: TrainConfig, log: Any) -> dict[str, Any]:
    """Train the restoration network of `cfg`; writes model.pt, metrics.json and card.md."""
    threads = set_threads()
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    started = time.time()
    train_plan, eval_plan = plan_from(cfg, "train"), plan_from(cfg, "eval")
    data = build_pairs(train_plan, progress=sys.stderr.isatty())
    extra = plan_from(cfg, "extra") if cfg.pairs.get("extra") else None
    if extra is not None:  # a second training plan (e.g. pseudo-MR body anatomy)
        data = concat(data, build_pairs(extra, progress=sys.stderr.isatty()))
    test = build_pairs(eval_plan, progress=sys.stderr.isatty())
    data_s = time.time() - started
    model = build_model(cfg.model, **cfg.model_args)
    n_params = sum(p.numel() for p in model.parameters())
    pool = finite_pairs(data)
    dropped = len(data["shape"]) - len(pool)
    log(f"{cfg.name}: {len(data['shape'])} training pairs ({dropped} not finite, left out), "
        f"{len(test['shape'])} test pairs, "
        f"{n_params} parameters, {threads} threads, on {device_name(device)} "
        f"(pairs ready in {data_s:.0f} s)")
    ck = Checkpointer(cfg, log)
    ck.restore(model, rng)
    model.to(device)
    history = ck.run_stages(cfg.stages, lambda index, stage: run_stage(
        model, data, stage, cfg, rng, log, pool, ck, index))
    model.to("cpu")  # evaluated and saved on the CPU: checkpoints load anywhere
    train_s = time.time() - started - data_s + ck.elapsed_before
    metrics = evaluate_pairs(model, test, model.conditioning)
    out = cfg.output_dir()
    out.mkdir(parents=True, exist_ok=True)
    record = {"name": cfg.name, "model": cfg.model, "task": "restore", "seed": cfg.seed,
              "threads": threads, "device": device_name(device), "parameters": n_params,
              "args": dict(model.args),
              "train_plan": dataclasses.asdict(train_plan), "train_key": train_plan.key(),
              "extra_plan": dataclasses.asdict(extra) if extra else None,
              "eval_plan": dataclasses.asdict(eval_plan), "output": str(out),
              "pairs_time_s": round(data_s, 1), "train_time_s": round(train_s, 1),
              "wall_time_s": round(time.time() - started + ck.elapsed_before, 1),
              "steps": {s.name: s.steps for s in cfg.stages}, "batch_size": cfg.batch_size,
              "crop": cfg.train_crop, "fingerprint": fingerprint(cfg),
              "train_pairs": int(len(data["shape"])),
              "test_pairs": int(len(test["shape"])), "metrics": metrics, "history": history,
              "resumed": ck.resumed}
    record = write_run(out, lambda path, rec: save_checkpoint(model, path, rec), cfg, record,
                       lambda rec: card_text(cfg, rec))
    ck.done()
    log(f"{cfg.name}: done in {record['wall_time_s']:.0f} s → {out}")
    return record


def card_text(cfg: TrainConfig, record: dict[str, Any]) -> str:
    """The restoration model card as Markdown."""
    from medq.data.sources import sources

    plan = record["train_plan"]
    used = ", ".join(plan["source_names"] or [s.name for s in sources("train")])
    more = record.get("extra_plan")
    extra = "" if not more else (
        f"; and {more['per_task'] * len(more['tasks']) + more['clean']} more pairs of "
        f"{', '.join(more['tasks'])}" + (" on body CT phantoms recast as MR with random tissue "
                                         "contrasts (`phantoms.pseudo_mr`)" if more["pseudo_mr"]
                                         else ""))
    if plan.get("fine_ct"):
        extra = (f"; {plan['fine_ct']:.0%} of the CT images upsampled 1.6–2.4× (pixel size "
                 "alike) before they were degraded, like the fine pixels of a real 512² CT"
                 + extra)
    if plan.get("soft"):
        low, high = SOFT_FWHM_PX
        extra += (f"; {plan['soft']:.0%} of the clean images softened by a Gaussian PSF of "
                  f"{low:g}–{high:g} px FWHM, in input and target alike (real scans are softer "
                  "than their pixel grid)"
                  + (f", except for {', '.join(plan['soft_skip'])}" if plan.get("soft_skip")
                     else ""))
    if plan.get("resampling"):
        extra += (f"; {plan['resampling']:.0%} of the low-resolution inputs brought back to the "
                  "grid by cubic interpolation or, for MR, as the zero-filled k-space of the "
                  "coarser matrix (`pairs.resampling`) instead of the engine's linear "
                  "interpolation")
    if plan.get("ringing"):
        extra += (f"; {plan['ringing']:.0%} of the clean MR images reconstructed from a slightly "
                  "coarser matrix, zero-filled back (Gibbs ringing, `pairs.ringing`), in input "
                  "and target alike")
    if plan.get("coarse_mr"):
        extra += (f"; {plan['coarse_mr']:.0%} of the clean MR images first shrunk 2–4× (area-"
                  "averaged, pixel size alike: anatomy dense at the pixel scale, as on a small "
                  "real matrix, `pairs.coarse_mr`)")
    rows = ["| task | n | input PSNR | restored PSNR | prior accuracy |", "|---|---|---|---|---|"]
    for task, m in record["metrics"].items():
        rows.append(f"| {task} | {m['n']} | {number(m.get('input'), '.2f')} | "
                    f"{number(m.get('net'), '.2f')} | {number(m.get('prior_acc'))} |")
    rows.append(f"\nPrior accuracy: the share of the {N_FINDINGS} finding labels the degradation-"
                f"type prior gets right, averaged over the pairs (a prior that names no finding "
                f"scores {(N_FINDINGS - 1) / N_FINDINGS:.3f} on a pair of one degradation); "
                "– where a value is not defined (a clean image's input PSNR is infinite).")
    stages = "; ".join(f"{s.name}: {s.steps} steps, lr {s.lr:g}, losses {s.losses}"
                       for s in cfg.stages)
    cond = ("degradation-type prior + FiLM conditioning on the description"
            if record["args"].get("conditioning") else "no conditioning (ablation)")
    return f"""# {cfg.name}

Restoration network `RestoreUNet` ({record['parameters']} parameters, {cond}), trained by
`{train_command(cfg, record)}`: seed {cfg.seed}, {where_trained(record)},
{record['train_time_s']:.0f} s of training{resumed_text(record)} (+ {record['pairs_time_s']:.0f} s
building the cached pairs). Architecture: {record['args']}.

## Data
{record['train_pairs']} engine pairs from the training sources only
({used}): tasks {', '.join(plan['tasks'])},
{plan['per_task']} pairs each at continuous severities {plan['severity_range'][0]}–
{plan['severity_range'][1]} (a {plan['combo_fraction']:.0%} share with a second degradation,
e.g. blur then noise), plus {plan['clean']} clean pairs (target = input){extra}. Random
{record['crop']}² crops, flips and turns; batch {record['batch_size']}; half the pairs without a
noise finding get the same Gaussian noise (σ ≤ {TEXTURE_NOISE} normalised, CT
{TEXTURE_NOISE_CT}) in input and target,
so the network keeps a real scan's own noise and texture when it repairs something else.

## Training
Stages: {stages}. AdamW (weight decay {cfg.weight_decay}), warm-up then cosine decay, gradient
clipping {cfg.grad_clip}. The conditioning vector is the engine's ground truth corrupted at
random (dropped 30 %, jittered, findings removed or invented 15 %), so the network uses a
description without trusting it blindly.

## Held-out check ({record['test_pairs']} pairs from test sources, no description given)
PSNR in normalised units (CT: (HU+1000)/1000; others: 0.5–99.5 percentile scale), data range of
the clean image. `medq bench restore` has the full benchmark (HU windows, classical baselines).

{chr(10).join(rows)}

Intended use: denoising, de-streaking, de-aliasing, deblurring and super-resolution of CT, MR,
PET and radiograph slices degraded like medq's engine degrades them; a research tool, not a
medical device. Always compare with the input.
"""
