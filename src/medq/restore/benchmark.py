"""`medq bench restore`: restoration fidelity per task on held-out test images, and speed.

Items: per task, `per_level` pairs at each of three continuous severities (mild 1.0, moderate
2.0, severe 2.8) from the **test** sources only (`medq.data.pairs`, deterministic, cached),
plus clean test images for the quality gate. Rows: the degraded input, blind NLM, TV and BM3D
(`classical`; BM3D on the first `bm3d_items` items of each task only, it is slow), the network
without conditioning (ablation), the conditioned network run blind (no description: its own
prior), as `medq restore` runs it (`+described`: medq assesses and describes the degraded image;
the image is returned unchanged when no restorable finding is described, else the network is
conditioned on the description; for MR noise alone, BM3D's output takes the body's place where
SURE reads it better: `medq.restore.sure`) and with the engine's true description (`+truth`,
oracle).
Fidelity in physical units against the clean image: PSNR/SSIM with the clean image's range, CT
additionally in the [−160, 240] HU window (the headline CT number). Timing: seconds per 512²
slice of each method. Gate: how often the network's prior flags a restorable problem on clean
and on degraded images.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from medq.data.pairs import PairPlan, build_pairs, pair_arrays
from medq.metrics.fidelity import psnr, ssim
from medq.restore.apply import as_restored, padding_guard, prior_of
from medq.restore.classical import classical_plane
from medq.restore.condition import MODALITY_GROUPS, N_FINDINGS, RESTORABLE
from medq.restore.models import load_restorer
from medq.restore.normalise import Scale

CT_WINDOW = (-160.0, 240.0)
"""Abdominal window of the headline CT numbers (HU)."""

LEVELS = (1.0, 2.0, 2.8)
"""Continuous severities of the test items: mild, moderate, severe."""

BENCH_TASKS = ("ct_low_dose", "ct_sparse_view", "mr_undersample", "mr_noise", "mr_motion",
               "pet_low_count", "blur", "low_resolution", "xr_quantum_noise")
"""Tasks of the benchmark (the training tasks)."""


def test_plan(per_level: int, clean: int = 12, tasks: tuple[str, ...] = BENCH_TASKS,
              seed: int = 0) -> PairPlan:
    """The benchmark's test pairs: fixed severities, full-size test images."""
    return PairPlan(split="test", tasks=tuple(tasks), per_task=per_level * len(LEVELS),
                    clean=clean, combo_fraction=0.0, levels=LEVELS, max_side=512, seed=seed)


def fidelity(x: np.ndarray, ref: np.ndarray, is_ct: bool) -> dict[str, float]:
    """PSNR/SSIM against the reference (CT: in the window, plus full range)."""
    full = {"psnr_full": psnr(x, ref), "ssim_full": ssim(x, ref)}
    if is_ct:
        return {"psnr": psnr(x, ref, window=CT_WINDOW), "ssim": ssim(x, ref, window=CT_WINDOW),
                **full}
    return {"psnr": full["psnr_full"], "ssim": full["ssim_full"], **full}


def _net_fn(model: Any, cond: np.ndarray | None, acquisitions: dict[str, float] | None = None,
            noisy: bool = False, scaled: bool = False, compare: bool = False) -> Any:
    """A network as a function of one normalised plane, with a fixed conditioning vector (and
    `medq restore`'s SURE scale, its choice of BM3D where SURE reads that better, and its
    consistency step: `apply.as_restored`)."""
    return lambda p: as_restored(model, [p], cond, acquisitions or {}, noisy, scaled,
                                 compare).planes[0]


def _as_described(model: Any, described: dict[str, Any]) -> Any:
    """The network as `medq restore` (`auto`) runs it on a plane it described
    (`described_condition`): conditioned on the description, with SURE's scale and choice of
    BM3D for MR noise alone and the consistency step."""
    return _net_fn(model, described["cond"], described["acquisitions"], described["noisy"],
                   described["scaled"], compare=described["scaled"])


def _methods(nets: dict[str, Any], cond: np.ndarray, oracle: np.ndarray, with_bm3d: bool,
             described: dict[str, Any] | None = None) -> dict[str, Any]:
    """Method name → function of a normalised plane returning the restored plane.

    `described` (`{"open": bool, "cond": vector}`) adds the conditioned network as `medq restore`
    runs it: gated and conditioned on medq's own description of the degraded image.
    """
    methods: dict[str, Any] = {"input": lambda p: p,
                               "nlm": lambda p: classical_plane("nlm", p),
                               "tv": lambda p: classical_plane("tv", p)}
    if with_bm3d:
        methods["bm3d"] = lambda p: classical_plane("bm3d", p)
    for label, model in nets.items():
        if model.conditioning:
            methods[label] = _net_fn(model, cond)
            methods[f"{label}+truth"] = _net_fn(model, oracle)
            if described is not None:
                methods[f"{label}+described"] = (_as_described(model, described)
                                                  if described["open"] else lambda p: p)
        else:
            methods[label] = _net_fn(model, None)
    return methods


def time_per_slice(fn: Any, repeats: int = 3, size: int = 512,
                   plane: np.ndarray | None = None) -> float:
    """Median seconds of `fn` on `plane` (default: a 512² normalised CT-like noisy disc)."""
    if plane is None:
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[:size, :size] / size
        plane = (1.0 + 0.3 * ((yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.15)
                 + rng.normal(0, 0.03, (size, size))).astype(np.float32)
    fn(plane[:64, :64])  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(plane)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def group_modality(group: str) -> str:
    """The modality code of an item's modality group (`condition.MODALITY_GROUPS`; XR as DX)."""
    from medq.image import MODALITY_ALIASES

    return MODALITY_ALIASES.get(group, group)


def described_condition(assessor: Any, x: np.ndarray, scale: Scale, group: str,
                         spacing: tuple[float, float]) -> dict[str, Any]:
    """What `medq restore` feeds the network for a degraded plane: assess and describe it, open
    the gate when a restorable finding is described, condition on the description."""
    from medq.describe import report_from
    from medq.image import MedImage
    from medq.restore.condition import from_report
    from medq.restore.consistency import described as acquisitions_of
    from medq.restore.consistency import reports_noise
    from medq.restore.gate import to_repair
    from medq.restore.sure import applies

    modality = group_modality(group)
    image = MedImage(scale.inverse(x), tuple(float(v) for v in spacing), modality)
    report = report_from(assessor.assess(image), image)
    findings = to_repair(report)
    return {"open": bool(findings), "cond": from_report(report, modality), "findings": findings,
            "acquisitions": acquisitions_of(report, spacing), "noisy": reports_noise(report),
            "scaled": applies(modality, findings)}


def restore_plane(fn: Any, x: np.ndarray, group: str, scale: Scale) -> np.ndarray:
    """One normalised plane restored by `fn` (plane → plane), CT padding kept (`padding_guard`),
    as `medq restore` applies every method."""
    with torch.no_grad():
        return padding_guard(lambda ps: [fn(p) for p in ps], group, scale)([x])[0]


def clean_check(assessor: Any, model: Any, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """`medq restore` on the clean test images: how often the gate opens, and the change (NRMSE,
    physical units) it makes to each (the acceptance asks < 0.5 % of an undegraded image).

    Images whose file states lossy compression (`sources.stored_lossy`) are not undegraded:
    they are listed apart (`lossy_stored`) and left out of `max_nrmse`/`within_0.5_percent`.
    """
    from medq.data.sources import stored_lossy
    from medq.metrics.fidelity import nrmse

    rows = []
    for i in np.flatnonzero(data["task"] == "clean"):
        x, _ = pair_arrays(data, int(i))
        scale = Scale(*data["scale"][i])
        group = MODALITY_GROUPS[int(data["modality"][i])]
        described = described_condition(assessor, x, scale, group, tuple(data["spacing"][i]))
        change = 0.0
        if described["open"]:
            restored = restore_plane(_as_described(model, described), x, group, scale)
            change = nrmse(scale.inverse(restored), scale.inverse(x))
        rows.append({"source": str(data["source"][i]), "described": described["findings"],
                     "nrmse": round(float(change), 5),
                     "lossy": stored_lossy(str(data["source"][i]))})  # what its file states
    changes = [r["nrmse"] for r in rows if not r["lossy"]]
    return {"items": rows, "opened": sum(bool(r["described"]) for r in rows),
            "undegraded": len(changes),
            "opened_undegraded": sum(bool(r["described"]) for r in rows if not r["lossy"]),
            "max_nrmse": max(changes) if changes else None,
            "within_0.5_percent": sum(c < 0.005 for c in changes),
            "lossy_stored": [r for r in rows if r["lossy"]]}


def clean_note(clean: dict[str, Any]) -> str:
    """The benchmark's note on `clean_check`: undegraded images, then lossy-stored ones."""
    from medq.describe.text import ratio_text

    text = (f"medq restore on {clean['undegraded']} undegraded test images: the gate opened on "
            f"{clean['opened_undegraded']}; {clean['within_0.5_percent']} changed by < 0.5 % "
            f"NRMSE (largest {100 * (clean['max_nrmse'] or 0.0):.2f} %).")
    for r in clean["lossy_stored"]:
        ratio = f" at {ratio_text(r['lossy'])}" if ratio_text(r["lossy"]) else ""
        found = ", ".join(r["described"]) or "nothing"
        text += (f" Not undegraded: {r['source']}, stored lossy{ratio} by its file: described "
                 f"{found}, changed by {100 * r['nrmse']:.2f} %.")
    return text


def _gate(model: Any, data: dict[str, np.ndarray], threshold: float) -> dict[str, Any]:
    """Prior detection rates of a conditioned network: false alarms on clean items, misses on
    degraded ones, per task."""
    from medq.assess.models.blocks import FINDING_TYPES

    cols = [FINDING_TYPES.index(t) for t in RESTORABLE]
    fired: dict[str, list[bool]] = {}
    for i in range(len(data["shape"])):
        x, _ = pair_arrays(data, i)
        presence = prior_of(model, [x])["presence"]
        fired.setdefault(str(data["task"][i]), []).append(
            bool((presence[cols] >= threshold).any()))
    clean = fired.pop("clean", [])
    misses = {t: round(1 - float(np.mean(v)), 3) for t, v in fired.items()}
    return {"threshold": threshold, "clean_items": len(clean),
            "false_alarm_rate": round(float(np.mean(clean)), 3) if clean else None,
            "miss_rate": round(1 - float(np.mean([f for v in fired.values() for f in v])), 3),
            "miss_rate_per_task": misses}


def run_benchmark(models: list[str], per_level: int = 2, bm3d_items: int = 4,
                  console: Any = None, threshold: float | None = None,
                  tasks: tuple[str, ...] = BENCH_TASKS, clean: int = 12,
                  timing_size: int = 512) -> dict[str, Any]:
    """Run the restoration benchmark; returns the payload written to restore.json."""
    from rich.progress import Progress

    from medq.restore.checks import took_anatomy
    from medq.restore.pipeline import PRIOR_THRESHOLD
    from medq.workers import set_threads

    threads = set_threads()
    started = time.time()
    nets = {("net" if i == 0 else "net-nocond" if not load_restorer(m)[0].conditioning
             else f"net-{m}"): load_restorer(m)[0] for i, m in enumerate(models)}
    plan = test_plan(per_level, clean, tasks)
    data = build_pairs(plan, progress=console is not None)
    conditioned = next((m for m in nets.values() if m.conditioning), None)
    assessor = None
    if conditioned is not None:
        from medq.assess.predictor import Assessor

        assessor = Assessor(measures=False)
    items: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    with Progress(console=console, transient=True, disable=console is None) as bar:
        job = bar.add_task("restoring test items", total=len(data["shape"]))
        for i in range(len(data["shape"])):
            task = str(data["task"][i])
            bar.advance(job)
            if task == "clean":
                continue
            seen[task] = seen.get(task, 0) + 1
            x, y = pair_arrays(data, i)
            scale = Scale(*data["scale"][i])
            group = MODALITY_GROUPS[int(data["modality"][i])]
            is_ct = group == "CT"
            oracle = data["cond"][i]
            blind = oracle.copy()
            blind[:2 * N_FINDINGS + 1] = 0.0
            ref = scale.inverse(y)
            row = {"task": task, "source": str(data["source"][i]), "level": float(data["level"][i]),
                   "shape": [int(s) for s in data["shape"][i]], "metrics": {}}
            described = None
            if assessor is not None:
                described = described_condition(assessor, x, scale, group,
                                                tuple(data["spacing"][i]))
                row["described"] = described["findings"]
            before = scale.inverse(x)
            for name, fn in _methods(nets, blind, oracle, seen[task] <= bm3d_items,
                                     described).items():
                after = scale.inverse(restore_plane(fn, x, group, scale))
                if name.endswith("+described") and took_anatomy(
                        described["findings"], before, after, group_modality(group)):
                    after = before  # as medq restore returns it
                row["metrics"][name] = fidelity(after, ref, is_ct)
            items.append(row)
    timing = {name: round(time_per_slice(fn, repeats=1 if name == "bm3d" else 3,
                                         size=timing_size), 3)
              for name, fn in _methods(nets, blind, oracle, bm3d_items > 0).items()
              if name != "input" and "+" not in name}
    gate, clean = {}, {}
    if conditioned is not None:
        gate = _gate(conditioned, data, PRIOR_THRESHOLD if threshold is None else threshold)
        clean = clean_check(assessor, conditioned, data)
    summary = summarise(items, timing, gate, timing_size, clean)
    return {"plan": plan.__dict__, "models": models, "threads": threads, "clean_check": clean,
            "methods": list(items[0]["metrics"]) if items else [], "bm3d_items": bm3d_items,
            "timing_size": timing_size,
            "seconds": round(time.time() - started, 1), "timing_s_per_slice": timing,
            "gate": gate, "summary": summary, "items": items}


def _mean(rows: list[dict[str, Any]], method: str, key: str) -> float:
    vals = [r["metrics"][method][key] for r in rows if method in r["metrics"]]
    vals = [v for v in vals if np.isfinite(v)]
    return round(float(np.mean(vals)), 3) if vals else float("nan")


def summarise(items: list[dict[str, Any]], timing: dict[str, float], gate: dict[str, Any],
              timing_size: int = 512, clean: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per-task means, the network's margin over BM3D (on BM3D's items) and the notes."""
    tasks: dict[str, Any] = {}
    methods = list(items[0]["metrics"]) if items else []
    for task in dict.fromkeys(r["task"] for r in items):
        rows = [r for r in items if r["task"] == task]
        entry: dict[str, Any] = {"n": len(rows)}
        for m in methods:
            if any(m in r["metrics"] for r in rows):
                entry[m] = {k: _mean(rows, m, k) for k in ("psnr", "ssim", "psnr_full",
                                                            "ssim_full")}
        both = [r for r in rows if "bm3d" in r["metrics"]]
        entry["n_bm3d"] = len(both)
        # every method's PSNR on BM3D's own items: the columns above average different items
        entry["psnr_on_bm3d_items"] = {m: _mean(both, m, "psnr") for m in methods} if both else {}
        for label, method in (("net", "net"), ("described", "net+described")):
            entry[f"{label}_minus_bm3d_db"] = round(
                _mean(both, method, "psnr") - _mean(both, "bm3d", "psnr"), 3) \
                if both and method in methods else None
        entry["net_minus_nocond_db"] = round(_mean(rows, "net", "psnr")
                                             - _mean(rows, "net-nocond", "psnr"), 3) \
            if "net-nocond" in methods else None
        tasks[task] = entry
    margins = {k: t["net_minus_bm3d_db"] for k, t in tasks.items()
               if t["net_minus_bm3d_db"] is not None}
    described = {k: t["described_minus_bm3d_db"] for k, t in tasks.items()
                 if t.get("described_minus_bm3d_db") is not None}
    cond_gain = [t["net_minus_nocond_db"] for t in tasks.values()
                 if t.get("net_minus_nocond_db") is not None]
    counts = ", ".join(f"{k}: {t['n']}" for k, t in tasks.items())
    notes = [f"{len(items)} degraded test items ({counts}); BM3D on "
             f"{sum(t['n_bm3d'] for t in tasks.values())} of them."]
    if margins:
        worst = min(margins, key=margins.get)
        notes.append(f"net − BM3D: mean {np.mean(list(margins.values())):+.2f} dB over tasks, "
                     f"worst {margins[worst]:+.2f} dB ({worst}).")
    if described:
        worst = min(described, key=described.get)
        notes.append(f"described (gated, conditioned on medq's description, as `medq restore`) − "
                     f"BM3D: mean {np.mean(list(described.values())):+.2f} dB over tasks, worst "
                     f"{described[worst]:+.2f} dB ({worst}).")
    if cond_gain:
        notes.append(f"conditioning (net − net-nocond): mean {np.mean(cond_gain):+.2f} dB over "
                     f"tasks, from {min(cond_gain):+.2f} to {max(cond_gain):+.2f} dB.")
    if timing:
        notes.append(f"seconds per {timing_size}² slice: "
                     + ", ".join(f"{k} {v:.3f}" for k, v in timing.items()))
    if clean and clean["items"]:
        notes.append(clean_note(clean))
    if gate:
        notes.append(f"gate (prior ≥ {gate['threshold']}): false alarms on {gate['clean_items']} "
                     f"clean images {gate['false_alarm_rate']}, misses on degraded "
                     f"{gate['miss_rate']}.")
    mean = round(float(np.mean(list(margins.values()))), 3) if margins else None
    mean_described = round(float(np.mean(list(described.values()))), 3) if described else None
    return {"tasks": tasks, "mean_net_minus_bm3d_db": mean,
            "mean_described_minus_bm3d_db": mean_described, "notes": notes}
