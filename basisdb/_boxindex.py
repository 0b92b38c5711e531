"""The box index space shared by every setting, and the canonical frequency order.

Box of cut-off K: all integer frequencies (h, k, l) with |h|, |k|, |l| <= K,
n = 2K + 1 per axis.  Box index of (h, k, l)::

    index = ((h + K) * n + (k + K)) * n + (l + K)        # row-major, 0 .. n**3 - 1

Canonical order of frequencies (used for orbit representatives, members within
an orbit, the order of orbits and of extinct frequencies): ascending in the key

    (max(|h|, |k|, |l|),  h*h + k*k + l*l,  -h,  -k,  -l)

i.e. by cubic shell, then by length, then lexicographically *descending* in
(h, k, l); so the representative of {(1,1,1), (-1,-1,-1)} is (1, 1, 1).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["box_frequencies", "box_index", "canonical_rank", "canonical_sort"]


def box_frequencies(kmax: int) -> np.ndarray:
    """All frequencies of the box in box-index order: int64 array (n**3, 3)."""
    r = np.arange(-kmax, kmax + 1, dtype=np.int64)
    h, k, l = np.meshgrid(r, r, r, indexing="ij")
    return np.stack([h.ravel(), k.ravel(), l.ravel()], axis=1)


def box_index(freqs: np.ndarray, kmax: int) -> np.ndarray:
    """Box index of each row of ``freqs`` (m, 3); the rows must lie inside the box."""
    f = np.asarray(freqs, dtype=np.int64) + kmax
    n = 2 * kmax + 1
    return (f[:, 0] * n + f[:, 1]) * n + f[:, 2]


def _canonical_keys(freqs: np.ndarray) -> tuple[np.ndarray, ...]:
    f = np.asarray(freqs, dtype=np.int64)
    shell = np.abs(f).max(axis=1) if len(f) else np.zeros(0, dtype=np.int64)
    norm2 = (f * f).sum(axis=1)
    # np.lexsort sorts by the last key first
    return (-f[:, 2], -f[:, 1], -f[:, 0], norm2, shell)


def canonical_sort(freqs: np.ndarray) -> np.ndarray:
    """Permutation that puts the rows of ``freqs`` (m, 3) in canonical order."""
    return np.lexsort(_canonical_keys(freqs))


@lru_cache(maxsize=8)
def canonical_rank(kmax: int) -> np.ndarray:
    """Canonical rank of every box index (int64 (n**3,)); smaller comes first."""
    order = canonical_sort(box_frequencies(kmax))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    rank.setflags(write=False)
    return rank
