"""Canonical presentation of a crystal in its standard setting.

Given the standardised coordinates of a crystal in spglib's default setting of its
space group G (docs/STRUCTURES.md), this module

1. symmetrises them exactly (Reynolds average over G of the matched atom images),
2. enumerates the Euclidean normaliser N of G for the cell's metric, modulo G and
   modulo the continuous translations along polar directions, and
3. picks, among all presentations n(C) of the conventional-cell content C
   (n a normaliser coset representative, followed by the polar-origin rule "an
   atom of the rarest species at 0 along every polar axis"), the one whose
   sorted, quantised atom list is lexicographically smallest.

Every operation here is exact integer arithmetic except the coordinates
themselves: rotations are integer matrices and translations integers over
``DEN`` = 24 (``basisdb._constants``).
"""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass

import numpy as np

from ._constants import DEN
from ._species import rarest_species

__all__ = [
    "QUANTUM",
    "GroupData",
    "group_data",
    "normaliser_representatives",
    "symmetrize",
    "canonical_choice",
]

#: translations of the normaliser are searched on the grid (1/DEN) Z^3 (``_constants.DEN``: every
#: translation of the 530 settings and of their Euclidean normalisers is a multiple of 1/8 or 1/6)
#: fractional coordinates are compared after rounding to multiples of 1 / QUANTUM
QUANTUM = 10**6

_LOCK = threading.RLock()


def _codes(mats: np.ndarray) -> np.ndarray:
    """Integer code of each (.., 3, 3) integer matrix with entries in -4..4 (-1 where out of range)."""
    m = np.asarray(mats, dtype=np.int64).reshape(-1, 9)
    ok = np.all(np.abs(m) <= 4, axis=1)
    code = ((m + 4) * (9 ** np.arange(9, dtype=np.int64))).sum(axis=1)
    return np.where(ok, code, -1)


def _tcode(t: np.ndarray) -> np.ndarray:
    t = np.asarray(t, dtype=np.int64) % DEN
    return (t[..., 0] * DEN + t[..., 1]) * DEN + t[..., 2]


_BOX = np.array(list(itertools.product(range(-3, 4), repeat=3)), dtype=np.int64)
_BOX = _BOX[np.any(_BOX != 0, axis=1)]
_BOXF = _BOX.astype(np.float64)
_BOX_OUTER = (_BOXF[:, :, None] * _BOXF[:, None, :]).reshape(len(_BOX), 9)
_EYE = np.eye(3, dtype=np.int64)


def lattice_automorphisms(metric: np.ndarray, symprec: float) -> np.ndarray:
    """Integer matrices A (det +-1, entries in -3..3) with A^T g A = g within tolerance.

    These are the isometries of the lattice Z^3 with metric g (Angstrom^2), i.e.
    its holohedry in this basis, including accidental metric symmetry.  Two inner
    products agree when they differ by at most 2 symprec (|a_i| + |a_j|) + 1e-9 g_max.
    Returns (k, 3, 3) int64, the identity first (read-only: the sign-change answers are shared arrays).
    """
    g = np.asarray(metric, dtype=np.float64)
    diag = g.diagonal()
    # the tolerances in Python floats (the same IEEE operations as numpy's, without its per-call cost)
    gl = g.tolist()
    d = (gl[0][0], gl[1][1], gl[2][2])
    lens = [math.sqrt(v) for v in d]
    big = 1e-9 * max(d)
    t = [[2.0 * symprec * (li + lj) + big for lj in lens] for li in lens]
    norms = _BOX_OUTER @ g.ravel()
    # (342, 3): box vectors as long as a, b, c
    hit = np.abs(norms[:, None] - diag) <= np.array((t[0][0], t[1][1], t[2][2]))
    ax, idx = np.nonzero(hit.T)  # axis by axis, box vectors in order
    if len(ax) == 6:  # only +-a, +-b, +-c have the right lengths: sign changes
        # s_i s_j g_ij agrees with g_ij when s_i s_j = 1, and when |-g_ij - g_ij| <= tol_ij otherwise
        bits = sum(
            w for w, (i, j) in ((1, (0, 1)), (2, (0, 2)), (4, (1, 2))) if abs(-gl[i][j] - gl[i][j]) <= t[i][j]
        )
        return _SIGN_SUBSETS[bits]  # the identity (all +1) comes first
    n0, n1, _ = np.bincount(ax, minlength=3).tolist()
    c = [idx[:n0], idx[n0 : n0 + n1], idx[n0 + n1 :]]
    v = [_BOXF[ci] for ci in c]
    v0g = v[0] @ g  # (v[0] @ g) @ v[j].T: the products as written before, the first one shared
    ok01 = np.abs(v0g @ v[1].T - gl[0][1]) <= t[0][1]
    ok02 = np.abs(v0g @ v[2].T - gl[0][2]) <= t[0][2]
    ok12 = np.abs(v[1] @ g @ v[2].T - gl[1][2]) <= t[1][2]
    # the answer is a function of these tests alone: cached by them (the same arrays as computing it)
    key = b"".join((hit.tobytes(), ok01.tobytes(), ok02.tobytes(), ok12.tobytes()))
    A = _AUTO_CACHE.get(key)
    if A is None:
        A = _automorphisms_from_tests(c, ok01, ok02, ok12)
        with _LOCK:
            if len(_AUTO_CACHE) > 4096:
                _AUTO_CACHE.clear()
            _AUTO_CACHE[key] = A
    return A


_AUTO_CACHE: dict[bytes, np.ndarray] = {}


def _automorphisms_from_tests(c, ok01, ok02, ok12) -> np.ndarray:
    """``lattice_automorphisms``' answer from its tests: c, the box-vector indices (into ``_BOX``) as
    long as a, b, c; ok_ij (len(c_i), len(c_j)) bool, which pairs keep the inner product g_ij.
    Returns (k, 3, 3) int64, the identity first, read-only."""
    i0, i1, i2 = np.nonzero(ok01[:, :, None] & ok02[:, None, :] & ok12[None, :, :])
    A = np.stack([_BOX[c[0][i0]], _BOX[c[1][i1]], _BOX[c[2][i2]]], axis=2)  # columns: images of a, b, c
    det = (
        A[:, 0, 0] * (A[:, 1, 1] * A[:, 2, 2] - A[:, 1, 2] * A[:, 2, 1])
        - A[:, 0, 1] * (A[:, 1, 0] * A[:, 2, 2] - A[:, 1, 2] * A[:, 2, 0])
        + A[:, 0, 2] * (A[:, 1, 0] * A[:, 2, 1] - A[:, 1, 1] * A[:, 2, 0])
    )
    A = A[(np.abs(det) == 1) & ~np.all(A == _EYE, axis=(1, 2))]
    out = np.concatenate([_EYE[None], A])
    out.setflags(write=False)
    return out


#: the 8 sign changes diag(s) in itertools.product((1, -1), repeat=3) order (the identity first)
_SIGNS = np.array(list(itertools.product((1, -1), repeat=3)), dtype=np.int64)
_SIGN_MATS = np.einsum("si,ij->sij", _SIGNS, _EYE)
_SIGN_MATS.setflags(write=False)
#: per pair (i, j) of axes: the sign changes with s_i s_j = -1
_SIGN_PAIR_FLIP = {(i, j): _SIGNS[:, i] * _SIGNS[:, j] == -1 for i, j in ((0, 1), (0, 2), (1, 2))}


def _signs_ok(flip: np.ndarray) -> np.ndarray:
    """Which sign changes keep the metric: for every pair of axes, s_i s_j = 1 or the flip is within tolerance."""
    ok = np.ones(8, dtype=bool)
    for (i, j), flips in _SIGN_PAIR_FLIP.items():
        if not flip[i, j]:
            ok &= ~flips
    return ok


def _sign_subset(bits: int) -> np.ndarray:
    flip = np.zeros((3, 3), dtype=bool)
    flip[0, 1], flip[0, 2], flip[1, 2] = bool(bits & 1), bool(bits & 2), bool(bits & 4)
    out = _SIGN_MATS[_signs_ok(flip)]
    out.setflags(write=False)
    return out


#: the sign changes that keep the metric, by which pairs (0, 1), (0, 2), (1, 2) may flip (bits 1, 2, 4):
#: the eight possible answers of ``lattice_automorphisms``' sign-change path, shared read-only arrays
_SIGN_SUBSETS = tuple(_sign_subset(bits) for bits in range(8))


def _int_inverse(A: np.ndarray) -> np.ndarray:
    """Inverse of unimodular integer matrices (.., 3, 3)."""
    return np.rint(np.linalg.inv(A.astype(np.float64))).astype(np.int64)


@dataclass(frozen=True, eq=False)
class GroupData:
    """Exact tables of one setting used by the canonicalisation (cached per hall number)."""

    hall_number: int
    rotations: np.ndarray  # (g, 3, 3) int64, every operation (centring included)
    translations: np.ndarray  # (g, 3) int64 numerators over DEN
    rep_rot: np.ndarray  # (p, 3, 3): one operation per point-group element
    rep_translations: np.ndarray  # (p, 3)
    rep_rot_inv: np.ndarray  # (p, 3, 3) integer inverses
    centrings: np.ndarray  # (c, 3) numerators over DEN of the pure translations (0 first)
    gens: np.ndarray  # indices (into rotations) of a generating set
    polar: np.ndarray  # (3,) bool: axes along which the origin is free
    pg_codes: np.ndarray  # sorted codes of the point-group rotations
    _cosets: dict  # coset tables by automorphisms' bytes, and (automorphisms, tables) by their id
    _bsol: dict
    centrings_f: np.ndarray  # (c, 3) float64: centrings / DEN
    rep_translations_f: np.ndarray  # (p, 3) float64: rep_translations / DEN
    polar_f: np.ndarray  # (3,) float64: 1.0 along the polar axes
    has_polar: bool  # some axis is polar
    #: (p, 3, 3) float64 transposes of rep_rot when every entry is -1, 0 or 1 and no row has more than two
    #: nonzero entries (then x @ R^T is exact in any summation order, equal to the einsum); else None
    rep_rot_tf: np.ndarray | None = None


_GROUPS: dict[int, GroupData] = {}


def group_data(basis) -> GroupData:
    """GroupData of ``basis``'s setting (cached by hall number)."""
    hall = basis.setting.hall_number
    gd = _GROUPS.get(hall)
    if gd is None:
        with _LOCK:
            gd = _GROUPS.get(hall)
            if gd is None:
                gd = _GROUPS[hall] = _make_group_data(basis)
    return gd


def _make_group_data(basis) -> GroupData:
    from ._ops import group_generators

    rot = np.asarray(basis.rotations, dtype=np.int64)
    scale = DEN // basis.denominator
    if scale * basis.denominator != DEN:
        raise ValueError(f"translation denominator {basis.denominator} does not divide {DEN}")
    translations = np.asarray(basis.translations, dtype=np.int64) * scale % DEN
    codes = _codes(rot)
    _, first = np.unique(codes, return_index=True)
    first = np.sort(first)
    rep_rot, rep_t = rot[first], translations[first]
    rep_inv = np.rint(np.linalg.inv(rep_rot.astype(float))).astype(np.int64)
    ident = np.all(rot == np.eye(3, dtype=np.int64), axis=(1, 2))
    cen = translations[ident]
    cen = cen[np.lexsort(cen.T[::-1])]
    avg = rep_rot.astype(float).mean(axis=0)
    diag = np.diag(avg)
    if not (
        np.allclose(avg, np.diag(diag), atol=1e-12)
        and np.all((np.abs(diag) < 1e-12) | (np.abs(diag - 1) < 1e-12))
    ):
        raise NotImplementedError(
            f"setting {basis.setting.hall_number}: polar directions are not coordinate axes; "
            "canonical presentations are defined for spglib's default settings"
        )
    polar = np.abs(diag - 1) < 1e-12
    gens = np.array(group_generators(rot, basis.translations), dtype=np.int64)
    unit_rows = bool(np.all(np.abs(rep_rot) <= 1)) and int(np.count_nonzero(rep_rot, axis=2).max()) <= 2
    return GroupData(
        hall_number=basis.setting.hall_number,
        rotations=rot,
        translations=translations,
        rep_rot=rep_rot,
        rep_translations=rep_t,
        rep_rot_inv=rep_inv,
        centrings=cen,
        gens=gens,
        polar=polar,
        pg_codes=np.sort(_codes(rep_rot)),
        _cosets={},
        _bsol={},
        centrings_f=cen / DEN,
        rep_translations_f=rep_t / DEN,
        polar_f=polar.astype(np.float64),
        has_polar=bool(polar.any()),
        rep_rot_tf=np.ascontiguousarray(rep_rot.transpose(0, 2, 1), dtype=np.float64) if unit_rows else None,
    )


# ------------------------------------------------------------------ normaliser
def _b_solutions(gd: GroupData, A: np.ndarray) -> np.ndarray:
    """Translations b (numerators over DEN, polar coordinates 0) with (A, b) in the normaliser."""
    key = A.tobytes()
    sol = gd._bsol.get(key)
    if sol is not None:
        return sol
    Ainv = _int_inverse(A)
    free = np.flatnonzero(~gd.polar)
    grids = np.meshgrid(*[np.arange(DEN, dtype=np.int64)] * len(free), indexing="ij")
    b = np.zeros((DEN ** len(free), 3), dtype=np.int64)
    for col, g in zip(free, grids):
        b[:, col] = g.ravel()
    rep_codes = _codes(gd.rep_rot)
    cen_codes = _tcode(gd.centrings)
    eye = np.eye(3, dtype=np.int64)
    ok = np.ones(len(b), dtype=bool)
    for gi in gd.gens:
        R, t = gd.rotations[gi], gd.translations[gi]
        Rp = A @ R @ Ainv
        k = np.flatnonzero(rep_codes == _codes(Rp)[0])
        if len(k) == 0:  # cannot happen: A was selected to normalise the point group
            return np.zeros((0, 3), dtype=np.int64)
        tp = gd.rep_translations[k[0]]
        val = (A @ t - tp)[None, :] + b[ok] @ (eye - Rp).T
        ok[np.flatnonzero(ok)] = np.isin(_tcode(val), cen_codes)
    sol = b[ok]
    with _LOCK:
        if len(gd._bsol) > 4096:
            gd._bsol.clear()
        gd._bsol[key] = sol
    return sol


def normaliser_representatives(
    gd: GroupData, metric: np.ndarray, symprec: float
) -> tuple[np.ndarray, np.ndarray]:
    """Coset representatives (A, b) of the Euclidean normaliser of G modulo G and polar translations.

    metric: (3, 3) metric tensor of the setting's cell (Angstrom^2); the linear parts A
    are the lattice automorphisms (``lattice_automorphisms``, at tolerance ``symprec``)
    that normalise the point group.  Returns A (r, 3, 3) int64 and b (r, 3) int64
    numerators over DEN; the identity comes first.  Computed once per setting and set of
    lattice automorphisms, then cached (shared arrays: do not modify them).
    """
    return _coset_tables(gd, metric, symprec)[:2]


def _coset_tables(gd: GroupData, metric: np.ndarray, symprec: float) -> tuple:
    """(A, b, A^T as float64 (r, 3, 3), b / DEN (r, 3)): ``normaliser_representatives`` and the float
    tables ``canonical_choice`` applies, cached per setting and set of lattice automorphisms (the
    automorphisms are the only thing the cosets depend on: one exact search per metric symmetry)."""
    auto = lattice_automorphisms(metric, symprec)
    # lattice_automorphisms hands out shared read-only arrays (its cache, the sign-change answers): first
    # by that array's identity (the entry holds the array, so its id cannot be reused while cached), then
    # by its bytes
    by_id = gd._cosets.get(id(auto))
    if by_id is not None and by_id[0] is auto:
        return by_id[1]
    key = auto.tobytes()
    out = gd._cosets.get(key)
    if out is None:
        reps = _coset_representatives(gd, auto)
        out = reps + (reps[0].transpose(0, 2, 1).astype(np.float64), reps[1] / DEN)
    with _LOCK:
        if len(gd._cosets) > 512:
            gd._cosets.clear()
        gd._cosets[key] = out
        if not auto.flags.writeable:
            gd._cosets[id(auto)] = (auto, out)
    return out


def _coset_representatives(gd: GroupData, auto: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inv = _int_inverse(auto)
    ok = np.ones(len(auto), dtype=bool)
    for R in gd.rotations[gd.gens]:
        ok &= np.isin(_codes(np.einsum("aij,jk,akl->ail", auto, R, inv)), gd.pg_codes)
    keep = auto[ok]
    # (A, b) ~ (A R, A t + b) for (R, t) in G, and ~ (A, b + v) for v along the polar axes:
    # one A per class A.PG, and its b solutions modulo the images A c of the centring vectors
    reps_A, reps_b = [], []
    seen: set[int] = set()
    pg = gd.rep_rot
    polar_free = (~gd.polar).astype(np.int64)
    for A in keep:
        cls_codes = _codes(np.einsum("ij,gjk->gik", A, pg))
        if int(cls_codes.min()) in seen:
            continue
        seen.add(int(cls_codes.min()))
        bsol = _b_solutions(gd, A)
        moved = (bsol[:, None, :] + (gd.centrings @ A.T)[None, :, :]) * polar_free % DEN  # (b, c, 3)
        klass = _tcode(moved).min(axis=1)
        _, first = np.unique(klass, return_index=True)
        for b in bsol[np.sort(first)]:
            reps_A.append(A)
            reps_b.append(b)
    out = (
        np.array(reps_A, dtype=np.int64).reshape(-1, 3, 3),
        np.array(reps_b, dtype=np.int64).reshape(-1, 3),
    )
    return out


# ------------------------------------------------------------------ symmetrisation
def symmetrize(
    gd: GroupData,
    x: np.ndarray,
    numbers: np.ndarray,
    metric: np.ndarray,
    tol: float,
    chol: np.ndarray | None = None,
    displacement: bool = True,
):
    """Exactly G-symmetric positions closest (in the Reynolds sense) to ``x``.

    x: (n, 3) standardised coordinates of atoms that are pairwise inequivalent
    under the lattice of G (one atom per primitive-cell site).  Returns
    (xbar (n, 3), orbit (n,) int64: smallest index of each atom's G-orbit,
    largest Cartesian displacement |xbar - x| in Angstrom).  Raises ValueError
    when an image of an atom under G has no partner within ``tol`` Angstrom.
    ``chol``: the caller's Cholesky factor of ``metric``, when it has one.  ``displacement=False``:
    the caller measures the displacement itself (0.0 is returned in its place).
    """
    n = len(x)
    p = len(gd.rep_rot)
    if p == 1 and len(gd.centrings) == 1:  # P 1: nothing to average
        return x.copy(), np.arange(n), 0.0
    cen = gd.centrings_f
    if chol is None:
        chol = np.linalg.cholesky(metric + 0.0)  # metric = chol chol^T; |e|^2 = |e @ chol|^2
    t = gd.rep_translations_f
    # (p, n, 3) images.  With entries -1, 0, 1 and at most two nonzero terms per row, every product is exact
    # and the rounded sum does not depend on the order: the matmul equals the einsum (zeros' signs may differ
    # before + t, whose entries are >= 0, makes them +0)
    if gd.rep_rot_tf is not None:
        y = x @ gd.rep_rot_tf + t[:, None, :]
    else:
        y = np.einsum("gij,nj->gni", gd.rep_rot, x) + t[:, None, :]
    # pairs of different species (None when there is one species: nothing to mask)
    other = numbers[:, None] != numbers[None, :] if len(set(numbers.tolist())) > 1 else None
    nc = len(cen)
    if nc == 1 and p * n * n <= 200_000:  # no centring: (p, n, n) distances (the case below with c = 1)
        e = y[:, :, None, :] - x[None, None, :, :]  # - cen[0], which is +0: subtracting it changes nothing
        shift = np.rint(e)
        d2 = (((e - shift) @ chol) ** 2).sum(axis=-1)  # the same (n, 3) @ (3, 3) blocks as below
        if other is not None:
            d2[:, other] = np.inf
        best_j = d2.argmin(axis=2)  # (p, n): the first atom with the smallest distance
        gi, ii = np.arange(p)[:, None], np.arange(n)
        best = d2[gi, ii, best_j]
        best_l = shift[gi, ii, best_j] + cen[0]  # + 0.0 (turns rint's -0 into +0, as below)
    elif nc * p * n * n <= 200_000:  # every operation and centring at once: (c, p, n, n) distances
        e = y[None, :, :, None, :] - x[None, None, None, :, :] - cen[:, None, None, None, :]
        shift = np.rint(e)
        d2 = (((e - shift) @ chol) ** 2).sum(axis=-1)
        if other is not None:
            d2[:, :, other] = np.inf
        # the first centring with the smallest distance, then the first atom (as the loop below)
        k = d2.transpose(1, 2, 0, 3).reshape(p, n, nc * n).argmin(axis=2)  # (p, n)
        kc, best_j = np.divmod(k, n)
        gi, ii = np.arange(p)[:, None], np.arange(n)
        best = d2[kc, gi, ii, best_j]
        best_l = shift[kc, gi, ii, best_j] + cen[kc]
    else:
        best, best_j, best_l = _nearest_images(y, x, other, cen, chol)
    worst = math.sqrt(max(float(best.max(initial=0.0)), 0.0))  # np.sqrt and math.sqrt: correctly rounded
    if not worst <= tol:
        raise ValueError(
            f"an atom's image under an operation of the detected space group is {worst:.3g} A from "
            f"the nearest atom (tolerance {tol:.3g} A); try another symprec"
        )
    if np.any(np.sort(best_j, axis=1) != np.arange(n)):
        raise ValueError("the detected symmetry maps two atoms onto one; try another symprec")
    # g x_i = x_j + l  =>  x_i = g^-1 (x_j + l); average over the operations (Reynolds projection)
    pre = x[best_j] + best_l - t[:, None, :]  # (p, n, 3)
    xbar = np.einsum("gij,gnj->ni", gd.rep_rot_inv, pre) / p
    orbit = best_j.min(axis=0)  # the images of i under every operation are its whole orbit
    if not displacement:
        return xbar, orbit, 0.0
    disp = (xbar - x) @ chol
    return xbar, orbit, float(np.sqrt((disp**2).sum(axis=1)).max(initial=0.0))


def _nearest_images(y, x, other, cen, chol):
    """(best (p, n) squared distances, best_j (p, n), best_l (p, n, 3)): the nearest same-species atom to
    every image y[g, i], over the centrings cen in order (the first strictly smaller wins), in chunks of
    operations (bounded memory).  other: (n, n) bool, pairs of different species; None: one species."""
    p, n = y.shape[:2]
    best = np.full((p, n), np.inf)
    best_j = np.zeros((p, n), dtype=np.int64)
    best_l = np.zeros((p, n, 3))
    step = max(1, 4_000_000 // max(1, 3 * n * n))
    for lo in range(0, p, step):
        d = y[lo : lo + step, :, None, :] - x[None, None, :, :]  # (q, n, n, 3)
        q = len(d)
        rows = np.arange(q * n)
        for c in cen:
            e = d - c
            shift = np.rint(e)
            d2 = ((e - shift) @ chol) ** 2
            d2 = d2.sum(axis=-1)
            if other is not None:
                d2[:, other] = np.inf
            j = np.argmin(d2, axis=2)  # (q, n)
            v = d2.reshape(q * n, n)[rows, j.ravel()].reshape(q, n)
            better = v < best[lo : lo + step]
            best[lo : lo + step] = np.where(better, v, best[lo : lo + step])
            best_j[lo : lo + step] = np.where(better, j, best_j[lo : lo + step])
            sh = shift.reshape(q * n, n, 3)[rows, j.ravel()].reshape(q, n, 3) + c
            best_l[lo : lo + step] = np.where(better[..., None], sh, best_l[lo : lo + step])
    return best, best_j, best_l


# ------------------------------------------------------------------ canonical choice
@dataclass(frozen=True)
class CanonicalChoice:
    """The chosen presentation: x_canonical = A x + b + v (mod 1)."""

    A: np.ndarray  # (3, 3) int64
    shift: np.ndarray  # (3,) float64: b + v
    cell_positions: np.ndarray  # (m, 3) conventional-cell content, canonical order, in [0, 1)
    cell_numbers: np.ndarray  # (m,)
    cell_source: np.ndarray  # (m,) index of the primitive site each row comes from
    n_candidates: int


def _wrap(y: np.ndarray) -> np.ndarray:
    y = y - np.floor(y)
    y[y >= 1.0] = 0.0
    return y


def canonical_choice(
    gd: GroupData, xbar: np.ndarray, numbers: np.ndarray, metric: np.ndarray, symprec: float
) -> CanonicalChoice:
    """Lexicographically smallest presentation of the conventional cell over the normaliser cosets.

    xbar: (n, 3) float64 symmetrised coordinates of the primitive-cell sites, numbers (n,) int64;
    metric: (3, 3) metric of the setting's cell (Angstrom^2), for ``lattice_automorphisms``.
    """
    cen = gd.centrings_f
    nc, n = len(cen), len(xbar)
    conv = (xbar[None, :, :] + cen[:, None, :]).reshape(-1, 3)
    if nc == 1:
        z, src = numbers, np.arange(n)
    else:
        # np.tile(numbers, nc), np.tile(np.arange(n), nc): the same values, without tile's Python overhead
        z, src = np.concatenate([numbers] * nc), np.concatenate([np.arange(n)] * nc)
    reps_A, _, reps_AT, reps_bf = _coset_tables(gd, metric, symprec)
    base = conv @ reps_AT + reps_bf[:, None, :]  # (r, m, 3)
    m = len(conv)
    r = len(reps_A)
    zl = z.tolist()
    one_species = len(set(zl)) == 1
    polar = gd.has_polar
    # candidates: (coset representative, polar anchor atom); without polar axes the anchor is unused
    if polar:
        if one_species:
            anchor = np.arange(m)
        else:
            anchor = np.flatnonzero(z == rarest_species(zl))
        cand_rep = np.repeat(np.arange(r), len(anchor))
        cand_anchor = np.concatenate([anchor] * r)  # np.tile(anchor, r)
    else:
        cand_rep = np.arange(r)
        cand_anchor = None
    if one_species:
        zorder = None  # argsort(kind="stable") of equal labels: the identity
        bounds: list[int] = []
    else:
        zorder = np.argsort(z, kind="stable")
        zs = z[zorder]
        bounds = [b + 1 for b in np.flatnonzero(zs[1:] != zs[:-1]).tolist()]
    segments = list(zip([0] + bounds, bounds + [m]))

    def presentations(sel):
        if cand_anchor is None:  # not polar
            return base if sel is None else base[sel]
        rep = cand_rep if sel is None else cand_rep[sel]
        anc = cand_anchor if sel is None else cand_anchor[sel]
        Y = base[rep]  # (c, m, 3)
        return Y - Y[np.arange(len(rep)), anc][:, None, :] * gd.polar_f  # anchor atom to 0 along polar axes

    n_cand = len(cand_rep)
    step = max(1, 2_000_000 // (3 * m))  # bounded memory for large cells
    best_key = best = best_row = best_Y = None
    for lo in range(0, n_cand, step):
        sel = None if n_cand <= step else np.arange(lo, min(lo + step, n_cand))
        Y = presentations(sel)
        q = np.rint((Y - np.floor(Y)) * QUANTUM).astype(np.int64) % QUANTUM  # (c, m, 3)
        # (q0 * Q + q1) * Q + q2 < 1e18 (fits in int64): one exact integer product
        packed = q @ _PACK
        # sort each candidate's rows by (species, position): the sorted keys; the order only for the best
        if zorder is None:
            keys = np.sort(packed, axis=1)
        else:
            packed = packed[:, zorder]
            keys = packed.copy()
            for a, b in segments:
                keys[:, a:b].sort(axis=1)
        # the lexicographically smallest row (the first of equal ones): keys are non-negative, so their
        # big-endian bytes compare as the rows do
        raw = keys.astype(">i8").tobytes()
        width = 8 * m
        rows_b = [raw[i : i + width] for i in range(0, len(raw), width)]
        k_b = min(rows_b)
        if best_key is None or k_b < best_key:
            k = rows_b.index(k_b)
            best_key, best, best_row, best_Y = k_b, k + lo, packed[k], Y[k]
    # argsort of the best row alone: the same sort as a row of argsort(axis=1)
    assert best_row is not None and best_Y is not None  # there is always at least one candidate
    if zorder is None:
        best_order = np.argsort(best_row)
    else:
        best_order = np.empty(m, dtype=np.int64)
        for a, b in segments:
            best_order[a:b] = np.argsort(best_row[a:b]) + a
    rows = best_order if zorder is None else zorder[best_order]  # None: one species
    y = best_Y[rows]
    y = y - np.floor(y)
    y[y >= 1.0] = 0.0
    shift = reps_bf[cand_rep[best]]
    if cand_anchor is not None:  # polar
        shift = shift - base[cand_rep[best], cand_anchor[best]] * gd.polar_f
    return CanonicalChoice(
        A=reps_A[cand_rep[best]],
        shift=shift,
        cell_positions=y,
        cell_numbers=z[rows],
        cell_source=src[rows],
        n_candidates=n_cand,
    )


#: (Q^2, Q, 1): packs a quantised (.., 3) position into one int64
_PACK = np.array([QUANTUM * QUANTUM, QUANTUM, 1], dtype=np.int64)


def _smallest_row(keys: np.ndarray) -> int:
    """Index of the lexicographically smallest row of a 2-D integer array (the first of equal ones):
    ``np.lexsort(keys.T[::-1])[0]``, narrowing column by column instead of sorting every row."""
    cand = np.arange(len(keys))
    for col in range(keys.shape[1]):
        v = keys[cand, col]
        cand = cand[v == v.min()]
        if len(cand) == 1:
            break
    return int(cand[0])


def _lex_less(a: np.ndarray, b: np.ndarray) -> bool:
    diff = np.flatnonzero(a != b)
    return bool(len(diff) and a[diff[0]] < b[diff[0]])
