"""The shared box encoding (routing for weight sharing) and framework-neutral term tables.

Shared encoding (docs/CONVENTIONS.md section 8).  For a point x in setting G,

    conj(u_G(x)) = P_G^T e(x) = conj(B) phi(x),     one entry per box frequency k,

is G-invariant and lives in the box index space that every setting shares.  Its
entry at k is conj(B[k, O]) phi_O(x) for k in a non-extinct orbit O, else 0.
Because the invariant subspace is closed under conjugation, the entry at -k is
the conjugate of the entry at k, so the real vector

    r[idx(k)]  = sqrt(2) Re conj(u)_k,  r[idx(-k)] = sqrt(2) Im conj(u)_k   (k in the half box)
    r[idx(0)]  = conj(u)_0

(half box: k != 0 that comes before -k in the canonical order) holds the same
information, with the same norm, in n_box real numbers indexed by the box.
``shared_encoding`` computes it; a model applies one weight matrix of shape
(n_box, d) to it for every group.

Term tables.  Every real output column c is a sum over terms t of
alpha_t cos(2 pi k_t.x) + beta_t sin(2 pi k_t.x); ``term_table`` lists
(k_t, c_t, alpha_t, beta_t) so that a framework can evaluate features with
gathers and one scatter-add, differentiably (basisdb.torch, basisdb.jax).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._boxindex import box_frequencies, box_index, canonical_rank

__all__ = ["TermTable", "term_table", "encoding_table", "shared_encoding", "half_box"]


@lru_cache(maxsize=8)
def half_box(kmax: int, dim: int = 3) -> tuple[np.ndarray, np.ndarray, int]:
    """(pos, neg, zero): box indices of the half box, of their negatives, and of k = 0."""
    f = box_frequencies(kmax, dim)
    rank = canonical_rank(kmax, dim)
    idx = np.arange(len(f))
    neg = box_index(-f, kmax)
    pos = idx[rank < rank[neg]]
    out = (pos, neg[pos], int(box_index(np.zeros((1, dim), dtype=np.int64), kmax)[0]))
    for a in out[:2]:
        a.setflags(write=False)
    return out


@dataclass(frozen=True)
class TermTable:
    """Output column c = sum over its terms t of alpha_t cos(2 pi k_t.x) + beta_t sin(2 pi k_t.x).

    freq:   (t, 3) int64 frequencies k_t.
    column: (t,) int64 output column of each term.
    alpha, beta: (t,) float64 coefficients.
    n_out:  number of output columns.
    kmax:   cut-off (|k| <= kmax per axis).
    """

    freq: np.ndarray
    column: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    n_out: int
    kmax: int


def term_table(basis, real: bool = True) -> TermTable:
    """Term table of the real features (n_basis columns) or of the complex ones
    (2 n_basis columns: Re phi_j at 2j, Im phi_j at 2j + 1).  Cached on the basis."""
    key = ("term_table", bool(real))
    cached = basis._cache.get(key)
    if cached is not None:
        return cached
    plan = basis._plan(bool(real))
    sizes = np.diff(plan.acc_ptr)
    if real:
        acc = plan.col_acc
        part = plan.col_part.astype(np.int64)
        scale = plan.col_scale
        cols = np.arange(len(acc))
    else:  # each accumulator (orbit) gives two columns: real and imaginary part
        n = len(plan.col_acc)
        acc = np.repeat(plan.col_acc, 2)
        part = np.tile([0, 1], n)
        scale = np.ones(2 * n)
        cols = np.arange(2 * n)
    rows = np.concatenate([np.arange(plan.acc_ptr[a], plan.acc_ptr[a + 1]) for a in acc]) if len(acc) else np.zeros(0, np.int64)
    col = np.repeat(cols, sizes[acc])
    w = plan.weights[rows]
    sc = np.repeat(scale, sizes[acc])
    is_im = np.repeat(part, sizes[acc]) == 1
    # Re(w e) = Re w cos - Im w sin ;  Im(w e) = Im w cos + Re w sin
    alpha = np.where(is_im, w.imag, w.real) * sc
    beta = np.where(is_im, w.real, -w.imag) * sc
    table = TermTable(
        freq=np.ascontiguousarray(plan.freqs[rows]),
        column=col.astype(np.int64),
        alpha=alpha,
        beta=beta,
        n_out=int(len(cols)),
        kmax=int(basis.kmax),
    )
    for a in (table.freq, table.column, table.alpha, table.beta):
        a.setflags(write=False)
    basis._cache[key] = table
    return table


@dataclass(frozen=True)
class EncodingTable:
    """Shared encoding from complex features: r[slot] = a * Re phi[orbit] + b * Im phi[orbit]."""

    slot: np.ndarray  # (s,) int64 box index written
    orbit: np.ndarray  # (s,) int64 orbit (complex feature) read
    a: np.ndarray  # (s,) float64
    b: np.ndarray  # (s,) float64
    n_box: int


def encoding_table(basis) -> EncodingTable:
    """Gather table of ``shared_encoding`` (cached on the basis)."""
    cached = basis._cache.get("encoding_table")
    if cached is not None:
        return cached
    rank = canonical_rank(basis.kmax, basis.frequencies.shape[1])
    bi = basis.box_indices
    neg = box_index(-basis.frequencies, basis.kmax)
    c = basis.coefficients
    zero = (basis.frequencies == 0).all(axis=1)
    pos = (rank[bi] < rank[neg]) & ~zero
    s2 = np.sqrt(2.0)
    # conj(u)_k = conj(c_k) phi = (c_re phi_re + c_im phi_im) + i (c_re phi_im - c_im phi_re)
    slot = np.concatenate([bi[zero], bi[pos], neg[pos]])
    orbit = np.concatenate([basis.orbit_of[zero], basis.orbit_of[pos], basis.orbit_of[pos]])
    a = np.concatenate([c.real[zero], s2 * c.real[pos], -s2 * c.imag[pos]])
    b = np.concatenate([c.imag[zero], s2 * c.imag[pos], s2 * c.real[pos]])
    table = EncodingTable(slot=slot.astype(np.int64), orbit=orbit.astype(np.int64), a=a, b=b, n_box=basis.n_box)
    for arr in (table.slot, table.orbit, table.a, table.b):
        arr.setflags(write=False)
    basis._cache["encoding_table"] = table
    return table


def shared_encoding(basis, x, real: bool = True) -> np.ndarray:
    """G-invariant encoding of points in the box index space shared by every setting.

    x: (N, 3) fractional coordinates in the basis's setting.  real=True: (N, n_box)
    float64, the real packing described in the module docstring; real=False:
    (N, n_box) complex128 conj(u_G(x)) = P_G^T e(x).  Entries outside the
    setting's non-extinct orbits are zero.
    """
    phi = basis.evaluate(x, real=False)
    single = phi.ndim == 1
    phi = np.atleast_2d(phi)
    if real:
        t = encoding_table(basis)
        out = np.zeros((len(phi), basis.n_box))
        sel = phi[:, t.orbit]
        out[:, t.slot] = t.a * sel.real + t.b * sel.imag
    else:
        out = np.zeros((len(phi), basis.n_box), dtype=np.complex128)
        out[:, basis.box_indices] = np.conj(basis.coefficients) * phi[:, basis.orbit_of]
    return out[0] if single else out
