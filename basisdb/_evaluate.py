"""Fast evaluation of symmetry-adapted functions from separable 1-D exponentials.

A basis function is a sum of plane waves ``w_k exp(2 pi i k.x)``.  For a chunk of
points, ``exp(2 pi i h x_1)`` is computed once per axis and per ``h`` in
``-K..K`` (shape (chunk, 2K+1)); the plane wave of each needed frequency is the
product of three table entries (the (h, k) product is shared by all l), and each
function is a segment sum (``np.add.reduceat``) over its frequencies.  No
exponential of an (N, n) matrix is ever formed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EvaluationPlan", "evaluate_plan"]

#: points per chunk: keeps the (chunk, n_frequencies) complex work array near 64 MiB
_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class EvaluationPlan:
    """What to sum for each output column.

    freqs:    (m, 3) int64 frequencies, grouped by accumulator.
    weights:  (m,) complex128 coefficient of each frequency in its accumulator.
    acc_ptr:  (n_acc + 1,) int64; accumulator a sums rows acc_ptr[a]:acc_ptr[a+1].
    col_acc:  (n_out,) int64 accumulator of each output column.
    col_part: (n_out,) int8: 0 real part, 1 imaginary part, 2 the complex value.
    col_scale:(n_out,) float64 factor applied to the column.
    kmax:     cut-off of the per-axis tables.
    """

    freqs: np.ndarray
    weights: np.ndarray
    acc_ptr: np.ndarray
    col_acc: np.ndarray
    col_part: np.ndarray
    col_scale: np.ndarray
    kmax: int

    @property
    def is_complex(self) -> bool:
        return bool(np.any(self.col_part == 2))


def _axis_tables(x: np.ndarray, kmax: int, cdtype) -> list[np.ndarray]:
    """exp(2 pi i h x_d) for h = -K..K: three (c, 2K+1) complex arrays."""
    h = np.arange(-kmax, kmax + 1, dtype=np.float64)
    tables = []
    for d in range(3):
        # reduce mod 1 first: exact for the large |x| a caller may pass
        ang = (2.0 * np.pi) * np.outer(np.mod(x[:, d], 1.0), h)
        tables.append((np.cos(ang) + 1j * np.sin(ang)).astype(cdtype, copy=False))
    return tables


def evaluate_plan(plan: EvaluationPlan, x: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Evaluate ``plan`` at fractional coordinates ``x`` (N, 3).

    Returns (N, n_out) of ``dtype`` (float32/float64), or complex64/complex128
    when the plan has complex columns.
    """
    real_dtype = np.dtype(dtype)
    cdtype = np.complex64 if real_dtype == np.float32 else np.complex128
    n_out = len(plan.col_acc)
    out_dtype = cdtype if plan.is_complex else real_dtype
    out = np.empty((len(x), n_out), dtype=out_dtype)
    if len(x) == 0 or n_out == 0:
        return out
    K = plan.kmax
    n = 2 * K + 1
    f = plan.freqs + K
    hk = f[:, 0] * n + f[:, 1]
    uniq_hk, hk_id = np.unique(hk, return_inverse=True)
    u_h, u_k = np.divmod(uniq_hk, n)
    l_idx = f[:, 2]
    weights = plan.weights.astype(cdtype)
    trivial_weights = bool(np.all(plan.weights == 1))
    singletons = len(plan.acc_ptr) - 1 == len(plan.freqs)
    starts = plan.acc_ptr[:-1]
    chunk = max(1, _CHUNK_BYTES // (16 * max(1, len(plan.freqs))))
    for lo in range(0, len(x), chunk):
        xs = x[lo : lo + chunk]
        e1, e2, e3 = _axis_tables(xs, K, cdtype)
        e12 = e1[:, u_h] * e2[:, u_k]
        waves = e12[:, hk_id]
        waves *= e3[:, l_idx]
        if not trivial_weights:
            waves *= weights
        acc = waves if singletons else np.add.reduceat(waves, starts, axis=1)
        cols = acc[:, plan.col_acc]
        if plan.is_complex:
            out[lo : lo + chunk] = cols * plan.col_scale
        else:
            part = np.where(plan.col_part == 1, cols.imag, cols.real)
            out[lo : lo + chunk] = part * plan.col_scale
    return out
