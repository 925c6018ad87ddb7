"""Probe: each member of a restoration ensemble alone on the independent simulators' rungs.

`restore-s` averages two networks trained on differently prepared pairs (the second with half of
its clean images softened). This restores the held-out real images of
`benchmarks/independent.py` at the chosen rungs as `medq restore` does (`auto`: assess →
describe → gate → network), once with the ensemble and once with each member alone in its place,
and prints each one's PSNR gain over the input (dB; CT in the [−160, 240] HU window). Usage:
    python benchmarks/probes/restore_members.py [--restorer NAME_OR_CHECKPOINT] [--rungs 2,3]
        [--kinds mr_rician_noise,ct_sinogram_noise,...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))
from independent import independent_ladders  # noqa: E402
from independent_restore import RESTORE_KINDS, psnr_of  # noqa: E402


def main() -> None:
    """Print the ensemble's and each member's gain per image, kind and rung."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--restorer", default="restore-s")
    parser.add_argument("--rungs", default="2,3")
    parser.add_argument("--kinds", default=",".join(RESTORE_KINDS))
    args = parser.parse_args()
    from medq.assess.predictor import Assessor
    from medq.restore.models import load_restorer, save_checkpoint
    from medq.restore.models.ensemble import RestoreEnsemble
    from medq.restore.pipeline import restore
    from medq.train.evaluate import held_out_images

    ensemble, record = load_restorer(args.restorer)
    if not isinstance(ensemble, RestoreEnsemble):
        parser.error(f"{args.restorer} is one network, not an ensemble")
    assessor = Assessor(measures=False)
    kinds, rungs = args.kinds.split(","), [int(r) for r in args.rungs.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        nets = {"ensemble": args.restorer}
        for k, member in enumerate(ensemble.members):  # each member as a checkpoint of its own
            nets[f"member {k}"] = str(Path(folder) / f"member-{k}.pt")
            save_checkpoint(member, nets[f"member {k}"], record)
        for name, kind, ladder in independent_ladders(held_out_images()):
            if kind not in kinds:
                continue
            clean, is_ct = np.asarray(ladder[0].array, float), ladder[0].modality == "CT"
            for rung in rungs:
                before = psnr_of(ladder[rung], clean, is_ct)
                gains = {label: psnr_of(restore(ladder[rung], "auto", assessor=assessor,
                                                model=net, reassess=False).image, clean, is_ct)
                         - before for label, net in nets.items()}
                print(f"{name:12s} {kind:24s} rung {rung}  " + "  ".join(
                    f"{label} {g:+6.2f}" for label, g in gains.items()), flush=True)


if __name__ == "__main__":
    main()
