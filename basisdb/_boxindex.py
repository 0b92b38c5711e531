"""The box index space shared by every setting, and the canonical frequency order.

Box of cut-off K: all integer frequencies (h, k, l) with |h|, |k|, |l| <= K,
n = 2K + 1 per axis.  Box index of (h, k, l)::

    index = ((h + K) * n + (k + K)) * n + (l + K)        # row-major, 0 .. n**3 - 1

Canonical order of frequencies (used for orbit representatives, members within
an orbit, the order of orbits and of extinct frequencies): ascending in the key

    (max(|h|, |k|, |l|),  h*h + k*k + l*l,  -h,  -k,  -l)

i.e. by cubic shell, then by length, then lexicographically *descending* in
(h, k, l); so the representative of {(1,1,1), (-1,-1,-1)} is (1, 1, 1).

The same definitions hold in any dimension d (``dim``): the plane groups use
d = 2, frequencies (h, k), box index ``(h + K) * n + (k + K)`` and the key
``(max(|h|, |k|), h*h + k*k, -h, -k)``.  On frequencies with l = 0 the 3-D key
orders exactly as the 2-D key does.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["box_frequencies", "box_index", "canonical_rank", "canonical_sort"]


def box_frequencies(kmax: int, dim: int = 3) -> np.ndarray:
    """All frequencies of the box in box-index order: int64 array (n**dim, dim)."""
    r = np.arange(-kmax, kmax + 1, dtype=np.int64)
    grids = np.meshgrid(*([r] * dim), indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def box_index(freqs: np.ndarray, kmax: int) -> np.ndarray:
    """Box index of each row of ``freqs`` (m, d); the rows must lie inside the box (row-major over d axes)."""
    f = np.asarray(freqs, dtype=np.int64) + kmax
    n = 2 * kmax + 1
    idx = f[:, 0]
    for axis in range(1, f.shape[1]):
        idx = idx * n + f[:, axis]
    return idx


def _canonical_keys(freqs: np.ndarray) -> tuple[np.ndarray, ...]:
    f = np.asarray(freqs, dtype=np.int64)
    shell = np.abs(f).max(axis=1) if len(f) else np.zeros(0, dtype=np.int64)
    norm2 = (f * f).sum(axis=1)
    # np.lexsort sorts by the last key first: (-k_d, ..., -k_1, norm2, shell)
    return tuple(-f[:, axis] for axis in range(f.shape[1] - 1, -1, -1)) + (norm2, shell)


def canonical_sort(freqs: np.ndarray) -> np.ndarray:
    """Permutation that puts the rows of ``freqs`` (m, d) in canonical order."""
    return np.lexsort(_canonical_keys(freqs))


@lru_cache(maxsize=8)
def canonical_rank(kmax: int, dim: int = 3) -> np.ndarray:
    """Canonical rank of every box index (int64 (n**dim,)); smaller comes first."""
    order = canonical_sort(box_frequencies(kmax, dim))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    rank.setflags(write=False)
    return rank
