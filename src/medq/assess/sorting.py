"""Selection networks: order statistics of many arrays at once by element-wise min/max.

A network is a list of comparators on wires; run on arrays, each comparator is one
`np.minimum` and one `np.maximum`, so every pixel of a plane is sorted at once. `median_plan`
builds what `medq.assess.filters.median_filter` runs for a k×k window: sort each column of k
(shared by the k windows that contain it), sort the rows of the column-sorted window, then take
the median of the few entries that can still be it. In a k×k matrix sorted along both axes the
entry (i, j) has at least (i+1)(j+1) − 1 entries below it and (k−i)(k−j) − 1 above, which
leaves 13 of 25 candidates for k = 5 and 29 of 49 for k = 7, with as many entries known to lie
below the median as above, so the median of the window is the median of the candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

Comparator = tuple[bool, int, int]
"""(is_move, i, j): a comparator puts min on wire i and max on wire j; a move copies wire j to i."""


def _batcher(n: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort comparators of n wires (n a power of two)."""
    out = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        out.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return out


@lru_cache(maxsize=32)
def selection_network(n: int, wanted: tuple[int, ...]) -> tuple[Comparator, ...]:
    """The comparators that put the `wanted` ranks (0 = smallest) of n wires on those wires:
    Batcher's network on n wires padded with +∞ to a power of two, the comparators a padded wire
    makes trivial dropped, then pruned to those the wanted outputs depend on."""
    size = 1 << max(0, (n - 1).bit_length())
    infinite = set(range(n, size))
    forward: list[Comparator] = []
    for i, j in _batcher(size):
        if j in infinite:  # min(x, ∞) = x stays on i, ∞ on j
            continue
        if i in infinite:  # x moves to i, ∞ to j
            forward.append((True, i, j))
            infinite.discard(i)
            infinite.add(j)
            continue
        forward.append((False, i, j))
    needed, kept = set(wanted), []
    for move, i, j in reversed(forward):
        if move:
            if i in needed:
                kept.append((move, i, j))
                needed.discard(i)
                needed.add(j)
        elif i in needed or j in needed:
            kept.append((move, i, j))
            needed.update((i, j))
    return tuple(reversed(kept))


def run_network(network: Sequence[Comparator], wires: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The wires (arrays of one shape) after the network. The inputs are not written: a
    comparator writes its maximum over a wire's array only once the network made that array,
    and the array its minimum frees is the next one's output, so few arrays are allocated."""
    out, made = list(wires), [False] * len(wires)
    spare: np.ndarray | None = None
    for move, i, j in network:
        if move:
            out[i], made[i], made[j] = out[j], made[j], False
            continue
        low = np.minimum(out[i], out[j], out=spare)
        spare = out[i] if made[i] else None
        out[j] = np.maximum(out[i], out[j], out=out[j] if made[j] else None)
        out[i], made[i], made[j] = low, True, True
    return out


@lru_cache(maxsize=8)
def median_plan(k: int) -> tuple[tuple[tuple[int, int], ...], tuple[Comparator, ...],
                                 tuple[tuple[Comparator, ...], ...], tuple[Comparator, ...]]:
    """For a k×k median (k odd): the candidate entries (row rank, column rank), the column
    sorting network, one network per row giving that row's candidates, and the network giving
    the median of the candidates (see the module docstring)."""
    middle = (k * k - 1) // 2
    candidates = tuple((i, j) for i in range(k) for j in range(k)
                       if (i + 1) * (j + 1) <= middle + 1 and (k - i) * (k - j) <= middle + 1)
    rows = tuple(selection_network(k, tuple(j for r, j in candidates if r == i))
                 for i in range(k))
    return (candidates, selection_network(k, tuple(range(k))), rows,
            selection_network(len(candidates), (len(candidates) // 2,)))


def window_medians(padded: np.ndarray, k: int) -> np.ndarray:
    """The median of every k×k window of a padded 2D band (shape − (k − 1) per axis)."""
    candidates, columns, rows, last = median_plan(k)
    h, w = padded.shape[0] - k + 1, padded.shape[1] - k + 1
    ranked = run_network(columns, [padded[d:d + h] for d in range(k)])  # each column sorted
    picked: dict[tuple[int, int], np.ndarray] = {}
    for i, network in enumerate(rows):
        wanted = [j for r, j in candidates if r == i]
        if wanted:
            row = run_network(network, [ranked[i][:, d:d + w] for d in range(k)])
            picked.update({(i, j): row[j] for j in wanted})
    return run_network(last, [picked[c] for c in candidates])[len(candidates) // 2]
