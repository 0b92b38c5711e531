"""Mathematical properties of every stored basis, checked against references
computed here from spglib's operation database (never from the stored ops):

- invariance of every function under every operation g: x -> R x + t;
- orthonormality (exact quadrature on a uniform grid, and as sparse vectors);
- the real basis: real-valued functions spanning the same space;
- completeness: n_basis == trace of the Reynolds operator, and the projector
  equals the Reynolds operator (1/|G|) sum_g rho(g) built directly from the ops;
- restriction to a smaller K equals a fresh build at that K.

All 530 settings at small K; spot settings at the artifact's K = 8; an
exhaustive K = 8 invariance sweep is marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import ALL_HALLS, SPOT_HALLS, box, closed_set, flat_index, spglib_operations

K_ALL = 3
K_SPOT = 8
CASES = [(h, K_ALL) for h in ALL_HALLS] + [(h, K_SPOT) for h in SPOT_HALLS]
CASE_IDS = [f"hall{h}-K{k}" for h, k in CASES]
TOL = 1e-10


@pytest.fixture
def basis(db, request):
    hall, kmax = request.param
    return db.get(hall=hall, kmax=kmax)


def _orbit_of(b) -> np.ndarray:
    return np.repeat(np.arange(len(b.orbit_ptr) - 1), np.diff(b.orbit_ptr))


def plane_waves(x: np.ndarray, kmax: int, sign: int = 1) -> np.ndarray:
    """(N, n_box) exp(sign 2 pi i k.x) for every box frequency, in box-index order."""
    return np.exp(sign * 2j * np.pi * (x @ box(kmax).T))


def _images(x: np.ndarray, hall: int) -> np.ndarray:
    """g x = R x + t for every spglib op g and point x: (n_ops * N, 3), *not* wrapped into the cell."""
    rot, tra = spglib_operations(hall)
    return (np.einsum("gij,nj->gni", rot, x) + tra[:, None, :]).reshape(-1, 3)


def _check_invariance(b, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.random((16, 3)) + rng.integers(-2, 3, size=(16, 3))  # not all inside [0, 1)
    gx = _images(x, b.hall_number)
    n_ops = len(gx) // len(x)
    for real in (True, False):
        v = b.evaluate(np.concatenate([x, gx]), real=real)
        assert v.shape == (len(x) * (n_ops + 1), b.n_basis)
        assert np.iscomplexobj(v) != real
        ref = np.tile(v[: len(x)], (n_ops, 1))
        err = np.max(np.abs(v[len(x) :] - ref), initial=0.0)
        assert err <= TOL, f"hall {b.hall_number} K={b.kmax} real={real}: invariance error {err:.2e}"
        # and the functions are not trivially constant: something varies between points
        if b.n_basis > 1:
            assert np.ptp(v[: len(x), 1:].real) > 1e-3


def _check_no_accidental_invariance(b) -> None:
    """Guard for the invariance test: a generic trigonometric polynomial is *not* invariant."""
    rng = np.random.default_rng(1)
    x = rng.random((4, 3))
    gx = _images(x, b.hall_number)
    c = rng.normal(size=b.n_box) + 1j * rng.normal(size=b.n_box)
    f = lambda y: plane_waves(y, b.kmax) @ c  # noqa: E731
    if len(gx) > len(x):
        assert np.max(np.abs(f(gx) - np.tile(f(x), len(gx) // len(x)))) > 1e-3


# ------------------------------------------------------------------------ invariance
@pytest.mark.parametrize("basis", CASES, ids=CASE_IDS, indirect=True)
def test_invariance_under_spglib_operations(basis):
    _check_invariance(basis, seed=basis.hall_number)


@pytest.mark.parametrize("hall", [81, 350, 488, 526])
def test_invariance_test_can_fail(db, hall):
    _check_no_accidental_invariance(db.get(hall=hall, kmax=K_ALL))


@pytest.mark.slow
@pytest.mark.parametrize("hall", ALL_HALLS)
def test_invariance_all_settings_full_kmax(db, hall):
    _check_invariance(db.get(hall=hall, kmax=K_SPOT), seed=1000 + hall)


# ------------------------------------------------------------------ orthonormality
def _grid(M: int, seed: int) -> np.ndarray:
    off = np.random.default_rng(seed).random(3)
    r = np.arange(M)
    g = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)
    return (g + off) / M


def _check_grid_orthonormal(b, M: int) -> None:
    assert 2 * b.kmax + 1 <= M  # exact quadrature for products of two trig polys of degree K
    x = _grid(M, b.hall_number)
    eye = np.eye(b.n_basis)
    for real in (False, True):
        F = b.evaluate(x, real=real)
        G = F.conj().T @ F / M**3
        err = np.max(np.abs(G - eye))
        assert err <= TOL, f"hall {b.hall_number} real={real}: |F^H F / M^3 - I| = {err:.2e}"


# P 1, P -1 and P 21/c have thousands of functions at K = 8: their grid check runs at K = 4
GRID_CASES = (
    [(h, K_ALL) for h in ALL_HALLS]
    + [(h, K_SPOT) for h in SPOT_HALLS if h not in (1, 2, 81)]
    + [
        (1, 4),
        (2, 4),
        (81, 5),
    ]
)


@pytest.mark.parametrize("basis", GRID_CASES, ids=[f"hall{h}-K{k}" for h, k in GRID_CASES], indirect=True)
def test_orthonormal_on_grid(basis):
    _check_grid_orthonormal(basis, 2 * basis.kmax + 1)


def test_grid_quadrature_resolution_matters(db):
    """With M < 2K+1 the grid aliases: the same check must then see a non-identity Gram matrix."""
    b = db.get(hall=2, kmax=3)
    M = 4
    F = b.evaluate(_grid(M, 0), real=False)
    assert np.max(np.abs(F.conj().T @ F / M**3 - np.eye(b.n_basis))) > 0.1


def _sparse_gram_error(B) -> float:
    G = (B.conj().T @ B).tocoo()
    d = G.toarray() if G.shape[0] <= 2000 else None
    if d is not None:
        return float(np.max(np.abs(d - np.eye(G.shape[0])), initial=0.0))
    diff = (G - sp.identity(G.shape[0], format="coo")).tocoo()
    return float(np.max(np.abs(diff.data), initial=0.0))


@pytest.mark.parametrize("basis", CASES, ids=CASE_IDS, indirect=True)
def test_sparse_bases(basis):
    b = basis
    K = b.kmax
    n_box = (2 * K + 1) ** 3
    B = sp.csc_array(b.complex_basis())
    R = sp.csc_array(b.real_basis())
    assert B.shape == R.shape == (n_box, b.n_basis)
    assert _sparse_gram_error(B) <= TOL
    assert _sparse_gram_error(R) <= TOL
    # complex column j lives on orbit j with modulus |O|^-1/2 and the stored exact phases
    Bc = B.tocoo()
    rows = flat_index(b.frequencies, K)
    dense_col = np.zeros(n_box, dtype=complex)
    own = _orbit_of(b)
    for j in {0, b.n_basis // 2, b.n_basis - 1}:
        dense_col[:] = 0
        sel = own == j
        dense_col[rows[sel]] = np.exp(2j * np.pi * b.phases[sel] / 24) / np.sqrt(sel.sum())
        np.testing.assert_allclose(B[:, [j]].toarray().ravel(), dense_col, atol=1e-14)
    assert Bc.nnz == len(b.frequencies)
    # real columns: coefficients of real functions, c(-k) == conj(c(k))
    neg = flat_index(-box(K), K)
    Rd = R.tocsr()
    diff = Rd[neg, :] - Rd.conj()
    assert np.max(np.abs(diff.data), initial=0.0) <= 1e-14
    # the real basis spans the same space as the complex one
    proj = B @ (B.conj().T @ R)
    assert np.max(np.abs((proj - R).data), initial=0.0) <= TOL
    # and lives on basis frequencies only
    assert set(R.tocoo().row.tolist()) <= set(rows.tolist())


@pytest.mark.parametrize("basis", CASES, ids=CASE_IDS, indirect=True)
def test_evaluate_matches_plane_waves(basis):
    b = basis
    x = np.random.default_rng(7).random((5, 3)) * 3 - 1
    E = plane_waves(x, b.kmax)
    assert np.array_equal(flat_index(box(b.kmax), b.kmax), np.arange(b.n_box))
    real_ref = E @ sp.csc_array(b.real_basis())
    assert np.max(np.abs(real_ref.imag)) <= TOL, "real_basis() columns are not real functions"
    np.testing.assert_allclose(b.evaluate(x, real=True), real_ref.real, atol=TOL, rtol=0)
    np.testing.assert_allclose(
        b.evaluate(x, real=False), E @ sp.csc_array(b.complex_basis()), atol=TOL, rtol=0
    )
    # single point (3,) input gives one row
    np.testing.assert_allclose(b.evaluate(x[0]), b.evaluate(x[:1])[0], atol=1e-14, rtol=0)


# ------------------------------------------------------------------ completeness / projector
def _reynolds(hall: int, kmax: int):
    """Reynolds operator (1/|G|) sum_g rho(g) on the closed set, as a (n_box, n_box) sparse matrix.

    (rho(g) c)_{R^T k} = c_k exp(2 pi i k.t): f(g x) for f = sum_k c_k e_k.
    """
    rot, tra = spglib_operations(hall)
    closed = closed_set(rot, kmax)
    src = flat_index(closed, kmax)
    n_box = (2 * kmax + 1) ** 3
    rows, cols, vals = [], [], []
    for R, t in zip(rot, tra):
        img = closed @ R  # (R^T k)^T
        rows.append(flat_index(img, kmax))
        cols.append(src)
        vals.append(np.exp(2j * np.pi * (closed @ t)) / len(rot))
    P = sp.coo_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_box, n_box)
    )
    return sp.csr_array(P), closed


def _reynolds_trace(hall: int, kmax: int) -> complex:
    rot, tra = spglib_operations(hall)
    closed = closed_set(rot, kmax)
    total = 0j
    for R, t in zip(rot, tra):
        fixed = np.all(closed @ R == closed, axis=1)
        total += np.exp(2j * np.pi * (closed[fixed] @ t)).sum()
    return total / len(rot)


@pytest.mark.parametrize("basis", CASES, ids=CASE_IDS, indirect=True)
def test_n_basis_is_reynolds_trace(basis):
    tr = _reynolds_trace(basis.hall_number, basis.kmax)
    assert abs(tr.imag) < 1e-9
    assert abs(tr.real - round(tr.real)) < 1e-9
    assert basis.n_basis == round(tr.real)
    if basis.kmax == K_SPOT:
        assert basis.setting.n_orbits == basis.n_basis


@pytest.mark.parametrize("basis", CASES, ids=CASE_IDS, indirect=True)
def test_projector(basis):
    b = basis
    P = sp.csr_array(b.projector())
    n_box = (2 * b.kmax + 1) ** 3
    assert P.shape == (n_box, n_box)
    herm = P - P.conj().T
    assert np.max(np.abs(herm.data), initial=0.0) <= 1e-12
    idem = P @ P - P
    assert np.max(np.abs(idem.data), initial=0.0) <= 1e-12
    assert abs(P.trace() - b.n_basis) <= 1e-9
    # equals the Reynolds operator built directly from spglib's operations
    ref, _ = _reynolds(b.hall_number, b.kmax)
    diff = P - ref
    assert np.max(np.abs(diff.data), initial=0.0) <= 1e-12
    # P e(x), with e_k(x) = exp(-2 pi i k.x) (the kernel centred at x), is invariant in x
    x = np.random.default_rng(3).random((4, 3))
    gx = _images(x, b.hall_number)
    v = (P @ plane_waves(x, b.kmax, sign=-1).T).T
    vg = (P @ plane_waves(gx, b.kmax, sign=-1).T).T
    assert np.max(np.abs(vg - np.tile(v, (len(gx) // len(x), 1)))) <= TOL


def test_reynolds_reference_is_not_trivial(db):
    """The reference projector differs between groups with the same point group (P 41 vs P 4)."""
    p41, _ = _reynolds(350, 2)
    rot, _ = spglib_operations(350)
    p4 = 349  # P 4
    ref4, _ = _reynolds(p4, 2)
    assert db.get_setting(hall=p4).hm_short == "P4" and db.get_setting(hall=350).hm_short == "P4_1"
    assert len(spglib_operations(p4)[0]) == len(rot)
    assert np.max(np.abs((p41 - ref4).data)) > 0.1


# ------------------------------------------------------------------------ restriction
RESTRICT_HALLS = (
    1,
    2,
    5,
    18,
    48,
    81,
    115,
    150,
    227,
    292,
    350,
    365,
    427,
    455,
    460,
    461,
    480,
    488,
    499,
    523,
    526,
    530,
)


def _fresh(hall: int, kmax: int):
    from basisdb._ops import as_exact_operations
    from basisdb.builder.orbits import solve_orbits

    rot, tra = spglib_operations(hall)
    r, t = as_exact_operations(rot, tra)
    return solve_orbits(r, t, kmax)


def _assert_same(b, sol):
    np.testing.assert_array_equal(b.frequencies, np.asarray(sol.frequencies, dtype=np.int64))
    np.testing.assert_array_equal(b.orbit_ptr, np.asarray(sol.orbit_ptr, dtype=np.int64))
    np.testing.assert_array_equal(b.phases, np.asarray(sol.phases, dtype=np.int64))
    np.testing.assert_array_equal(
        b.extinct.reshape(-1, 3), np.asarray(sol.extinct, dtype=np.int64).reshape(-1, 3)
    )


@pytest.mark.parametrize("hall", RESTRICT_HALLS)
def test_restriction_equals_fresh_build(db, hall):
    _assert_same(db.get(hall=hall, kmax=4), _fresh(hall, 4))


@pytest.mark.parametrize("kmax", range(1, 9))
def test_restriction_every_kmax(db, kmax):
    for hall in (488, 526):
        _assert_same(db.get(hall=hall, kmax=kmax), _fresh(hall, kmax))


@pytest.mark.parametrize("hall", (460, 488))
def test_restriction_keeps_only_orbits_inside_box(db, hall):
    """Hexagonal boxes: an orbit that leaves the K=4 box must not be kept, even if its representative is inside."""
    b4 = db.get(hall=hall, kmax=4)
    rot, _ = spglib_operations(hall)
    every = np.concatenate([b4.frequencies, b4.extinct])
    images = np.einsum("ni,gij->gnj", every, rot)
    assert np.all(np.abs(images) <= 4)
    assert len(every) == len(closed_set(rot, 4))


@pytest.mark.slow
@pytest.mark.parametrize("hall", ALL_HALLS)
def test_restriction_equals_fresh_build_all_settings(db, hall):
    for kmax in (3, 5):
        _assert_same(db.get(hall=hall, kmax=kmax), _fresh(hall, kmax))


# --------------------------------------------------------- objects users expect
def _repr_is_short(obj, limit: int = 400) -> str:
    text = repr(obj)
    assert "\n" not in text and len(text) <= limit, text
    assert "array(" not in text and "tensor(" not in text and "_cache" not in text, text
    return text


def test_reprs_are_one_line(db):
    b = db.get(hall=526)
    b.evaluate(np.zeros((1, 3)))  # fill the private caches: they must not show
    assert _repr_is_short(b).startswith("Basis(hall_number=526, number=227, symbol='F d -3 m:2'")
    assert _repr_is_short(b.setting).startswith("Setting(hall_number=526,")
    p = db.get(plane="p4gm")
    assert _repr_is_short(p).startswith("Basis(plane=12, symbol='p4gm'")
    assert _repr_is_short(p.setting).startswith("PlaneGroup(number=12,")
    assert _repr_is_short(db).startswith("<basisdb.Database ")
    from basisdb import basis_from_operations

    assert _repr_is_short(basis_from_operations(["x,y,z", "-x,-y,-z"], kmax=2)).startswith(
        "Basis(hall_number=0,"
    )


def test_arrays_are_read_only_views_or_writeable_copies(db):
    """Fields and cached properties are read-only (the Database's cache is shared);
    what a method computes is a new writeable array (torch.from_numpy takes it without a warning)."""
    b = db.get(hall=526, kmax=3)
    for name in (
        "frequencies",
        "orbit_ptr",
        "phases",
        "extinct",
        "rotations",
        "translations",
        "orbit_sizes",
        "orbit_of",
        "box_indices",
        "conjugate",
        "coefficients",
        "real_phase_shift",
    ):
        arr = getattr(b, name)
        assert not arr.flags.writeable, name
        with pytest.raises(ValueError):
            arr[...] = 0
    assert all(not a.flags.writeable for a in b.orbit(1) + b.real_layout)
    rots, trans = b.operations()
    assert rots.flags.writeable and trans.flags.writeable
    rots[...] = 0  # a copy: the basis is untouched
    assert np.abs(b.rotations).sum() > 0
    x = np.random.default_rng(0).random((5, 3))
    assert b.evaluate(x).flags.writeable and b.evaluate(x, real=False).flags.writeable
    assert np.array(b.frequencies).flags.writeable  # the documented way to a writeable copy


@pytest.mark.parametrize(
    "dtype, real, want",
    [
        ("float32", True, np.float32),
        ("float64", True, np.float64),
        (np.float32, True, np.float32),
        ("float32", False, np.complex64),
        ("complex64", False, np.complex64),
        ("complex128", False, np.complex128),
        (np.dtype("complex64"), False, np.complex64),
    ],
)
def test_evaluate_accepts_dtype_names(db, dtype, real, want):
    b = db.get(hall=526, kmax=3)
    x = np.random.default_rng(1).random((4, 3))
    got = b.evaluate(x, real=real, dtype=dtype)
    assert got.dtype == want
    ref = b.evaluate(x, real=real)
    assert np.allclose(got, ref, atol=1e-5)


@pytest.mark.parametrize("dtype", ["complex64", "int32", np.float16])
def test_evaluate_refuses_other_dtypes(db, dtype):
    with pytest.raises(ValueError, match="float32 or float64"):
        db.get(hall=526, kmax=3).evaluate(np.zeros((1, 3)), dtype=dtype)
