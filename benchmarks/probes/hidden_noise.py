"""Probe: which held-out images hide pixel-level noise from their views, and what reading the
noise on their full planes does to `medq assess`'s ranking.

Part 1 (`--part white`): two real 512² CT files (pydicom's J2K head and 693_J2KI), clean, with
white noise of σ 10–80 HU and with the engine's low-dose and sparse-view degradations: per image
the gap `EvidencePass.finer` (the whole plane's `fine_noise` minus its view's `noise_hh`),
whether it passes `evidence.HIDDEN_NOISE_GAP`, and the noise each reading reports.

Part 2 (`--part bench`, the default does both): the held-out split of `medq bench iqa`, each
item larger than its view rebuilt from its seed and loaded as `medq assess` loads it
(`loading.load_measured`): how many hide noise per source and how many of those are read again
(a modality with a noise finding type), the gaps' range, and the SRCC
against the reference score of the scores `medq assess` gives with the views' evidence alone
(the benchmark's `assess_scores`) and with the full planes' noise where the views hide it.
Usage:
    python benchmarks/probes/hidden_noise.py [--part white|bench|both] [--model mediqa-s]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def _noise(evidence: object) -> str:
    """The noise a reading reports ('-' for none)."""
    from medq.assess.models.blocks import FINDING_TYPES

    value = evidence.decision.reported.get(FINDING_TYPES.index("noise"))
    return "-" if value is None else f"{value:.2f}"


def white() -> None:
    """Part 1: the two CT files with white and engine noise."""
    from pydicom.data import get_testdata_file

    from medq.assess.detector import assessed_evidence, read_evidence
    from medq.assess.loading import load_measured
    from medq.degrade.registry import simulate
    from medq.io import load

    print(f"{'image':28s} {'gap':>6s} hides  view-noise  assessed-noise  evidence (view → now)")
    for name in ("J2K_pixelrep_mismatch.dcm", "693_J2KI.dcm"):
        clean = load(get_testdata_file(name))
        rng = np.random.default_rng(0)
        cases = [(f"white σ {s}", clean.with_array(
            clean.array + rng.normal(0, s, clean.shape).astype(np.float32)))
            for s in (0, 10, 20, 40, 80)]
        cases += [(f"{kind[3:]} {sev}", simulate(clean, kind, severity=sev, seed=1)[0])
                  for kind in ("ct_low_dose", "ct_sparse_view")
                  for sev in ("mild", "moderate", "severe")]
        for label, image in cases:
            loaded = load_measured(image, None, False, features=None)
            view = read_evidence(loaded.rows, "CT")
            now = assessed_evidence(loaded.rows, loaded.features, loaded.image,
                                    loaded.hides_noise)
            gap = _gap(image)
            print(f"{name[:8] + ' ' + label:28s} {gap:6.2f} {str(loaded.hides_noise):5s} "
                  f"{_noise(view):>10s}  {_noise(now):>14s}  {view.score:.2f} → {now.score:.2f}")


def _gap(image: object) -> float:
    """The mean `finer` gap of an image's planes."""
    from medq.assess.evidence import evidence_pass

    gaps = [g for g in evidence_pass(image).finer if np.isfinite(g)]
    return float(np.mean(gaps)) if gaps else float("nan")


def bench(model_name: str) -> None:
    """Part 2: the held-out split."""
    from scipy.stats import spearmanr

    from medq.assess.assessment import combined_score
    from medq.assess.detector import assessed_evidence, read_evidence
    from medq.assess.evidence import EVIDENCE_SIZE, HIDDEN_NOISE_GAP
    from medq.assess.loading import load_measured
    from medq.assess.weights import load_weights
    from medq.data.bench import BenchPlan, build, ordered_jobs
    from medq.data.items import degraded_item
    from medq.data.sources import source_named
    from medq.train.evaluate import assess_scores, predict

    plan = BenchPlan()
    data = build(plan, "test", progress=False)
    model, record = load_weights(model_name)
    pred = predict(model, data, bool(record.get("use_prompts", True)))
    before = assess_scores(pred, data)
    after = before.copy()
    jobs = ordered_jobs(plan, "test")
    assert [j[0] for j in jobs] == data["source"].tolist(), "stored order differs"
    per_source: dict[str, list[tuple[float, bool, float]]] = {}
    for i, (name, dim, seed) in enumerate(jobs):
        if i % 100 == 0:
            print(f"item {i} of {len(jobs)}", file=sys.stderr, flush=True)
        image, _ = degraded_item(source_named(name), dim, seed, plan.clean_fraction,
                                 plan.pair_fraction, realism=False,
                                 fine_pixels=plan.fine_pixels, noisy_base=0.0)
        if max(image.shape[-3:-1] if image.is_rgb else image.shape[-2:]) <= EVIDENCE_SIZE:
            continue
        loaded = load_measured(image, None, False)
        if isinstance(loaded, Exception):
            print(f"item {i} ({name}): {loaded}")
            continue
        view = read_evidence(loaded.rows, str(data["modality"][i]))
        now = assessed_evidence(loaded.rows, loaded.features, loaded.image, loaded.hides_noise)
        after[i] = combined_score(float(pred[i]), now.score)
        per_source.setdefault(name, []).append(
            (_gap(image), loaded.hides_noise, now.score - view.score))
    print(f"{'source':16s} {'larger':>6s} {'hides':>5s} {'read':>4s} {'gap min/median/max':>22s}"
          " mean evidence change where read")
    for name, found in sorted(per_source.items()):
        gaps = np.array([g for g, _, _ in found])
        hides = int((gaps > HIDDEN_NOISE_GAP).sum())  # the modality may have no noise type
        read = [d for _, h, d in found if h]
        change = f"{np.mean(read):+.2f}" if read else "-"
        print(f"{name:16s} {len(found):6d} {hides:5d} {len(read):4d} "
              f"{np.nanmin(gaps):7.2f} {np.nanmedian(gaps):6.2f} {np.nanmax(gaps):6.2f}  {change}")
    y = data["score"]
    print(f"\nSRCC of medq assess on the held-out split ({len(y)} items): views alone "
          f"{spearmanr(y, before)[0]:.4f}, full-plane noise where hidden "
          f"{spearmanr(y, after)[0]:.4f}")
    for m in sorted(set(data["modality"].tolist())):
        sel = data["modality"] == m
        print(f"  {m:3s} n={int(sel.sum()):4d}  {spearmanr(y[sel], before[sel])[0]:.4f} → "
              f"{spearmanr(y[sel], after[sel])[0]:.4f}")


def main() -> None:
    """Run the parts asked for."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=("white", "bench", "both"), default="both")
    parser.add_argument("--model", default="mediqa-s")
    args = parser.parse_args()
    if args.part in ("white", "both"):
        white()
    if args.part in ("bench", "both"):
        bench(args.model)


if __name__ == "__main__":
    main()
