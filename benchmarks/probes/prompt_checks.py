"""Probe: the prompt classifier's held-out checks at several bars, and its cost per call.

Runs the three checks of its model card (`medq.assess.prompt_classifier.make_examples` on the
test sources, with the card's seeds: native units, 8-bit exports, and as found: any of the
engine's degradations, any orientation, padded canvases, arbitrary scales) and prints, per bar,
the share of examples it names (fills) and the share of those it names rightly; then the time
of one guess for the MNI T1 volume (read at three depths) and for one of its planes. The shipped
weights by default; `--weights` reads another `model.pt` (the classifier shipped before stop 66:
`git show 57ea05c:src/medq/weights/prompt-classifier.pt > old.pt`). Usage:
    python benchmarks/probes/prompt_checks.py [--weights FILE] [--bars 0.8 0.9 0.95 0.98]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    """Print the checks per bar and the timings."""
    import torch

    from medq.assess import prompt_classifier as pc
    from medq.data.samples import load_sample

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="a prompt classifier's model.pt (default: the shipped one)")
    ap.add_argument("--bars", type=float, nargs="+", default=[0.8, 0.9, 0.95, 0.98])
    ap.add_argument("--n", type=int, default=200, help="examples per check (the card's 200)")
    ap.add_argument("--seed", type=int, default=0, help="the card's seed")
    args = ap.parse_args()
    net = pc._shipped()
    if args.weights:
        net = pc.PromptNet()
        net.load_state_dict(torch.load(args.weights, map_location="cpu",
                                       weights_only=True)["state_dict"])
        net = net.float().eval()
    checks = {"native": {"seed": args.seed + 1},
              "8bit": {"seed": args.seed + 2, "units": "8bit"},
              "as found": {"seed": args.seed + 3, "units": "scaled", "kinds": "all",
                           "geometry": True}}
    print("check       bar   filled  right of filled")
    for name, kw in checks.items():
        ex = pc.make_examples("test", args.n, **kw)
        with torch.no_grad():
            logits, _ = net(torch.from_numpy(ex["x"]), torch.from_numpy(ex["cues"]))
        prob = pc._modality_probabilities(logits, ex["hu"])
        right = prob.argmax(1) == ex["modality"]
        for bar in args.bars:
            sure = prob.max(1) >= bar
            share = float(right[sure].mean()) if sure.any() else float("nan")
            print(f"{name:10s} {bar:5.2f}  {sure.mean():6.3f}  {share:6.3f}")
    pc._shipped.cache_clear()
    pc._shipped = lambda: net  # noqa: E731  (the probe's classifier, for the timings)
    guess = pc.load_classifier()
    volume = load_sample("mni_t1").evolve(modality="OT")
    plane = volume.evolve(array=volume.array[volume.shape[0] // 2], spacing=volume.spacing[1:])
    for label, image in (("MNI T1 volume", volume), ("one of its planes", plane)):
        guess(image, ("modality",))
        times = []
        for _ in range(20):
            start = time.perf_counter()
            guess(image, ("modality",))
            times.append(time.perf_counter() - start)
        print(f"{label}: {np.mean(times) * 1000:.1f} ms per guess (mean of 20)")


if __name__ == "__main__":
    main()
