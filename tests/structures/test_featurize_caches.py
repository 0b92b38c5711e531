"""The shortcuts of featurize's per-structure work (issue 11) give exactly what the long way gives."""

from __future__ import annotations

import contextlib
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


# ---------------------------------------------------------------- round 3: closed forms, fewer numpy calls
def test_validate_singularity_is_decided_as_lapack_decides_it():
    """The closed-form volume falls back to np.linalg.det near the threshold: refused exactly when
    |det| <= 1e-9 |a||b||c| by LAPACK, with the same message as before."""
    rng = np.random.default_rng(5)
    x = np.array([[0.1, 0.2, 0.3]])
    for k in range(400):
        a, b = rng.normal(size=3) * 4, rng.normal(size=3) * 4
        c = rng.uniform(-1, 1) * a + rng.uniform(-1, 1) * b  # coplanar, then pushed off the plane
        c = c + np.cross(a, b) / np.linalg.norm(np.cross(a, b)) * 10 ** rng.uniform(-14, -6) * (k % 3 - 1)
        L = np.array([a, b, c])
        lengths = np.linalg.norm(L, axis=1)
        vol = float(np.linalg.det(L))
        singular = bool(np.any(lengths <= 1e-8) or abs(vol) <= 1e-9 * float(np.prod(lengths)))
        msg = _refused(L, x, 0.0)
        assert (msg is not None) == singular
        if singular:
            assert msg == (
                f"the lattice is singular (volume {vol:.3g} A^3 for vector lengths "
                f"{np.round(lengths, 6).tolist()})"
            )
    for bad, what in ((np.nan, "lattice"), (np.inf, "lattice")):
        L = np.eye(3) * 4
        L[1, 2] = bad
        assert _refused(L, x, 0.1) == f"the {what} contains NaN or inf"
        assert _refused(np.eye(3) * 4, np.array([[0.0, bad, 0.0]]), 0.1) == "the positions contain NaN or inf"


def test_chol3_is_a_cholesky_factor_to_rounding():
    from basisdb.structures import _chol3

    rng = np.random.default_rng(6)
    for _ in range(2000):
        L = rng.normal(size=(3, 3)) * rng.uniform(0.5, 10, size=3)[:, None] + np.diag(rng.uniform(0, 5, 3))
        g = L.T @ L
        got, want = _chol3(g), np.linalg.cholesky(g)
        assert got.dtype == np.float64 and got.shape == (3, 3) and got.flags.c_contiguous
        assert np.all(np.triu(got, 1) == 0) and np.all(np.diag(got) > 0)
        scale = np.sqrt(np.abs(g).max())
        assert np.abs(got - want).max() <= 1e-14 * scale  # LAPACK's factor, to the last bits
        assert np.abs(got @ got.T - g).max() <= 1e-13 * np.abs(g).max()
    with pytest.raises(np.linalg.LinAlgError):  # not positive definite: LAPACK's error, as before
        _chol3(np.diag([1.0, -1.0, 1.0]))


def _settings():
    import basisdb

    db = basisdb.open()
    out = []
    for hall in range(1, 531):
        # polar directions off the axes (NotImplementedError): not one of spglib's default settings
        with contextlib.suppress(NotImplementedError):
            out.append(_canonical.group_data(db.get(hall=hall, kmax=1)))
    return out


def test_symmetrize_images_by_matmul_equal_the_einsum_bit_for_bit():
    """x @ R^T (exact: entries -1, 0, 1, at most two nonzero terms per row) + t equals the einsum + t,
    zero signs included, for every setting; and the flag is set for all of spglib's default settings."""
    rng = np.random.default_rng(7)
    x = rng.uniform(-1.5, 1.5, size=(12, 3))
    x[:3] = 0.0
    x[3:6] = -0.0
    x[6, :2] = -0.0
    gds = _settings()
    assert len(gds) > 400
    for gd in gds:
        assert gd.rep_rot_tf is not None, gd.hall_number
        t = gd.rep_translations_f
        want = np.einsum("gij,nj->gni", gd.rep_rot, x) + t[:, None, :]
        got = x @ gd.rep_rot_tf + t[:, None, :]
        assert got.tobytes() == want.tobytes(), gd.hall_number


def _reference_choice(gd, xbar, numbers, metric, symprec):
    """canonical_choice the long way: every (coset representative, polar anchor) candidate, its rows
    sorted by (species, quantised position) as Python tuples, the first smallest list kept."""
    reps_A, _, reps_AT, reps_bf = _canonical._coset_tables(gd, metric, symprec)
    cen = gd.centrings_f
    conv = (xbar[None, :, :] + cen[:, None, :]).reshape(-1, 3)
    z = np.concatenate([numbers] * len(cen))
    src = np.concatenate([np.arange(len(xbar))] * len(cen))
    base = conv @ reps_AT + reps_bf[:, None, :]
    species, counts = np.unique(z, return_counts=True)
    anchors = np.flatnonzero(z == species[np.argmin(counts)]) if gd.has_polar else [None]
    best = None
    for r in range(len(reps_A)):
        for anc in anchors:
            Y = base[r] if anc is None else base[r] - base[r, anc] * gd.polar_f
            q = np.rint((Y - np.floor(Y)) * _canonical.QUANTUM).astype(np.int64) % _canonical.QUANTUM
            rows = sorted(range(len(z)), key=lambda i: (int(z[i]), tuple(q[i].tolist())))
            key = [(int(z[i]), tuple(q[i].tolist())) for i in rows]
            if best is None or key < best[0]:
                best = (key, r, Y, rows)
    _, r, Y, rows = best
    y = Y[rows] - np.floor(Y[rows])
    y[y >= 1.0] = 0.0
    return reps_A[r], y, z[rows], src[rows]


def test_canonical_choice_equals_the_long_way():
    import basisdb

    db = basisdb.open()
    rng = np.random.default_rng(8)
    for hall in (1, 2, 3, 81, 298, 349, 400, 462, 485, 488, 501, 523, 529):
        gd = _canonical.group_data(db.get(hall=hall, kmax=1))
        for trial in range(6):
            a = rng.uniform(3, 6)
            S = np.eye(3) * a if trial % 2 else np.diag(rng.uniform(3, 8, 3))
            if 430 <= hall <= 488:  # hexagonal axes
                S = np.array([[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, rng.uniform(3, 8)]])
            n = int(rng.integers(1, 7))
            xbar = rng.uniform(0, 1, size=(n, 3))
            numbers = rng.integers(1, 1 + 1 + trial % 3, size=n)
            got = _canonical.canonical_choice(gd, xbar, numbers, S @ S.T, 0.1)
            A, y, zz, src = _reference_choice(gd, xbar, numbers, S @ S.T, 0.1)
            assert np.array_equal(got.A, A) and got.cell_positions.tobytes() == y.tobytes()
            assert np.array_equal(got.cell_numbers, zz) and np.array_equal(got.cell_source, src)


def test_coset_tables_by_identity_are_the_tables_by_bytes():
    import basisdb

    db = basisdb.open()
    gd = _canonical.group_data(db.get(hall=523, kmax=1))
    g = np.eye(3) * 16.0
    first = _canonical._coset_tables(gd, g, 0.1)
    again = _canonical._coset_tables(gd, g.copy(), 0.1)
    assert again is first  # the automorphisms' shared array, found by its identity
    auto = _canonical.lattice_automorphisms(g, 0.1)
    reps = _canonical._coset_representatives(gd, auto)
    assert np.array_equal(first[0], reps[0]) and np.array_equal(first[1], reps[1])


def test_axis_tables_equal_the_cumulative_products_and_the_exponentials():
    from basisdb._evaluate import _axis_tables

    rng = np.random.default_rng(9)
    x = rng.normal(size=(40, 3)) * 3
    x[:3] = 0.0
    x[3:6] = -0.0
    x[6:9] = 0.25
    for K in (0, 1, 4, 7):
        for cdtype in (np.complex128, np.complex64):
            got = _axis_tables(x, K, cdtype)
            # the long way: cos + 1j sin, powers by cumulative products, conjugates for negative h
            ang = (2.0 * np.pi) * np.mod(x, 1.0)
            z = np.empty((3, len(x), K), dtype=np.complex128)
            z[:] = (np.cos(ang) + 1j * np.sin(ang)).T[:, :, None]
            pos = np.cumprod(z, axis=2)
            want = np.empty((3, len(x), 2 * K + 1), dtype=cdtype)
            want[:, :, K + 1 :] = pos
            want[:, :, K] = 1.0
            want[:, :, :K] = np.conj(pos[:, :, ::-1])
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
            h = np.arange(-K, K + 1)
            exact = np.exp(2j * np.pi * h[None, None, :] * x.T[:, :, None])
            assert np.abs(got - exact).max() <= (1e-12 if cdtype == np.complex128 else 1e-5)
