"""Probe: noise the ≤256-px views of 257–512 px images average away, and what reading noise on
their full planes (`evidence.EvidencePass.noise_weight`) does to `medq assess`'s findings and
ranking.

Part 1 (`--part white`): two real 512² CT files (pydicom's J2K head and 693_J2KI), clean, with
white noise of σ 10–80 HU, the same noise smoothed by a Gaussian of 0.75 px (a soft kernel's
texture) and the engine's low-dose and sparse-view degradations: per image the gap between the
whole plane's finest noise and its view's (`EvidencePass.finer`), the weight it gives the
full-plane noise reading, the noise the views' reading reports, the noise the assessment now
reports, and both evidence scores.

Part 2 (`--part bench`, the default does both): the held-out split of `medq bench iqa`, each
item larger than its view rebuilt from its seed and loaded as `medq assess` loads it
(`loading.load_measured`): per source how many are read on the full planes for noise (weight
over 0; a modality with a noise finding type), their mean weight and the mean change of their
evidence score, and the SRCC against the
reference score of the scores `medq assess` gives with the views' evidence alone (the
benchmark's `assess_scores`) and with noise read on the full planes.
Usage:
    python benchmarks/probes/hidden_noise.py [--part white|bench|both] [--model mediqa-s]
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from medq.assess.detector import Evidence
    from medq.image import MedImage


def _noise(evidence: Evidence) -> str:
    """The noise a reading reports ('-' for none)."""
    from medq.assess.models.blocks import FINDING_TYPES

    value = evidence.decision.reported.get(FINDING_TYPES.index("noise"))
    return "-" if value is None else f"{value:.2f}"


def white() -> None:
    """Part 1: the two CT files with white, smoothed and engine noise."""
    from pydicom.data import get_testdata_file
    from scipy import ndimage

    from medq.assess.detector import assessed_evidence, read_evidence
    from medq.assess.loading import load_measured
    from medq.degrade.registry import simulate
    from medq.io import load

    print(f"{'image':30s}   gap weight view-noise  assessed-noise  evidence (views → now)")
    for name in ("J2K_pixelrep_mismatch.dcm", "693_J2KI.dcm"):
        clean = load(get_testdata_file(name))
        rng = np.random.default_rng(0)
        cases = []
        for s in (0, 10, 20, 40, 80):
            noise = rng.normal(0, s, clean.shape)
            cases.append((f"white σ {s}", clean.with_array(clean.array + noise)))
            smooth = ndimage.gaussian_filter(noise, 0.75)
            if s:
                smooth *= s / smooth.std()  # the same σ, a soft kernel's texture
                cases.append((f"smoothed σ {s}", clean.with_array(clean.array + smooth)))
        cases += [(f"{kind[3:]} {sev}", simulate(clean, kind, severity=sev, seed=1)[0])
                  for kind in ("ct_low_dose", "ct_sparse_view")
                  for sev in ("mild", "moderate", "severe")]
        for label, image in cases:
            loaded = load_measured(image, None, False)
            view = read_evidence(loaded.rows, "CT")
            now = assessed_evidence(loaded.rows, loaded.features, loaded.image,
                                    loaded.noise_weight)
            print(f"{name[:8] + ' ' + label:30s} {_gap(image):5.2f} {loaded.noise_weight:6.2f} "
                  f"{_noise(view):>10s}  {_noise(now):>14s}  {view.score:.2f} → {now.score:.2f}")


def _gap(image: MedImage) -> float:
    """The mean `finer` gap of an image's planes (`EvidencePass.gap`)."""
    from medq.assess.evidence import evidence_pass

    return evidence_pass(image, compare=True).gap


def bench(model_name: str) -> None:
    """Part 2: the held-out split."""
    from scipy.stats import spearmanr

    from medq.assess.assessment import combined_score
    from medq.assess.detector import assessed_evidence, read_evidence
    from medq.assess.evidence import EVIDENCE_SIZE
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
    per_source: dict[str, list[tuple[float, float]]] = {}
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
        now = assessed_evidence(loaded.rows, loaded.features, loaded.image, loaded.noise_weight)
        if loaded.noise_weight > 0.0:  # else the stored rows' score stands
            after[i] = combined_score(float(pred[i]), now.score)
        per_source.setdefault(name, []).append((loaded.noise_weight, now.score - view.score))
    print(f"{'source':16s} {'larger':>6s} {'read':>4s} {'weight':>6s} "
          "mean evidence change where read")
    for name, found in sorted(per_source.items()):
        read = [(w, d) for w, d in found if w > 0.0]
        weight = f"{np.mean([w for w, _ in read]):6.2f}" if read else "     -"
        change = f"{np.mean([d for _, d in read]):+.3f}" if read else "-"
        print(f"{name:16s} {len(found):6d} {len(read):4d} {weight} {change}")
    y = data["score"]
    print(f"\nSRCC of medq assess on the held-out split ({len(y)} items): views alone "
          f"{spearmanr(y, before)[0]:.4f}, with noise on the full planes "
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
