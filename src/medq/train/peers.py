"""The peers medq is benchmarked beside: a generic no-reference IQA made for photographs.

BRISQUE (Mittal et al. 2012) as the `brisque` package computes it with its bundled model
trained on the LIVE photographs (0 best … 100 worst), on a grey image in [0, 1] as displayed.
`medq bench iqa` gives it a row of its own (on each item's model view, the window the model
reads) and `benchmarks/peers.py` scores medq's ladders with it. The package is one of the
development extras (`pip install -e '.[dev]'`); without it the row says how to install it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from medq.errors import ModelError

INSTALL = "pip install 'brisque>=0.2,<0.3' opencv-python-headless libsvm-official"
"""What gives medq's benchmarks the BRISQUE peer (also in the `dev` extras)."""


def display(image: Any) -> np.ndarray:
    """A 2D grey MedImage as displayed, in [0, 1] (float64): CT in the window its file states,
    else soft tissue (40/400 HU); other modalities between their 0.5th and 99.5th percentiles
    (`medq.assess.preprocess.normalise`, what the quality model reads)."""
    from medq.assess.preprocess import image_window, normalise

    return normalise(image.array, image.modality, image_window(image)).astype(np.float64)


@lru_cache(maxsize=1)
def brisque_scorer() -> Callable[[np.ndarray], float]:
    """BRISQUE's score of a grey `(y, x)` image in [0, 1]; ModelError when the package (or
    OpenCV, which it needs) is not installed."""
    try:
        from brisque import BRISQUE
    except ImportError as e:
        raise ModelError(f"the BRISQUE peer needs the brisque package ({INSTALL}): {e}") from e

    class Brisque(BRISQUE):
        """brisque 0.2 on NumPy 2: some features come out as 1-element arrays, which its own
        scaling cannot turn into floats; they are flattened first, nothing else changes."""

        def scale_features(self, features: Any) -> np.ndarray:
            return super().scale_features([float(np.ravel(f)[0]) for f in features])

    model = Brisque(url=False)
    return lambda grey: float(model.score(np.repeat(np.asarray(grey, np.float64)[..., None],
                                                    3, axis=-1)))
