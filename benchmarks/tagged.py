"""Physics pretraining on DICOM-stated dose (`medq train --tagged`): does the acquisition head
learn a CT slice's tube current–time product from its pixels, on scans it never saw?

Two archives of CT slices, each slice written at 25, 50, 100, 200 and 400 mAs (its DICOM
`Exposure`): the training archive from medq's CT training sources, noise from medq's engine
(`ct_low_dose`, incident photons 500 per mAs); the test archive from the held-out CT scans,
noise from the independent simulator of `benchmarks/independent.py` (scikit-image's Radon
transform, 500 photons per mAs), so the head must read dose from noise as another simulator
makes it. The acquisition head of `mediqa-s` (member 0) is trained on the training archive as
`configs/mediqa_s_tagged.yaml`'s first stage trains it, then scored on the test archive:
Spearman correlation of its estimate with log2 mAs (over all items, and the mean within each
base slice), beside the classical robust noise σ (wavelet MAD, lower for more dose).
Archives are cached. Writes benchmarks/results/tagged.json. Usage:
    python benchmarks/tagged.py [--train-bases 48] [--test-bases 12] [--steps 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

RESULTS = Path(__file__).parent / "results"
DOSES_MAS = (25, 50, 100, 200, 400)
ENGINE_I0_PER_MAS = 500.0
"""medq's engine: incident photons per ray per mAs, as many as the independent simulator's (at
the engine's own full dose, 1e6 at 400 mAs, the noise of these slices is too faint to read)."""
RADON_PHOTONS_PER_MAS = 500.0
"""The independent simulator: photons per ray per mAs (its ladder's 2e5 … 5e3 span 400 … 10)."""
CACHE_VERSION = 2


def write_archive(folder: Path, split: str, n_bases: int, seed: int) -> Path:
    """`n_bases` CT slices of the `split`'s sources, each at every dose of `DOSES_MAS`, as DICOM
    files stating it (`Exposure`), one series per file; written once (a hidden `.done` marker)."""
    import pydicom
    from independent import ct_sinogram_noise

    from medq.data.sources import sources
    from medq.degrade.ct import ct_low_dose
    from medq.io import save

    if (folder / ".done").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    cts = [s for s in sources(split) if s.modality == "CT"]
    rng = np.random.default_rng(seed)
    for b in range(n_bases):
        base = cts[b % len(cts)].draw(rng, "2d")
        for mas in DOSES_MAS:
            noise_seed = int(rng.integers(2**31))
            if split == "train":
                image = ct_low_dose(base, mas * ENGINE_I0_PER_MAS,
                                    np.random.default_rng(noise_seed))[0]
            else:
                image = ct_sinogram_noise(base, mas * RADON_PHOTONS_PER_MAS, noise_seed)
            path = save(image, folder / f"base{b:02d}_{mas:03d}mAs.dcm")
            ds = pydicom.dcmread(path)
            ds.Exposure, ds.SeriesInstanceUID = str(mas), pydicom.uid.generate_uid()
            ds.SeriesDescription = f"base {b}"
            ds.save_as(path)
    (folder / ".done").write_text("")
    return folder


def spearman_within(truth: np.ndarray, found: np.ndarray, groups: np.ndarray) -> float:
    """Mean Spearman correlation within each group (a base slice's five doses)."""
    from scipy.stats import spearmanr

    return float(np.mean([spearmanr(truth[groups == g], found[groups == g])[0]
                          for g in np.unique(groups)]))


def main() -> None:
    """Build the archives, train the head, score the held-out archive, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-bases", type=int, default=48)
    parser.add_argument("--test-bases", type=int, default=12)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from scipy.stats import spearmanr

    from medq.assess.iqms import noise_sigma_wavelet
    from medq.data.bench import concat
    from medq.data.cache import cache_dir
    from medq.qc.discover import discover, load_item
    from medq.train.acquisition import TARGETS, estimates, load_tagged
    from medq.train.config import load_config
    from medq.train.loop import _initial_model, run_stage
    from medq.workers import set_threads

    set_threads()
    root = cache_dir() / "tagged" / f"v{CACHE_VERSION}-seed{args.seed}"
    t0 = time.perf_counter()
    train_dir = write_archive(root / f"train-{args.train_bases}", "train", args.train_bases,
                              args.seed)
    test_dir = write_archive(root / f"test-{args.test_bases}", "test", args.test_bases,
                             args.seed + 1)
    cfg = load_config(Path(__file__).parents[1] / "configs" / "mediqa_s_tagged.yaml")
    cfg.init, cfg.checkpoint_every_s = "mediqa-s#0", 0
    stage = cfg.stages[0]
    stage.steps = args.steps
    train_set = concat(*load_tagged(train_dir, cfg.bench.size, args.seed,
                                    cfg.bench.evidence_extras)[:2])
    test_set = concat(*load_tagged(test_dir, cfg.bench.size, args.seed,
                                   cfg.bench.evidence_extras)[:2])
    built = time.perf_counter() - t0
    torch.manual_seed(args.seed)
    model = _initial_model(cfg)
    model.add_acquisition_head(len(TARGETS))
    t1 = time.perf_counter()
    run_stage(model, train_set, stage, cfg, np.random.default_rng(args.seed),
              lambda msg: print(f"tagged: {msg}", file=sys.stderr))
    trained = time.perf_counter() - t1
    k = list(TARGETS).index("ct_exposure")
    truth = test_set["acquisition"][:, k]
    found = estimates(model, test_set)[:, k]
    groups = np.array([Path(s).name.split("_")[0] for s in test_set["source"]])
    sigma = {Path(item.path).name: noise_sigma_wavelet(load_item(item).array)
             for item in discover(test_dir)}
    noise = np.array([sigma[Path(s).name] for s in test_set["source"]])
    rows = {"acquisition head (trained on engine noise)": found,
            "robust noise σ (wavelet MAD), negated": -np.log(noise)}
    results = {}
    for name, estimate in rows.items():
        results[name] = {"srcc_all": round(float(spearmanr(truth, estimate)[0]), 3),
                         "srcc_within_base": round(spearman_within(truth, estimate, groups), 3)}
    results["acquisition head (trained on engine noise)"]["mae_doublings"] = round(
        float(np.abs(found - truth).mean()), 3)
    report = {"machine": platform.platform(), "threads": torch.get_num_threads(),
              "doses_mAs": list(DOSES_MAS), "train_items": int(len(train_set["score"])),
              "test_items": int(len(test_set["score"])), "steps": args.steps,
              "seed": args.seed, "seconds": {"archives_and_loading": round(built, 1),
                                             "training": round(trained, 1)},
              "results": results}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tagged.json").write_text(json.dumps(report, indent=2))
    print(f"held-out CT, {report['test_items']} slices at {len(DOSES_MAS)} doses "
          f"(independent simulator):")
    for name, r in results.items():
        extra = f", MAE {r['mae_doublings']:.2f} doublings" if "mae_doublings" in r else ""
        print(f"  {name}: SRCC with log2 mAs {r['srcc_all']:.3f} over all, "
              f"{r['srcc_within_base']:.3f} within each base slice{extra}")


if __name__ == "__main__":
    main()
