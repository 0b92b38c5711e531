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

#: points per chunk: keeps the (chunk, n_frequencies) complex work array near 1 MiB (cache-friendly)
_CHUNK_BYTES = 1 * 2**20


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


def _axis_tables(x: np.ndarray, kmax: int, cdtype) -> np.ndarray:
    """exp(2 pi i h x_d) for h = -K..K: (3, c, 2K+1) complex, one table per axis.

    One cos/sin per point and axis, then powers by cumulative products
    (relative error about K * 1e-16) and conjugates for negative h.  All three
    axes at once: every entry is the same sequence of operations as axis by axis.
    """
    ang = (2.0 * np.pi) * np.mod(x, 1.0)  # reduce mod 1 first: exact for large |x|
    t = np.empty((3, len(x), 2 * kmax + 1), dtype=cdtype)
    if t.dtype == np.complex128:  # the powers in place: the same products as into a separate array
        pos = t[:, :, kmax + 1 :]
        # cos + 1j sin, written into the real and imaginary parts: the same values (the angles are >= +0,
        # so no sine is -0, and no cosine of a double is 0), repeated along the last axis
        a3 = ang.T[:, :, None]
        np.cos(a3, out=pos.real)
        np.sin(a3, out=pos.imag)
        np.multiply.accumulate(pos, axis=2, out=pos)  # z**1 .. z**K (np.cumprod)
        np.conjugate(t[:, :, :kmax:-1], out=t[:, :, :kmax])  # conj(pos[:, :, ::-1])
    else:  # complex64 tables: the powers in complex128, then rounded
        z = np.empty((3, len(x), kmax), dtype=np.complex128)
        z[:] = (np.cos(ang) + 1j * np.sin(ang)).T[:, :, None]
        pos = np.cumprod(z, axis=2)
        t[:, :, kmax + 1 :] = pos
        t[:, :, :kmax] = np.conj(pos[:, :, ::-1])
    t[:, :, kmax] = 1.0
    return t


def evaluate_plan(
    plan: EvaluationPlan, x: np.ndarray, dtype=np.float64, out: np.ndarray | None = None
) -> np.ndarray:
    """Evaluate ``plan`` at fractional coordinates ``x`` (N, 3).

    Returns (N, n_out) of ``dtype`` (float32/float64), or complex64/complex128
    when the plan has complex columns.  ``out``: optional preallocated result
    (C-contiguous, that shape and dtype); reusing one avoids page-fault costs.
    """
    real_dtype = np.dtype(dtype)
    cdtype = np.dtype(np.complex64 if real_dtype == np.float32 else np.complex128)
    n_out = len(plan.col_acc)
    prep = _prepare(plan)
    want = (len(x), n_out), (cdtype if prep["complex"] else real_dtype)
    if out is None:
        out = np.empty(*want)
    elif (
        out.shape != want[0] or out.dtype != want[1] or not out.flags.c_contiguous or not out.flags.writeable
    ):
        raise ValueError(
            f"out must be a writeable C-contiguous {want[1]} array of shape {want[0]}, got {out.dtype} {out.shape}"
        )
    if len(x) == 0 or n_out == 0:
        return out
    cast = prep.get(real_dtype)  # the weights and scales in this precision, converted once per plan
    if cast is None:
        cast = prep[real_dtype] = (prep["weights"].astype(cdtype), plan.col_scale.astype(real_dtype))
    weights, scale = cast
    m = len(plan.freqs)
    chunk = max(64, _CHUNK_BYTES // (cdtype.itemsize * max(prep["block"], m)))
    for lo in range(0, len(x), chunk):
        xs = x[lo : lo + chunk]
        e1, e2, e3 = _axis_tables(xs, plan.kmax, cdtype)
        e12 = np.take(e1, prep["u_h"], axis=1, mode="clip") * np.take(e2, prep["u_k"], axis=1, mode="clip")
        if prep["dense"]:
            # every (h,k) pair times every l: one broadcast product, then pick the needed columns
            block = (e12[:, :, None] * e3[:, None, :]).reshape(len(xs), -1)
            waves = np.take(block, prep["pos"], axis=1, mode="clip") if prep["pos"] is not None else block
        else:
            waves = np.take(e12, prep["hk_id"], axis=1, mode="clip")
            waves *= np.take(e3, prep["l_idx"], axis=1, mode="clip")
        if not prep["unit_weights"]:
            waves *= weights
        acc = waves if prep["singletons"] else np.add.reduceat(waves, plan.acc_ptr[:-1], axis=1)
        dst = out[lo : lo + chunk]
        if prep["complex"]:
            np.take(acc, plan.col_acc, axis=1, out=dst, mode="clip")
        else:
            # real view: column 2a is Re(acc a), 2a + 1 is Im(acc a)
            np.take(acc.view(real_dtype), prep["view_idx"], axis=1, out=dst, mode="clip")
        if not prep["unit_scale"]:
            dst *= scale
    return out


_PREP_CACHE: dict[int, dict] = {}


def _prepare(plan: EvaluationPlan) -> dict:
    """Index arrays for ``evaluate_plan``, computed once per plan."""
    prep = _PREP_CACHE.get(id(plan))
    if prep is not None and prep["plan"] is plan:
        return prep
    K = plan.kmax
    n = 2 * K + 1
    f = plan.freqs + K
    hk = f[:, 0] * n + f[:, 1]
    uniq_hk, hk_id = np.unique(hk, return_inverse=True)
    u_h, u_k = np.divmod(uniq_hk, n)
    block = len(uniq_hk) * n
    dense = len(f) >= 0.5 * block  # the broadcast block wastes at most half its work
    pos = hk_id * n + f[:, 2] if dense else None
    if pos is not None and len(pos) == block and np.array_equal(pos, np.arange(block)):
        pos = None
    prep = {
        "plan": plan,
        "u_h": u_h,
        "u_k": u_k,
        "hk_id": hk_id,
        "l_idx": f[:, 2],
        "dense": dense,
        "pos": pos,
        "block": block if dense else 0,
        "weights": plan.weights,
        "unit_weights": bool(np.all(plan.weights == 1)),
        "singletons": len(plan.acc_ptr) - 1 == len(plan.freqs),
        "unit_scale": bool(np.all(plan.col_scale == 1)),
        "view_idx": 2 * plan.col_acc + (plan.col_part == 1),
        "complex": plan.is_complex,
    }
    if len(_PREP_CACHE) > 256:
        _PREP_CACHE.clear()
    _PREP_CACHE[id(plan)] = prep
    return prep
