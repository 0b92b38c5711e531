"""The shortcuts of featurize's per-structure work (issue 11) give exactly what the long way gives."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from basisdb import _canonical, _cif
from basisdb.structures import _closest_pair, _validate

pytest.importorskip("spglib")


def test_group_type_cache_is_order_free_and_bounded():
    rng = np.random.default_rng(0)
    for hall in (1, 2, 63, 225, 458, 488, 523, 530):
        rot, tra = _cif._database_ops(hall)
        want = _cif._group_type_uncached(rot, tra)
        perm = rng.permutation(len(rot))
        assert _cif.group_type(rot[perm], tra[perm]) == want
        assert _cif.group_type(rot, tra) == want
    # float input (not exact integers) takes the uncached route and gives the same answer
    rot, tra = _cif._database_ops(63)
    assert _cif.group_type(rot.astype(float), tra) == _cif._group_type_uncached(rot, tra)
    assert _cif._group_type_cached.cache_info().maxsize == _cif.GROUP_CACHE
    assert _cif._checked_group.cache_info().maxsize == _cif.GROUP_CACHE


def test_not_a_group_still_raises_every_time():
    from basisdb._errors import NotAGroupError

    rot = np.array([np.eye(3), np.diag([-1, 1, 1])], dtype=np.int64)
    tra = np.array([[0, 0, 0], [12, 0, 0]], dtype=np.int64)
    decl = _cif.DeclaredSymmetry("_x", "x", "operations", rot, tra)
    for _ in range(2):
        with pytest.raises(NotAGroupError):
            _cif._check(_cif.DeclaredSymmetry("_x", "x", "operations", rot[1:], tra[1:]), "f")
    _cif._check(decl, "f")  # x -> -x + 1/2 squares to the identity: a group


def _reference_sign_path(g, symprec):
    lens = np.sqrt(g.diagonal())
    tol = 2.0 * symprec * (lens[:, None] + lens[None, :]) + 1e-9 * float(g.diagonal().max())
    signs = np.array(list(itertools.product((1, -1), repeat=3)))
    ok = np.ones(len(signs), dtype=bool)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        ok &= np.abs(signs[:, i] * signs[:, j] * g[i, j] - g[i, j]) <= tol[i, j]
    return np.einsum("si,ij->sij", signs[ok], np.eye(3, dtype=np.int64))


def test_lattice_automorphisms_sign_changes():
    rng = np.random.default_rng(1)
    for _ in range(300):
        L = np.diag(rng.uniform([3, 4.6, 7.5], [3.3, 5, 8])) + rng.normal(size=(3, 3)) * 10 ** rng.uniform(
            -4, 0
        )
        g = L @ L.T
        got = _canonical.lattice_automorphisms(g, 0.05)
        lens = np.sqrt(g.diagonal())
        tol = 2.0 * 0.05 * 2 * lens + 1e-9 * float(g.diagonal().max())
        norms = _canonical._BOX_OUTER @ g.ravel()
        if all(
            np.count_nonzero(np.abs(norms - g[i, i]) <= tol[i]) == 2 for i in range(3)
        ):  # the sign-change path
            want = _reference_sign_path(g, 0.05)
            assert got.dtype == want.dtype and np.array_equal(got, want)


def _reference_automorphisms(g, symprec):
    """Integer A (columns: images of a, b, c among the box vectors -3..3) with det +-1 and every inner
    product within 2 symprec (|a_i| + |a_j|) + 1e-9 g_max: candidates by length, then every triple."""
    lens = np.sqrt(g.diagonal())
    tol = 2.0 * symprec * (lens[:, None] + lens[None, :]) + 1e-9 * float(g.diagonal().max())
    box = [np.array(v) for v in itertools.product(range(-3, 4), repeat=3) if any(v)]
    cand = [[v for v in box if abs(v @ g @ v - g[i, i]) <= tol[i, i]] for i in range(3)]
    out = [np.eye(3, dtype=np.int64)]
    for cols in itertools.product(*cand):
        A = np.stack(cols, axis=1)
        if abs(round(np.linalg.det(A))) != 1 or np.array_equal(A, np.eye(3)):
            continue
        if all(abs(cols[i] @ g @ cols[j] - g[i, j]) <= tol[i, j] for i, j in ((0, 1), (0, 2), (1, 2))):
            out.append(A.astype(np.int64))
    return out


def test_lattice_automorphisms_general_path_and_its_cache():
    """The general path (more vectors than +-a, +-b, +-c as long as a basis vector), first computed and
    then answered from the cache by its tests, equals an independent enumeration (as a set)."""
    rng = np.random.default_rng(3)
    seen_general = 0
    for k in range(60):
        a = rng.uniform(3, 5)
        kind = k % 3
        if kind == 0:  # near-cubic
            L = np.eye(3) * a
        elif kind == 1:  # near-hexagonal
            L = np.array([[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, rng.uniform(3, 8)]])
        else:  # near-tetragonal, body diagonal choice
            L = np.array([[a, 0, 0], [0, a, 0], [a / 2, a / 2, rng.uniform(2, 3)]])
        L = L + rng.normal(size=(3, 3)) * 10 ** rng.uniform(-5, -1.5)
        g = L @ L.T
        norms = _canonical._BOX_OUTER @ g.ravel()
        lens = np.sqrt(g.diagonal())
        tol = 2.0 * 0.05 * 2 * lens + 1e-9 * float(g.diagonal().max())
        if sum(np.count_nonzero(np.abs(norms - g[i, i]) <= tol[i]) for i in range(3)) == 6:
            continue  # the sign-change path (tested above)
        seen_general += 1
        want = {A.tobytes() for A in _reference_automorphisms(g, 0.05)}
        for _ in range(2):  # computed, then from the cache
            got = _canonical.lattice_automorphisms(g, 0.05)
            assert got.dtype == np.int64 and np.array_equal(got[0], np.eye(3))
            assert {A.tobytes() for A in got} == want and len(got) == len(want)
    assert seen_general >= 30


def test_cached_inverse_is_numpys_bit_for_bit():
    from basisdb.structures import _inv3

    rng = np.random.default_rng(4)
    for _ in range(50):
        M = rng.normal(size=(3, 3)) + np.diag(rng.uniform(1, 3, 3))
        for _ in range(2):
            got = _inv3(M)
            want = np.linalg.inv(M)
            assert got.tobytes() == want.tobytes() and not got.flags.writeable
        Mt = M.T  # a non-contiguous view: keyed by its values, not its memory layout
        assert _inv3(Mt).tobytes() == np.linalg.inv(Mt).tobytes()


def _refused(lattice, positions, min_distance):
    try:
        _validate(lattice, positions, np.ones(len(positions), dtype=np.int64), min_distance)
    except ValueError as exc:
        return str(exc)
    return None


def test_validate_screen_agrees_with_the_exact_search():
    rng = np.random.default_rng(2)
    for _ in range(300):
        L = rng.normal(size=(3, 3)) * rng.uniform(0.3, 6) + np.diag(rng.uniform(1, 9, 3))
        n = int(rng.integers(1, 10))
        x = rng.uniform(-2, 3, size=(n, 3))
        if n > 1 and rng.random() < 0.5:
            x[1] = x[0] + rng.normal(size=3) * 10 ** rng.uniform(-4, -0.5) + rng.integers(-1, 2, 3)
        d, (_i, _j) = _closest_pair(L, x)
        for md in (0.1, 1.0, d, np.nextafter(d, 0), np.nextafter(d, 10)):
            msg = _refused(L, x, md)
            assert (msg is not None) == (d < md)
            if msg is not None:
                assert f"{d:.3g} A apart" in msg
