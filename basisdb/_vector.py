"""Equivariant vector-field bases (polar and axial), derived exactly from a scalar ``Basis``.

A vector field f(x) = sum_k c_k e(k.x), c_k in C^3, in **contravariant** components
(along the lattice vectors a, b, c of the setting) is equivariant under g = (R, t) when

    f(R x + t) = M_g f(x),   M_g = R (polar)  or  det(R) R (axial),

i.e.  c_{R^T k} = e(k.t) M_g^{-1} c_k  for every k  (docs/CONVENTIONS.md section 13).

Per orbit O of representative k0 (scalar-extinct orbits included: they can carry vector
functions), the stabiliser S = {g : R^T k0 = k0} acts on C^3 and c_{k0} must lie in
V = {v : M_g v = e(k0.t_g) v for g in S}, the image of the stabiliser projector

    Pi = (1/|S|) sum_{g in S} e(-k0.t_g) M_g.

Exact part (integers only): the stabiliser, the character numerators k0.t_g * 24 mod 24,
dim V and the pivot columns of Pi, decided in the ring Z[zeta_24] (integer polynomials
modulo the cyclotomic polynomial x^8 - x^4 + 1), so no rank is ever decided by a float
threshold.  Float part (when evaluated): the orbit's coefficient vectors, the Reynolds
images  c_k = sum_{g : R_g^T k0 = k} e(k0.t_g) M_g^{-1} e_p  of the pivot columns p, made
orthonormal (Gram-Schmidt in pivot order) in the G-invariant inner product

    <f, f'> = integral conj(f)^T W f' dx = sum_k c_k^H W c'_k,   W = (1/|P|) sum_{R in P} R^T R,

which is the identity in every setting whose rotations are signed permutations.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ._boxindex import box_index, canonical_rank
from ._evaluate import _axis_tables

if typing.TYPE_CHECKING:
    from ._basis import Basis

__all__ = ["KINDS", "VectorBasis", "vector_basis", "fixed_space", "invariant_metric"]

KINDS = ("polar", "axial")

_PHI_DEG = 8  # degree of the 24th cyclotomic polynomial x^8 - x^4 + 1


# ---------------------------------------------------------------- Z[zeta_24], exactly
def _reduce(c: np.ndarray) -> np.ndarray:
    """Coefficients (..., n) of powers zeta^0..zeta^(n-1) reduced mod x^8 - x^4 + 1 to (..., 8)."""
    c = np.array(c, dtype=np.int64, copy=True)
    for m in range(c.shape[-1] - 1, _PHI_DEG - 1, -1):  # x^m = x^(m-4) - x^(m-8)
        c[..., m - 4] += c[..., m]
        c[..., m - _PHI_DEG] -= c[..., m]
        c[..., m] = 0
    out = np.zeros(c.shape[:-1] + (_PHI_DEG,), dtype=np.int64)
    n = min(_PHI_DEG, c.shape[-1])
    out[..., :n] = c[..., :n]
    return out


def _mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _reduce(np.convolve(a, b))


_FIXED_CACHE: dict[tuple, tuple[int, tuple[int, ...]]] = {}


def fixed_space(mats: np.ndarray, chars: np.ndarray) -> tuple[int, tuple[int, ...]]:
    """Exact dimension and pivot columns of Pi = (1/|S|) sum_g zeta^(-chars_g) mats_g.

    mats: (s, 3, 3) integer matrices M_g of the stabiliser (a group under multiplication),
    chars: (s,) integer numerators of its character e(chars/24).  Returns (d, pivots):
    d = dim of {v : M_g v = e(chars_g/24) v}, pivots = the first d columns of Pi (in
    column order) that are linearly independent, decided in Z[zeta_24].
    """
    mats = np.asarray(mats, dtype=np.int64)
    chars = np.asarray(chars, dtype=np.int64) % 24
    key = (mats.tobytes(), chars.tobytes())
    hit = _FIXED_CACHE.get(key)
    if hit is not None:
        return hit
    s = len(mats)
    num = np.zeros((3, 3, 24), dtype=np.int64)  # |S| Pi, coefficient of zeta^m
    for m_g, p in zip(mats, chars):
        num[:, :, (-p) % 24] += m_g
    pi = _reduce(num)  # (3, 3, 8)
    tr = pi[0, 0] + pi[1, 1] + pi[2, 2]
    if np.any(tr[1:]) or tr[0] % s:
        raise AssertionError(f"trace of the stabiliser projector is not an integer: {tr.tolist()} / {s}")
    d = int(tr[0] // s)
    cols = [pi[:, j] for j in range(3)]  # (3, 8) each
    if d == 0:
        piv: tuple[int, ...] = ()
    elif d == 3:
        piv = (0, 1, 2)
    elif d == 1:
        piv = (next(j for j in range(3) if np.any(cols[j])),)
    else:  # d == 2: first pair with a non-zero 2x2 minor

        def independent(a, b):
            return any(np.any(_mul(a[i], b[j]) - _mul(a[j], b[i])) for i in range(3) for j in range(i + 1, 3))

        piv = next((i, j) for i in range(3) for j in range(i + 1, 3) if independent(cols[i], cols[j]))
    _FIXED_CACHE[key] = (d, piv)
    return d, piv


def invariant_metric(rotations: np.ndarray) -> np.ndarray:
    """W = (1/|P|) sum over the distinct R of R^T R (float64 (3, 3); exact rationals)."""
    pts = np.unique(np.asarray(rotations, dtype=np.int64).reshape(-1, 9), axis=0).reshape(-1, 3, 3)
    return np.einsum("gji,gjk->ik", pts, pts) / len(pts)


def _point_matrices(rotations: np.ndarray, kind: str) -> np.ndarray:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    r = np.asarray(rotations, dtype=np.int64)
    if kind == "axial":
        det = np.rint(np.linalg.det(r)).astype(np.int64)
        r = r * det[:, None, None]
    return r


# ---------------------------------------------------------------- the basis object
@dataclass(frozen=True, eq=False)
class VectorBasis:
    """Equivariant vector-field basis of one setting (``Basis.vector(kind)``).

    Its arrays are read-only.

    Fields:
      basis:         the scalar Basis it was derived from (setting, operations, kmax).
      kind:          'polar' or 'axial'.
      frequencies:   (n, 3) int64, members of every orbit that carries vector functions
                     (scalar-extinct orbits included), orbit after orbit, canonical order.
      orbit_ptr:     (n_orbits + 1,) int64 rows of each orbit.
      orbit_dim:     (n_orbits,) int64 exact number of complex functions the orbit carries (1..3).
      pivots:        (n_orbits, 3) int64 the pivot columns of the stabiliser projector (-1 unused).
      scalar_extinct:(n_orbits,) bool, the orbit is a systematic absence for scalars.
      metric:        (3, 3) float64 W, the invariant inner product on components; the complex
                     and the real basis are orthonormal in sum_k c_k^H W c'_k.

    Orbit j carries the complex functions (j, a), a < orbit_dim[j], with coefficient vectors
    ``orbit(j)[1][:, :, a]``; ``coefficients(real)`` gives all of them as one sparse matrix,
    ``complex_layout`` / ``real_layout`` say which column is which.
    """

    basis: Basis
    kind: str
    frequencies: np.ndarray
    orbit_ptr: np.ndarray
    orbit_dim: np.ndarray
    pivots: np.ndarray
    scalar_extinct: np.ndarray
    metric: np.ndarray
    _coef: np.ndarray  # (n, 3, 3) complex: per member, up to 3 orthonormal functions of its orbit
    _conj_row: np.ndarray  # (n,) row of -k

    def __repr__(self) -> str:
        s = self.basis.setting
        return (
            f"VectorBasis(kind={self.kind!r}, hall_number={s.hall_number}, symbol={s.hm_extended!r}, "
            f"kmax={self.basis.kmax}, n_basis={self.n_basis}, n_orbits={self.n_orbits}, "
            f"n_scalar_extinct_orbits={int(self.scalar_extinct.sum())})"
        )

    @property
    def n_orbits(self) -> int:
        return len(self.orbit_dim)

    @property
    def n_basis(self) -> int:
        """Number of complex (= number of real) basis functions."""
        return int(self.orbit_dim.sum())

    @cached_property
    def orbit_sizes(self) -> np.ndarray:
        return np.diff(self.orbit_ptr)

    @cached_property
    def orbit_of(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_orbits), self.orbit_sizes)

    def orbit(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(members, coefficient vectors) of the complex functions of orbit j.

        members: ``(|O|, 3)`` int64; coefficient vectors: ``(|O|, 3, d)`` complex.
        """
        a, b = self.orbit_ptr[j], self.orbit_ptr[j + 1]
        return self.frequencies[a:b].copy(), self._coef[a:b, :, : self.orbit_dim[j]].copy()

    @cached_property
    def complex_layout(self) -> tuple[np.ndarray, np.ndarray]:
        """(orbit j, slot a) of each complex column, orbit by orbit."""
        j = np.repeat(np.arange(self.n_orbits), self.orbit_dim)
        start = np.repeat(np.cumsum(self.orbit_dim) - self.orbit_dim, self.orbit_dim)
        return j, np.arange(self.n_basis) - start

    @cached_property
    def _terms(self) -> dict:
        """Sparse coefficient tables: (term row, column, (n_t, 3) complex coefficients) per form."""
        rows_c, cols_c, coef_c = [], [], []
        rows_r, cols_r, coef_r = [], [], []
        layout = []  # (orbit, function slot, part) of each real column
        col = 0
        rcol = 0
        conj_orbit = self.orbit_of[self._conj_row[self.orbit_ptr[:-1]]]
        for j in range(self.n_orbits):
            a0, b0 = self.orbit_ptr[j], self.orbit_ptr[j + 1]
            rows = np.arange(a0, b0)
            d = int(self.orbit_dim[j])
            blocks = [self._coef[a0:b0, :, a] for a in range(d)]
            for blk in blocks:
                rows_c.append(rows)
                cols_c.append(np.full(len(rows), col))
                coef_c.append(blk)
                col += 1
            cj = conj_orbit[j]
            if cj == j:  # self-conjugate: a real basis of the conjugation-closed span
                neg = self._conj_row[a0:b0] - a0
                cands = []
                for blk in blocks:
                    bar = np.conj(blk[neg])
                    cands += [(blk + bar) / 2, (blk - bar) / 2j]
                kept = _gram_schmidt(cands, self.metric, d)
                for a, blk in enumerate(kept):
                    layout.append((j, a, 0))
                    rows_r.append(rows)
                    cols_r.append(np.full(len(rows), rcol))
                    coef_r.append(blk)
                    rcol += 1
            elif j < cj:
                neg_rows = self._conj_row[a0:b0]
                s2 = np.sqrt(0.5)
                for a, blk in enumerate(blocks):
                    for part, fac in ((1, 1.0), (2, -1j)):
                        layout.append((j, a, part))
                        rows_r.append(np.concatenate([rows, neg_rows]))
                        cols_r.append(np.full(2 * len(rows), rcol))
                        coef_r.append(np.concatenate([fac * s2 * blk, np.conj(fac) * s2 * np.conj(blk)]))
                        rcol += 1

        def cat(r, c, v):
            if not r:
                return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), complex)
            return np.concatenate(r), np.concatenate(c), np.concatenate(v)

        lay = np.array(layout, dtype=np.int64).reshape(-1, 3)
        return {False: cat(rows_c, cols_c, coef_c), True: cat(rows_r, cols_r, coef_r), "layout": lay}

    @property
    def real_layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(orbit j, slot a, part) of each real column; part 1/2 = sqrt(2) Re/Im of complex function
        (j, a) of an orbit pair O != -O (at the first orbit of the pair); part 0 = the a-th real field of a
        self-conjugate orbit (Gram-Schmidt over Re f_0, Im f_0, Re f_1, ... in the metric)."""
        lay = self._terms["layout"]
        return lay[:, 0].copy(), lay[:, 1].copy(), lay[:, 2].copy()

    def term_table(self, real: bool = True):
        """The fields as a ``basisdb._routing.TermTable`` (what the torch and JAX back-ends evaluate).

        real=True: 3 n_basis output columns, component i of real field j at column 3 j + i;
        real=False: 6 n_basis columns, Re and Im of that complex component at 2 (3 j + i) and
        2 (3 j + i) + 1.  Cached on the scalar basis.
        """
        from ._routing import TermTable

        key = ("vector_term_table", self.kind, bool(real))
        hit = self.basis._cache.get(key)
        if hit is not None:
            return hit
        r, c, v = self._terms[bool(real)]
        w = v.ravel()
        col = (3 * c[:, None] + np.arange(3)).ravel()
        freq = np.repeat(self.frequencies[r], 3, axis=0)
        keep = w != 0
        w, col, freq = w[keep], col[keep], freq[keep]
        if real:  # conjugate-symmetric coefficients: Re(w e) summed over k and -k is the field
            table = TermTable(freq, col, w.real.copy(), -w.imag, 3 * self.n_basis, self.basis.kmax)
        else:  # Re(w e) = Re w cos - Im w sin ;  Im(w e) = Im w cos + Re w sin
            table = TermTable(
                np.concatenate([freq, freq]),
                np.concatenate([2 * col, 2 * col + 1]),
                np.concatenate([w.real, w.imag]),
                np.concatenate([-w.imag, w.real]),
                6 * self.n_basis,
                self.basis.kmax,
            )
        return self.basis._cache.setdefault(key, table)

    def to_torch(self, dtype=None, device=None):
        """Differentiable PyTorch evaluation: ``basisdb.torch.vector_to_torch``."""
        from .torch import vector_to_torch

        return vector_to_torch(self, dtype=dtype, device=device)

    def to_jax(self, dtype=None, jit: bool = True):
        """Differentiable JAX evaluation: ``basisdb.jax.vector_to_jax``."""
        from .jax import vector_to_jax

        return vector_to_jax(self, dtype=dtype, jit=jit)

    def coefficients(self, real: bool = False):
        """Coefficient tensor as scipy.sparse (n * 3, n_basis): row 3 r + i is component i at frequencies[r]."""
        import scipy.sparse as sp

        r, c, v = self._terms[bool(real)]
        rows = (3 * r[:, None] + np.arange(3)).ravel()
        cols = np.repeat(c, 3)
        return sp.csc_array((v.ravel(), (rows, cols)), shape=(3 * len(self.frequencies), self.n_basis))

    def _evaluation_matrix(self, real: bool):
        key = ("evalmat", real)
        hit = self.basis._cache.get((self.kind,) + key)
        if hit is None:
            import scipy.sparse as sp

            r, c, v = self._terms[real]
            rows = (3 * c[:, None] + np.arange(3)).ravel()
            cols = np.repeat(r, 3)
            hit = sp.csr_array((v.ravel(), (rows, cols)), shape=(3 * self.n_basis, len(self.frequencies)))
            self.basis._cache[(self.kind,) + key] = hit
        return hit

    def evaluate(self, x, real: bool = True, lattice=None) -> np.ndarray:
        """Basis fields at fractional coordinates ``x`` (N, 3): (N, n_basis, 3).

        Contravariant components (along a, b, c); with ``lattice`` (3, 3), rows a, b, c in
        Cartesian coordinates, Cartesian components f_cart = L^T f.  ``real=False``: the
        complex basis (complex128).
        """
        arr = np.asarray(x, dtype=np.float64)
        single = arr.ndim == 1
        arr = np.atleast_2d(arr)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"coordinates must have shape (N, 3), got {np.shape(x)}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("coordinates contain NaN or inf")
        a = self._evaluation_matrix(bool(real))  # (n_basis * 3, n)
        out = np.empty((len(arr), self.n_basis, 3), dtype=np.float64 if real else np.complex128)
        kmax = self.basis.kmax
        h, k, l = (self.frequencies + kmax).T
        for s in range(0, len(arr), 256):
            tx, ty, tz = _axis_tables(arr[s : s + 256], kmax, np.complex128)  # exp(2 pi i h x_d), h = -K..K
            e = tx[:, h] * ty[:, k] * tz[:, l]  # (c, n) plane waves
            v = (a @ e.T).T.reshape(len(e), self.n_basis, 3)
            out[s : s + 256] = v.real if real else v
        if lattice is not None:
            lat = np.asarray(lattice, dtype=np.float64)
            if lat.shape != (3, 3):
                raise ValueError(f"lattice must have shape (3, 3), got {lat.shape}")
            out = out @ lat
        return out[0] if single else out


def _gram_schmidt(cands, w, d):
    kept: list[np.ndarray] = []
    for c in cands:
        v = c.copy()
        for q in kept:
            v = v - q * np.einsum("ki,ij,kj->", np.conj(q), w, v)
        nrm = np.sqrt(abs(np.einsum("ki,ij,kj->", np.conj(v), w, v)))
        # the candidates are Re f and Im f of unit-norm f: the real span has norm-1 directions, so a
        # remainder below 1e-6 is round-off of a dependent (or zero) candidate; the count is checked
        # against the exact dimension below
        if nrm > 1e-6:
            kept.append(v / nrm)
        if len(kept) == d:
            break
    if len(kept) != d:
        raise AssertionError(f"real basis of a self-conjugate orbit: found {len(kept)} of {d} functions")
    return kept


# ---------------------------------------------------------------- construction
def _all_orbit_reps(b: Basis) -> tuple[np.ndarray, np.ndarray]:
    """Representatives of every orbit in the box (scalar ones, then extinct ones regrouped), canonical order."""
    reps = b.frequencies[b.orbit_ptr[:-1]]
    ext = b.extinct
    rank = canonical_rank(b.kmax)
    if len(ext):
        images = np.einsum("mi,gij->mgj", ext, b.rotations)
        r = rank[box_index(images.reshape(-1, 3), b.kmax)].reshape(len(ext), -1).min(axis=1)
        ext_reps = np.unique(r)  # ranks of the extinct orbits' representatives
        # rank -> frequency: the rows of ext with that rank are the representatives
        own = rank[box_index(ext, b.kmax)]
        pos = {int(v): i for i, v in enumerate(own)}
        ext_rep_f = ext[[pos[int(v)] for v in ext_reps]]
    else:
        ext_rep_f = np.zeros((0, 3), dtype=np.int64)
    allf = np.concatenate([reps, ext_rep_f])
    flag = np.concatenate([np.zeros(len(reps), bool), np.ones(len(ext_rep_f), bool)])
    order = np.argsort(rank[box_index(allf, b.kmax)], kind="stable")
    return allf[order], flag[order]


def vector_basis(b: Basis, kind: str = "polar") -> VectorBasis:
    """Build the equivariant vector basis of ``b`` (exact dims/pivots, float coefficients)."""
    if b.dim != 3:
        raise ValueError("vector bases are defined for 3-D space groups only, not plane groups")
    if b.denominator != 24:  # the cyclotomic arithmetic of fixed_space is over zeta_24
        raise ValueError("vector bases assume the denominator 24")
    mats = _point_matrices(b.rotations, kind)
    minv = np.linalg.inv(mats.astype(np.float64))
    minv = np.rint(minv)  # integer matrices with det +-1: the inverse is integral, exactly
    reps, extinct_flag = _all_orbit_reps(b)
    kmax = b.kmax
    rank = canonical_rank(kmax)
    n_o, order = len(reps), len(mats)
    images = np.einsum("oi,gij->ogj", reps, b.rotations)  # R^T k0
    chars = (reps @ b.translations.T) % b.denominator  # k0.t_g * D
    stab = np.all(images == reps[:, None, :], axis=2)
    dims = np.zeros(n_o, dtype=np.int64)
    piv = np.full((n_o, 3), -1, dtype=np.int64)
    for o in range(n_o):
        s = stab[o]
        d, p = fixed_space(mats[s], chars[o, s])
        dims[o] = d
        piv[o, :d] = p
    keep = dims > 0
    reps, extinct_flag, images, chars = reps[keep], extinct_flag[keep], images[keep], chars[keep]
    dims, piv = dims[keep], piv[keep]
    n_o = len(reps)
    # members: unique (orbit, rank) pairs, canonical within each orbit
    img_rank = rank[box_index(images.reshape(-1, 3), kmax)].reshape(n_o, order)
    big = len(rank)
    pair = (np.arange(n_o)[:, None] * big + img_rank).ravel()
    uniq, inv = np.unique(pair, return_inverse=True)
    member_orbit = uniq // big
    freqs = images.reshape(-1, 3)[np.unique(pair, return_index=True)[1]]
    ptr = np.zeros(n_o + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(np.bincount(member_orbit, minlength=n_o))
    # Reynolds images of the pivot columns, accumulated on members
    coef = np.zeros((len(freqs), 3, 3), dtype=np.complex128)
    phase = np.exp(2j * np.pi * chars / 24.0)  # (n_o, order)
    pv = np.where(piv >= 0, piv, 0)  # (n_o, 3)
    shape = (n_o, order, 3, 3)  # sel[o, g, :, a] = column pv[o, a] of M_g^-1
    sel = np.take_along_axis(
        np.broadcast_to(minv, shape), np.broadcast_to(pv[:, None, None, :], shape), axis=3
    )
    contrib = phase[:, :, None, None] * sel * (piv >= 0)[:, None, None, :]
    np.add.at(coef, inv, contrib.reshape(-1, 3, 3))
    # orthonormalise per orbit in the invariant metric (Gram-Schmidt over the <= 3 columns)
    w = invariant_metric(b.rotations)
    seg = np.repeat(np.arange(n_o), np.diff(ptr))

    def ip(u, v):  # per-orbit <u, v>, u, v (n, 3)
        return np.bincount(
            seg, weights=np.einsum("ni,ij,nj->n", np.conj(u), w, v).real, minlength=n_o
        ) + 1j * np.bincount(seg, weights=np.einsum("ni,ij,nj->n", np.conj(u), w, v).imag, minlength=n_o)

    for a in range(3):
        v = coef[:, :, a]
        for q in range(a):
            v = v - coef[:, :, q] * ip(coef[:, :, q], v)[seg, None]
        nrm = np.sqrt(np.maximum(ip(v, v).real, 0.0))
        active = a < dims
        if np.any(active & (nrm < 1e-8)):
            raise AssertionError("pivot columns of the stabiliser projector are dependent")
        coef[:, :, a] = np.where(active[seg, None], v / np.where(active, nrm, 1.0)[seg, None], 0.0)
    # row of -k
    box_to_row = np.full(len(rank), -1, dtype=np.int64)
    box_to_row[box_index(freqs, kmax)] = np.arange(len(freqs))
    conj_row = box_to_row[box_index(-freqs, kmax)]
    if np.any(conj_row < 0):
        raise AssertionError("the orbit of -k is missing")
    ro = lambda a: (a.setflags(write=False), a)[1]  # noqa: E731
    return VectorBasis(
        basis=b,
        kind=kind,
        frequencies=ro(freqs.astype(np.int64)),
        orbit_ptr=ro(ptr),
        orbit_dim=ro(dims),
        pivots=ro(piv),
        scalar_extinct=ro(extinct_flag),
        metric=ro(w),
        _coef=ro(coef),
        _conj_row=ro(conj_row),
    )
