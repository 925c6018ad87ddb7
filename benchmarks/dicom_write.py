"""Writing derived DICOM: the peak memory of storing a CT volume in its source's storage, and the
time to code one RLE Lossless slice with each encoder pydicom has.

Usage: python benchmarks/dicom_write.py [--slices 300]
The volume is `--slices` planes of 512² whole HU values (−1024 … 1999, seeded), meta as a 16-bit
signed CT read with intercept −1024 states it; `dicom_values.encode_grey` maps it (peak by
tracemalloc). The slice is 512² random 12-bit values, coded by `Dataset.compress` with each
available RLE plugin (best of 3). Results go to benchmarks/results/dicom_write.json.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np


def encode_peak_mib(slices: int) -> float:
    """Peak MiB traced while `encode_grey` stores a `slices`×512² CT volume (its input apart)."""
    from medq.image import MedImage
    from medq.io.dicom_values import encode_grey

    hu = np.random.default_rng(0).integers(-1024, 2000, (slices, 512, 512)).astype(np.float32)
    image = MedImage(hu, (1.0, 0.5, 0.5), "CT", meta={
        "bits_allocated": 16, "bits_stored": 16, "pixel_representation": 1,
        "stored_rescale": [1.0, -1024.0]})
    tracemalloc.start()
    stored, _, _ = encode_grey(image)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.array_equal(stored.astype(np.float32) - 1024.0, hu)
    return peak / 2 ** 20


def rle_seconds() -> dict[str, float]:
    """Best of 3 seconds to code one 512² 12-bit slice as RLE Lossless, per available plugin."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.pixels.encoders import RLELosslessEncoder
    from pydicom.uid import RLELossless

    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    template.Rows = template.Columns = 512
    template.PixelRepresentation = 0
    pixels = np.random.default_rng(0).integers(0, 4096, (512, 512)).astype(np.uint16)
    out = {}
    for plugin in RLELosslessEncoder.available_plugins:
        times = []
        for _ in range(3):
            ds = template.copy()
            start = time.perf_counter()
            ds.compress(RLELossless, pixels, encoding_plugin=plugin)
            times.append(time.perf_counter() - start)
        out[plugin] = min(times)
    return out


def main() -> None:
    """Measure both and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=300)
    args = parser.parse_args()
    from medq.cli.bench_results import write_results

    peak = encode_peak_mib(args.slices)
    print(f"encode_grey of a {args.slices}×512² CT volume: peak {peak:.0f} MiB")
    rle = rle_seconds()
    for plugin, seconds in rle.items():
        print(f"RLE Lossless, one 512² slice, {plugin:10s} {seconds * 1000:7.1f} ms")
    write_results(Path(__file__).parent / "results", "dicom_write.json",
                  {"slices": args.slices, "encode_peak_mib": peak, "rle_seconds": rle})


if __name__ == "__main__":
    main()
