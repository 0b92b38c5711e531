"""A cheap, conservative screen in front of spglib's re-detections for ``LowSymmetryWarning``.

When featurize finds P 1 or P -1 it asks spglib two more questions (``structures._check_low_symmetry``):
does the structure have more symmetry at a looser tolerance, and does its lattice alone?  Each answer is a
whole ``spglib.get_symmetry_dataset`` call, and most of its cost is spglib's lattice point-group search
(about 0.3 ms on carbon_24, as much as the detection itself).  Almost always the answer is no.

This module answers "certainly no" without that search, and otherwise leaves the question to spglib:

* the lattice search: every integer matrix that spglib's lattice search could accept, and possibly
  more.  spglib (``symmetry.c``: ``get_lattice_symmetry``, ``is_identity_metric``) reduces the lattice
  (Delaunay, at ``symprec``), then accepts a unimodular matrix whose columns, taken among the 26 vectors
  with entries -1..1, keep every basis length within ``symprec`` and every angle within
  ``angle_tolerance`` degrees (or, when that is negative, keep ``sin^2(dtheta) * |a_j||a_k|`` within
  ``symprec^2``).  The screen reduces with spglib's own ``delaunay_reduce``, takes the columns among the
  124 vectors with entries -2..2, and applies the same tests with twice the tolerances: a superset.
  ``lattice_may_have_more_symmetry`` is False when it finds nothing beyond -1 and 1.
* ``may_have_more_symmetry``: False only when no candidate operation beyond the detected P 1 / P -1 and
  no pure translation maps every atom onto an atom of its species within twice the looser tolerance.
  The atoms are compared as spglib compares them (``search_translation_part``): in the reduced basis,
  fractional differences wrapped by rounding, Cartesian distance.  (In the input's basis, when it is
  skewed, rounding does not find the nearest image: an earlier version compared there and missed real
  inversions in bases with entries up to 8.)

A False answer is "spglib would not find more"; True means "ask spglib" (a false alarm costs the call
that would have been made anyway).  ``tests/structures/test_symmetry_screen.py`` checks, against spglib
itself on both shared datasets and made-up near-symmetric cells, that the screen never says no where
spglib finds more.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from ._species import rarest_species

__all__ = ["lattice_may_have_more_symmetry", "may_have_more_symmetry"]

#: how much looser than spglib's tests the screen's are (lengths, angles and atom distances)
SLACK = 2.0

_VECS = np.array([v for v in itertools.product(range(-2, 3), repeat=3) if any(v)], dtype=np.int64)
_VECSF = _VECS.astype(np.float64)
_VECS_T = [tuple(v) for v in _VECS.tolist()]
_EYE = np.eye(3, dtype=np.int64)
_EYE9 = _EYE.ravel()
_INDEX = {v: i for i, v in enumerate(_VECS_T)}
_AXES = [_INDEX[(1, 0, 0)], _INDEX[(0, 1, 0)], _INDEX[(0, 0, 1)]]
_NEG = [_INDEX[(-1, 0, 0)], _INDEX[(0, -1, 0)], _INDEX[(0, 0, -1)]]
#: the candidate images of a, b, c when only +-a, +-b, +-c have their lengths (indices into _VECS)
_SIGN_CANDIDATES = [sorted((_NEG[i], _AXES[i])) for i in range(3)]
#: the search's candidates -1 and 1, as triples of indices into _VECS
_PLUS_MINUS_FOUND: tuple[tuple[int, int, int], ...] = (
    (_NEG[0], _NEG[1], _NEG[2]),
    (_AXES[0], _AXES[1], _AXES[2]),
)


def _inverse3(m: list) -> list | None:
    """Inverse of a 3x3 matrix given as nested lists (Python floats; None when singular)."""
    (a, b, c), (d, e, f), (g, h, i) = m
    c0, c1, c2 = e * i - f * h, f * g - d * i, d * h - e * g
    det = a * c0 + b * c1 + c * c2
    if det == 0.0:
        return None
    r = 1.0 / det
    return [
        [c0 * r, (c * h - b * i) * r, (b * f - c * e) * r],
        [c1 * r, (a * i - c * g) * r, (c * d - a * f) * r],
        [c2 * r, (b * g - a * h) * r, (a * e - b * d) * r],
    ]


def _delaunay(spglib, lattice: np.ndarray, symprec: float):
    """spglib's Delaunay reduction of ``lattice`` (rows) at ``symprec``; None when it fails."""
    try:
        with warnings.catch_warnings():  # spglib >= 2.5's OLD_ERROR_HANDLING notice
            warnings.simplefilter("ignore", DeprecationWarning)
            red = spglib.delaunay_reduce(lattice, eps=float(symprec))
    except Exception:
        return None
    return None if red is None else np.asarray(red, dtype=np.float64)


def _to_reduced(lattice: np.ndarray, red: np.ndarray):
    """N (3, 3) float64 with integer entries, lattice = N @ red, unimodular (so fractional coordinates
    in the reduced basis are x @ N); None when the two bases do not span one lattice."""
    inv = _inverse3(red.tolist())
    if inv is None:
        return None
    N = []
    for row in lattice.tolist():
        out = []
        for j in range(3):
            v = row[0] * inv[0][j] + row[1] * inv[1][j] + row[2] * inv[2][j]
            k = round(v)
            if abs(v - k) > 1e-6:
                return None
            out.append(k)
        N.append(out)
    return np.array(N, dtype=np.float64) if abs(_det3(*zip(*N))) == 1 else None


def _angle_test(cos1: float, lj: float, lk: float, symprec: float, angle: float):
    """spglib's angle test for one pair of axes (j, k) of the reduced lattice (cos1 = cos of their angle,
    lengths lj, lk), with ``SLACK`` times its tolerance: a function of (cos2, rj, rk), the cosine and
    lengths of the images."""
    if angle > 0:
        # |acos(cos2) - acos(cos1)| <= delta degrees, as an interval of cos2 (acos is decreasing)
        theta = math.degrees(math.acos(max(-1.0, min(1.0, cos1))))
        delta = SLACK * angle
        hi = math.cos(math.radians(max(0.0, theta - delta))) + 1e-12
        lo = math.cos(math.radians(min(180.0, theta + delta))) - 1e-12
        return lambda cos2, rj, rk: lo <= cos2 <= hi
    s1 = math.sqrt(max(0.0, 1.0 - cos1 * cos1))
    eps2 = SLACK * SLACK * 1e-12
    tol2 = (SLACK * symprec) ** 2

    def test(cos2: float, rj: float, rk: float) -> bool:
        x = cos1 * cos2 + s1 * math.sqrt(max(0.0, 1.0 - cos2 * cos2))
        sin2 = 1.0 - x * x
        return sin2 <= eps2 or sin2 * (lj + rj) * (lk + rk) / 4.0 <= tol2

    return test


def _det3(a, b, c) -> int:
    """Determinant of the integer matrix with columns a, b, c (tuples)."""
    return (
        a[0] * (b[1] * c[2] - b[2] * c[1])
        - b[0] * (a[1] * c[2] - a[2] * c[1])
        + c[0] * (a[1] * b[2] - a[2] * b[1])
    )


def _dot(a, b) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


_PAIRS = ((0, 1), (0, 2), (1, 2))


def _search(
    red: np.ndarray, symprec: float, angle_tolerance: float | None
) -> list[tuple[int, int, int]] | None:
    """The screen's lattice search in the Delaunay-reduced basis ``red`` (rows, Angstrom): every candidate
    as a triple of indices into ``_VECS`` (the images of the reduced basis vectors), or None when not even
    the identity passes (cannot happen; the caller then leaves the question to spglib)."""
    g = red @ red.T
    vg = _VECSF @ g  # (124, 3): g v
    vl = np.sqrt((vg * _VECSF).sum(axis=1))
    gl = g.tolist()
    lens = [math.sqrt(gl[i][i]) for i in range(3)]
    tol = SLACK * symprec + 1e-9 * max(lens)
    cand = [np.flatnonzero(np.abs(vl - lens[i]) <= tol).tolist() for i in range(3)]
    angle = -1.0 if angle_tolerance is None else float(angle_tolerance)
    tests = {
        (j, k): (
            gl[j][k] / lens[j] / lens[k],
            _angle_test(gl[j][k] / lens[j] / lens[k], lens[j], lens[k], symprec, angle),
        )
        for j, k in _PAIRS
    }
    if cand == _SIGN_CANDIDATES:
        # only +-a, +-b, +-c are as long as a, b, c: the candidates are sign changes, and a sign change
        # other than +-1 flips the angle of exactly two pairs of axes (theta -> 180 - theta)
        flips = sum(test(-cos1, lens[j], lens[k]) for (j, k), (cos1, test) in tests.items())
        if flips < 2:
            return list(_PLUS_MINUS_FOUND)  # the same matrices in every basis
    vecs = _VECS_T
    sub = sorted(set(cand[0] + cand[1] + cand[2]))
    vgl = dict(zip(sub, vg[sub].tolist()))
    vll = dict(zip(sub, vl[sub].tolist()))

    def ok(j: int, k: int, ij: int, ik: int) -> bool:
        return tests[j, k][1](_dot(vgl[ij], vecs[ik]) / vll[ij] / vll[ik], vll[ij], vll[ik])

    found = [
        (i0, i1, i2)
        for i0 in cand[0]
        for i1 in cand[1]
        if ok(0, 1, i0, i1)
        for i2 in cand[2]
        if abs(_det3(vecs[i0], vecs[i1], vecs[i2])) == 1 and ok(0, 2, i0, i2) and ok(1, 2, i1, i2)
    ]
    return found or None


def _candidates(found) -> np.ndarray:
    """The search's candidates as integer matrices W (k, 3, 3) acting on fractional coordinates of the
    reduced basis (columns: the images of its vectors)."""
    idx = np.array(found, dtype=np.int64)
    return np.stack([_VECS[idx[:, 0]], _VECS[idx[:, 1]], _VECS[idx[:, 2]]], axis=2)


def lattice_may_have_more_symmetry(spglib, lattice, symprec: float, angle_tolerance: float | None) -> bool:
    """False only when spglib's lattice search at (symprec, angle_tolerance) certainly finds nothing but
    the identity and the inversion (so spglib on the lattice with one atom finds P -1)."""
    red = _delaunay(spglib, np.asarray(lattice, dtype=np.float64), symprec)
    found = None if red is None else _search(red, symprec, angle_tolerance)
    return found is None or any(f not in _PLUS_MINUS_FOUND for f in found)


def _some_image_fits(ys: np.ndarray, x: np.ndarray, lattice: np.ndarray, same, tol: float) -> bool:
    """Whether, for some candidate c, every image ys[c, i] lies within ``tol`` Angstrom of an atom of its
    species (fractional differences wrapped by rounding, as spglib's overlap test does).  ys (m, n, 3);
    same (n, n) bool, pairs of one species (None: a single species).
    The atoms are tested a few at a time and the candidates that fail are dropped (most fail at once)."""
    n = x.shape[0]
    tol2 = tol * tol
    alive = ys
    lo = 0
    for hi in (min(n, 2), n):
        if hi <= lo:
            continue
        d = alive[:, lo:hi, None, :] - x[None, None, :, :]  # (m, hi - lo, n, 3)
        d -= np.rint(d)
        c = d @ lattice
        d2 = (c * c).sum(axis=-1)
        if same is not None:
            d2[:, ~same[lo:hi]] = np.inf
        keep = (d2.min(axis=2) <= tol2).all(axis=1)
        if not keep.any():
            return False
        alive = alive[keep]
        lo = hi
    return True


def may_have_more_symmetry(
    spglib, lattice, positions, numbers, symprec: float, angle_tolerance: float | None, number: int
) -> bool:
    """False only when spglib at (symprec, angle_tolerance) certainly finds a space group of number at most
    ``number`` (1 or 2) for (lattice rows in Angstrom, fractional positions (n, 3), numbers (n,)): no pure
    translation and no candidate operation beyond the identity (and, for ``number`` 2, the inversion)
    maps the structure onto itself within ``SLACK`` times ``symprec``.  The atoms are compared in the
    lattice's Delaunay-reduced basis, as spglib compares them (in a skewed basis, wrapping fractional
    differences by rounding would not find the nearest image)."""
    lattice = np.asarray(lattice, dtype=np.float64)
    red = _delaunay(spglib, lattice, symprec)
    if red is None:
        return True
    N = _to_reduced(lattice, red)  # lattice = N @ red
    if N is None:
        return True
    # Cartesian = x @ lattice = (x @ N) @ red: the fractional coordinates in the reduced basis
    x = (np.asarray(positions, dtype=np.float64) @ N) % 1.0
    z = np.asarray(numbers)
    zl = z.tolist()
    if len(set(zl)) == 1:
        a0, partners, same = 0, np.arange(len(zl)), None
    else:
        rare = rarest_species(zl)
        a0 = zl.index(rare)  # spglib anchors its candidate translations on an atom of the rarest species
        partners = np.flatnonzero(z == rare)
        same = z[:, None] == z[None, :]
    tol = SLACK * float(symprec)
    # candidates (W, t): W x_a0 + t = x_j for every atom j of a0's species.  First those that need no
    # lattice search: pure translations (W = 1, j != a0: a smaller primitive cell, whose lattice may have
    # more symmetry) and, for P 1, the inversion
    xp = x[partners]
    ys = [x[None] + (xp[partners != a0] - x[a0])[:, None, :]]
    if number < 2:
        ys.append((xp + x[a0])[:, None, :] - x[None])
    ys_all = np.concatenate(ys) if len(ys) > 1 else ys[0]
    if len(ys_all) and _some_image_fits(ys_all, x, red, same, tol):
        return True
    # then every other operation the lattice may have (found in the same reduced basis)
    found = _search(red, symprec, angle_tolerance)
    if found is None:
        return True
    W = _candidates(found)
    flat = W.reshape(len(W), 9)
    keep = ~((flat == _EYE9).all(axis=1) | (flat == -_EYE9).all(axis=1))  # tested above (-1: for P 1 only)
    if not keep.any():
        return False
    Y = np.einsum("wij,nj->wni", W[keep].astype(np.float64), x)  # (w, n, 3): every atom's image
    ys_w = Y[:, None, :, :] + (xp[None, :, None, :] - Y[:, a0][:, None, None, :])  # (w, partners, n, 3)
    return _some_image_fits(ys_w.reshape(-1, *x.shape), x, red, same, tol)
